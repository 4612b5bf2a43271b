package ui

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/providers/local"
	"github.com/protolab/protolab-tui/lab/wire"
)

// TestLegsOfAMessage runs the production path (wss → tls-front → balancer
// → 2 hubs) in-process with capture on, sends one message through the
// front, and follows it as a person would: l on the client's frame at the
// front lists the frame on each hop — the front's to the balancer, the
// balancer's to the replica that served it — in time order, and enter on
// a leg shows it selected in its app's list.
func TestLegsOfAMessage(t *testing.T) {
	lf, err := lab.LoadLabFile("../examples/production.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := lf.Config
	cfg.StateDir, cfg.Apps, cfg.Capture.Mode = t.TempDir(), lab.OnFreePorts(cfg.Apps), "on"
	l, err := lab.New(cfg, local.New)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Cleanup(func() { _ = l.Teardown(context.Background()).Wait(context.Background()) })
	for _, step := range []func(context.Context) *lab.Job{l.Up, l.Deploy, l.StartCapture} {
		if err := step(ctx).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	const text = "one message, three hops"
	if err := l.Send(ctx, "edge", text).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	// The client's frame at the front: decrypted, client to server.
	var out wire.Record
	deadline := time.Now().Add(10 * time.Second)
	for out.App == "" && time.Now().Before(deadline) {
		for _, r := range l.Wire().All("edge") {
			if r.Kind == wire.KindMessage && r.Layer == "ws" && r.Dir == wire.ClientToServer && strings.Contains(string(r.Data), text) {
				out = r
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out.App == "" {
		t.Fatalf("the front's list has no frame carrying %q:\n%s", text, l.Wire())
	}

	m := New(l, make(chan lab.Event), Options{Name: cfg.Name, Provider: "local", StateDir: cfg.StateDir, Apps: cfg.Apps, Now: time.Now})
	m = send(t, m, tea.WindowSizeMsg{Width: 160, Height: 45})
	next, cmd := m.legs(out)
	if cmd == nil {
		t.Fatalf("l on the front's frame did nothing: %s", next.(Model).logLine)
	}
	msg := cmd().(legsMsg)
	var apps []string
	for _, r := range msg.legs {
		apps = append(apps, r.App)
	}
	if len(msg.legs) != 3 || apps[0] != "edge" || apps[1] != "lb" || !strings.HasPrefix(apps[2], "hub-") {
		t.Fatalf("legs %v, want edge, lb, then a hub", apps)
	}
	for i, r := range msg.legs {
		if !wire.SameMessage(&out, &r) || (i > 0 && r.Time.Before(msg.legs[i-1].Time)) || r.Decrypted != (i == 0) {
			t.Errorf("leg %d (%s): %s at %s, decrypted %v", i, r.App, r.Text(), r.Time, r.Decrypted)
		}
	}
	m = send(t, next.(Model), msg)
	view := m.text()
	for _, want := range []string{"Legs of edge record", "the same message on 3 of the 4 hops", "edge [dec]", "lb", apps[2]} {
		if !strings.Contains(view, want) {
			t.Errorf("the hop view lacks %q:\n%s", want, view)
		}
	}
	for _, size := range []tea.WindowSizeMsg{{Width: 80, Height: 24}, {Width: 200, Height: 50}} {
		small := send(t, m, size)
		if os.Getenv("SHOW") != "" {
			t.Logf("%dx%d:\n%s", size.Width, size.Height, small.text())
		}
		for i, line := range strings.Split(small.text(), "\n") {
			if w := lipgloss.Width(line); w > size.Width {
				t.Errorf("%dx%d: line %d is %d wide: %q", size.Width, size.Height, i, w, line)
			}
		}
	}
	// Down twice, enter: the replica's frame, selected in its list.
	m = send(t, m, keys("jj")...)
	next, cmd = m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	if cmd == nil {
		t.Fatal("enter on a leg did nothing")
	}
	m = send(t, next.(Model), cmd())
	if l := m.packets.focused(); l == nil || l.app.Name != apps[2] || l.land != msg.legs[2].Seq+1 || len(m.stack) != 0 {
		t.Errorf("after enter: focused %v, landing on %d, %d overlays open; want %s record %d", l.app.Name, l.land, len(m.stack), apps[2], msg.legs[2].Seq+1)
	}
	// The comparison, as C shows it after the probes: a hop-by-hop section
	// for the app reached through the front, scrolled to.
	l.Probe(ctx).Wait(ctx)
	rep := l.Report()
	// edge → lb → the one hub its affinity cookie kept it on.
	if len(rep.Apps["edge"].Hops) != 3 {
		t.Fatalf("edge's hops after the probes: %+v", rep.Apps["edge"])
	}
	m.cmp.apply(lab.ReportEvent{Report: rep})
	m = send(t, m, tea.WindowSizeMsg{Width: 80, Height: 24}, keys("C")[0])
	top := m.text()
	if !strings.Contains(top, "more lines (j, pgdn)") {
		t.Errorf("the comparison does not fit 80×24 yet says nothing of what is below:\n%s", top)
	}
	seen := top
	for i := 0; i < 40; i++ {
		m = send(t, m, tea.KeyMsg{Type: tea.KeyDown})
		seen += m.text()
	}
	bottom := seen
	for _, want := range []string{"Through edge, hop by hop", "tls-front", "→ lb", "balancer", "→ hub-1, hub-2", "served by hub-"} {
		if !strings.Contains(bottom, want) {
			t.Errorf("scrolling the comparison never shows %q:\n%s", want, bottom)
		}
	}
	if !m.comparing() {
		t.Error("scrolling closed the comparison")
	}
	// An app with nothing before or after it has one leg: said, not shown.
	plain := wire.Record{App: "nowhere", Kind: wire.KindMessage}
	if _, cmd := m.legs(plain); cmd != nil {
		t.Error("legs of an app outside any chain started a search")
	}
}
