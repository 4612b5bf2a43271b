package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/ui"
)

// A way to stop a run, and the exit code it must end with.
type stopKind struct {
	name string
	code int
	stop func(r *ptyRun)
}

// kill signals the run's process (sign 1) or its process group (sign -1).
func kill(sign int, sig syscall.Signal) func(*ptyRun) {
	return func(r *ptyRun) {
		if err := syscall.Kill(sign*r.cmd.Process.Pid, sig); err != nil {
			r.t.Fatalf("kill %v: %v", sig, err)
		}
	}
}

var (
	// Ctrl-C then y: the explorer asks before it quits a lab that is up
	// (y confirms; a headless run has gone by then and never reads it).
	ctrlC     = stopKind{"Ctrl-C typed", 130, func(r *ptyRun) { r.type_("\x03y") }}
	stopKinds = []stopKind{
		{"SIGINT to the process", 130, kill(1, syscall.SIGINT)},
		{"SIGINT to its process group", 130, kill(-1, syscall.SIGINT)},
		{"SIGTERM", 143, kill(1, syscall.SIGTERM)},
		{"SIGHUP: the terminal closed", 129, func(r *ptyRun) { r.hangUp() }},
	}
)

// ctrlCRepeats is how often each case is stopped with a typed Ctrl-C.
const ctrlCRepeats = 10

// TestStopsInATerminal runs the binary in a real terminal — as root and as
// nobody, with capture on and off, headless and in the explorer — and stops
// it mid-run: Ctrl-C typed ten times per case, and once each SIGINT to the
// process, SIGINT to its process group, SIGTERM and a closed terminal. Every
// run must tear the lab down once and exit 130 (143, 129), leaving no
// spool, no listener and no process. As nobody with capture on, the
// embedded lab runs in a private namespace (a child process): the case the
// signal handling between the two processes is for.
func TestStopsInATerminal(t *testing.T) {
	testenv.NeedRoot(t) // to run as nobody too
	var sem = make(chan struct{}, 3)
	for _, user := range []runUser{userRoot, userNobody} {
		for _, captureMode := range []string{"on", "off"} {
			for _, front := range []string{"headless", "explorer"} {
				t.Run(fmt.Sprintf("%s/capture %s/%s", user, captureMode, front), func(t *testing.T) {
					kinds := append([]stopKind(nil), stopKinds...)
					for range ctrlCRepeats {
						kinds = append(kinds, ctrlC)
					}
					var wg sync.WaitGroup
					for i, k := range kinds {
						wg.Add(1)
						go func() {
							defer wg.Done()
							sem <- struct{}{}
							defer func() { <-sem }()
							t.Run(fmt.Sprintf("%d %s", i, k.name), func(t *testing.T) {
								stopOnce(t, user, captureMode, front, k)
							})
						}()
					}
					wg.Wait()
				})
			}
		}
	}
}

// stopOnce starts one run, waits for its lab to be up (capturing, when
// asked, and probing headless), stops it with k and checks what is left.
func stopOnce(t *testing.T, user runUser, captureMode, front string, k stopKind) {
	args := append([]string{"--capture", captureMode}, freePorts...)
	if front == "headless" {
		args = append(args, "--headless", "--json", "--count", "100000000") // still probing when the signal comes
	}
	r := startPty(t, user, []string{"NO_COLOR=1"}, args...)
	mode := "off"
	if captureMode == "on" {
		mode = "live"
		if user == userNobody {
			mode = "namespace" // the embedded lab in a child process
		}
	}
	if front == "headless" {
		want := []string{`"type":"progress"`, `"op":"probe"`}
		if mode != "off" {
			want = append(want, `"mode":"`+mode+`"`)
		}
		r.waitFor("the probes to run", want...)
	} else {
		r.waitFor("the lab to run", "· running ·", "· capture "+mode+" ·")
	}
	listening := r.listeners()
	if mode != "namespace" && len(listening) < 4 {
		t.Fatalf("the lab's apps listen on %v, want 4 addresses", listening)
	}

	k.stop(r)
	code, out := r.exit()
	if code != k.code {
		t.Errorf("exit code %d, want %d; the terminal shows:\n%s", code, k.code, tail(out))
	}
	if !r.closed { // a closed terminal shows nothing more
		if n := strings.Count(out, "the lab was torn down"); n != 1 {
			t.Errorf("%d times %q, want once:\n%s", n, "the lab was torn down", tail(out))
		}
		if strings.Contains(out, "second signal") {
			t.Errorf("one stop was taken for two:\n%s", tail(out))
		}
		if front == "headless" {
			teardowns := 0
			for _, ev := range events(out) {
				if ev["type"] == "state" && ev["to"] == "tearing_down" {
					teardowns++
				}
			}
			if teardowns != 1 {
				t.Errorf("%d teardowns, want 1:\n%s", teardowns, tail(out))
			}
		}
	}
	if left := r.spoolLeft(); len(left) != 0 {
		t.Errorf("spool files left: %v", left)
	}
	if left := r.session(); len(left) != 0 {
		t.Errorf("processes left in the run's session: %v", left)
	}
	for _, addr := range listening {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listens after the run ended", addr)
		}
	}
}

