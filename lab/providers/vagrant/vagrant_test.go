package vagrant_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/providers/vagrant"
)

func TestParseStatusOfARealRun(t *testing.T) {
	f, err := os.Open("testdata/status-not-created.txt") // `vagrant status --machine-readable`, Vagrant 2.3.4
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms := vagrant.ParseStatus(f)
	if len(ms) != 1 || ms[0].Name != "default" || ms[0].Provider != "docker" || ms[0].State != "not_created" || ms[0].Human != "not created" {
		t.Fatalf("%+v", ms)
	}
	// Escapes: commas and newlines inside the data.
	ms = vagrant.ParseStatus(strings.NewReader("1,web,state,running\n1,web,state-human-short,a%!(VAGRANT_COMMA) b\\nc\n"))
	if len(ms) != 1 || ms[0].State != "running" || ms[0].Human != "a, b\nc" {
		t.Errorf("%+v", ms)
	}
}

func TestParseSSHConfigOfARealRun(t *testing.T) {
	f, err := os.Open("testdata/ssh-config.txt") // `vagrant ssh-config` of the test box, Vagrant 2.3.4
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := vagrant.ParseSSHConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	if c.HostName != "127.0.0.1" || c.User != "vagrant" || c.Port == 0 || len(c.IdentityFiles) == 0 {
		t.Errorf("%+v", c)
	}
	if _, err := vagrant.ParseSSHConfig(strings.NewReader("Host default\n  User x\n")); err == nil {
		t.Error("a config without HostName and Port parsed")
	}
}

func TestBoxOf(t *testing.T) {
	dot := t.TempDir()
	dir := filepath.Join(dot, "machines", "default", "virtualbox")
	os.MkdirAll(dir, 0o755)
	// The file Vagrant writes for a box-based machine.
	os.WriteFile(filepath.Join(dir, "box_meta"), []byte(`{"name":"generic/centos9s","version":"4.3.12","provider":"virtualbox","directory":"boxes/generic-VAGRANTSLASH-centos9s/4.3.12/virtualbox"}`), 0o644)
	if got := vagrant.BoxOf(dot, "default", "virtualbox"); got != "generic/centos9s 4.3.12" {
		t.Errorf("BoxOf = %q", got)
	}
	if got := vagrant.BoxOf(dot, "default", "docker"); got != "" {
		t.Errorf("a machine without a box: %q", got)
	}
}

