package vagrant_test

import (
	"bytes"
	"testing"

	"github.com/protolab/protolab-tui/lab/providers/vagrant"
)

// FuzzVagrantOutput: whatever vagrant prints, the status and ssh-config
// parsers never panic; a machine they name has a name, a port they return
// is a port.
func FuzzVagrantOutput(f *testing.F) {
	f.Add([]byte("1700000000,default,provider-name,virtualbox\n1700000000,default,state,running\n1700000000,default,state-human-short,running\n1700000000,,ui,info,x%!(VAGRANT_COMMA)y\\n"))
	f.Add([]byte("Host default\n  HostName 127.0.0.1\n  User vagrant\n  Port 2222\n  IdentityFile \"/home/u/.vagrant/machines/default/virtualbox/private_key\"\n"))
	f.Add([]byte("Port -1\nHostName x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range vagrant.ParseStatus(bytes.NewReader(b)) {
			if m.Name == "" {
				t.Fatalf("a machine with no name: %+v", m)
			}
		}
		c, err := vagrant.ParseSSHConfig(bytes.NewReader(b))
		if err == nil && (c.Port < 1 || c.Port > 65535 || c.HostName == "") {
			t.Fatalf("ssh-config accepted as %+v", c)
		}
	})
}
