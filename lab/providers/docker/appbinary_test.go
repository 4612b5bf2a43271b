package docker

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// imageReady accepts a Linux binary of the engine's architecture — saying
// which interpreter a dynamically linked one needs — and names what is
// wrong with anything else.
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
		name, path, goos, arch, want, interp string
	}{
		{"static, same platform", static, "linux", runtime.GOARCH, "", ""},
		{"dynamic, same platform", "/bin/sh", "linux", runtime.GOARCH, "", "/lib"},
		{"other arch", static, "linux", other, "the engine runs linux/" + other, ""},
		{"windows engine", static, "windows", runtime.GOARCH, "the engine runs windows containers", ""},
		{"not ELF", "appbinary.go", "linux", runtime.GOARCH, "is not a Linux executable", ""},
		{"missing", "/nonexistent/protolab-tui", "linux", runtime.GOARCH, "is not a Linux executable", ""},
	} {
		interp, err := imageReady(tc.path, tc.goos, tc.arch)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: imageReady(%s) = %v, want %q", tc.name, tc.path, err, tc.want)
		}
		if tc.interp == "" && interp != "" || !strings.HasPrefix(interp, tc.interp) {
			t.Errorf("%s: imageReady(%s) says its interpreter is %q", tc.name, tc.path, interp)
		}
	}
}

// runtimeFiles names a dynamically linked binary's interpreter and shared
// libraries as ldd does, with their contents, and the folders of the
// libraries; a library this machine lacks is named.
func TestRuntimeFiles(t *testing.T) {
	interp, err := imageReady("/bin/sh", "linux", runtime.GOARCH)
	if err != nil || interp == "" {
		t.Fatalf("/bin/sh: %q %v", interp, err)
	}
	files, dirs, err := runtimeFiles(context.Background(), "/bin/sh", interp)
	if err != nil {
		t.Fatal(err)
	}
	ldd, err := exec.Command(interp, "--list", "/bin/sh").Output()
	if err != nil {
		t.Fatal(err)
	}
	var libc bool
	for _, f := range files {
		want, err := os.ReadFile(f.path)
		if err != nil || !bytes.Equal(want, f.data) || !strings.Contains(string(ldd), f.path) && f.path != interp {
			t.Errorf("%s: not as ldd names it or as it is here (%v)", f.path, err)
		}
		libc = libc || strings.Contains(filepath.Base(f.path), "libc")
	}
	if files[0].path != interp || !libc || len(dirs) == 0 {
		t.Errorf("files %v, dirs %v: want the interpreter first, libc among them", files, dirs)
	}
	// A library that is not here: the binary's DT_NEEDED names one (a
	// copy of /bin/sh with libc's name changed in it).
	sh, err := os.ReadFile("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(t.TempDir(), "sh")
	if err := os.WriteFile(broken, bytes.Replace(sh, []byte("libc.so.6\x00"), []byte("libq.so.6\x00"), 1), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runtimeFiles(context.Background(), broken, interp); err == nil || !strings.Contains(err.Error(), "libq.so.6") {
		t.Errorf("a binary needing a library this machine lacks: %v", err)
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
