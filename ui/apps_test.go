package ui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/providers/local"
	"github.com/protolab/protolab-tui/protocol"
)

// modelFor builds the explorer for a lab of the given apps.
func modelFor(t *testing.T, apps []lab.App) Model {
	t.Helper()
	l, err := lab.New(lab.Config{StateDir: t.TempDir(), Apps: apps}, local.New)
	if err != nil {
		t.Fatal(err)
	}
	return New(l, make(chan lab.Event), Options{Name: "protolab", Provider: "local", StateDir: "/state",
		CaptureMode: "auto", Apps: l.Config().Apps, Now: func() time.Time { return t0 }})
}

// TestOneListPerApp: the packet lists follow the lab's apps — one ws app
// draws one list, not four; number keys reach only the apps there are.
func TestOneListPerApp(t *testing.T) {
	m := modelFor(t, []lab.App{{Name: "chat", Protocol: protocol.WS, Port: 0}})
	m = send(t, m, tea.WindowSizeMsg{Width: 200, Height: 40})
	if len(m.packets.lists) != 1 || m.packets.lists[0].app.Name != "chat" {
		t.Fatalf("lists %+v, want one for app chat", m.packets.lists)
	}
	v := m.text()
	if !strings.Contains(v, "chat (ws)  pkts 0") {
		t.Errorf("the list does not name its app:\n%s", v)
	}
	for _, p := range []string{"http  pkts", "https  pkts", "wss  pkts"} {
		if strings.Contains(v, p) {
			t.Errorf("a list for a protocol the lab does not have: %q", p)
		}
	}
	m = send(t, m, keys("3")...)
	if m.packets.focus != 0 {
		t.Errorf("key 3 in a one-app lab moved the focus to %d", m.packets.focus)
	}
	// w: no wss app to send to, and the explorer says so.
	m = send(t, m, keys("w")...)
	if m.prompting() != inputNone || !strings.Contains(m.text(), "no wss app") {
		t.Errorf("w in a lab without wss: input %v\n%s", m.prompting(), m.text())
	}
}

// TestSendFollowsTheShownApp: with two ws apps, s sends to the one shown.
func TestSendFollowsTheShownApp(t *testing.T) {
	m := modelFor(t, []lab.App{{Name: "ws-a", Protocol: protocol.WS}, {Name: "ws-b", Protocol: protocol.WS, Port: 3012}})
	m = send(t, m, tea.WindowSizeMsg{Width: 80, Height: 24}) // narrow: tabs
	v := m.text()
	if !strings.Contains(v, "[1 ws-a]") || !strings.Contains(v, " 2 ws-b ") {
		t.Errorf("tabs do not name the apps:\n%s", v)
	}
	m = send(t, m, keys("2")...)
	if m.packets.focus != 1 {
		t.Fatalf("key 2: focus %d", m.packets.focus)
	}
	m = send(t, m, keys("s")...)
	if m.prompting() != inputSend || m.sendApp != "ws-b" || !strings.Contains(m.text(), "send over ws-b:") {
		t.Errorf("s with ws-b shown: input %v, app %q", m.prompting(), m.sendApp)
	}
}

