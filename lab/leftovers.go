package lab

import (
	"context"
	"fmt"
	"strings"
)

// EarlierLabEvent says that an earlier lab of this lab's name is still on
// the provider — a crash left it, or another protolab runs it — so this lab
// will not come up beside it (Up refuses: EarlierLabError). Providers that
// keep labs outside this process (docker, and the ssh and vagrant
// providers through it) publish it when asked before the lab is up
// (CheckEarlierLab); the explorer shows it until dismissed.
type EarlierLabEvent struct {
	At
	Lab      string `json:"lab"`
	Provider string `json:"provider"`
	// Where is what holds it ("the Docker engine at unix:///var/run/docker.sock").
	Where      string `json:"where"`
	Containers int    `json:"containers"`
	Running    int    `json:"running"`
	// Remove is the command line that removes it.
	Remove string `json:"remove"`
}

// EventType implements Event.
func (EarlierLabEvent) EventType() string { return "earlier_lab" }

// Message says what was found and how to remove it, in one sentence.
func (e EarlierLabEvent) Message() string {
	return fmt.Sprintf("an earlier lab %q is still on %s (%s, %d running): a lab of this name is not brought up beside it; remove it with %s",
		e.Lab, e.Where, Containers(e.Containers), e.Running, e.Remove)
}

// EarlierLabError is a provider's refusal to bring a lab up where a lab
// of its name already is (another run brought it up, or a crash left it):
// a run never touches what it did not create, and two labs of one name
// would share their containers' names and labels.
type EarlierLabError struct {
	Lab      string
	Provider string
	// Where is what holds it ("the Docker engine at unix:///var/run/docker.sock").
	Where      string
	Containers int
	Running    int
	// Attach and Remove are the command lines that attach to it (serve
	// its explorer) and remove it.
	Attach, Remove string
}

func (e *EarlierLabError) Error() string {
	return fmt.Sprintf("a lab named %q is already on %s (%s, %d running; another run brought it up, or a crash left it): "+
		"this run leaves it alone and does not start beside it. Give this lab another --name, attach to that one with %s, or remove it with %s",
		e.Lab, e.Where, Containers(e.Containers), e.Running, e.Attach, e.Remove)
}

// LabRemover is a provider that removes a lab of its name it did not bring
// up itself — whatever carries the lab's name on the provider, whichever
// run made it (--teardown, down --all). A provider's Teardown removes only
// what its own run created.
type LabRemover interface {
	RemoveLab(ctx context.Context) error
}

// RemoveLab removes everything the lab of p's name left on p: RemoveLab
// when p can, else its Teardown (the embedded provider leaves nothing).
func RemoveLab(ctx context.Context, p Provider) error {
	if r, ok := p.(LabRemover); ok {
		return r.RemoveLab(ctx)
	}
	return p.Teardown(ctx)
}

// LabSummary is one lab a provider holds (protolab-tui down): its name and
// its containers, by label.
type LabSummary struct {
	Name       string
	Containers int
	Running    int
	Networks   int
}

// String says it for people ("demo: 4 containers, 4 running").
func (s LabSummary) String() string {
	out := fmt.Sprintf("%s: %s, %d running", s.Name, Containers(s.Containers), s.Running)
	if s.Containers == 0 && s.Networks > 0 {
		out += fmt.Sprintf(", its network left (%d)", s.Networks)
	}
	return out
}

// RunningLab is a lab found running on a provider (LabFinder): its apps
// as the provider has them, each on the port it is published on.
type RunningLab struct {
	Apps []App
	// Where is what holds it; Containers and Running count its containers.
	Where      string
	Containers int
	Running    int
}

// LabFinder is a provider that can look for a lab of its name running on
// it, bringing nothing up and creating nothing (serve attaches to it).
type LabFinder interface {
	// FindLab returns the lab of this name on the provider, or nil when
	// there is none.
	FindLab(ctx context.Context) (*RunningLab, error)
}

// FindRunning looks for a lab of this lab's name on its provider (nil
// when there is none, or the provider cannot look).
func (l *Lab) FindRunning(ctx context.Context) (*RunningLab, error) {
	f, ok := l.prov.(LabFinder)
	if !ok {
		return nil, nil
	}
	return f.FindLab(ctx)
}

// AttachCommand is the command line that serves the explorer of the lab
// of c's name running on its provider (protolab-tui serve attaches to it).
func AttachCommand(c Config) string {
	args := []string{"protolab-tui", "serve", "--provider", c.Provider}
	args = append(args, providerArgs(c)...)
	args = append(args, "--name", c.Name, "--authorized-keys", "~/.ssh/authorized_keys")
	return quoteArgs(args, "--authorized-keys")
}

// EarlierLabChecker is a provider that can look for an earlier lab of
// its name before the lab is up (the docker provider; the ssh and vagrant
// providers look when they come up, once they reach the host, and refuse).
type EarlierLabChecker interface {
	// CheckEarlierLab publishes an EarlierLabEvent when it finds one.
	CheckEarlierLab(ctx context.Context) error
}

// CheckEarlierLab looks for an earlier lab of this lab's name on the
// provider, as Up does before it refuses (the explorer asks at start when
// it does not bring the lab up itself). It returns at once; what it finds arrives as an
// EarlierLabEvent. A provider that cannot look before it is up does
// nothing.
func (l *Lab) CheckEarlierLab(ctx context.Context) *Job {
	c, ok := l.prov.(EarlierLabChecker)
	if !ok {
		return failedJob(nil)
	}
	j := newJob()
	go func() { j.finish(c.CheckEarlierLab(ctx)) }()
	return j
}

// Containers says n containers ("1 container", "4 containers").
func Containers(n int) string {
	if n == 1 {
		return "1 container"
	}
	return fmt.Sprintf("%d containers", n)
}

// TeardownCommand is the command line that removes what a lab of c left on
// its provider; labPath is its lab file ("" when there is none, or the
// caller does not know it).
func TeardownCommand(c Config, labPath string) string {
	args := []string{"protolab-tui"}
	if labPath != "" {
		args = append(args, "--lab", labPath)
	}
	args = append(args, "--provider", c.Provider)
	args = append(args, providerArgs(c)...)
	args = append(args, "--name", c.Name, "--teardown")
	return quoteArgs(args, "")
}

// providerArgs are the flags that find c's provider again (its host, its
// Vagrantfile's folder) and its state directory, when not the default.
func providerArgs(c Config) []string {
	var args []string
	if c.Provider == "ssh" {
		args = append(args, "--host", c.SSH.Host)
	}
	if c.Provider == "vagrant" {
		args = append(args, "--vagrant-dir", c.Vagrant.Dir)
	}
	if def, err := DefaultStateDir(); err != nil || c.StateDir != def {
		args = append(args, "--state-dir", c.StateDir)
	}
	return args
}

// quoteArgs joins args as a shell line, quoting those that need it (but
// the value after the flag keep, a path the shell is to expand).
func quoteArgs(args []string, keep string) string {
	for i, a := range args {
		if i > 0 && args[i-1] == keep && keep != "" {
			continue
		}
		if strings.ContainsAny(a, " \t'\"$`\\*?[]#~;&|<>(){}") {
			args[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(args, " ")
}
