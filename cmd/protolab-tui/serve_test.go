package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/hinshun/vt10x"

	"github.com/protolab/protolab-tui/internal/sshdtest"
	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/internal/vtscreen"
)

// ptyShell is an OpenSSH client on a pty, as the emulated screen reads it.
// It answers what a terminal is asked as xterm would — the background
// colour (OSC 11, dark) and the device attributes (DA1) — which the
// emulator does not.
type ptyShell struct{ *os.File }

func (p ptyShell) Read(b []byte) (int, error) {
	n, err := p.File.Read(b)
	out := b[:n]
	if bytes.Contains(out, []byte("\x1b]11;?")) {
		_, _ = p.File.WriteString("\x1b]11;rgb:1e1e/1e1e/2e2e\x1b\\")
	}
	if bytes.Contains(out, []byte("\x1b[c")) || bytes.Contains(out, []byte("\x1b[0c")) {
		_, _ = p.File.WriteString("\x1b[?62;22c")
	}
	return n, err
}

func (p ptyShell) Resize(cols, rows int) error {
	return pty.Setsize(p.File, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)})
}

// syncBuffer is a log the server writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// onScreen reports whether text is anywhere on the emulated screen (read
// cell by cell: the emulator is locked, and its String locks it again).
func onScreen(text string) func(vt10x.Terminal) bool {
	return func(vt vt10x.Terminal) bool {
		cols, rows := vt.Size()
		var b strings.Builder
		for y := 0; y < rows; y++ {
			for x := 0; x < cols; x++ {
				b.WriteRune(vt.Cell(x, y).Char)
			}
			b.WriteByte('\n')
		}
		return strings.Contains(b.String(), text)
	}
}

// TestServeOverSSH: protolab-tui serve brings the embedded lab up and
// serves its explorer; two real OpenSSH clients, at 80×24 and 120×40, each
// get an explorer of their own on the one lab: a ws send typed in one shows
// its echo in both; the debugging shell is refused to a session whose key
// may not open it; q leaves one session while the other goes on; a key not
// in the authorized file is refused; SIGINT tears the lab down and ends
// the sessions.
func TestServeOverSSH(t *testing.T) {
	sshBin := testenv.NeedCommand(t, "ssh")
	dir := t.TempDir()
	var auth []byte
	for _, k := range []string{"alice", "bob", "mallory"} {
		sshdtest.Keygen(t, filepath.Join(dir, k))
		if k != "mallory" {
			pub, err := os.ReadFile(filepath.Join(dir, k+".pub"))
			if err != nil {
				t.Fatal(err)
			}
			auth = append(auth, pub...)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized"), auth, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)

	var log syncBuffer
	srv := exec.Command(binary, append([]string{"serve", "--listen", addr, "--authorized-keys", filepath.Join(dir, "authorized"),
		"--state-dir", filepath.Join(dir, "state")}, freePorts...)...)
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(log.String(), "ssh -p "+port+" lab@127.0.0.1") {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not say where it listens:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	hostKey, err := os.ReadFile(filepath.Join(dir, "state", "serve", "host_ed25519"))
	if st, serr := os.Stat(filepath.Join(dir, "state", "serve", "host_ed25519")); err != nil || serr != nil || st.Mode().Perm() != 0o600 || len(hostKey) == 0 {
		t.Fatalf("host key: %v %v %v", err, serr, st)
	}
	sshArgs := func(key string, extra ...string) []string { return sshClientArgs(dir, port, key, extra...) }
	open := func(key string, cols, rows int) session { return openSession(t, sshBin, dir, port, key, cols, rows) }
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("serve said:\n%s", log.String())
		}
	})
	alice := open("alice", 80, 24)
	bob := open("bob", 120, 40)
	bob.scr.Expect("", onScreen("q/ctrl+c leave"))

	alice.scr.Expect("s", onScreen("send over ws"))
	alice.scr.Expect("hello over ssh\r", onScreen(`send ws "hello over ssh" → "hello over ssh"`))
	bob.scr.Expect("", onScreen(`send ws "hello over ssh" → "hello over ssh"`))
	alice.scr.Expect("x", onScreen("the debugging shell (a root shell on the lab host) is not"))

	// mallory's key is not listed.
	out, err := exec.Command(sshBin, sshArgs("mallory", "lab@127.0.0.1", "true")...).CombinedOutput()
	if exitCode(err) != 255 || !strings.Contains(string(out), "Permission denied") {
		t.Errorf("a key not in the authorized file: exit %d, %s", exitCode(err), out)
	}
	if !strings.Contains(log.String(), "refused a key not in the authorized keys") {
		t.Errorf("the refusal is not logged:\n%s", log.String())
	}

	// alice leaves; bob's explorer goes on and still hears the lab.
	aliceGone := make(chan error, 1)
	go func() { aliceGone <- alice.cmd.Wait() }()
	if _, err := alice.pty.WriteString("q"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-aliceGone:
		if err != nil {
			t.Errorf("alice's ssh after q: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("q did not end alice's session")
	}
	bob.scr.Expect("s", onScreen("send over ws"))
	bob.scr.Expect("after alice left\r", onScreen(`send ws "after alice left" → "after alice left" in`))

	// SIGINT: the lab is torn down, bob's session ends, exit 130.
	if err := srv.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if exitCode(err) != 130 || !strings.Contains(log.String(), "the lab was torn down") {
			t.Errorf("serve after SIGINT: exit %d\n%s", exitCode(err), log.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("serve did not end a minute after SIGINT:\n%s", log.String())
	}
	bobGone := make(chan error, 1)
	go func() { bobGone <- bob.cmd.Wait() }()
	select {
	case <-bobGone:
	case <-time.After(10 * time.Second):
		t.Error("bob's ssh did not end with the server")
	}
}

// sshClientArgs are the OpenSSH client's arguments that reach serve on
// port with the key file dir/key (known hosts kept in dir).
func sshClientArgs(dir, port, key string, extra ...string) []string {
	return append([]string{"-p", port, "-i", filepath.Join(dir, key), "-o", "UserKnownHostsFile=" + filepath.Join(dir, "known_hosts"),
		"-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"}, extra...)
}

// session is an OpenSSH client in a pty, attached to serve's explorer.
type session struct {
	cmd *exec.Cmd
	pty *os.File
	scr *vtscreen.Screen
}

// openSession opens an explorer over SSH at cols×rows and waits until it
// shows the lab running.
func openSession(t *testing.T, sshBin, dir, port, key string, cols, rows int) session {
	t.Helper()
	cmd := exec.Command(sshBin, sshClientArgs(dir, port, key, "-tt", "lab@127.0.0.1")...)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); f.Close() })
	s := session{cmd, f, vtscreen.New(t, ptyShell{f}, cols, rows)}
	s.scr.Expect("", onScreen("running"))
	return s
}