func TestMissingVagrantIsAClearError(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	l, err := lab.New(lab.Config{Provider: "vagrant", StateDir: t.TempDir()}, vagrant.New(vagrant.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err = l.Up(ctx).Wait(ctx)
	if err == nil || !strings.Contains(err.Error(), "vagrant not found on PATH") || !strings.Contains(err.Error(), "install Vagrant") {
		t.Fatalf("err = %v", err)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestVagrantLabEndToEnd runs the vagrant provider on this machine with
// Vagrant's docker provider: `vagrant up` of testdata/box (a Debian
// container with sshd standing in for the VM, provisioned by
// provision/initial-provision-debian.sh), status and ssh-config read, the
// host key pinned, SSH, deploy, four protocols ok, then `vagrant destroy -f`.
//
// What this sandbox leaves uncovered: a privileged container cannot start
// here, so the "VM" has no Docker engine of its own — it gets this host's
// engine socket. The lab's containers therefore run on this host's engine
// and are reached directly rather than through SSH forwards, and a capture
// inside the "VM" would not see their traffic (capture is off here; remote
// capture over SSH is tested by the ssh provider's tests).
func TestVagrantLabEndToEnd(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "vagrant")
	if err := exec.Command("docker", "info").Run(); err != nil {
		testenv.Missing(t, "no Docker engine for Vagrant's docker provider")
	}
	box := exec.Command("../../../scripts/vagrant-test-box.sh")
	if out, err := box.CombinedOutput(); err != nil {
		t.Fatalf("building the test box: %v\n%s", err, out)
	}
	dir, _ := filepath.Abs("testdata/box")
	name := "protolab-vagrant-e2e-" + strconv.Itoa(os.Getpid())
	t.Setenv("PROTOLAB_VAGRANT_SSH_PORT", strconv.Itoa(freePort(t)))
	t.Setenv("PROTOLAB_VAGRANT_NAME", name)
	t.Setenv("VAGRANT_DOTFILE_PATH", filepath.Join(t.TempDir(), ".vagrant"))

	l, err := lab.New(lab.Config{Name: "t-vagrant", Provider: "vagrant", StateDir: t.TempDir(),
		Apps:  lab.OnFreePorts(lab.SeedApps()),
		Probe: probe.Options{Count: 10}, Capture: lab.CaptureConfig{Mode: "off"}},
		vagrant.New(vagrant.Options{Dir: dir, Provider: "docker", KeepVM: true}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		_ = l.Teardown(context.Background()).Wait(context.Background())
		exec.Command("docker", "rm", "-f", name).Run()
	})
	for _, step := range []func(context.Context) *lab.Job{l.Up, l.Deploy, func(c context.Context) *lab.Job { return l.Probe(c) }} {
		if err := step(ctx).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	snap := l.Snapshot()
	if snap.Host.Provider != "vagrant" {
		t.Errorf("host %+v", snap.Host)
	}
	if rep := l.Report(); !rep.OK {
		t.Fatalf("report %+v", rep)
	}
	// A second lab of the name while the VM runs: refused (the lab in the
	// VM is another run's), and its teardown leaves the VM running and the
	// first lab's containers whole.
	second, err := lab.New(lab.Config{Name: "t-vagrant", Provider: "vagrant", StateDir: l.Config().StateDir,
		Apps: lab.OnFreePorts(lab.SeedApps()), Capture: lab.CaptureConfig{Mode: "off"}}, vagrant.New(vagrant.Options{Dir: dir, Provider: "docker"}))
	if err != nil {
		t.Fatal(err)
	}
	var el *lab.EarlierLabError
	if err := second.Up(ctx).Wait(ctx); !errors.As(err, &el) || el.Containers != 4 {
		t.Fatalf("a second lab of the name in the running VM: %v, want the refusal", err)
	}
	if err := second.Teardown(ctx).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("docker", "inspect", "-f", "{{.State.Running}}", name).Output(); err != nil || strings.TrimSpace(string(out)) != "true" {
		t.Fatalf("the refused lab's teardown stopped the VM another run brought up: %q %v", out, err)
	}
	if out, _ := exec.Command("docker", "ps", "-q", "--filter", "label=protolab.lab=t-vagrant").Output(); len(strings.Fields(string(out))) != 4 {
		t.Fatalf("the refused lab's teardown removed the first lab's containers: %q", out)
	}
	// The VM's host key was pinned in the state directory.
	pinned, _ := os.ReadFile(filepath.Join(l.Config().StateDir, "vagrant", "t-vagrant-known_hosts"))
	if !strings.HasPrefix(string(pinned), "[127.0.0.1]:") || len(strings.Fields(string(pinned))) != 3 {
		t.Errorf("host key not pinned: %q", pinned)
	}
	if err := l.Teardown(ctx).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	// Halted, not destroyed: the VM is still there, stopped.
	out, err := exec.Command("docker", "inspect", "-f", "{{.State.Running}}", name).Output()
	if err != nil || strings.TrimSpace(string(out)) != "false" {
		t.Fatalf("after a halting teardown the VM container is %q (%v), want stopped", out, err)
	}
	// Up again from halted, then destroyed for good.
	l2, err := lab.New(lab.Config{Name: "t-vagrant", Provider: "vagrant", StateDir: l.Config().StateDir,
		Capture: lab.CaptureConfig{Mode: "off"}}, vagrant.New(vagrant.Options{Dir: dir, Provider: "docker"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := l2.Up(ctx).Wait(ctx); err != nil {
		t.Fatalf("up from halted: %v", err)
	}
	if err := l2.Teardown(ctx).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command("docker", "ps", "-a", "-q", "--filter", "name="+name).Output(); len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("the VM container is still there after vagrant destroy -f")
	}
	if out, _ := exec.Command("docker", "ps", "-a", "-q", "--filter", "label=protolab.lab=t-vagrant").Output(); len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("lab containers left")
	}
}

// TestEmbeddedVagrantfile: run from a folder with no Vagrantfile (as an
// installed binary is), the provider writes protolab's own — the
// repository's, with the provision scripts it runs — into the lab's state
// directory, which `vagrant validate` accepts, and runs vagrant there:
// `vagrant status` from that folder names the machine, where vagrant alone
// says "A Vagrant environment or target machine is required". A folder
// with a Vagrantfile is used as it is.
func TestEmbeddedVagrantfile(t *testing.T) {
	bin := testenv.NeedCommand(t, "vagrant")
	repo, _ := filepath.Abs("../../..")
	box, _ := filepath.Abs("testdata/box")
	t.Chdir(t.TempDir())
	// Vagrant's docker provider is one Vagrant can use on this machine
	// (VirtualBox is not), for status.
	t.Setenv("VAGRANT_DEFAULT_PROVIDER", "docker")
	if out, err := exec.Command(bin, "status").CombinedOutput(); err == nil || !strings.Contains(string(out), "A Vagrant environment or target machine is required") {
		t.Fatalf("vagrant status in a folder with no Vagrantfile: %v\n%s", err, out)
	}
	state := t.TempDir()
	l, err := lab.New(lab.Config{Name: "t-embedded", Provider: "vagrant", StateDir: state}, vagrant.New(vagrant.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(state, "vagrant", "t-embedded")
	want, _ := os.ReadFile(filepath.Join(repo, "Vagrantfile"))
	if got, err := os.ReadFile(filepath.Join(dir, "Vagrantfile")); err != nil || string(got) != string(want) || len(want) == 0 {
		t.Fatalf("the Vagrantfile written to %s is not the repository's: %v", dir, err)
	}
	scripts, _ := filepath.Glob(filepath.Join(repo, "provision", "*.sh"))
	for _, s := range scripts {
		want, _ := os.ReadFile(s)
		if got, err := os.ReadFile(filepath.Join(dir, "provision", filepath.Base(s))); err != nil || string(got) != string(want) {
			t.Errorf("provision/%s is not beside it: %v", filepath.Base(s), err)
		}
	}
	if got := vagrant.Dir(".", state, "t-embedded"); got != dir {
		t.Errorf("Dir = %s, want %s", got, dir)
	}
	validate := exec.Command(bin, "validate", "--ignore-provider")
	validate.Dir = dir
	if out, err := validate.CombinedOutput(); err != nil || !strings.Contains(string(out), "validated successfully") {
		t.Errorf("vagrant validate of the written Vagrantfile: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ms, err := l.Provider().(*vagrant.Provider).State(ctx)
	if err != nil || ms.Name != "default" || ms.State != "not_created" {
		t.Errorf("the provider's vagrant status from another folder: %+v %v", ms, err)
	}

	// A folder with a Vagrantfile is used as it is: nothing written.
	state2 := t.TempDir()
	if _, err := lab.New(lab.Config{Name: "t-box", Provider: "vagrant", StateDir: state2}, vagrant.New(vagrant.Options{Dir: box})); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(state2, "vagrant", "t-box")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a Vagrantfile was written although %s has one: %v", box, err)
	}
	if got := vagrant.Dir(box, state2, "t-box"); got != box {
		t.Errorf("Dir = %s, want %s", got, box)
	}
}