// TestCaptureKeyTwiceThenExport presses c twice before the lab has
// answered (two commands in flight), then off, on and e: one capture runs
// at a time, and the export holds the packets of both captures.
func TestCaptureKeyTwiceThenExport(t *testing.T) {
	testenv.NeedRoot(t) // live capture on lo
	l := runningLab(t, lab.Config{StateDir: t.TempDir(), Apps: lab.OnFreePorts(lab.SeedApps()[2:3]), Probe: probe.Options{Count: 5}})
	ctx := context.Background()
	m := New(l, make(chan lab.Event), Options{Name: "protolab", Provider: "local", StateDir: t.TempDir(), Apps: l.Config().Apps, Now: time.Now})
	m = send(t, m, tea.WindowSizeMsg{Width: 120, Height: 30})
	run := func(cmd tea.Cmd) {
		t.Helper()
		if cmd == nil {
			t.Fatal("the key gave no command")
		}
		runAll(cmd)
	}
	// c c: both commands run at once, as a key burst would have them.
	next, c1 := m.Update(keys("c")[0])
	m = next.(Model)
	next, c2 := m.Update(keys("c")[0])
	m = next.(Model)
	done := make(chan struct{})
	go func() { run(c1); close(done) }()
	run(c2)
	<-done
	if on, _ := l.Capturing(); !on {
		t.Fatal("capture is not on after c c")
	}
	if err := l.Probe(ctx).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	_ = l.SyncCapture(ctx)
	// Off (the event has told the model capture is on), on again, probe, e.
	m = send(t, m, eventsMsg{lab.CaptureEvent{State: "on"}})
	_, off := m.Update(keys("c")[0])
	run(off)
	m = send(t, m, eventsMsg{lab.CaptureEvent{State: "off"}})
	_, on := m.Update(keys("c")[0])
	run(on)
	if err := l.Probe(ctx).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	_ = l.SyncCapture(ctx)
	path := filepath.Join(t.TempDir(), "both.pcapng")
	m = send(t, m, keys("e")...)
	m.promptView().input.SetValue(path)
	_, exp := m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	run(exp)
	src, err := capture.OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var packets uint64
	for {
		if _, _, err := src.ReadPacketData(); err != nil {
			break
		}
		packets++
	}
	want := l.Wire().Counters("ws").Packets
	if packets != want || want == 0 {
		t.Errorf("the export holds %d packets, the ws list counted %d", packets, want)
	}
}

// TestComparisonView runs the probes from the explorer (C) on a real
// embedded lab and draws the figures of the Lab's report: the numbers are
// the report's, the ones --headless prints.
func TestComparisonView(t *testing.T) {
	l := runningLab(t, lab.Config{StateDir: t.TempDir(), Apps: lab.OnFreePorts(lab.SeedApps()), Probe: probe.Options{Count: 20},
		Capture: lab.CaptureConfig{Mode: "off"}})
	events, stop := l.Subscribe()
	defer stop()
	m := New(l, events, Options{Name: "protolab", Provider: "local", StateDir: t.TempDir(), Apps: l.Config().Apps, Now: time.Now})
	m = send(t, m, tea.WindowSizeMsg{Width: 200, Height: 50}, eventsMsg{lab.StateEvent{From: lab.Deploying, To: lab.Running}})
	m = compareThroughC(t, m, events, func(m Model) {
		if v := m.text(); !strings.Contains(v, "Comparison") || !strings.Contains(v, "starting the probes") {
			t.Errorf("no progress shown:\n%s", v)
		}
	})
	rep := l.Report()
	v := m.text()
	for _, a := range rep.Rows() {
		if !a.OK {
			t.Fatalf("%s failed: %s", a.App, a.Error)
		}
		for _, want := range []string{
			fmt.Sprintf("%6.2f  (%.2f+%.2f+%.2f)", a.SetupMs, a.ConnectMs, a.TLSMs, a.HandshakeMs),
			fmt.Sprintf("%7.3f │ %7.3f", a.RTTP50Ms, a.RTTP99Ms),
			fmt.Sprintf("%8.0f", a.MsgsPerS),
		} {
			if !strings.Contains(v, want) {
				t.Errorf("%s: the view lacks the report's %q:\n%s", a.App, want, v)
			}
		}
	}
	// The figures are a separate process's, as the product's are.
	if !strings.Contains(v, "client: "+probe.ClientWorker) {
		t.Errorf("the comparison does not say where the client ran:\n%s", v)
	}
	if m.cmp.running || strings.Contains(v, "measuring") {
		t.Error("the comparison still says it is measuring")
	}
	// Any other key closes it and acts: s opens the send prompt.
	m = send(t, m, keys("s")...)
	if m.comparing() || m.prompting() != inputSend {
		t.Errorf("s over the comparison: compare %v, input %v", m.comparing(), m.prompting())
	}
}