// startServe runs `protolab-tui serve args…` and waits until it says
// where it listens (addr); its output is in the returned log, its end on
// done (killed at the test's end).
func startServe(t *testing.T, addr string, args ...string) (*exec.Cmd, *syncBuffer, chan error) {
	t.Helper()
	var log syncBuffer
	srv := exec.Command(binary, append([]string{"serve", "--listen", addr}, args...)...)
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		err := <-done
		done <- err
		if t.Failed() {
			t.Logf("serve said:\n%s", log.String())
		}
	})
	_, port, _ := net.SplitHostPort(addr)
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(log.String(), "ssh -p "+port+" lab@127.0.0.1") {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not say where it listens:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return srv, &log, done
}

// stopServe sends serve SIGINT and returns its exit code.
func stopServe(t *testing.T, srv *exec.Cmd, log *syncBuffer, done chan error) int {
	t.Helper()
	if err := srv.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		return exitCode(err)
	case <-time.After(2 * time.Minute):
		t.Fatalf("serve did not end 2 minutes after SIGINT:\n%s", log.String())
	}
	return -1
}

// running counts the running containers of lab name on the engine.
func runningContainers(t *testing.T, name string) int {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-q", "--filter", "label=protolab.lab="+name).Output()
	if err != nil {
		t.Fatal(err)
	}
	return len(strings.Fields(string(out)))
}

