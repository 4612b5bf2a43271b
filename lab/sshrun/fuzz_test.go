package sshrun

import (
	"bytes"
	"testing"
)

// FuzzSSHConfig: any ssh_config and any --host value parse without a
// panic; a port either gives is a port.
func FuzzSSHConfig(f *testing.F) {
	f.Add([]byte("Host lab\n  HostName 10.0.0.5\n  User root\n  Port 2200\n  IdentityFile ~/.ssh/lab\nHost *\n  User other\n"), "lab")
	f.Add([]byte("Port=22\nHost=\"a b\"\n"), "root@[::1]:22")
	f.Add([]byte("Port -5\n"), "x")
	f.Fuzz(func(t *testing.T, b []byte, target string) {
		hc := parseSSHConfig(bytes.NewReader(b), target)
		if hc.port < 0 || hc.port > 65535 {
			t.Fatalf("ssh_config port %d", hc.port)
		}
		if _, host, port, err := ParseTarget(target); err == nil && (host == "" || port < 0 || port > 65535) {
			t.Fatalf("--host %q gave host %q port %d", target, host, port)
		}
	})
}
