package docker

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// imageReady accepts a static Linux binary of the engine's architecture and
// names what is wrong with anything else.
func TestImageReady(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("ELF checks of this machine's binaries")
	}
	static := filepath.Join(t.TempDir(), "static")
	build := exec.Command("go", "build", "-o", static, "../../../apps")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	other := map[string]string{"amd64": "arm64"}[runtime.GOARCH]
	if other == "" {
		other = "amd64"
	}
	for _, tc := range []struct {
		name, path, goos, arch, want string
	}{
		{"static, same platform", static, "linux", runtime.GOARCH, ""},
		{"other arch", static, "linux", other, "the engine runs linux/" + other},
		{"windows engine", static, "windows", runtime.GOARCH, "the engine runs windows containers"},
		{"not ELF", "appbinary.go", "linux", runtime.GOARCH, "is not a Linux executable"},
		{"dynamic", "/bin/sh", "linux", runtime.GOARCH, "dynamically linked"},
		{"missing", "/nonexistent/protolab-tui", "linux", runtime.GOARCH, "is not a Linux executable"},
	} {
		err := imageReady(tc.path, tc.goos, tc.arch)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: imageReady(%s) = %v, want %q", tc.name, tc.path, err, tc.want)
		}
	}
}

// The image the provider builds is apps/Dockerfile's, minus the comments.
func TestDockerfileIsTheAppsOne(t *testing.T) {
	b, err := os.ReadFile("../../../apps/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if got := strings.Join(lines, "\n") + "\n"; got != dockerfile {
		t.Errorf("apps/Dockerfile:\n%s\nthe provider's:\n%s", got, dockerfile)
	}
}
