package capture

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNoPrivilege means the process may not capture packets (no CAP_NET_RAW).
var ErrNoPrivilege = errors.New("no permission to capture packets: run as root or with CAP_NET_RAW (protolab falls back to a private network namespace or socket-level capture)")

func isPermission(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, os.ErrPermission)
}

// CanCapture reports whether this process may open AF_PACKET sockets.
func CanCapture() bool {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// envNamespace marks the child process that runs inside the private user
// and network namespace.
const envNamespace = "PROTOLAB_IN_NETNS"

// InNamespace reports whether this process is the namespaced child.
func InNamespace() bool { return os.Getenv(envNamespace) == "1" }

// ReexecInNamespace runs this program again, with the same arguments, inside
// a new user namespace (mapping this user to root there) and a new network
// namespace — what `unshare -rn` does — where it may capture its own
// loopback without any privilege on the host. It returns the child's exit
// code once the child has exited (its teardown done). started is false
// (with the reason) when the kernel refuses the namespaces; the caller then
// goes on without them.
//
// Signals reach the child once each. The child runs in a process group of
// its own, so a signal to this process's group (kill -INT -PGID) reaches
// only this process, which forwards SIGINT, SIGTERM and SIGHUP. When this
// process is in the foreground of its terminal, the child's group takes the
// foreground instead (as a shell does for a job) — it may read the terminal
// (the explorer) and gets Ctrl-C from the terminal itself, which this
// process, now in the background, does not — and the terminal is given back
// when the child exits. Were the child in this process's group, a Ctrl-C
// would reach it twice: from the terminal and forwarded.
func ReexecInNamespace() (code int, started bool, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, false, fmt.Errorf("finding this program to re-run it: %w", err)
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	// Pdeathsig is sent when the thread that started the child ends: keep
	// this goroutine on its thread until the child is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tty, fg := foregroundTerminal(os.Stdin)
	cmd, err := startInNamespace(exe, fg, tty)
	if err != nil && fg {
		// The terminal could not be handed over: run the child in the
		// background group (this process keeps the terminal's signals and
		// forwards them).
		fg = false
		cmd, err = startInNamespace(exe, false, 0)
	}
	if err != nil {
		return 0, false, fmt.Errorf("the kernel refused a private user+network namespace: %w", err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	if fg {
		giveTerminalBack(tty)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			return 128 + int(st.Signal()), true, nil
		}
		return ee.ExitCode(), true, nil
	}
	if err != nil {
		return 1, true, fmt.Errorf("waiting for the namespaced run: %w", err)
	}
	return 0, true, nil
}

// startInNamespace starts the child in its own process group, in the
// terminal's foreground when fg (tty is the terminal's descriptor).
func startInNamespace(exe string, fg bool, tty int) (*exec.Cmd, error) {
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envNamespace+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		Pdeathsig:   syscall.SIGTERM,
		Setpgid:     true,
		Foreground:  fg,
		Ctty:        tty,
	}
	return cmd, cmd.Start()
}

// foregroundTerminal returns f's descriptor when f is a terminal whose
// foreground process group is this process's.
func foregroundTerminal(f *os.File) (int, bool) {
	fd := int(f.Fd())
	pg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return fd, err == nil && pg == unix.Getpgrp()
}

// giveTerminalBack makes this process's group the terminal's foreground
// again (from the background, so SIGTTOU is ignored meanwhile).
func giveTerminalBack(tty int) {
	signal.Ignore(syscall.SIGTTOU)
	defer signal.Reset(syscall.SIGTTOU)
	_ = unix.IoctlSetPointerInt(tty, unix.TIOCSPGRP, unix.Getpgrp())
}

// LoopbackUp brings the loopback interface up (a new network namespace
// starts with it down).
func LoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	return nil
}
