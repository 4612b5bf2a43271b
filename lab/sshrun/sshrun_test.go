package sshrun

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hinshun/vt10x"

	"github.com/protolab/protolab-tui/internal/sshdtest"
	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/internal/vtscreen"
	"github.com/protolab/protolab-tui/lab"
)

func config(s *sshdtest.Server, knownHosts string) Config {
	return Config{Host: "127.0.0.1", Port: s.Port, User: "root", IdentityFiles: []string{s.ClientID},
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
	s := sshdtest.Start(t)
	r := dial(t, config(s, s.KnownHosts(s.HostPub)))
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
	s := sshdtest.Start(t)
	r := dial(t, config(s, s.KnownHosts(s.HostPub)))
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
	s := sshdtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	// Unknown: refused without the flag, with the fingerprint.
	empty := s.KnownHosts("")
	_, err := Dial(ctx, config(s, empty))
	var he *HostKeyError
	if !errors.As(err, &he) || he.Changed || !strings.Contains(err.Error(), "SHA256:") || !strings.Contains(err.Error(), "--accept-new-host-key") {
		t.Fatalf("unknown host: %v", err)
	}
	// Accepted once with the flag, then known.
	cfg := config(s, empty)
	cfg.AcceptNewHostKey = true
	r, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	r, err = Dial(ctx, config(s, empty))
	if err != nil {
		t.Fatalf("a host accepted once is not known: %v", err)
	}
	r.Close()

	// Asked (the TUI shows the fingerprint): no refuses, yes records.
	fresh := s.KnownHosts("")
	cfg = config(s, fresh)
	var asked string
	cfg.ConfirmHostKey = func(host, fp string) bool { asked = fp; return false }
	if _, err := Dial(ctx, cfg); !errors.As(err, &he) || !strings.HasPrefix(asked, "SHA256:") {
		t.Fatalf("declined host key: %v (asked %q)", err, asked)
	}
	cfg.ConfirmHostKey = func(string, string) bool { return true }
	if r, err := Dial(ctx, cfg); err != nil {
		t.Fatalf("confirmed host key: %v", err)
	} else {
		r.Close()
	}
	if r, err := Dial(ctx, config(s, fresh)); err != nil {
		t.Fatalf("a confirmed host is not known afterwards: %v", err)
	} else {
		r.Close()
	}

	// Changed: refused, loudly, even with the flag.
	other := filepath.Join(t.TempDir(), "other")
	sshdtest.Keygen(t, other)
	otherPub, _ := os.ReadFile(other + ".pub")
	cfg = config(s, s.KnownHosts(strings.TrimSpace(string(otherPub))))
	cfg.AcceptNewHostKey = true
	_, err = Dial(ctx, cfg)
	if !errors.As(err, &he) || !he.Changed || !strings.Contains(err.Error(), "HAS CHANGED") {
		t.Fatalf("changed host key: %v", err)
	}
}

func TestAgentAuth(t *testing.T) {
	s := sshdtest.Start(t)
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
	add := exec.Command("ssh-add", s.ClientID)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v %s", err, out)
	}
	t.Setenv("SSH_AUTH_SOCK", sock)
	cfg := config(s, s.KnownHosts(s.HostPub))
	cfg.IdentityFiles = nil
	t.Setenv("HOME", t.TempDir()) // no default identity files either
	r := dial(t, cfg)
	var out bytes.Buffer
	if err := r.Run(context.Background(), lab.Cmd{Argv: []string{"id", "-u"}, Stdout: &out}); err != nil || out.String() != "0\n" {
		t.Fatalf("through the agent: %v %q", err, out.String())
	}
}

func TestDroppedLinkIsReportedAndReestablished(t *testing.T) {
	s := sshdtest.Start(t)
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
	cfg := config(s, s.KnownHosts(s.HostPub))
	cfg.KeepAlive = 200 * time.Millisecond
	cfg.Events = func(msg string) { mu.Lock(); events = append(events, msg); mu.Unlock() }
	r := dial(t, cfg)

	killed := time.Now()
	s.Kill()
	for !got("lost") {
		if time.Since(killed) > 2*time.Second {
			t.Fatalf("no event within 2s of sshd dying: %v", events)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Restart()
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

func TestShellOverSSH(t *testing.T) {
	s := sshdtest.Start(t)
	r := dial(t, config(s, s.KnownHosts(s.HostPub)))
	sh, err := r.OpenShell(context.Background(), 80, 24)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	scr := vtscreen.New(t, sh, 80, 24)
	scr.Expect(vtscreen.ColourAndCursor, func(vt vt10x.Terminal) bool { return vt.Cell(12, 7).Char == 'X' })
	vtscreen.CheckColourAndCursor(t, scr.VT)
	if err := sh.Resize(90, 30); err != nil {
		t.Fatal(err)
	}
	scr.VT.Resize(90, 30)
	scr.Expect("clear; echo cols=$(tput cols)\r", func(vt vt10x.Terminal) bool { return vtscreen.OnScreen(vt, "cols=90") })
}
