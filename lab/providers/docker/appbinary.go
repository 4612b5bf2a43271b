package docker

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/protolab/protolab-tui/apps/appmain" // links the apps into every binary with this provider
)

// EnvAppBinary names a static protolab-tui (or protolab-app) built for the
// engine's platform, for engines whose OS/arch differ from this machine's.
const EnvAppBinary = "PROTOLAB_APP_BINARY"

// elfArch maps an ELF machine to GOARCH.
var elfArch = map[elf.Machine]string{
	elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64", elf.EM_386: "386", elf.EM_ARM: "arm",
	elf.EM_PPC64: "ppc64le", elf.EM_S390: "s390x", elf.EM_RISCV: "riscv64",
}

// imageReady says why the executable at path cannot be the app image's
// entry point on a goos/arch engine: it must be a Linux ELF of that
// architecture. nil means it can; interp is its ELF interpreter when it is
// dynamically linked ("" when static), which the image must then carry
// with the shared libraries it needs (runtimeFiles): FROM scratch holds no
// loader or libc.
func imageReady(path, goos, arch string) (interp string, err error) {
	if goos != "linux" {
		return "", fmt.Errorf("the engine runs %s containers; the app image is a Linux binary", goos)
	}
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s is not a Linux executable (%v)", path, err)
	}
	defer f.Close()
	if a, ok := elfArch[f.Machine]; !ok || a != arch {
		return "", fmt.Errorf("%s is built for %v; the engine runs linux/%s", path, f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return "", fmt.Errorf("%s: reading its ELF interpreter: %w", path, err)
			}
			return strings.TrimRight(string(b), "\x00"), nil
		}
	}
	return "", nil
}

// runtimeFiles are what the dynamically linked executable at path needs to
// run in a FROM scratch image: its ELF interpreter and the shared libraries
// it loads, as this machine has them — found as ldd finds them, by the
// interpreter's --list (glibc's and musl's loaders both take it), which
// loads them without running the program — each at its path here, and the
// folders they are in (the image's LD_LIBRARY_PATH).
func runtimeFiles(ctx context.Context, path, interp string) ([]containerFile, []string, error) {
	out, err := exec.CommandContext(ctx, interp, "--list", path).CombinedOutput()
	if err != nil {
		return nil, nil, fmt.Errorf("%s is dynamically linked, and %s --list (as ldd) could not name its shared libraries: %v: %s", path, interp, err, bytes.TrimSpace(out))
	}
	paths := []string{interp}
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		lib := line
		if _, right, ok := strings.Cut(line, "=>"); ok {
			lib = strings.TrimSpace(right)
			if strings.HasPrefix(lib, "not found") {
				return nil, nil, fmt.Errorf("%s is dynamically linked and needs %s, which this machine lacks", path, line)
			}
		}
		lib, _, _ = strings.Cut(lib, " (")
		if strings.HasPrefix(lib, "/") && !slices.Contains(paths, lib) {
			paths = append(paths, lib)
		}
	}
	var files []containerFile
	var dirs []string
	for _, p := range paths {
		data, err := os.ReadFile(p) // through symlinks: the file itself, at the path the loader asks for
		if err != nil {
			return nil, nil, fmt.Errorf("%s is dynamically linked and needs %s: %w", path, p, err)
		}
		files = append(files, containerFile{path: p, data: data})
		if d := filepath.Dir(p); p != interp && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return files, dirs, nil
}

// appFiles is what the app image is built from: the binary, where it came
// from, and for a dynamically linked one the files it needs beside it (its
// interpreter and shared libraries) and the folders they are in.
type appFiles struct {
	bin     []byte
	from    string
	libs    []containerFile
	libDirs []string
}

// usable reads the executable at path as the app image's binary, with
// what it needs to run when it is dynamically linked.
func usable(ctx context.Context, path, from, goos, arch string) (appFiles, error) {
	interp, err := imageReady(path, goos, arch)
	if err != nil {
		return appFiles{}, err
	}
	f := appFiles{from: from}
	if interp != "" {
		if f.libs, f.libDirs, err = runtimeFiles(ctx, path, interp); err != nil {
			return appFiles{}, err
		}
		names := make([]string, len(f.libs))
		for i, l := range f.libs {
			names[i] = l.path
		}
		f.from += " (dynamically linked: with " + strings.Join(names, ", ") + " from this machine)"
	}
	if f.bin, err = os.ReadFile(path); err != nil {
		return appFiles{}, err
	}
	return f, nil
}

