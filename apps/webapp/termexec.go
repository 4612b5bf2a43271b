package webapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/protolab/protolab-tui/protocol/rfc6455"
)

// TermExec makes a web terminal (kind term) a bridge to a container: each
// session's shell is an exec in Container through the Docker Engine API
// (TTY on, attached over the engine's hijacked connection), not a pty of
// the app's own. The app needs the engine: whoever reaches its port gets a
// shell in that container, and the app holds the engine's socket (root on
// the engine's host).
type TermExec struct {
	// Engine is the engine's address (unix:///var/run/docker.sock,
	// tcp://host:2375); "" is DOCKER_HOST's, else the default socket.
	Engine string
	// Container is the container (name or ID) each session's shell runs in.
	Container string
	// User is who the shell runs as there ("uid:gid" or a name the
	// container knows); "" is the container's own user.
	User string
}

// execWrapper is what each exec runs: a constant script that reports its
// pid (in the container's PID namespace) and its /proc stat line (read by
// the shell itself, no command run) on its first line, then becomes the
// shell: the configured argv follows as its arguments, and nothing of it
// is read as shell code. The bridge ends the shell through that pid; the
// stat's start time tells whether the bridge sees that very process (it
// runs in the target container) and guards against a reused pid.
var execWrapper = []string{"/bin/sh", "-c", `{ read -r s < /proc/$$/stat; } 2>/dev/null || s=; echo "protolab-term pid $$ stat $s"; exec "$@"`, "protolab-term"}

// execKill signals, with $1, the process group of pid $2 when that pid is
// still the process that started at $3 (its stat's field 22; unchecked when
// empty), from a second exec in the target container: how the bridge ends
// a shell in a PID namespace it does not share.
var execKill = []string{"/bin/sh", "-c", `want=$3
if [ -n "$want" ]; then
  { read -r s < "/proc/$2/stat"; } 2>/dev/null || exit 0
  s=${s##*") "}
  set -f
  set -- "$1" "$2" $s
  [ "${22}" = "$want" ] || exit 0
fi
kill -s "$1" -- "-$2" 2>/dev/null || kill -s "$1" "$2"`, "protolab-term-kill"}

var pidLine = regexp.MustCompile(`^protolab-term pid (\d+) stat (.*?)\r?\n$`)

// statStart is a /proc/PID/stat line's start time (field 22), "" when the
// line is not one.
func statStart(stat string) string {
	i := strings.LastIndex(stat, ") ")
	if i < 0 {
		return ""
	}
	f := strings.Fields(stat[i+2:]) // from field 3 on
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// startOf is the start time of the process pid in this PID namespace.
func startOf(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	return statStart(string(b))
}

// execBridge opens shells in the target container.
type execBridge struct {
	cfg   TermExec
	shell []string
	log   *slog.Logger
	cli   *client.Client
	err   error // why there is no client
}

func newExecBridge(cfg TermExec, shell []string, log *slog.Logger) *execBridge {
	b := &execBridge{cfg: cfg, shell: shell, log: log}
	if cfg.Container == "" {
		b.err = errors.New("no container to run shells in (--term-container)")
		return b
	}
	opts := []client.Opt{client.FromEnv}
	if cfg.Engine != "" {
		opts = append(opts, client.WithHost(cfg.Engine))
	}
	if b.cli, b.err = client.New(opts...); b.err != nil {
		b.err = fmt.Errorf("the engine address %q: %w", cfg.Engine, b.err)
	}
	return b
}

func (b *execBridge) engine() string {
	if b.cli != nil {
		return b.cli.DaemonHost()
	}
	return b.cfg.Engine
}

func (b *execBridge) close() {
	if b.cli != nil {
		_ = b.cli.Close()
	}
}

// engineErr says what an engine call's failure means for the session.
func (b *execBridge) engineErr(what string, err error) error {
	switch {
	case client.IsErrConnectionFailed(err) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EACCES):
		return fmt.Errorf("the engine at %s does not answer: %w", b.engine(), err)
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("container %s is not on the engine: %w", b.cfg.Container, err)
	case cerrdefs.IsConflict(err):
		return fmt.Errorf("container %s is not running: %w", b.cfg.Container, err)
	}
	return fmt.Errorf("%s in container %s: %w", what, b.cfg.Container, err)
}

