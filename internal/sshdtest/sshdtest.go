// Package sshdtest runs a real OpenSSH server on a loopback port for tests:
// its own host key, config and authorized key (root logs in with ClientID).
package sshdtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/internal/testenv"
)

// sshd is a real OpenSSH server on a loopback port, with its own host key,
// config and authorized key.
type Server struct {
	t        *testing.T
	bin      string
	Dir      string
	Port     int
	cmd      *exec.Cmd
	HostPub  string // "ssh-ed25519 AAAA…"
	ClientID string // the private key authorized for root
}

// Keygen makes an ed25519 key pair at path and path.pub.
func Keygen(t *testing.T, path string) {
	t.Helper()
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
}

// Start runs sshd for the test (root needed) and stops it at cleanup.
func Start(t *testing.T) *Server {
	t.Helper()
	testenv.NeedRoot(t)
	bin := testenv.NeedCommand(t, "sshd")
	testenv.NeedCommand(t, "ssh-keygen")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	Keygen(t, filepath.Join(dir, "host"))
	Keygen(t, filepath.Join(dir, "client"))
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
	s := &Server{t: t, bin: bin, Dir: dir, Port: port, HostPub: strings.TrimSpace(string(hostPub)), ClientID: filepath.Join(dir, "client")}
	s.start(bin)
	t.Cleanup(s.Kill)
	return s
}

// Restart starts the server again (after Kill), same port and keys.
func (s *Server) Restart() { s.start(s.bin) }

func (s *Server) start(bin string) {
	s.t.Helper()
	s.cmd = exec.Command(bin, "-D", "-e", "-f", filepath.Join(s.Dir, "sshd_config"))
	s.cmd.Stderr = nil // sshd -e: its complaints (port probes) are noise here
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", s.Addr()); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatal("sshd did not start listening")
}

// kill stops the server and the per-connection processes it forked (only
// its own children: nothing else on the machine).
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		exec.Command("pkill", "-KILL", "-P", strconv.Itoa(s.cmd.Process.Pid)).Run()
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// knownHosts writes a known_hosts file trusting key for the server.
// KnownHosts writes a known_hosts file trusting key (none when empty).
func (s *Server) KnownHosts(key string) string {
	f := filepath.Join(s.t.TempDir(), "known_hosts")
	line := ""
	if key != "" {
		line = fmt.Sprintf("[127.0.0.1]:%d %s\n", s.Port, key)
	}
	os.WriteFile(f, []byte(line), 0o600)
	return f
}

// KillSessions kills the server's per-connection processes (its
// children), as a crash or an administrator would, and leaves the server
// listening: every client connection drops at once.
func (s *Server) KillSessions() {
	if s.cmd != nil && s.cmd.Process != nil {
		exec.Command("pkill", "-KILL", "-P", strconv.Itoa(s.cmd.Process.Pid)).Run()
	}
}