// tail is the end of a terminal's output, for failure messages.
func tail(s string) string {
	if len(s) > 3000 {
		return "…" + s[len(s)-3000:]
	}
	return s
}

// TestSecondSignalForcesExit: a second signal while the lab is being torn
// down exits at once and says what is left and how to remove it. Both
// signals are made pending while the process is stopped, so the second
// surely comes before the teardown ends.
func TestSecondSignalForcesExit(t *testing.T) {
	pcap := filepath.Join(t.TempDir(), "lab.pcapng")
	r := startPty(t, userRoot, []string{"NO_COLOR=1"}, append([]string{"--headless", "--json", "--count", "100000000", "--pcap", pcap}, freePorts...)...)
	r.waitFor("the probes to run", `"op":"probe"`)
	pid := r.cmd.Process.Pid
	for _, s := range []syscall.Signal{syscall.SIGSTOP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCONT} {
		if err := syscall.Kill(pid, s); err != nil {
			t.Fatal(err)
		}
	}
	code, out := r.exit()
	// The kernel delivers the lower-numbered signal first, but the Go
	// runtime's signal queue may hand them on either way round: whichever
	// comes second forces the exit, with its own code.
	second := map[int]string{143: "terminated (SIGTERM)", 130: "interrupted (SIGINT)"}[code]
	if second == "" || !strings.Contains(out, "second signal, "+second+", while the lab was being torn down: exiting now, before the teardown finished") {
		t.Errorf("exit %d:\n%s", code, tail(out))
	}
	for _, want := range []string{"Left behind: nothing of the lab", "If the export to " + pcap + " was being written, its partial file is hidden next to it: rm " + filepath.Join(filepath.Dir(pcap), ".lab.pcapng.*")} {
		if !strings.Contains(out, want) {
			t.Errorf("the message lacks %q:\n%s", want, tail(out))
		}
	}
	if left := r.spoolLeft(); len(left) != 0 {
		t.Errorf("spool files left: %v", left)
	}
}

func TestLeftBehindSaysHowToRemoveIt(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--provider", "docker", "--name", "lab-x"}, []string{
			"Left behind: the lab's containers and network on the Docker engine (labelled protolab.lab=lab-x).",
			"Remove it with: protolab-tui --provider docker --state-dir STATE --name lab-x --teardown"}},
		{[]string{"--provider", "ssh", "--host", "me@box:2222"}, []string{
			"on me@box:2222 (labelled protolab.lab=protolab)",
			"Remove it with: protolab-tui --provider ssh --host me@box:2222 --state-dir STATE --name protolab --teardown"}},
		{[]string{"--provider", "vagrant", "--vagrant-dir", "../.."}, []string{
			"the lab's Vagrant VM (the Vagrantfile in ../..)",
			"protolab-tui --provider vagrant --vagrant-dir ../.. --state-dir STATE --name protolab --teardown (or vagrant destroy -f in ../..)"}},
		// A folder with no Vagrantfile: protolab's own, in the state directory.
		{[]string{"--provider", "vagrant", "--vagrant-dir", "/srv/my vm"}, []string{
			"the lab's Vagrant VM (the Vagrantfile in STATE/vagrant/protolab)",
			"protolab-tui --provider vagrant --vagrant-dir '/srv/my vm' --state-dir STATE --name protolab --teardown (or vagrant destroy -f in STATE/vagrant/protolab)"}},
		{[]string{"--lab", "../../examples/two-ws.yaml", "--provider", "docker"}, []string{"Remove it with: protolab-tui --lab ../../examples/two-ws.yaml --provider docker --state-dir STATE --name two-ws --teardown"}},
		{[]string{"--headless", "--pcap", "PCAP"}, []string{"Left behind: nothing of the lab", "rm DIR/.lab.pcapng.*"}},
	} {
		state := t.TempDir()
		dir := t.TempDir()
		args := append([]string{"--state-dir", state}, tc.args...)
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, "PCAP", filepath.Join(dir, "lab.pcapng"))
		}
		o, err := parseFlags(args, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		msg := leftBehind(o)
		for _, w := range tc.want {
			w = strings.ReplaceAll(strings.ReplaceAll(w, "STATE", state), "DIR", dir)
			if !strings.Contains(msg, w) {
				t.Errorf("%v: %q lacks %q", tc.args, msg, w)
			}
		}
	}
}

