package headless_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/headless"
	"github.com/protolab/protolab-tui/lab/providers/local"
	"github.com/protolab/protolab-tui/lab/wire"
)

// xmlSuites is JUnit XML as a CI system reads it, for the tests to read
// what WriteJUnit wrote with encoding/xml.
type xmlSuites struct {
	XMLName xml.Name `xml:"testsuites"`
	Suites  []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Skipped  int    `xml:"skipped,attr"`
		Cases    []struct {
			Name    string `xml:"name,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			Skipped *struct {
				Message string `xml:"message,attr"`
			} `xml:"skipped"`
			Out string `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func readJUnit(t *testing.T, rep lab.Report, runErr error) xmlSuites {
	t.Helper()
	var x bytes.Buffer
	if err := headless.WriteJUnit(&x, rep, runErr, 0); err != nil {
		t.Fatal(err)
	}
	var s xmlSuites
	if err := xml.Unmarshal(x.Bytes(), &s); err != nil || len(s.Suites) != 1 {
		t.Fatalf("encoding/xml reads %d suites (%v) from:\n%s", len(s.Suites), err, x.String())
	}
	return s
}

// scriptedLab is the embedded lab of a lab file's text, on free ports.
func scriptedLab(t *testing.T, text string, newProv func(lab.Env) (lab.Provider, error)) *lab.Lab {
	t.Helper()
	lf, err := lab.ParseLabFile("scripted.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	cfg := lf.Config
	cfg.StateDir = t.TempDir()
	cfg.Apps = lab.OnFreePorts(cfg.Apps)
	l, err := lab.New(cfg, newProv)
	if err != nil {
		t.Fatal(lf.Explain(err))
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// A lab file's steps run in order on a real embedded lab: the send reaches
// the ws app (its echo comes back, and the capture holds it), the export is
// a pcapng the lab's reader (and tshark) reads, the compare measures every
// app, and the JUnit report has a passing case per step and per app.
func TestScriptedRun(t *testing.T) {
	const text = "hello from the script"
	pcap := filepath.Join(t.TempDir(), "scripted run.pcapng")
	l := scriptedLab(t, fmt.Sprintf(`name: scripted
apps:
  - name: http
    protocol: http
  - name: ws
    protocol: ws
probe:
  count: 5
capture:
  mode: on
steps:
  - up
  - deploy
  - capture on
  - send ws %q
  - wait 50ms
  - compare
  - export %q
  - capture off
  - down
`, text, pcap), local.New)
	var out bytes.Buffer
	rep, err := headless.Run(context.Background(), l, headless.Options{Out: &out, JSON: true})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if len(rep.Steps) != 9 {
		t.Fatalf("the report has %d steps, want 9: %+v", len(rep.Steps), rep.Steps)
	}
	for _, s := range rep.Steps {
		if s.State != lab.StepOK {
			t.Errorf("step %d (%s) is %s: %s", s.Index, s.Step, s.State, s.Error)
		}
	}
	if !rep.OK || !rep.Apps["ws"].OK || !rep.Apps["http"].OK {
		t.Errorf("the compare step did not measure every app: %+v", rep.Apps)
	}

	// The NDJSON: a start and an end event per step, in order, the send's
	// echo, and the report last with the steps in it.
	var steps []lab.StepResult
	var echoed bool
	var last map[string]any
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("not NDJSON: %q: %v", sc.Text(), err)
		}
		last = ev
		switch ev["type"] {
		case "step":
			var s lab.StepEvent
			_ = json.Unmarshal(sc.Bytes(), &s)
			if s.State != lab.StepStarted {
				steps = append(steps, s.StepResult)
			}
		case "send":
			echoed = echoed || ev["reply"] == text && ev["error"] == nil
		}
	}
	if len(steps) != 9 || steps[3].Step != fmt.Sprintf("send ws %q", text) || !strings.Contains(steps[3].Detail, `echo "`+text+`"`) {
		t.Errorf("step events %+v", steps)
	}
	if !echoed {
		t.Errorf("no send event with the echo of %q", text)
	}
	if last["type"] != "report" || last["steps"] == nil {
		t.Errorf("the last line is not the report with its steps: %v", last)
	}

	// The app got the message: its echo is on the wire, in the lab's store.
	found := l.Wire().Matching("ws", func(r *wire.Record) bool {
		return r.Kind == wire.KindMessage && bytes.Contains(r.Data, []byte(text))
	})
	if len(found) < 2 { // the client's frame and the app's echo
		t.Errorf("the capture holds %d ws messages with %q, want the frame and its echo", len(found), text)
	}

	// The export is a pcapng that the lab's reader reads back whole.
	f, err := capture.OpenFile(pcap, wire.NewKeyLog(nil))
	if err != nil {
		t.Fatalf("the export step's file: %v", err)
	}
	n := 0
	for {
		if _, _, err := f.ReadPacketData(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Errorf("reading the export: %v", err)
			}
			break
		}
		n++
	}
	f.Close()
	if n == 0 {
		t.Error("the export holds no packets")
	}
	if b, _ := os.ReadFile(pcap); len(b) < 4 || !bytes.Equal(b[:4], []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		t.Error("the export is not a pcapng (no section header block)")
	}
	// tshark sees the app's echo, unmasked, in the file.
	tshark := testenv.NeedCommand(t, "tshark")
	ws := l.Snapshot().Results["ws"].Addr
	_, port, _ := net.SplitHostPort(ws)
	got, err := exec.Command(tshark, "-r", pcap, "-n", "-d", "tcp.port=="+port+",http", "-Y", fmt.Sprintf("frame contains %q", text)).Output()
	if err != nil || len(bytes.TrimSpace(got)) == 0 {
		t.Errorf("tshark finds no packet with %q in the export (%v): %s", text, err, got)
	}

	if st := l.Snapshot().State; st != lab.Down {
		t.Errorf("the lab is %s after the down step", st)
	}
	j := readJUnit(t, rep, err)
	s := j.Suites[0]
	if s.Tests != 11 || s.Failures != 0 || s.Skipped != 0 {
		t.Errorf("JUnit: %d cases, %d failed, %d skipped; want 11 (9 steps, 2 apps), none failed", s.Tests, s.Failures, s.Skipped)
	}
	if s.Cases[3].Name != fmt.Sprintf("step 4: send ws %q", text) {
		t.Errorf("the fourth case is %q", s.Cases[3].Name)
	}
}

// A step that fails (a send to an app that is down) fails the run with a
// *lab.StepError naming it; the steps after it are skipped, the lab is
// torn down all the same, and the JUnit report shows that step failed with
// its reason and the rest skipped.
func TestScriptedRunFailedStep(t *testing.T) {
	l0, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l0.Addr().String()
	l0.Close()
	newProv := func(env lab.Env) (lab.Provider, error) {
		p, err := local.New(env)
		return brokenWSS{Provider: p, dead: dead}, err
	}
	l := scriptedLab(t, `apps:
  - name: ws
    protocol: ws
  - name: wss
    protocol: wss
probe:
  count: 3
capture:
  mode: off
steps:
  - up
  - deploy
  - send ws "fine"
  - send wss "to a dead app"
  - compare
  - down
`, newProv)
	var out bytes.Buffer
	rep, err := headless.Run(context.Background(), l, headless.Options{Out: &out})
	var se *lab.StepError
	if !errors.As(err, &se) || se.Index != 4 || !strings.Contains(err.Error(), `step 4 (send wss "to a dead app") failed`) || !strings.Contains(err.Error(), dead) {
		t.Fatalf("err = %v, want step 4 named as failed, connecting to %s", err, dead)
	}
	text := out.String()
	for _, want := range []string{`step      4/6 send wss "to a dead app": FAILED: `, "step      5/6 compare: skipped", "1 failed, 2 skipped"} {
		if !strings.Contains(text, want) {
			t.Errorf("the output does not say %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "rtt p50 ms") {
		t.Errorf("no compare step ran, yet the output has figures:\n%s", text)
	}
	if st := l.Snapshot().State; st != lab.Down {
		t.Errorf("the lab is %s after a failed script: want it torn down", st)
	}
	s := readJUnit(t, rep, err).Suites[0]
	if s.Tests != 8 || s.Failures != 1 || s.Skipped != 4 {
		t.Errorf("JUnit: %d cases, %d failed, %d skipped; want 8 (6 steps, 2 apps), 1 failed, 4 skipped (2 steps, 2 apps)", s.Tests, s.Failures, s.Skipped)
	}
	for i, c := range s.Cases {
		switch {
		case i == 3:
			if c.Failure == nil || !strings.Contains(c.Failure.Message, `step 4 (send wss "to a dead app") failed`) || !strings.Contains(c.Failure.Text, "connecting to "+dead) {
				t.Errorf("case %q: failure %+v, want the send's reason", c.Name, c.Failure)
			}
		case i > 3:
			if c.Skipped == nil {
				t.Errorf("case %q is not skipped", c.Name)
			}
		default:
			if c.Failure != nil || c.Skipped != nil {
				t.Errorf("case %q: %+v %+v, want it passed", c.Name, c.Failure, c.Skipped)
			}
		}
	}
}

// A compare step that finds an app down fails, naming the app and why;
// the JUnit report has that app's case failed and the other's passed.
func TestScriptedCompareFindsAppDown(t *testing.T) {
	l0, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l0.Addr().String()
	l0.Close()
	newProv := func(env lab.Env) (lab.Provider, error) {
		p, err := local.New(env)
		return brokenWSS{Provider: p, dead: dead}, err
	}
	l := scriptedLab(t, "apps:\n  - name: ws\n    protocol: ws\n  - name: wss\n    protocol: wss\nprobe:\n  count: 3\ncapture:\n  mode: off\nsteps:\n  - up\n  - deploy\n  - compare\n", newProv)
	rep, err := headless.Run(context.Background(), l, headless.Options{Out: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "step 3 (compare) failed: probe failed for wss: wss: connecting to "+dead) {
		t.Fatalf("err = %v", err)
	}
	s := readJUnit(t, rep, err).Suites[0]
	if s.Tests != 5 || s.Failures != 2 {
		t.Errorf("JUnit: %d cases, %d failed; want 5, 2 (the compare step and wss)", s.Tests, s.Failures)
	}
	for _, c := range s.Cases {
		failed := c.Failure != nil
		if want := c.Name == "step 3: compare" || strings.HasPrefix(c.Name, "wss "); failed != want {
			t.Errorf("case %q: failed %v, want %v", c.Name, failed, want)
		}
	}
}

// An interrupt (the run's context ends, as on a signal) ends the step in
// progress and skips the rest; the lab is torn down all the same.
func TestScriptedRunInterrupted(t *testing.T) {
	l := scriptedLab(t, "apps:\n  - name: ws\n    protocol: ws\ncapture:\n  mode: off\nsteps:\n  - up\n  - deploy\n  - wait 1m\n  - send ws \"never\"\n", local.New)
	ctx, cancel := context.WithCancel(context.Background())
	events, stop := l.Subscribe()
	go func() {
		for e := range events {
			if s, ok := e.(lab.StepEvent); ok && s.Index == 3 && s.State == lab.StepStarted {
				cancel()
			}
		}
	}()
	defer stop()
	rep, err := headless.Run(ctx, l, headless.Options{Out: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("err = %v, want interrupted", err)
	}
	if len(rep.Steps) != 4 || rep.Steps[2].State != lab.StepFailed || rep.Steps[3].State != lab.StepSkipped {
		t.Errorf("steps %+v: want the wait failed (interrupted) and the send skipped", rep.Steps)
	}
	if st := l.Snapshot().State; st != lab.Down {
		t.Errorf("the lab is %s after the interrupt", st)
	}
}
