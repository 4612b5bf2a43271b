package sshrun

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab"
)

// sshd is a real OpenSSH server on a loopback port, with its own host key,
// config and authorized key.
type sshd struct {
	t        *testing.T
	dir      string
	port     int
	cmd      *exec.Cmd
	hostPub  string // "ssh-ed25519 AAAA…"
	clientID string // the private key authorized for root
}

func keygen(t *testing.T, path string) {
	t.Helper()
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
}

func startSSHD(t *testing.T) *sshd {
	t.Helper()
	testenv.NeedRoot(t)
	bin := testenv.NeedCommand(t, "sshd")
	testenv.NeedCommand(t, "ssh-keygen")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	keygen(t, filepath.Join(dir, "host"))
	keygen(t, filepath.Join(dir, "client"))
	pub, _ := os.ReadFile(filepath.Join(dir, "client.pub"))
	os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600)
	hostPub, _ := os.ReadFile(filepath.Join(dir, "host.pub"))
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := fmt.Sprintf(`ListenAddress 127.0.0.1
Port %d
HostKey %s/host
AuthorizedKeysFile %s/authorized_keys
PidFile %s/sshd.pid
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowTcpForwarding yes
AllowStreamLocalForwarding yes
ClientAliveInterval 0
LogLevel ERROR
`, port, dir, dir, dir)
	os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(conf), 0o600)
	os.MkdirAll("/run/sshd", 0o755)
	s := &sshd{t: t, dir: dir, port: port, hostPub: strings.TrimSpace(string(hostPub)), clientID: filepath.Join(dir, "client")}
	s.start(bin)
	t.Cleanup(s.kill)
	return s
}

func (s *sshd) start(bin string) {
	s.t.Helper()
	s.cmd = exec.Command(bin, "-D", "-e", "-f", filepath.Join(s.dir, "sshd_config"))
	s.cmd.Stderr = os.Stderr
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", s.addr()); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatal("sshd did not start listening")
}

// kill stops the server and the per-connection processes it forked (only
// its own children: nothing else on the machine).
func (s *sshd) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		exec.Command("pkill", "-KILL", "-P", strconv.Itoa(s.cmd.Process.Pid)).Run()
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

func (s *sshd) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// knownHosts writes a known_hosts file trusting key for the server.
func (s *sshd) knownHosts(key string) string {
	f := filepath.Join(s.t.TempDir(), "known_hosts")
	line := ""
	if key != "" {
		line = fmt.Sprintf("[127.0.0.1]:%d %s\n", s.port, key)
	}
	os.WriteFile(f, []byte(line), 0o600)
	return f
}

func (s *sshd) config(knownHosts string) Config {
	return Config{Host: "127.0.0.1", Port: s.port, User: "root", IdentityFiles: []string{s.clientID},
		KnownHosts: []string{knownHosts}, SSHConfig: "/nonexistent"}
}

func dial(t *testing.T, cfg Config) *Runner {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	r, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestExecStreamsAndExitCodes(t *testing.T) {
	s := startSSHD(t)
	r := dial(t, s.config(s.knownHosts(s.hostPub)))
	ctx := context.Background()
	var out, errOut bytes.Buffer
	tricky := `it's $(not) a "shell" ; rm -rf /`
	err := r.Run(ctx, lab.Cmd{Argv: []string{"sh", "-c", `printf '%s\n' "$1"; printf 'to stderr\n' >&2; printf '%s\n' "$GREETING"; exit 3`, "x", tricky},
		Env: []string{"GREETING=hello world"}, Stdout: &out, Stderr: &errOut})
	var ee *lab.ExitError
	if !errors.As(err, &ee) || ee.Code != 3 {
		t.Fatalf("err = %v, want exit status 3", err)
	}
	if got := out.String(); got != tricky+"\n"+"hello world\n" && got != tricky+"\n\n" {
		t.Errorf("stdout %q: the argument did not arrive as it was", got)
	}
	if !strings.HasPrefix(out.String(), tricky+"\n") {
		t.Errorf("stdout %q", out.String())
	}
	if errOut.String() != "to stderr\n" {
		t.Errorf("stderr %q", errOut.String())
	}
	// Streamed: the first line arrives before the command ends.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- r.Run(ctx, lab.Cmd{Argv: []string{"sh", "-c", "echo first; sleep 2; echo second"}, Stdout: pw})
		pw.Close()
	}()
	line, _ := bufio.NewReader(pr).ReadString('\n')
	if line != "first\n" {
		t.Errorf("first streamed line %q", line)
	}
	select {
	case <-done:
		t.Error("the command had ended when its first line arrived: output is not streamed")
	default:
	}
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestUploadAndDial(t *testing.T) {
	s := startSSHD(t)
	r := dial(t, s.config(s.knownHosts(s.hostPub)))
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "script.sh")
	if err := r.Upload(ctx, []byte("#!/bin/sh\necho provisioned\n"), path, 0o700); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := r.Run(ctx, lab.Cmd{Argv: []string{path}, Stdout: &out}); err != nil || out.String() != "provisioned\n" {
		t.Fatalf("running the upload: %v %q", err, out.String())
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("uploaded mode %v %v", st.Mode().Perm(), err)
	}

	// TCP, dialed from the remote side.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			io.WriteString(c, "over the tunnel")
			c.Close()
		}
	}()
	c, err := r.Dial(ctx, "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "over the tunnel" {
		t.Errorf("read %q", b)
	}

	// A unix socket: the Docker engine's, as the docker provider uses it.
	if _, err := os.Stat("/var/run/docker.sock"); err != nil {
		testenv.Missing(t, "no Docker engine socket for the unix-socket dial")
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return r.Dial(ctx, "unix", "/var/run/docker.sock")
	}}}
	resp, err := hc.Get("http://docker/_ping")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "OK" {
		t.Errorf("docker /_ping over ssh: %q", body)
	}
}