// TestInterruptedPcapIsCutShort: an interrupted run with --pcap writes the
// packets it captured, and the file says it was cut short — as root (live
// capture) and as nobody (the namespaced child writes it).
func TestInterruptedPcapIsCutShort(t *testing.T) {
	for _, user := range []runUser{userRoot, userNobody} {
		t.Run(string(user), func(t *testing.T) {
			r := startPty(t, user, []string{"NO_COLOR=1"}, append([]string{"--headless", "--json", "--capture", "on", "--count", "100000000", "--pcap", "{home}/lab.pcapng"}, freePorts...)...)
			// connected: the probe worker's packets are on the wire
			r.waitFor("the probes to run", `"type":"progress"`, `"op":"probe"`, `connected"`)
			if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			code, out := r.exit()
			if code != 130 {
				t.Fatalf("exit %d:\n%s", code, tail(out))
			}
			var export map[string]any
			for _, ev := range events(out) {
				if ev["type"] == "export" {
					export = ev
				}
			}
			pcap := filepath.Join(r.home, "lab.pcapng")
			if export == nil || export["cut_short"] != true || export["path"] != pcap || export["packets"].(float64) < 1 {
				t.Fatalf("export event %v:\n%s", export, tail(out))
			}
			if !strings.Contains(out, "export    ") && !strings.Contains(fmt.Sprint(export["note"]), "cut short: interrupted (SIGINT) at ") {
				t.Errorf("the export's note %q does not say it was cut short", export["note"])
			}
			st, err := os.Stat(pcap)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("%s: %v %v", pcap, st, err)
			}
			f, err := capture.OpenFile(pcap, nil)
			if err != nil {
				t.Fatal(err)
			}
			comment := f.Comment()
			f.Close()
			if !strings.HasPrefix(comment, "cut short: interrupted (SIGINT) at ") {
				t.Errorf("section comment %q", comment)
			}
			// Wireshark's tools read it whole, and show the comment.
			tshark := testenv.NeedCommand(t, "tshark")
			n, err := exec.Command(tshark, "-r", pcap, "-T", "fields", "-e", "frame.number").Output()
			if err != nil || len(strings.Fields(string(n))) != int(export["packets"].(float64)) {
				t.Errorf("tshark reads %d packets (%v), the export wrote %v", len(strings.Fields(string(n))), err, export["packets"])
			}
			capinfos := testenv.NeedCommand(t, "capinfos")
			if b, err := exec.Command(capinfos, "-k", pcap).CombinedOutput(); err != nil || !strings.Contains(string(b), "cut short: interrupted (SIGINT)") {
				t.Errorf("capinfos -k (%v): %s", err, b)
			}
		})
	}
}

