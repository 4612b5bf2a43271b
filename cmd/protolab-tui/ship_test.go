package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/protocol/labtoken"
)

// An installed binary — static, in a folder of its own — runs the docker
// lab from a folder far from any checkout: the app image is the binary
// itself.
func TestInstalledBinaryRunsTheDockerLab(t *testing.T) {
	needDocker(t)
	bin := filepath.Join(t.TempDir(), "protolab-tui")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, append([]string{"--state-dir", t.TempDir(), "--headless", "--json", "--provider", "docker", "--name", "t-installed", "--count", "10"}, freePorts...)...)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("exit %d: %v\nstderr: %s\nstdout: %s", exitCode(err), err, stderr.String(), stdout.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var rep map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("last line is not a report: %q", lines[len(lines)-1])
	}
	if rep["ok"] != true {
		t.Fatalf("report: %v", rep)
	}
	if !strings.Contains(stdout.String(), "app image from this executable") {
		t.Errorf("the image was not built from the running executable:\n%s", stdout.String())
	}
	checkLabRun(t, rep, 10, "t-installed")

	// The apps run from the binary itself, under either name.
	out, err := exec.Command(bin, "app", "--mode", "gopher").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown protocol "gopher"`) {
		t.Errorf("protolab-tui app --mode gopher: %v: %s", err, out)
	}
}

// The race-built binary is dynamically linked (cgo, as a plain go install
// is where gcc exists): outside a checkout it is still the app image, its
// interpreter and shared libraries copied in from this machine. An app
// binary that cannot serve ($PROTOLAB_APP_BINARY of another machine) is an
// error saying what to do.
func TestDynamicBinaryRunsTheDockerLab(t *testing.T) {
	needDocker(t)
	if out, err := exec.Command("file", "-L", binary).Output(); err == nil && !bytes.Contains(out, []byte("dynamically linked")) {
		t.Fatalf("the test binary is not dynamically linked: %s", out)
	}
	cmd := command(t, append([]string{"--headless", "--json", "--provider", "docker", "--name", "t-dynamic", "--count", "10"}, freePorts...)...)
	cmd.Dir = os.TempDir()
	rep := report(t, cmd)
	if rep["ok"] != true {
		t.Fatalf("report: %v", rep)
	}
	checkLabRun(t, rep, 10, "t-dynamic")

	notELF := filepath.Join(t.TempDir(), "protolab-tui")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd = command(t, append([]string{"--headless", "--provider", "docker", "--name", "t-dynamic"}, freePorts...)...)
	cmd.Dir = os.TempDir()
	cmd.Env = append(cmd.Env, "PROTOLAB_APP_BINARY="+notELF)
	out, err := cmd.CombinedOutput()
	if exitCode(err) != exitFailed {
		t.Fatalf("exit %d, want %d: %s", exitCode(err), exitFailed, out)
	}
	for _, want := range []string{"$PROTOLAB_APP_BINARY: " + notELF + " is not a Linux executable"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("the error does not say %q:\n%s", want, out)
		}
	}
	if left := dockerLeftovers(t, "t-dynamic"); left != 0 {
		t.Errorf("%d labelled containers/networks left", left)
	}
}

// The completion scripts complete the subcommands, each one's flags
// (serve's and down's own beside the lab's) and flag values: bash runs its
// script (bash -n checks it first), fish answers complete -C with its,
// and zsh's, checked by zsh -n, hands _arguments each subcommand's specs.
func TestCompletions(t *testing.T) {
	script := func(shell string) string {
		t.Helper()
		out, err := exec.Command(binary, "completion", shell).Output()
		if err != nil {
			t.Fatalf("completion %s: %v", shell, err)
		}
		f := filepath.Join(t.TempDir(), "protolab-tui."+shell)
		if err := os.WriteFile(f, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	bash := script("bash")
	if out, err := exec.Command("bash", "-n", bash).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v: %s", err, out)
	}
	for _, tc := range []struct {
		words string
		want  []string
	}{
		{"protolab-tui --prov", []string{"--provider"}},
		{"protolab-tui --provider d", []string{"docker"}},
		{"protolab-tui comp", []string{"completion"}},
		{"protolab-tui completion f", []string{"fish"}},
		{"protolab-tui --headless --ju", []string{"--junit"}},
		{"protolab-tui --headless --zz", nil},
		{"protolab-tui serve --li", []string{"--listen"}},
		{"protolab-tui serve --aut", []string{"--authorized-keys"}},
		{"protolab-tui serve --she", []string{"--shell-keys"}},
		{"protolab-tui serve --provider do", []string{"docker"}},
		{"protolab-tui down --al", []string{"--all", "--allowed-origins"}},
		{"protolab-tui down --ma", []string{"--match"}},
		{"protolab-tui down --li", []string{"--list"}},
		{"protolab-tui down --ye", []string{"--yes"}},
		{"protolab-tui --al", []string{"--allowed-origins"}}, // --all is down's
		{"protolab-tui token --ta", []string{"--targets"}},
		{"protolab-tui app --mode ws", []string{"ws", "wss"}},
		{"protolab-tui app --kind chat", []string{"chat-ws"}},
		{"protolab-tui version --", nil},
	} {
		prog := "source " + bash + "\nCOMP_WORDS=(" + tc.words + "); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _protolab_tui; printf '%s\\n' \"${COMPREPLY[@]}\"\n"
		out, err := exec.Command("bash", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", tc.words, err, out)
		}
		got := strings.Fields(string(out))
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("bash: %q completes to %q, want %q", tc.words, got, tc.want)
		}
	}
	// The script's own file completion: a path after --authorized-keys.
	prog := "source " + bash + "\nCOMP_WORDS=(protolab-tui serve --authorized-keys " + strings.TrimSuffix(bash, ".bash") + "); COMP_CWORD=3; _protolab_tui; printf '%s\\n' \"${COMPREPLY[@]}\"\n"
	if out, err := exec.Command("bash", "-c", prog).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != bash {
		t.Errorf("bash: --authorized-keys completes to %q (%v), want the file %s", out, err, bash)
	}

	fish := testenv.NeedCommand(t, "fish")
	fishScript := script("fish")
	if out, err := exec.Command(fish, "--no-execute", fishScript).CombinedOutput(); err != nil {
		t.Fatalf("fish --no-execute: %v: %s", err, out)
	}
	for line, want := range map[string][]string{
		"protolab-tui serve --":      {"--listen", "--authorized-keys", "--shell-keys", "--provider", "--state-dir"},
		"protolab-tui down --":       {"--all", "--list", "--match", "--yes", "--provider"},
		"protolab-tui completion ":   {"bash", "zsh", "fish"},
		"protolab-tui ":              {"serve", "down", "token", "app", "completion", "version"},
		"protolab-tui --provider ":   {"docker", "local", "ssh", "vagrant"},
		"protolab-tui token --":      {"--targets", "--ttl"},
		"protolab-tui app --mode ":   {"http", "ws"},
		"protolab-tui app --kind ec": {"echo-http"},
	} {
		out, err := exec.Command(fish, "--no-config", "-c", "source "+fishScript+"; complete -C "+shQuote(line)).CombinedOutput()
		var got []string
		for _, l := range strings.Split(string(out), "\n") {
			got = append(got, strings.SplitN(l, "\t", 2)[0])
		}
		for _, w := range want {
			if err != nil || !slices.Contains(got, w) {
				t.Errorf("fish: %q completes to %q (%v), want %s among them", line, got, err, w)
			}
		}
	}
	if out, _ := exec.Command(fish, "--no-config", "-c", "source "+fishScript+"; complete -C 'protolab-tui --al'").CombinedOutput(); strings.Contains(string(out), "--all\t") {
		t.Errorf("fish offers down's --all to the command itself:\n%s", out)
	}

	zsh := testenv.NeedCommand(t, "zsh")
	zshScript := script("zsh")
	if out, err := exec.Command(zsh, "-n", zshScript).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v: %s", err, out)
	}
	for words, want := range map[string][]string{
		"protolab-tui serve ''": {"--listen[", "--authorized-keys[", "--shell-keys[", "--provider[", "--state-dir["},
		"protolab-tui down ''":  {"--all[", "--list[", "--match[", "--yes[", "--provider["},
		"protolab-tui token ''": {"--targets[", "--ttl["},
		"protolab-tui ''":       {"--provider[", "1:subcommand:(app completion down serve token version)"},
	} {
		// _arguments (the completion system's) stands in: it says the specs
		// the script hands it for these words.
		prog := "_arguments() { print -rl -- \"$@\" }; words=(" + words + "); CURRENT=${#words}; source " + zshScript
		out, err := exec.Command(zsh, "-f", "-c", prog).CombinedOutput()
		for _, w := range want {
			if err != nil || !strings.Contains(string(out), "\n"+w) {
				t.Errorf("zsh: for %s the script hands _arguments no %q (%v):\n%s", words, w, err, out)
			}
		}
		if strings.HasPrefix(words, "protolab-tui ''") && strings.Contains(string(out), "--all[") {
			t.Errorf("zsh offers down's --all to the command itself")
		}
	}
	if out, err := exec.Command(binary, "completion", "tcsh").CombinedOutput(); exitCode(err) != exitUsage || !bytes.Contains(out, []byte("bash, zsh and fish")) {
		t.Errorf("completion tcsh: exit %d: %s", exitCode(err), out)
	}
}

// --help lists the subcommands and the flags; serve --help and down --help
// their own flags (a required one says so, none says `(default "")`), then
// the lab's.
func TestHelp(t *testing.T) {
	out, err := exec.Command(binary, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, sub := range subcommands {
		if !regexp.MustCompile(`(?m)^  ` + sub + ` +\S`).Match(out) {
			t.Errorf("--help does not list the subcommand %s:\n%s", sub, out)
		}
	}
	if !bytes.Contains(out, []byte("-provider string")) {
		t.Errorf("--help lists no flags:\n%s", out)
	}
	out, err = exec.Command(binary, "serve", "--help").CombinedOutput()
	for _, want := range []string{"--authorized-keys FILE", "(required)", "--listen HOST:PORT", `(default "127.0.0.1:2222")`, "--shell-keys FILE", "-provider string"} {
		if err != nil || !bytes.Contains(out, []byte(want)) {
			t.Errorf("serve --help (%v) does not say %q:\n%s", err, want, out)
		}
	}
	if bytes.Contains(out, []byte(`(default "")`)) || bytes.Contains(out, []byte("Subcommands:")) {
		t.Errorf("serve --help:\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, err := exec.Command(binary, args...).Output()
		if err != nil || !strings.HasPrefix(string(out), "protolab-tui ") || !strings.Contains(string(out), "linux/") {
			t.Errorf("%v: %v: %q", args, err, out)
		}
	}
}

// down --list lists the labs left on the engine by label (docker when no
// provider is given) and removes nothing; down --all asks before it
// removes them at a terminal, refuses without one unless --yes, and then
// removes them (--match keeps the test off other labs on this engine).
func TestDownAllRemovesLeftLabs(t *testing.T) {
	needDocker(t)
	t.Cleanup(func() { _ = down(t, "--all", "--yes", "--match", "t-left-*", "--provider", "docker").Run() })
	for _, name := range []string{"t-left-a", "t-left-b"} {
		if out, err := command(t, append([]string{"--headless", "--keep", "--provider", "docker", "--name", name, "--count", "2", "--capture", "off"}, freePorts...)...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
	}
	// A lab of the same name is refused up front, naming the running one
	// and how to attach to it or remove it; its teardown leaves that lab
	// whole.
	out, err := command(t, append([]string{"--headless", "--provider", "docker", "--name", "t-left-b", "--capture", "off"}, freePorts...)...).CombinedOutput()
	if exitCode(err) != exitFailed {
		t.Errorf("a second lab t-left-b: exit %d, want %d", exitCode(err), exitFailed)
	}
	for _, want := range []string{`a lab named "t-left-b" is already on the Docker engine at `, "(4 containers, 4 running;", "another --name",
		"attach to that one with protolab-tui serve --provider docker --state-dir ", "remove it with protolab-tui --provider docker --state-dir "} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
	if bytes.Contains(out, []byte("state     deploying")) {
		t.Errorf("the refused lab went on to deploy:\n%s", out)
	}
	left := func() int {
		ps, err := exec.Command("docker", "ps", "-aq", "--filter", "label=protolab.lab=t-left-a", "--filter", "status=running").Output()
		if err != nil {
			t.Fatal(err)
		}
		ps2, err := exec.Command("docker", "ps", "-aq", "--filter", "label=protolab.lab=t-left-b", "--filter", "status=running").Output()
		if err != nil {
			t.Fatal(err)
		}
		return len(strings.Fields(string(ps))) + len(strings.Fields(string(ps2)))
	}
	if n := left(); n != 8 {
		t.Fatalf("after the refused run, %d containers of the two labs run, want 8", n)
	}

	// --list (the provider defaults to docker): both, counted; nothing goes.
	out, err = down(t, "--list", "--match=t-left-*").CombinedOutput()
	for _, want := range []string{"labs of protolab on provider docker (2):\n  t-left-a: 4 containers, 4 running\n  t-left-b: 4 containers, 4 running\n", "nothing removed"} {
		if err != nil || !bytes.Contains(out, []byte(want)) {
			t.Errorf("down --list: %v, does not say %q:\n%s", err, want, out)
		}
	}
	// --all without a terminal and without --yes: refused, nothing goes.
	out, err = down(t, "--all", "--match", "t-left-*").CombinedOutput()
	if exitCode(err) != exitUsage || !bytes.Contains(out, []byte("no terminal to confirm on: give --yes to remove 2 labs")) {
		t.Errorf("down --all without a terminal: exit %d:\n%s", exitCode(err), out)
	}
	if n := left(); n != 8 {
		t.Fatalf("--list and an unconfirmed --all removed containers: %d run, want 8", n)
	}
	// At a terminal it asks: no keeps them, y removes them.
	if code, out := downInPty(t, "n", "--all", "--match", "t-left-a", "--provider", "docker"); code != exitFailed || !strings.Contains(out, "Remove 1 lab") || !strings.Contains(out, "nothing removed") {
		t.Errorf("down --all answered n: exit %d:\n%s", code, out)
	}
	if n := left(); n != 8 {
		t.Fatalf("down --all answered n removed containers: %d run, want 8", n)
	}
	if code, out := downInPty(t, "y", "--all", "--match", "t-left-a"); code != exitOK || !strings.Contains(out, `lab "t-left-a" removed`) {
		t.Errorf("down --all answered y: exit %d:\n%s", code, out)
	}
	out, err = down(t, "--all", "--yes", "--match", "t-left-*", "--provider", "docker").CombinedOutput()
	if err != nil {
		t.Fatalf("down --all --yes: %v\n%s", err, out)
	}
	for _, want := range []string{"labs of protolab on provider docker (1):\n  t-left-b: 4 containers, 4 running\n", `lab "t-left-b" removed`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("down --all does not say %q:\n%s", want, out)
		}
	}
	for _, name := range []string{"t-left-a", "t-left-b"} {
		if n := dockerLeftovers(t, name); n != 0 {
			t.Errorf("lab %s left %d containers/networks", name, n)
		}
	}
	out, err = down(t, "--all", "--yes", "--match", "t-left-*").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("no lab of protolab is left on provider docker")) {
		t.Errorf("second down --all: %v\n%s", err, out)
	}
}

// down's mistakes and help: each says what to give.
func TestDownUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"--help"}, exitOK, []string{"Usage: protolab-tui down --all|--list", "--match GLOB", "--list", "--yes", "(default \"*\")"}},
		{[]string{"--provider", "docker"}, exitUsage, []string{"give --all", "or --list"}},
		{[]string{"--all", "--provider", "local"}, exitUsage, []string{"the embedded (local) provider's labs", "--provider docker"}},
		{[]string{"--all", "--match", "["}, exitUsage, []string{`--match "["`}},
		{[]string{"--all", "--yes=maybe"}, exitUsage, []string{`invalid boolean value "maybe" for -yes`}},
	} {
		out, err := down(t, tc.args...).CombinedOutput()
		for _, w := range tc.want {
			if exitCode(err) != tc.code || !bytes.Contains(out, []byte(w)) {
				t.Errorf("down %v: exit %d (want %d), does not say %q:\n%s", tc.args, exitCode(err), tc.code, w, out)
			}
		}
	}
}

// downInPty runs `down args…` in a terminal, answers its question, and
// returns its exit code and what it showed.
func downInPty(t *testing.T, answer string, args ...string) (int, string) {
	t.Helper()
	cmd := down(t, args...)
	f, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	read := make(chan struct{})
	asked := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 4096)
		once := false
		for {
			n, err := f.Read(buf)
			out.Write(buf[:n])
			if !once && bytes.Contains(out.Bytes(), []byte("[y/N]")) {
				once = true
				close(asked)
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-asked:
	case <-read:
	case <-time.After(time.Minute):
		t.Fatalf("down asked nothing within a minute")
	}
	if _, err := io.WriteString(f, answer+"\r"); err != nil {
		t.Fatal(err)
	}
	werr := cmd.Wait()
	f.Close()
	<-read
	return exitCode(werr), out.String()
}

func down(t *testing.T, args ...string) *exec.Cmd {
	return exec.Command(binary, append(append([]string{"down"}, args...), "--state-dir", t.TempDir())...)
}

// TestTokenCommand: `token` mints with the state directory's secret (made
// 0600), and its token passes the proxy's own check for the named targets
// only.
func TestTokenCommand(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command(binary, "token", "--targets", "ws,wss", "--ttl", "5m", "--state-dir", dir).Output()
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	secret, err := labtoken.ReadSecret(filepath.Join(dir, labtoken.SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(out))
	if _, err := labtoken.Check(secret, tok, "wss", time.Now()); err != nil {
		t.Errorf("the minted token: %v", err)
	}
	if _, err := labtoken.Check(secret, tok, "http", time.Now()); !errors.Is(err, labtoken.ErrTarget) {
		t.Errorf("a target it does not name: %v", err)
	}
	if c, _ := labtoken.Parse(secret, tok, time.Now()); c.ExpiresAt().Sub(time.Now()) > 5*time.Minute+time.Second {
		t.Errorf("expires %s, past the 5m asked", c.ExpiresAt())
	}
	for _, args := range [][]string{{"token"}, {"token", "--targets", "ws", "--ttl", "-1m"}} {
		err := exec.Command(binary, append(args, "--state-dir", dir)...).Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%v: %v, want exit 2", args, err)
		}
	}
}