// appBinary returns what the app image is built from: $PROTOLAB_APP_BINARY
// when set; else this very executable when it can run in the image (it
// carries the apps: see appmain) — static, or dynamically linked with its
// interpreter and shared libraries from this machine; else the apps built
// from the source checkout this runs in (for an engine of another
// architecture); else an error saying what to do.
func (p *Provider) appBinary(ctx context.Context, goos, arch string) (appFiles, error) {
	if path := os.Getenv(EnvAppBinary); path != "" {
		f, err := usable(ctx, path, path, goos, arch)
		if err != nil {
			return appFiles{}, fmt.Errorf("$%s: %w", EnvAppBinary, err)
		}
		return f, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return appFiles{}, fmt.Errorf("finding the running executable: %w", err)
	}
	f, selfErr := usable(ctx, exe, "this executable", goos, arch)
	if selfErr == nil {
		return f, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return appFiles{}, fmt.Errorf("the app image cannot be built: %w; install a protolab-tui for linux/%s "+
			"(CGO_ENABLED=0 GOOS=linux GOARCH=%s go install github.com/protolab/protolab-tui/cmd/protolab-tui@latest) "+
			"and point $%s at it, or run from a protolab-tui checkout", selfErr, arch, arch, EnvAppBinary)
	}
	out := filepath.Join(p.env.Config.StateDir, "build", fmt.Sprintf("%s-%s-%s", appmain.Name, goos, arch))
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./apps")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+arch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return appFiles{}, fmt.Errorf("building the apps for %s/%s from %s (%v, so the running executable cannot serve): %v: %s", goos, arch, root, selfErr, err, msg)
	}
	b, err := os.ReadFile(out)
	return appFiles{bin: b, from: "built from " + root}, err
}

// moduleRoot finds the protolab-tui source checkout this runs in, if any.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/protolab/protolab-tui")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not in a protolab-tui checkout either")
		}
		dir = parent
	}
}

// dockerfile is the app image: apps/Dockerfile, kept here so an installed
// binary needs no source tree.
const dockerfile = `FROM scratch
COPY protolab-app /protolab-app
USER 65534:65534
EXPOSE 3000 3001 3002 3003
ENTRYPOINT ["/protolab-app"]
`

// withLibs is a Dockerfile of the image with a dynamically linked binary:
// its interpreter and libraries (the build context's root/, at their paths
// on this machine) copied in, and the loader pointed at their folders.
func withLibs(dockerfile string, dirs []string) string {
	from, rest, _ := strings.Cut(dockerfile, "\n")
	return from + "\nCOPY root/ /\nENV LD_LIBRARY_PATH=" + strings.Join(dirs, ":") + "\n" + rest
}

// shellDockerfile is the app image with a shell: a web terminal (kind
// term) runs /bin/sh in its own container — an exec through the Engine API
// when the provider mounts the engine's socket (termBridge), else on a pty
// of the app's own; the shell is the container's, with what busybox has.
const shellDockerfile = `FROM scratch
COPY protolab-app /protolab-app
COPY busybox /bin/sh
USER 65534:65534
EXPOSE 3000 3001 3002 3003
ENTRYPOINT ["/protolab-app"]
`

// shellBinary is the shell a web terminal's image carries: a static busybox
// of this machine's for the engine's architecture.
func shellBinary(arch string) ([]byte, string, error) {
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	var why []string
	for _, path := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		f, err := elf.Open(path)
		if err != nil {
			continue
		}
		static := true
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				static = false
			}
		}
		machine := f.Machine
		f.Close()
		switch {
		case !static:
			why = append(why, path+" is not static")
		case machine != want:
			why = append(why, fmt.Sprintf("%s is for %s, the engine runs %s", path, machine, arch))
		default:
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, "", fmt.Errorf("the shell for the web terminal's image: %w", err)
			}
			return b, path, nil
		}
	}
	msg := "a term app runs a shell in its container, and the lab's images are FROM scratch: install a static busybox for linux/" + arch + " on this machine (Debian: apt-get install busybox-static), or run the term app on the embedded provider"
	if len(why) > 0 {
		msg += " (" + strings.Join(why, "; ") + ")"
	}
	return nil, "", errors.New(msg)
}
