package vagrant_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/providers/vagrant"
	"github.com/protolab/protolab-tui/protocol"
)

func TestPortsSpec(t *testing.T) {
	for _, c := range []struct {
		name string
		apps []lab.App
		want string
	}{
		{"seed", lab.SeedApps(), "http=3000,https=3001,ws=3002,wss=3003"}, // the Vagrantfile's default
		{"apps' order, free ports left out", []lab.App{
			{Name: "ws-b", Protocol: protocol.WS, Port: 4003},
			{Name: "any", Protocol: protocol.HTTP},
			{Name: "ws-a", Protocol: protocol.WS, Port: 4002},
		}, "ws-b=4003,ws-a=4002"},
		{"all on free ports", lab.OnFreePorts(lab.SeedApps()), ""},
		{"no apps", nil, ""},
	} {
		if got := vagrant.PortsSpec(c.apps); got != c.want {
			t.Errorf("%s: PortsSpec = %q, want %q", c.name, got, c.want)
		}
	}
}

// TestVagrantGetsTheLabPorts: every vagrant command the provider runs gets
// PROTOLAB_PORTS from the lab's apps (a stand-in vagrant records it), over
// a value in protolab's own environment.
func TestVagrantGetsTheLabPorts(t *testing.T) {
	bin := t.TempDir()
	record := filepath.Join(t.TempDir(), "calls")
	script := "#!/bin/sh\nprintf '%s|%s|%s\\n' \"$1\" \"$PROTOLAB_PORTS\" \"$PROTOLAB_DISTRO\" >>" + record + "\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "vagrant"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("PROTOLAB_PORTS", "stale=1")
	t.Setenv("PROTOLAB_DISTRO", "rocky-9") // the rest of the environment still reaches vagrant
	l, err := lab.New(lab.Config{Provider: "vagrant", StateDir: t.TempDir(), Capture: lab.CaptureConfig{Mode: "off"}, Apps: []lab.App{
		{Name: "web", Protocol: protocol.HTTP, Port: 8080},
		{Name: "chat", Protocol: protocol.WS},
		{Name: "sec", Protocol: protocol.WSS, Port: 8443},
	}}, vagrant.New(vagrant.Options{Dir: t.TempDir()}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := l.Up(ctx).Wait(ctx); err == nil {
		t.Fatal("up succeeded with a failing vagrant")
	}
	_ = l.Teardown(ctx).Wait(ctx)
	b, _ := os.ReadFile(record)
	calls := strings.Split(strings.TrimSpace(string(b)), "\n")
	want := map[string]bool{"up": false, "destroy": false}
	for _, c := range calls {
		f := strings.Split(c, "|")
		if len(f) != 3 {
			t.Fatalf("calls %q", calls)
		}
		if f[1] != "web=8080,sec=8443" || f[2] != "rocky-9" {
			t.Errorf("vagrant %s ran with PROTOLAB_PORTS=%q PROTOLAB_DISTRO=%q, want %q and rocky-9", f[0], f[1], f[2], "web=8080,sec=8443")
		}
		if _, ok := want[f[0]]; ok {
			want[f[0]] = true
		}
	}
	for cmd, ran := range want {
		if !ran {
			t.Errorf("no vagrant %s among %q", cmd, calls)
		}
	}
}
