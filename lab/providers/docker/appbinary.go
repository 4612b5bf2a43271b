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
// entry point on a goos/arch engine: it must be a static Linux ELF of that
// architecture (FROM scratch holds no loader or libc). nil means it can.
func imageReady(path, goos, arch string) error {
	if goos != "linux" {
		return fmt.Errorf("the engine runs %s containers; the app image is a static Linux binary", goos)
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not a Linux executable (%v)", path, err)
	}
	defer f.Close()
	if a, ok := elfArch[f.Machine]; !ok || a != arch {
		return fmt.Errorf("%s is built for %v; the engine runs linux/%s", path, f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (built with cgo); FROM scratch needs a static binary", path)
		}
	}
	return nil
}

// appBinary returns the binary the app image is built from, and where it
// came from: $PROTOLAB_APP_BINARY when set; else this very executable when
// it can run in the image (it carries the apps: see appmain); else the apps
// built from the source checkout this runs in; else an error saying what to do.
func (p *Provider) appBinary(ctx context.Context, goos, arch string) ([]byte, string, error) {
	if path := os.Getenv(EnvAppBinary); path != "" {
		if err := imageReady(path, goos, arch); err != nil {
			return nil, "", fmt.Errorf("$%s: %w", EnvAppBinary, err)
		}
		b, err := os.ReadFile(path)
		return b, path, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, "", fmt.Errorf("finding the running executable: %w", err)
	}
	selfErr := imageReady(exe, goos, arch)
	if selfErr == nil {
		b, err := os.ReadFile(exe)
		return b, "this executable", err
	}
	root, err := moduleRoot()
	if err != nil {
		return nil, "", fmt.Errorf("the app image cannot be built: %w; install a static protolab-tui for linux/%s "+
			"(CGO_ENABLED=0 GOOS=linux GOARCH=%s go install github.com/protolab/protolab-tui/cmd/protolab-tui@latest) "+
			"and run it, or point $%s at one, or run from a protolab-tui checkout", selfErr, arch, arch, EnvAppBinary)
	}
	out := filepath.Join(p.env.Config.StateDir, "build", fmt.Sprintf("%s-%s-%s", appmain.Name, goos, arch))
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./apps")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+arch)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("building the apps for %s/%s from %s (%v, so the running executable cannot serve): %v: %s", goos, arch, root, selfErr, err, msg)
	}
	b, err := os.ReadFile(out)
	return b, "built from " + root, err
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
