// Tests of the provision scripts and the Vagrantfile: shellcheck, vagrant's
// own validation, and the Debian script run for real (twice: idempotent) on
// this machine, which is a Debian lab host.
package provision_test

import (
	"os"
	"os/exec"
	"path/filepath"
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
