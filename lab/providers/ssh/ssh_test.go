package ssh_test

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/internal/sshdtest"
	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/providers/ssh"
	"github.com/protolab/protolab-tui/lab/sshrun"
	"github.com/protolab/protolab-tui/provision"
)

func TestSSHProviderLifecycle(t *testing.T) {
	s := sshdtest.Start(t)
	testenv.NeedCommand(t, "tcpdump")
	if err := exec.Command("docker", "info").Run(); err != nil {
		testenv.Missing(t, "no Docker engine on the test's lab host")
	}
	cfg := sshrun.Config{Host: "127.0.0.1", Port: s.Port, User: "root", IdentityFiles: []string{s.ClientID},
		KnownHosts: []string{s.KnownHosts(s.HostPub)}, SSHConfig: "/nonexistent"}
	l, err := lab.New(lab.Config{Name: "t-sshprov", Provider: "ssh", StateDir: t.TempDir(),
		Apps: lab.OnFreePorts(lab.SeedApps()), Probe: probe.Options{Count: 8}}, ssh.New(cfg))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before := tcpdumps()
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_ = l.Teardown(c).Wait(c)
	})
	for _, j := range []func(context.Context) *lab.Job{l.Up, l.Deploy, l.StartCapture, func(c context.Context) *lab.Job { return l.Probe(c) }} {
		if err := j(ctx).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	snap := l.Snapshot()
	if snap.Host.Provider != "ssh" || !strings.Contains(snap.Host.Address, "127.0.0.1") {
		t.Errorf("host %+v", snap.Host)
	}
	if err := l.SyncCapture(ctx); err != nil {
		t.Fatal(err)
	}
	rep := l.Report()
	if !rep.OK || rep.Capture == nil || rep.Capture.Mode != capture.ModeStream {
		t.Fatalf("report: ok %v capture %+v", rep.OK, rep.Capture)
	}
	for p, r := range rep.Apps {
		if r.Wire == nil || r.Wire.Messages != 2*8+2 {
			t.Errorf("%s: wire %+v", p, r.Wire)
		}
	}
	start := time.Now()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := l.Teardown(tctx).Wait(tctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("teardown took %v", d)
	}
	// The remote tcpdump ended with the capture (no stray capture left on the host).
	time.Sleep(300 * time.Millisecond)
	for pid := range tcpdumps() {
		if !before[pid] {
			t.Errorf("the lab's remote tcpdump (pid %s) is still running", pid)
		}
	}
}

// tcpdumps lists the pids of streaming tcpdumps on this host (the lab host).
func tcpdumps() map[string]bool {
	out, _ := exec.Command("pgrep", "-f", "tcpdump -i lo --immediate-mode").Output()
	pids := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		pids[p] = true
	}
	return pids
}

func TestProvisionScriptChoice(t *testing.T) {
	for _, tc := range []struct {
		osRelease, want string
	}{
		{"ID=debian\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n", "initial-provision-debian.sh"},
		{"ID=ubuntu\nID_LIKE=debian\n", "initial-provision-debian.sh"},
		{"ID=\"centos\"\nID_LIKE=\"rhel fedora\"\n", "initial-provision-centos.sh"},
		{"ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n", "initial-provision-centos.sh"},
		{"ID=\"almalinux\"\n", "initial-provision-centos.sh"},
		{"ID=\"rhel\"\nID_LIKE=\"fedora\"\n", "initial-provision-rhel.sh"},
		{"ID=alpine\n", ""},
	} {
		got, err := ssh.ProvisionScript(ssh.ParseOSRelease(strings.NewReader(tc.osRelease)))
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("%q: %q %v, want %q", tc.osRelease, got, err, tc.want)
		}
		if b, err := provision.Scripts.ReadFile(got); got != "" && (err != nil || !bytes.HasPrefix(b, []byte("#!"))) {
			t.Errorf("%s is not carried in the binary: %v", got, err)
		}
	}
}

// A lab of a name already on the host's engine (brought up by another
// run over SSH) is refused, and the refused run's teardown leaves it
// whole; a run that attaches adopts it and leaves it running; RemoveLab
// (--teardown) removes it.
func TestSSHSameNameLabIsLeftAlone(t *testing.T) {
	s := sshdtest.Start(t)
	if err := exec.Command("docker", "info").Run(); err != nil {
		testenv.Missing(t, "no Docker engine on the test's lab host")
	}
	const name = "t-ssh-same"
	cfg := sshrun.Config{Host: "127.0.0.1", Port: s.Port, User: "root", IdentityFiles: []string{s.ClientID},
		KnownHosts: []string{s.KnownHosts(s.HostPub)}, SSHConfig: "/nonexistent"}
	state := t.TempDir()
	mk := func(apps []lab.App, attach bool) *lab.Lab {
		l, err := lab.New(lab.Config{Name: name, Provider: "ssh", StateDir: state, Apps: apps, Attach: attach,
			Probe: probe.Options{Count: 3}, Capture: lab.CaptureConfig{Mode: "off"}}, ssh.New(cfg))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			c, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = l.Teardown(c).Wait(c)
		})
		return l
	}
	containers := func() int {
		out, err := exec.Command("docker", "ps", "-aq", "--filter", "label=protolab.lab="+name).Output()
		if err != nil {
			t.Fatal(err)
		}
		return len(strings.Fields(string(out)))
	}
	t.Cleanup(func() {
		_ = exec.Command("sh", "-c", "docker rm -f $(docker ps -aq --filter label=protolab.lab="+name+") ; docker network rm protolab-"+name).Run()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	first := mk(lab.OnFreePorts([]lab.App{{Name: "ws", Protocol: "ws"}, {Name: "http", Protocol: "http"}}), false)
	for _, j := range []func(context.Context) *lab.Job{first.Up, first.Deploy} {
		if err := j(ctx).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	second := mk(lab.OnFreePorts(lab.SeedApps()), false)
	err := second.Up(ctx).Wait(ctx)
	var el *lab.EarlierLabError
	if !errors.As(err, &el) || el.Containers != 2 || !strings.Contains(el.Where, "the ssh lab host") ||
		!strings.Contains(el.Remove, "--provider ssh --host ") || !strings.Contains(el.Attach, "serve --provider ssh --host ") {
		t.Fatalf("a second lab of the name over SSH: %v (%+v), want the refusal", err, el)
	}
	if err := second.Teardown(ctx).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if n := containers(); n != 2 {
		t.Fatalf("the refused lab's teardown left %d containers of the first lab's 2", n)
	}

	found, err := mk(nil, true).FindRunning(ctx)
	if err != nil || found == nil || len(found.Apps) != 2 || found.Apps[0].Name != "ws" || found.Apps[1].Name != "http" {
		t.Fatalf("FindRunning over SSH: %+v %v", found, err)
	}
	attached := mk(found.Apps, true)
	for _, j := range []func(context.Context) *lab.Job{attached.Up, attached.Deploy, func(c context.Context) *lab.Job { return attached.Probe(c) }} {
		if err := j(ctx).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !attached.Report().OK {
		t.Errorf("the attached lab's probes: %+v", attached.Report())
	}
	if err := attached.Teardown(ctx).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if n := containers(); n != 2 {
		t.Fatalf("the attached run's teardown left %d containers of the lab's 2", n)
	}

	remover, err := lab.New(lab.Config{Name: name, Provider: "ssh", StateDir: state}, ssh.New(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.RemoveLab(ctx, remover.Provider()); err != nil {
		t.Fatal(err)
	}
	if n := containers(); n != 0 {
		t.Errorf("RemoveLab left %d containers", n)
	}
}