// open creates the session's exec (the wrapper, TTY on), attaches to it,
// and reads the wrapper's pid line, within 15s.
func (b *execBridge) open(ctx context.Context) (termShell, error) {
	if b.err != nil {
		return nil, b.err
	}
	x := &execShell{b: b}
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	argv := append(append([]string(nil), execWrapper...), b.shell...)
	res, err := b.cli.ExecCreate(octx, b.cfg.Container, client.ExecCreateOptions{
		User: b.cfg.User, TTY: true, AttachStdin: true, AttachStdout: true, AttachStderr: true,
		Env: []string{"TERM=xterm-256color"}, Cmd: argv,
	})
	if err != nil {
		return nil, b.engineErr("creating an exec", err)
	}
	x.id = res.ID
	att, err := b.cli.ExecAttach(octx, x.id, client.ExecAttachOptions{TTY: true})
	if err != nil {
		return nil, b.engineErr("starting the exec", err)
	}
	x.conn = att.HijackedResponse
	// The wrapper's first line: its pid. Anything else is the engine's (or
	// the runtime's) word on why the shell did not start.
	deadline, _ := octx.Deadline()
	_ = x.conn.Conn.SetReadDeadline(deadline)
	line, err := readLine(x.conn.Reader, 2048)
	_ = x.conn.Conn.SetReadDeadline(time.Time{})
	m := pidLine.FindStringSubmatch(line)
	if m == nil {
		x.conn.Close()
		said := strings.TrimSpace(line)
		if said == "" && err != nil {
			return nil, fmt.Errorf("the shell did not start in container %s: %w", b.cfg.Container, err)
		}
		// The runtime's word, from its point (a close reason is short):
		// OCI runtime exec failed: … exec: "/bin/sh": stat /bin/sh: no such file or directory: unknown
		if i := strings.Index(said, "exec: "); i >= 0 {
			said = strings.TrimSuffix(said[i:], ": unknown")
		}
		return nil, fmt.Errorf("container %s: %s", b.cfg.Container, said)
	}
	x.pid, _ = strconv.Atoi(m[1])
	x.start = statStart(m[2])
	x.local = x.start != "" && startOf(x.pid) == x.start
	return x, nil
}

// readLine reads up to and including '\n', at most max bytes.
func readLine(r io.ByteReader, max int) (string, error) {
	var b []byte
	for len(b) < max {
		c, err := r.ReadByte()
		if err != nil {
			return string(b), err
		}
		b = append(b, c)
		if c == '\n' {
			break
		}
	}
	return string(b), nil
}

// execShell is one session's exec.
type execShell struct {
	b     *execBridge
	id    string
	conn  client.HijackedResponse
	pid   int    // the shell's pid in the container's PID namespace
	start string // its start time (/proc stat field 22), "" when unknown
	local bool   // the bridge shares that namespace (the target is its own container)
	once  sync.Once
}

func (x *execShell) Read(p []byte) (int, error)  { return x.conn.Reader.Read(p) }
func (x *execShell) Write(p []byte) (int, error) { return x.conn.Conn.Write(p) }

func (x *execShell) Resize(cols, rows int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := x.b.cli.ExecResize(ctx, x.id, client.ExecResizeOptions{Width: uint(cols), Height: uint(rows)}); err != nil {
		return fmt.Errorf("resizing exec %.12s: %w", x.id, err)
	}
	return nil
}

func (x *execShell) Session() TermSession {
	return TermSession{Type: "session", Mode: "exec", PID: x.pid, Container: x.b.cfg.Container, Exec: x.id}
}

// running asks the engine whether the exec's process runs.
func (x *execShell) running(ctx context.Context) bool {
	in, err := x.b.cli.ExecInspect(ctx, x.id, client.ExecInspectOptions{})
	return err == nil && in.Running
}

