package capture

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
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
// loopback without any privilege on the host. The parent forwards SIGINT and
// SIGTERM and returns the child's exit code. started is false (with the
// reason) when the kernel refuses the namespaces; the caller then goes on
// without them.
func ReexecInNamespace() (code int, started bool, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, false, fmt.Errorf("finding this program to re-run it: %w", err)
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envNamespace+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		Pdeathsig:   syscall.SIGTERM,
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
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
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			return 128 + int(st.Signal()), true, nil
		}
		return ee.ExitCode(), true, nil
	}
	if err != nil {
		return 1, true, err
	}
	return 0, true, nil
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
