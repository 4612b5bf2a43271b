package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/creack/pty"
)

// Shell is an interactive shell on the lab host, on a pseudo-terminal:
// what it prints is read from it, what the user types is written to it.
type Shell interface {
	io.ReadWriteCloser
	// Resize tells the shell its terminal's new size.
	Resize(cols, rows int) error
}

// localShell is a shell on this machine, on a real pty.
type localShell struct {
	f    *os.File
	cmd  *exec.Cmd
	once sync.Once
}

// OpenShell implements Runner: $SHELL (or /bin/sh) on a new pty.
func (LocalRunner) OpenShell(_ context.Context, cols, rows int) (Shell, error) {
	sh := os.Getenv("SHELL")
	if sh == "" {
		sh = "/bin/sh"
	}
	cmd := exec.Command(sh)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)})
	if err != nil {
		return nil, fmt.Errorf("starting %s on a pty: %w", sh, err)
	}
	return &localShell{f: f, cmd: cmd}, nil
}

func (s *localShell) Read(p []byte) (int, error)  { return s.f.Read(p) }
func (s *localShell) Write(p []byte) (int, error) { return s.f.Write(p) }

func (s *localShell) Resize(cols, rows int) error {
	return pty.Setsize(s.f, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)})
}

func (s *localShell) Close() error {
	s.once.Do(func() {
		_ = s.cmd.Process.Kill()
		_ = s.f.Close()
		_ = s.cmd.Wait()
	})
	return nil
}

// ShellAction is a command line the debugging shell types when a function
// key is pressed: what works on this provider's lab host, never a command
// that cannot work there.
type ShellAction struct {
	Key     string // "f2", "f3", "f4"
	Label   string // for the pane's title
	Command string // typed into the shell, then Enter
}

// ShellActioner is implemented by providers that know their lab host's
// useful commands; selected is the app the person has selected ("" for
// none), apps the lab's apps as they are now.
type ShellActioner interface {
	ShellActions(selected string, apps []AppStatus) []ShellAction
}

// ShellActions returns the debugging shell's quick actions for the selected
// app: the provider's, then ss for the lab's ports where the provider has
// none for f4. Everything in them is the lab's own names and numbers (app
// names, ports), checked when the lab was configured: no user text is ever
// spliced into a command line.
func (l *Lab) ShellActions(selected string) []ShellAction {
	apps := l.Snapshot().Apps
	var out []ShellAction
	if sa, ok := l.prov.(ShellActioner); ok {
		out = sa.ShellActions(selected, apps)
	}
	for _, a := range out {
		if a.Key == "f4" {
			return out
		}
	}
	return append(out, ShellAction{Key: "f4", Label: "ss for the lab's ports", Command: SSForPorts(apps)})
}

// SSForPorts is `ss -tnp` limited to the apps' ports on this host (their
// endpoints' ports).
func SSForPorts(apps []AppStatus) string {
	var ports []string
	for _, a := range apps {
		if _, port, err := net.SplitHostPort(a.Endpoint); err == nil {
			ports = append(ports, "sport = :"+port)
		}
	}
	if len(ports) == 0 {
		return "ss -tnp"
	}
	return "ss -tnp '( " + strings.Join(ports, " or ") + " )'"
}
