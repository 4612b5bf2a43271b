package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// ExitError is a command that ran and exited non-zero.
type ExitError struct {
	Argv []string
	Code int
	// Signal names the signal that ended it ("" when it exited).
	Signal string
}

func (e *ExitError) Error() string {
	if e.Signal != "" {
		return fmt.Sprintf("%s was killed (%s)", strings.Join(e.Argv, " "), e.Signal)
	}
	return fmt.Sprintf("%s exited with status %d", strings.Join(e.Argv, " "), e.Code)
}

// LocalRunner runs commands on this machine with os/exec.
type LocalRunner struct{}

// Run implements Runner.
func (LocalRunner) Run(ctx context.Context, c Cmd) error {
	if len(c.Argv) == 0 {
		return errors.New("run: empty command")
	}
	path, err := exec.LookPath(c.Argv[0])
	if err != nil {
		return fmt.Errorf("%s not found on PATH: %w", c.Argv[0], err)
	}
	cmd := exec.CommandContext(ctx, path, c.Argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, c.Stdout, c.Stderr
	if len(c.Env) > 0 {
		cmd.Env = append(os.Environ(), c.Env...)
	}
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		xe := &ExitError{Argv: c.Argv, Code: ee.ExitCode()}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			xe.Signal = ws.Signal().String()
		}
		return xe
	}
	if err != nil {
		return fmt.Errorf("running %s: %w", c.Argv[0], err)
	}
	return nil
}

// Dial implements Runner.
func (LocalRunner) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
