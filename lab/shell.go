package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
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
