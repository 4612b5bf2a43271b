package ssh_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/protolab/protolab-tui/lab/providers/ssh"
)

// FuzzOSRelease: any /etc/os-release gives a map and either a provision
// script of provision/ or an error saying what to do.
func FuzzOSRelease(f *testing.F) {
	f.Add([]byte("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n"))
	f.Add([]byte("ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n# comment\n=novalue\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		osr := ssh.ParseOSRelease(bytes.NewReader(b))
		for k := range osr {
			if k == "" || strings.HasPrefix(k, "#") {
				t.Fatalf("key %q", k)
			}
		}
		script, err := ssh.ProvisionScript(osr)
		if err == nil && !strings.HasPrefix(script, "initial-provision-") {
			t.Fatalf("script %q", script)
		}
	})
}
