package lab

import (
	"context"
	"fmt"
	"strings"
)

// EarlierLabEvent says that an earlier lab of this lab's name is still on
// the provider — a crash left it, or another protolab runs it — so deploying
// may run into it. Providers that keep labs outside this process (docker,
// and the ssh and vagrant providers through it) publish it when the lab
// comes up, before they deploy; the explorer shows it until dismissed.
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
	return fmt.Sprintf("an earlier lab %q is still on %s (%s, %d running): deploying may fail on them; remove it with %s",
		e.Lab, e.Where, Containers(e.Containers), e.Running, e.Remove)
}

// EarlierLabChecker is a provider that can look for an earlier lab of
// its name before the lab is up (the docker provider; the ssh and vagrant
// providers look when they come up, once they reach the host).
type EarlierLabChecker interface {
	// CheckEarlierLab publishes an EarlierLabEvent when it finds one.
	CheckEarlierLab(ctx context.Context) error
}

// CheckEarlierLab looks for an earlier lab of this lab's name on the
// provider, as Up does (the explorer asks at start when it does not bring
// the lab up itself). It returns at once; what it finds arrives as an
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
	if c.Provider == "ssh" {
		args = append(args, "--host", c.SSH.Host)
	}
	if c.Provider == "vagrant" {
		args = append(args, "--vagrant-dir", c.Vagrant.Dir)
	}
	if def, err := DefaultStateDir(); err != nil || c.StateDir != def {
		args = append(args, "--state-dir", c.StateDir)
	}
	args = append(args, "--name", c.Name, "--teardown")
	for i, a := range args {
		if strings.ContainsAny(a, " \t'\"$`\\*?[]#~;&|<>(){}") {
			args[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(args, " ")
}