func TestHostKeys(t *testing.T) {
	s := startSSHD(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	// Unknown: refused without the flag, with the fingerprint.
	empty := s.knownHosts("")
	_, err := Dial(ctx, s.config(empty))
	var he *HostKeyError
	if !errors.As(err, &he) || he.Changed || !strings.Contains(err.Error(), "SHA256:") || !strings.Contains(err.Error(), "--accept-new-host-key") {
		t.Fatalf("unknown host: %v", err)
	}
	// Accepted once with the flag, then known.
	cfg := s.config(empty)
	cfg.AcceptNewHostKey = true
	r, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	r, err = Dial(ctx, s.config(empty))
	if err != nil {
		t.Fatalf("a host accepted once is not known: %v", err)
	}
	r.Close()

	// Changed: refused, loudly, even with the flag.
	other := filepath.Join(t.TempDir(), "other")
	keygen(t, other)
	otherPub, _ := os.ReadFile(other + ".pub")
	cfg = s.config(s.knownHosts(strings.TrimSpace(string(otherPub))))
	cfg.AcceptNewHostKey = true
	_, err = Dial(ctx, cfg)
	if !errors.As(err, &he) || !he.Changed || !strings.Contains(err.Error(), "HAS CHANGED") {
		t.Fatalf("changed host key: %v", err)
	}
}

func TestAgentAuth(t *testing.T) {
	s := startSSHD(t)
	testenv.NeedCommand(t, "ssh-agent")
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agentCmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agentCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { agentCmd.Process.Kill(); agentCmd.Wait() }()
	for i := 0; i < 50; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	add := exec.Command("ssh-add", s.clientID)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v %s", err, out)
	}
	t.Setenv("SSH_AUTH_SOCK", sock)
	cfg := s.config(s.knownHosts(s.hostPub))
	cfg.IdentityFiles = nil
	t.Setenv("HOME", t.TempDir()) // no default identity files either
	r := dial(t, cfg)
	var out bytes.Buffer
	if err := r.Run(context.Background(), lab.Cmd{Argv: []string{"id", "-u"}, Stdout: &out}); err != nil || out.String() != "0\n" {
		t.Fatalf("through the agent: %v %q", err, out.String())
	}
}

func TestDroppedLinkIsReportedAndReestablished(t *testing.T) {
	s := startSSHD(t)
	var mu sync.Mutex
	var events []string
	got := func(sub string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			if strings.Contains(e, sub) {
				return true
			}
		}
		return false
	}
	cfg := s.config(s.knownHosts(s.hostPub))
	cfg.KeepAlive = 200 * time.Millisecond
	cfg.Events = func(msg string) { mu.Lock(); events = append(events, msg); mu.Unlock() }
	r := dial(t, cfg)

	killed := time.Now()
	s.kill()
	for !got("lost") {
		if time.Since(killed) > 2*time.Second {
			t.Fatalf("no event within 2s of sshd dying: %v", events)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.start("/usr/sbin/sshd")
	deadline := time.Now().Add(10 * time.Second)
	for !got("re-established") {
		if time.Now().After(deadline) {
			t.Fatalf("not reconnected: %v", events)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var out bytes.Buffer
	if err := r.Run(context.Background(), lab.Cmd{Argv: []string{"echo", "back"}, Stdout: &out}); err != nil || out.String() != "back\n" {
		t.Fatalf("after reconnecting: %v %q", err, out.String())
	}
}

func TestParseTargetAndSSHConfig(t *testing.T) {
	for _, tc := range []struct {
		in         string
		user, host string
		port       int
		bad        bool
	}{
		{"root@127.0.0.1:2222", "root", "127.0.0.1", 2222, false},
		{"labvm", "", "labvm", 0, false},
		{"me@[::1]:22", "me", "::1", 22, false},
		{"x@host:99999", "", "", 0, true},
		{"me@", "", "", 0, true},
	} {
		u, h, p, err := ParseTarget(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && (u != tc.user || h != tc.host || p != tc.port)) {
			t.Errorf("ParseTarget(%q) = %q %q %d %v", tc.in, u, h, p, err)
		}
	}
	conf := `# lab hosts
Host *.example other
  User wrong
Host labvm
  HostName 192.0.2.10
  User vagrant
  Port 2222
  IdentityFile ~/.vagrant/key
Host *
  User fallback
  IdentityFile ~/.ssh/id_ed25519
`
	hc := parseSSHConfig(strings.NewReader(conf), "labvm")
	if hc.hostName != "192.0.2.10" || hc.user != "vagrant" || hc.port != 2222 || len(hc.identities) != 2 || hc.identities[0] != "~/.vagrant/key" {
		t.Errorf("labvm: %+v", hc)
	}
	if hc := parseSSHConfig(strings.NewReader(conf), "unknown"); hc.user != "fallback" || hc.hostName != "" {
		t.Errorf("unknown: %+v", hc)
	}
	if q := Quote(`a'b`); q != `'a'"'"'b'` {
		t.Errorf("Quote = %s", q)
	}
}