// TestRepeatsForceNothing: a closed terminal sends SIGHUP more than once
// (the shell's, then the kernel's to the foreground group), and one Ctrl-C
// may arrive twice at once (the terminal's, and one forwarded): these
// repeats do not count as a second signal, which would skip the teardown.
// (A second signal that does force the exit is TestSecondSignalForcesExit.)
func TestRepeatsForceNothing(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		want string
	}{
		{syscall.SIGHUP, "hung up (SIGHUP: the terminal closed)"},
		{syscall.SIGINT, "interrupted (SIGINT)"},
		{syscall.SIGTERM, "terminated (SIGTERM)"},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			s := watchStops(cancel, io.Discard, func() string { return "" })
			s.sigs <- tc.sig
			s.sigs <- tc.sig
			if tc.sig == syscall.SIGHUP {
				s.sigs <- tc.sig
			}
			s.stop() // every signal handled; a forced exit would have ended this test binary
			if s.got() != tc.sig || fmt.Sprint(context.Cause(ctx)) != tc.want {
				t.Errorf("first %v, cause %v", s.got(), context.Cause(ctx))
			}
		})
	}
}

// TestCtrlCUnderAShell runs the binary from sh -c, as a script does: sh is
// the terminal's session leader and the binary runs in sh's process group.
// As nobody with capture on, the namespaced child takes the terminal's
// foreground, gets the typed Ctrl-C once, and the terminal is given back:
// sh goes on and may read the terminal (a background process group reading
// it would be stopped by SIGTTIN).
func TestCtrlCUnderAShell(t *testing.T) {
	r := startPtyWith(t, userNobody, "", `"$@"; echo "EXIT $?"; read line; echo "READ $line"`, []string{"NO_COLOR=1"},
		append([]string{"--headless", "--json", "--capture", "on", "--count", "100000000"}, freePorts...)...)
	r.waitFor("the probes to run in the namespace", `"mode":"namespace"`, `"op":"probe"`)
	r.type_("\x03")
	r.waitFor("the exit code", "EXIT 130")
	r.type_("back\n")
	r.waitFor("the shell to read the terminal", "READ back")
	code, out := r.exit()
	if code != 0 || strings.Count(out, "the lab was torn down") != 1 || strings.Contains(out, "second signal") {
		t.Errorf("sh exit %d:\n%s", code, tail(out))
	}
	if left := r.spoolLeft(); len(left) != 0 {
		t.Errorf("spool files left: %v", left)
	}
}

// TestExplorerEndSaysWhatTheUserChose: leaving a docker lab running (q or
// Ctrl-C, then l) says what is left and the exact command that removes it
// — never "torn down" — and exits 0 after q, 130 after Ctrl-C; a teardown
// chosen after Ctrl-C says it was torn down; one that failed says what is
// left.
func TestExplorerEndSaysWhatTheUserChose(t *testing.T) {
	state := t.TempDir()
	o, err := parseFlags([]string{"--state-dir", state, "--provider", "docker", "--name", "lab-x"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	remove := "Remove it with: protolab-tui --provider docker --state-dir " + state + " --name lab-x --teardown"
	for _, tc := range []struct {
		name    string
		err     error
		code    int
		want    []string
		notWant string
	}{
		{"q then l", ui.ErrLeftRunning, exitOK, []string{"left running", "Left behind: the lab's containers", remove}, "torn down"},
		{"ctrl+c then l", errors.Join(ui.ErrInterrupted, ui.ErrLeftRunning), exitSIGINT,
			[]string{"interrupted (Ctrl-C); the lab \"lab-x\" was left running", remove}, "torn down"},
		{"ctrl+c then t", ui.ErrInterrupted, exitSIGINT, []string{"interrupted (Ctrl-C); the lab was torn down"}, "Left behind"},
		{"ctrl+c then t, failed", errors.Join(ui.ErrInterrupted, fmt.Errorf("%w: %w", ui.ErrTeardownFailed, errors.New("engine gone"))), exitSIGINT,
			[]string{"the teardown failed", "engine gone", remove}, "was torn down"},
		{"q then t, failed", fmt.Errorf("%w: %w", ui.ErrTeardownFailed, errors.New("engine gone")), exitFailed,
			[]string{"teardown:", "engine gone", remove}, "was torn down"},
	} {
		var out strings.Builder
		if code := explorerEnd(&out, o, tc.err, nil); code != tc.code {
			t.Errorf("%s: exit %d, want %d", tc.name, code, tc.code)
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: %q lacks %q", tc.name, out.String(), w)
			}
		}
		if strings.Contains(out.String(), tc.notWant) {
			t.Errorf("%s: %q says %q", tc.name, out.String(), tc.notWant)
		}
	}
}
