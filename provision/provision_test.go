// Tests of the provision scripts and the Vagrantfile: shellcheck, vagrant's
// own validation, and the Debian script run for real (twice: idempotent) on
// this machine, which is a Debian lab host.
package provision_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/protolab/protolab-tui/internal/testenv"
)

func scripts(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.sh")
	if err != nil || len(files) < 3 {
		t.Fatalf("provision scripts: %v %v", files, err)
	}
	return files
}

func TestShellcheckClean(t *testing.T) {
	sc := testenv.NeedCommand(t, "shellcheck")
	for _, f := range scripts(t) {
		if out, err := exec.Command(sc, f).CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s:\n%s", f, out)
		}
		b, _ := os.ReadFile(f)
		if !strings.Contains(string(b), "set -euo pipefail") {
			t.Errorf("%s does not set -euo pipefail", f)
		}
	}
}

func TestVagrantfileValidates(t *testing.T) {
	vagrant := testenv.NeedCommand(t, "vagrant")
	for _, distro := range []string{"centos-stream-9", "rocky-9", "alma-9", "rhel-9"} {
		cmd := exec.Command(vagrant, "validate", "--ignore-provider")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "PROTOLAB_DISTRO="+distro, "VAGRANT_HOME="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "validated successfully") {
			t.Errorf("%s: %v\n%s", distro, err, out)
		}
	}
	cmd := exec.Command(vagrant, "validate", "--ignore-provider")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "PROTOLAB_DISTRO=plan9", "VAGRANT_HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "is not one of") {
		t.Errorf("an unknown distro is accepted: %s", out)
	}
}

// vagrantValidate runs `vagrant validate --ignore-provider` on the
// repository's Vagrantfile with PROTOLAB_PORTS set to ports (unset when
// ports is nil).
func vagrantValidate(t *testing.T, vagrant string, ports *string) (string, error) {
	t.Helper()
	cmd := exec.Command(vagrant, "validate", "--ignore-provider")
	cmd.Dir = ".."
	cmd.Env = append(withoutPorts(), "VAGRANT_HOME="+t.TempDir())
	if ports != nil {
		cmd.Env = append(cmd.Env, "PROTOLAB_PORTS="+*ports)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// withoutPorts is this process's environment without PROTOLAB_PORTS.
func withoutPorts() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PROTOLAB_PORTS=") {
			env = append(env, kv)
		}
	}
	return env
}

// TestVagrantfileValidatesTheLabPorts: the Vagrantfile takes the apps'
// ports from PROTOLAB_PORTS (what the vagrant provider passes) and aborts on
// a bad value, naming the bad entry.
func TestVagrantfileValidatesTheLabPorts(t *testing.T) {
	vagrant := testenv.NeedCommand(t, "vagrant")
	for _, ports := range []string{"web=8080,chat=8081", "ws-a=4002, ws-b=4003", "only_one=65535", ""} {
		if out, err := vagrantValidate(t, vagrant, &ports); err != nil || !strings.Contains(out, "validated successfully") {
			t.Errorf("PROTOLAB_PORTS=%q: %v\n%s", ports, err, out)
		}
	}
	for _, c := range []struct{ ports, want string }{
		{"http=3000,ws=abc", `entry 2 ("ws=abc") is not name=port`},
		{"http=3000,", `entry 2 ("") is not name=port`},
		{"http=3000;ws=3002", `entry 1 ("http=3000;ws=3002") is not name=port`},
		{"web=0", `entry 1 ("web=0") is not name=port`},
		{"web=70000", `entry 1 ("web=70000") is not name=port`},
		{"Web=8080", `entry 1 ("Web=8080") is not name=port`},
		{"web=8080,web=8081", `entry 2 ("web=8081") names app web again`},
		{"web=8080,chat=8080", `entry 2 ("chat=8080") forwards port 8080, which web has`},
	} {
		out, err := vagrantValidate(t, vagrant, &c.ports)
		if err == nil || !strings.Contains(out, "PROTOLAB_PORTS") || !strings.Contains(out, c.want) {
			t.Errorf("PROTOLAB_PORTS=%q: %v, want an abort saying %s:\n%s", c.ports, err, c.want, out)
		}
	}
}

// forwardsStub loads a Vagrantfile with a stand-in Vagrant that prints each
// forwarded port: "id guest host host_ip".
const forwardsStub = `
class Rec
  def initialize(log)
    @log = log
  end
  def network(kind, **o)
    @log << [o[:id], o[:guest], o[:host], o[:host_ip]].join(" ") if kind == "forwarded_port"
  end
  def method_missing(_name, *_args, **_kw, &blk)
    blk&.call(Rec.new([]))
    self
  end
  def respond_to_missing?(*)
    true
  end
end
module Vagrant
  def self.configure(_version)
    log = []
    yield Rec.new(log)
    puts log
  end
end
load ARGV[0]
`

// TestVagrantfileForwardsTheLabPorts: the Vagrantfile forwards exactly
// PROTOLAB_PORTS's ports (to the same ports on the host's loopback), the
// seed's four when it is unset, none when it is empty. Vagrant's validate
// does not show forwards, so the Vagrantfile is loaded by Ruby (which
// Vagrant runs on) with a stand-in for Vagrant's configuration.
func TestVagrantfileForwardsTheLabPorts(t *testing.T) {
	ruby := testenv.NeedCommand(t, "ruby")
	vf, _ := filepath.Abs("../Vagrantfile")
	for _, c := range []struct {
		ports *string
		want  string
	}{
		{nil, "protolab-http 3000 3000 127.0.0.1\nprotolab-https 3001 3001 127.0.0.1\nprotolab-ws 3002 3002 127.0.0.1\nprotolab-wss 3003 3003 127.0.0.1"},
		{ptr("ws-a=4002,ws-b=4003"), "protolab-ws-a 4002 4002 127.0.0.1\nprotolab-ws-b 4003 4003 127.0.0.1"},
		{ptr(""), ""},
	} {
		cmd := exec.Command(ruby, "-e", forwardsStub, vf)
		cmd.Env = withoutPorts()
		if c.ports != nil {
			cmd.Env = append(cmd.Env, "PROTOLAB_PORTS="+*c.ports)
		}
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != c.want {
			name := "unset"
			if c.ports != nil {
				name = strconv.Quote(*c.ports)
			}
			t.Errorf("PROTOLAB_PORTS %s: %v, forwards\n%s\nwant\n%s", name, err, out, c.want)
		}
	}
}

func ptr(s string) *string { return &s }

// TestDebianScriptIsIdempotent runs the Debian script on this Debian
// machine, whose Docker engine and tcpdump the test command installed: it
// must find everything in place, change nothing, and say the host is ready —
// twice.
func TestDebianScriptIsIdempotent(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "tcpdump")
	if err := exec.Command("docker", "info").Run(); err != nil {
		testenv.Missing(t, "no Docker engine answers")
	}
	if b, _ := os.ReadFile("/etc/os-release"); !strings.Contains(string(b), "ID=debian") {
		t.Skip("this machine is not Debian")
	}
	for i := 0; i < 2; i++ {
		cmd := exec.Command("bash", "initial-provision-debian.sh")
		cmd.Env = append(os.Environ(), "SUDO_USER=")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "lab host ready") || strings.Contains(string(out), "installing") {
			t.Fatalf("run %d: %v\n%s", i+1, err, out)
		}
	}
}