// signal sends sig to the shell's process group: directly when the bridge
// shares its PID namespace, else through a second exec in the target
// container; either way only while the pid is still the shell's process
// (same start time), so a reused pid is never hit.
func (x *execShell) signal(ctx context.Context, sig syscall.Signal, name string) error {
	if x.local {
		if startOf(x.pid) != x.start {
			return nil // gone already
		}
		if err := syscall.Kill(-x.pid, sig); err != nil {
			return syscall.Kill(x.pid, sig)
		}
		return nil
	}
	argv := append(append([]string(nil), execKill...), name, strconv.Itoa(x.pid), x.start)
	res, err := x.b.cli.ExecCreate(ctx, x.b.cfg.Container, client.ExecCreateOptions{User: x.b.cfg.User, Cmd: argv})
	if err != nil {
		return fmt.Errorf("an exec to signal the shell: %w", err)
	}
	if _, err := x.b.cli.ExecStart(ctx, res.ID, client.ExecStartOptions{Detach: true}); err != nil {
		return fmt.Errorf("starting the exec that signals the shell: %w", err)
	}
	return nil
}

// waitGone polls the engine until the exec's process has ended, for at
// most d.
func (x *execShell) waitGone(ctx context.Context, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for x.running(ctx) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
	return true
}

// Ended says why the exec's output ended: the shell exited (with its
// code), or its container (or the engine) went. A shell killed by a signal
// is given 2s for its container to be seen stopping (a container killed or
// removed takes its execs first).
func (x *execShell) Ended() (uint16, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ex, err := x.b.cli.ExecInspect(ctx, x.id, client.ExecInspectOptions{})
	switch {
	case err != nil: // the exec went with its container, or the engine went
		why := x.containerLost(ctx)
		if why == "" {
			why = x.b.engineErr("inspecting the exec", err).Error()
		}
		return rfc6455.CloseInternalError, "the shell is lost: " + why
	case ex.Running:
		return rfc6455.CloseInternalError, "the shell is lost: the engine's stream of it ended while it runs"
	case ex.ExitCode > 128:
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if why := x.containerLost(ctx); why != "" {
				return rfc6455.CloseInternalError, "the shell is lost: " + why
			}
		}
	}
	if ex.ExitCode != 0 {
		return rfc6455.CloseNormal, "the shell exited with code " + strconv.Itoa(ex.ExitCode)
	}
	return rfc6455.CloseNormal, "the shell exited"
}

// containerLost says why the target container cannot hold a shell any
// more ("" while it runs).
func (x *execShell) containerLost(ctx context.Context) string {
	in, err := x.b.cli.ContainerInspect(ctx, x.b.cfg.Container, client.ContainerInspectOptions{})
	switch {
	case err != nil:
		return x.b.engineErr("inspecting", err).Error()
	case in.Container.State != nil && in.Container.State.Status == container.StateRemoving:
		return "container " + x.b.cfg.Container + " is being removed"
	case in.Container.State == nil || !in.Container.State.Running:
		return "container " + x.b.cfg.Container + " stopped"
	}
	return ""
}

// End ends the shell: closing the attach would leave it running (with a
// TTY the engine keeps the exec's terminal), so its process group is hung
// up, killed a second later if it is still there, and the attach closed.
func (x *execShell) End() {
	x.once.Do(func() {
		defer x.conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if !x.running(ctx) {
			return
		}
		for _, s := range []struct {
			sig  syscall.Signal
			name string
			wait time.Duration
		}{{syscall.SIGHUP, "HUP", time.Second}, {syscall.SIGKILL, "KILL", 3 * time.Second}} {
			if err := x.signal(ctx, s.sig, s.name); err != nil {
				x.b.log.Warn("web terminal: signalling the shell", "exec", x.id, "pid", x.pid, "signal", s.name, "err", err)
			}
			if x.waitGone(ctx, s.wait) {
				how := "through an exec in the container"
				if x.local {
					how = "in this PID namespace"
				}
				x.b.log.Info("web terminal: the shell ended", "exec", x.id, "pid", x.pid, "signal", s.name, "signalled", how)
				return
			}
		}
		x.b.log.Warn("web terminal: the shell outlived its socket", "container", x.b.cfg.Container, "exec", x.id, "pid", x.pid)
	})
}