// compareThroughC presses C, checks the comparison opened and started the
// probes (then calls opened, if given, on the model), runs them to the end
// and gives the model every lab event up to the report.
func compareThroughC(t *testing.T, m Model, events <-chan lab.Event, opened func(Model)) Model {
	t.Helper()
	next, cmd := m.Update(keys("C")[0])
	m = next.(Model)
	if !m.comparing() || cmd == nil {
		t.Fatalf("C did not open the comparison and start the probes")
	}
	if opened != nil {
		opened(m)
	}
	runAll(cmd) // the probes, to the end
	var got []lab.Event
	for e := range events {
		got = append(got, e)
		if _, ok := e.(lab.ReportEvent); ok {
			break
		}
	}
	return send(t, m, eventsMsg(got))
}

// runAll runs a command and, for a batch, every command in it (their
// messages are dropped: the test reads the lab's events instead).
func runAll(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	if batch, ok := cmd().(tea.BatchMsg); ok {
		for _, c := range batch {
			runAll(c)
		}
	}
}

// runningLab is an embedded lab of cfg, up and deployed; the test's end
// tears it down and closes it.
func runningLab(t *testing.T, cfg lab.Config) *lab.Lab {
	t.Helper()
	l, err := lab.New(cfg, local.New)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	ctx := context.Background()
	if err := l.Up(ctx).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Teardown(ctx).Wait(ctx) })
	if err := l.Deploy(ctx).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestComparisonEveryProtocol: the comparison of examples/protocols.yaml —
// the seed's four beside sse, h2, h2c, grpc, grpcs and a compressing ws
// app — draws every app's figures from the report side by side, gRPC's chat
// stream as a row under its app, the ws app's compression, and (captured)
// its compressed and inflated bytes per message.
func TestComparisonEveryProtocol(t *testing.T) {
	lf, err := lab.LoadLabFile("../examples/protocols.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := lf.Config
	cfg.StateDir, cfg.Apps, cfg.Probe.Count = t.TempDir(), lab.OnFreePorts(cfg.Apps), 20
	cfg.Capture.Mode = "off"
	if os.Geteuid() == 0 {
		cfg.Capture.Mode = "on"
	}
	l := runningLab(t, cfg)
	ctx := context.Background()
	if cfg.Capture.Mode == "on" {
		if err := l.StartCapture(ctx).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	events, stop := l.Subscribe()
	defer stop()
	m := New(l, events, Options{Name: "protocols", Provider: "local", StateDir: t.TempDir(), Apps: l.Config().Apps, Now: time.Now})
	m = send(t, m, tea.WindowSizeMsg{Width: 200, Height: 120}, eventsMsg{lab.StateEvent{From: lab.Deploying, To: lab.Running}})
	m = compareThroughC(t, m, events, nil)
	rep := l.Report()
	v := m.text()
	for _, a := range rep.Rows() {
		if !a.OK {
			t.Fatalf("%s failed: %s", a.App, a.Error)
		}
		for _, want := range []string{a.App, fmt.Sprintf("%7.3f │ %7.3f", a.RTTP50Ms, a.RTTP99Ms), fmt.Sprintf("%8.0f", a.MsgsPerS)} {
			if !strings.Contains(v, want) {
				t.Errorf("%s: the comparison lacks %q:\n%s", a.App, want, v)
			}
		}
		for _, vr := range a.Variants {
			if !strings.Contains(v, fmt.Sprintf("└ %s", vr.Name)) || !strings.Contains(v, fmt.Sprintf("%7.3f │ %7.3f", vr.RTTP50Ms, vr.RTTP99Ms)) {
				t.Errorf("%s: the comparison lacks its %s row:\n%s", a.App, vr.Name, v)
			}
		}
	}
	if len(rep.Apps["grpc"].Variants) != 1 || !strings.Contains(v, "ws-deflate (ws+deflate)") {
		t.Errorf("grpc's variants %+v; the compressing app named with its compression?\n%s", rep.Apps["grpc"].Variants, v)
	}
	if cfg.Capture.Mode == "on" && !strings.Contains(v, "deflate: ") {
		t.Errorf("captured, yet the comparison does not show compressed vs inflated bytes:\n%s", v)
	}
}
