package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/protolab/protolab-tui/internal/testenv"
)

// ptyRun is the built binary running in a real terminal: a pty whose
// slave is its controlling terminal (a new session, as a login shell's
// child), so Ctrl-C typed there reaches its foreground process group, and
// closing the master hangs the terminal up.
type ptyRun struct {
	t      testing.TB
	cmd    *exec.Cmd
	master *os.File
	state  string // its --state-dir
	home   string // a folder it may write in
	answer string // typed back when the program asks the terminal for its background colour

	mu      sync.Mutex
	out     bytes.Buffer
	changed chan struct{} // closed (and replaced) when out grows
	closed  bool
	readEnd chan struct{}
	waited  chan struct{}
	waitErr error
	queries int // background-colour queries seen
}

// runUser says who runs the binary.
type runUser string

const (
	userRoot   runUser = "root"
	userNobody runUser = "nobody"
)

// cleanups run after every test (TestMain).
var cleanups []func()

var (
	nobodyOnce sync.Once
	nobodyDir  string // a copy of the binary that nobody may run
	nobodyErr  error
)

// nobodyBinary copies the binary once where nobody may run it.
func nobodyBinary(t testing.TB) string {
	t.Helper()
	nobodyOnce.Do(func() {
		nobodyDir, nobodyErr = os.MkdirTemp("", "protolab-nobody-bin-")
		if nobodyErr != nil {
			return
		}
		cleanups = append(cleanups, func() { os.RemoveAll(nobodyDir) })
		data, err := os.ReadFile(binary)
		if err != nil {
			nobodyErr = err
			return
		}
		if nobodyErr = os.Chmod(nobodyDir, 0o755); nobodyErr == nil {
			nobodyErr = os.WriteFile(filepath.Join(nobodyDir, "protolab-tui"), data, 0o755)
		}
	})
	if nobodyErr != nil {
		t.Fatal(nobodyErr)
	}
	return filepath.Join(nobodyDir, "protolab-tui")
}

// startPty runs the binary as user in a new pty of 160×45 with its own
// state directory; env is added to a minimal environment, and "{home}" in
// args is replaced by a folder the run may write in.
func startPty(t testing.TB, user runUser, env []string, args ...string) *ptyRun {
	t.Helper()
	return startPtyAnswering(t, user, "", env, args...)
}

// startPtyAnswering is startPty in a terminal that answers the background
// colour query with answer (none when empty).
func startPtyAnswering(t testing.TB, user runUser, answer string, env []string, args ...string) *ptyRun {
	t.Helper()
	return startPtyWith(t, user, answer, "", env, args...)
}

// startPtyWith is startPtyAnswering with, when script is set, sh -c script
// as the terminal's program, running the binary's command line as "$@" —
// as a script run from a terminal does.
func startPtyWith(t testing.TB, user runUser, answer, script string, env []string, args ...string) *ptyRun {
	t.Helper()
	home, err := os.MkdirTemp("", "protolab-pty-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	r := &ptyRun{t: t, state: filepath.Join(home, "state"), home: home, answer: answer, changed: make(chan struct{}), readEnd: make(chan struct{}), waited: make(chan struct{})}
	argv := []string{"--state-dir", r.state}
	for _, a := range args { // "{home}" is a folder the run may write in
		argv = append(argv, strings.ReplaceAll(a, "{home}", home))
	}
	var cmd *exec.Cmd
	switch user {
	case userRoot:
		cmd = exec.Command(binary, argv...)
	case userNobody:
		testenv.NeedRoot(t)
		setpriv := testenv.NeedCommand(t, "setpriv")
		if err := os.Chmod(home, 0o777); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(setpriv, append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups", nobodyBinary(t)}, argv...)...)
	}
	if script != "" {
		cmd = exec.Command("/bin/sh", append([]string{"-c", script, "sh"}, cmd.Args...)...)
	}
	// The race detector sleeps a second at exit unless told not to.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append([]string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "TERM=xterm-256color", "GORACE=" + gorace}, env...)
	r.cmd = cmd
	master, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 45, Cols: 160})
	if err != nil {
		t.Fatal(err)
	}
	if r.master, err = pollable(master); err != nil {
		t.Fatal(err)
	}
	go r.read()
	go func() {
		r.waitErr = cmd.Wait()
		close(r.waited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		r.hangUp()
		<-r.waited
	})
	return r
}

// pollable returns master as a file in the runtime's poller: setting the
// size put it in blocking mode, where Close waits for a Read in progress —
// and the terminal would hang up only when the program next writes.
func pollable(master *os.File) (*os.File, error) {
	defer master.Close()
	fd, err := syscall.Dup(int(master.Fd()))
	if err != nil {
		return nil, err
	}
	syscall.CloseOnExec(fd)
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), master.Name()), nil
}