// TestServeAttachesToARunningLab: a docker lab kept by a headless run
// (--keep) is served as it runs: serve says it attaches, an OpenSSH
// client's explorer shows the running lab and a ws send typed there gets
// the kept lab's echo, and on SIGINT serve leaves the lab running and says
// so. serve of a name that runs nowhere brings a lab up, and on SIGINT
// removes it — and only it.
func TestServeAttachesToARunningLab(t *testing.T) {
	needDocker(t)
	sshBin := testenv.NeedCommand(t, "ssh")
	dir := t.TempDir()
	sshdtest.Keygen(t, filepath.Join(dir, "alice"))
	state := filepath.Join(dir, "state")
	name := fmt.Sprintf("t-serve-attach-%d", os.Getpid())
	own := name + "-own"
	t.Cleanup(func() {
		for _, n := range []string{name, own} {
			_ = exec.Command(binary, "--provider", "docker", "--state-dir", state, "--name", n, "--teardown").Run()
		}
	})
	ports := []string{"--http-port", freePort(t), "--https-port", freePort(t), "--ws-port", freePort(t), "--wss-port", freePort(t)}
	kept := exec.Command(binary, append([]string{"--headless", "--keep", "--provider", "docker", "--name", name, "--state-dir", state, "--count", "2", "--capture", "off"}, ports...)...)
	if out, err := kept.CombinedOutput(); err != nil {
		t.Fatalf("the kept lab: %v\n%s", err, out)
	}
	if n := runningContainers(t, name); n != 4 {
		t.Fatalf("the kept lab runs %d containers, want 4", n)
	}

	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	srv, log, done := startServe(t, addr, "--authorized-keys", filepath.Join(dir, "alice.pub"), "--provider", "docker", "--name", name, "--state-dir", state)
	for _, want := range []string{fmt.Sprintf("lab %q runs on the Docker engine at ", name), "(4 containers, 4 running): serving it as it runs (its apps: http, https, ws, wss)"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("serve does not say %q:\n%s", want, log.String())
		}
	}
	alice := openSession(t, sshBin, dir, port, "alice", 120, 40)
	alice.scr.Expect("", onScreen(":"+ports[5])) // the kept lab's ws endpoint
	alice.scr.Expect("s", onScreen("send over ws"))
	alice.scr.Expect("hello kept lab\r", onScreen(`send ws "hello kept lab" → "hello kept lab"`))
	if code := stopServe(t, srv, log, done); code != 130 {
		t.Errorf("serve after SIGINT: exit %d, want 130", code)
	}
	if want := fmt.Sprintf("lab %q ran before serve attached to it, and is left running", name); !strings.Contains(log.String(), want) {
		t.Errorf("serve does not say %q:\n%s", want, log.String())
	}
	if strings.Contains(log.String(), "already exists") || strings.Contains(log.String(), "earlier lab") {
		t.Errorf("serve ran into the lab it attached to:\n%s", log.String())
	}
	if n := runningContainers(t, name); n != 4 {
		t.Errorf("after serve stopped, the kept lab runs %d containers, want its 4", n)
	}

	// No lab of this name runs: serve brings one up, and removes it (only
	// it) when it stops.
	addr = freeAddr(t)
	srv, log, done = startServe(t, addr, "--authorized-keys", filepath.Join(dir, "alice.pub"), "--provider", "docker", "--name", own, "--state-dir", state,
		"--http-port", "0", "--https-port", "0", "--ws-port", "0", "--wss-port", "0")
	for deadline := time.Now().Add(3 * time.Minute); runningContainers(t, own) != 4; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("serve brought up %d containers of %s, want 4:\n%s", runningContainers(t, own), own, log.String())
		}
	}
	if code := stopServe(t, srv, log, done); code != 130 || !strings.Contains(log.String(), "the lab was torn down") {
		t.Errorf("serve of its own lab after SIGINT: exit %d\n%s", code, log.String())
	}
	if n := dockerLeftovers(t, own); n != 0 {
		t.Errorf("serve left %d containers/networks of the lab it brought up", n)
	}
	if n := runningContainers(t, name); n != 4 {
		t.Errorf("the other lab runs %d containers, want its 4", n)
	}
}

// freeAddr is a free loopback address to listen on.
func freeAddr(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:" + freePort(t)
}

// TestServeBadInput: no authorized keys, a file that is no key list, a
// listen address in use: each a usage error naming what and why, before
// any lab comes up.
func TestServeBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sshdtest.Keygen(t, filepath.Join(dir, "k"))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--authorized-keys FILE is needed"},
		{[]string{"--authorized-keys", bad}, "bad:1: not a public key"},
		{[]string{"--authorized-keys", filepath.Join(dir, "none")}, "no such file"},
		{[]string{"--authorized-keys", filepath.Join(dir, "k.pub"), "--listen", busy.Addr().String()}, "listening on " + busy.Addr().String()},
		{[]string{"--listen"}, "flag needs an argument: -listen"},
	} {
		out, err := exec.Command(binary, append([]string{"serve", "--state-dir", filepath.Join(dir, "state")}, tc.args...)...).CombinedOutput()
		if exitCode(err) != exitUsage || !strings.Contains(string(out), tc.want) {
			t.Errorf("serve %v: exit %d, %s; want exit %d and %q", tc.args, exitCode(err), out, exitUsage, tc.want)
		}
	}
}