// read copies the terminal's output until the pty ends (EIO once the
// session has no process left holding it), answering the background-colour
// query with r.answer when set.
func (r *ptyRun) read() {
	defer close(r.readEnd)
	buf := make([]byte, 4096)
	for {
		n, err := r.master.Read(buf)
		if n > 0 {
			r.mu.Lock()
			r.out.Write(buf[:n])
			if q := strings.Count(r.out.String(), "\x1b]11;?"); q > r.queries {
				r.queries = q
				if r.answer != "" {
					_, _ = io.WriteString(r.master, r.answer)
				}
			}
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// output is everything the terminal showed so far.
func (r *ptyRun) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// waitFor waits until the output holds every want (failing after a
// minute: a hang, not a measurement).
func (r *ptyRun) waitFor(what string, want ...string) {
	r.t.Helper()
	deadline := time.After(time.Minute)
	for {
		r.mu.Lock()
		s, changed := r.out.String(), r.changed
		r.mu.Unlock()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(s, w)
		}
		if ok {
			return
		}
		select {
		case <-changed:
		case <-r.waited:
			if !r.closed {
				<-r.readEnd // what it wrote before it exited
			}
			r.mu.Lock()
			s = r.out.String()
			r.mu.Unlock()
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(s, w)
			}
			if !ok {
				r.t.Fatalf("the program exited (%v) before %s; it showed:\n%s", r.waitErr, what, s)
			}
			return
		case <-deadline:
			r.t.Fatalf("waiting for %s (%q); the terminal shows:\n%s", what, want, s)
		}
	}
}

// type_ writes keys to the terminal.
func (r *ptyRun) type_(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.master, s); err != nil {
		r.t.Fatal(err)
	}
}

// hangUp closes the terminal (the master side), as closing the terminal
// window does.
func (r *ptyRun) hangUp() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.closed = true
		r.master.Close()
	}
}

// exit waits for the program (a minute at most) and returns its exit code
// and, unless the terminal was hung up, everything it showed.
func (r *ptyRun) exit() (int, string) {
	r.t.Helper()
	select {
	case <-r.waited:
	case <-time.After(time.Minute):
		r.t.Fatalf("no exit a minute after the signal; the terminal shows:\n%s", r.output())
	}
	if !r.closed {
		<-r.readEnd // all the output: the pty ends once every process holding it has
	}
	code := -1
	var ee *exec.ExitError
	switch {
	case r.waitErr == nil:
		code = 0
	case errors.As(r.waitErr, &ee):
		code = ee.ExitCode()
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			code = 128 + int(st.Signal())
		}
	}
	return code, r.output()
}

// session lists the processes of the run's session (the binary and what it
// started) by pid.
func (r *ptyRun) session() []int {
	sid := r.cmd.Process.Pid
	var out []int
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp session …; comm may hold spaces.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 3 && f[3] == strconv.Itoa(sid) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(st)))
			out = append(out, pid)
		}
	}
	return out
}

// listeners returns the TCP addresses the session's processes listen on in
// this network namespace (a namespaced child's are in its own, and end with
// it).
func (r *ptyRun) listeners() []string {
	self, _ := os.Readlink("/proc/self/ns/net")
	var out []string
	for _, pid := range r.session() {
		dir := fmt.Sprintf("/proc/%d", pid)
		if ns, _ := os.Readlink(dir + "/ns/net"); ns != self {
			continue
		}
		inodes := map[string]bool{}
		fds, _ := filepath.Glob(dir + "/fd/*")
		for _, fd := range fds {
			if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "socket:[") {
				inodes[strings.Trim(l[len("socket:"):], "[]")] = true
			}
		}
		for _, table := range []string{"/net/tcp", "/net/tcp6"} {
			b, _ := os.ReadFile(dir + table)
			for _, line := range strings.Split(string(b), "\n")[1:] {
				f := strings.Fields(line)
				if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] { // 0A: LISTEN
					continue
				}
				_, port, _ := strings.Cut(f[1], ":")
				n, _ := strconv.ParseUint(port, 16, 16)
				host := "127.0.0.1"
				if table == "/net/tcp6" {
					host = "::1"
				}
				out = append(out, net.JoinHostPort(host, strconv.Itoa(int(n))))
			}
		}
	}
	return out
}

// spoolLeft lists what the run left in its spool folder.
func (r *ptyRun) spoolLeft() []string {
	left, _ := filepath.Glob(filepath.Join(r.state, "spool", "*"))
	return left
}

// events parses the NDJSON events in the output (other lines skipped).
func events(out string) []map[string]any {
	var evs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '{'); i > 0 {
			line = line[i:] // after the terminal's echo of a typed Ctrl-C ("^C")
		}
		var ev map[string]any
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &ev) == nil {
			evs = append(evs, ev)
		}
	}
	return evs
}
