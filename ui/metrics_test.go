package ui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/protocol"
)

// liveLine is the apps pane's live line of app, or "".
func liveLine(v, app string) string {
	for _, line := range strings.Split(v, "\n") {
		// Inside the pane's box: "│ws    3 req · …│" (not the app's row, nor its packet list).
		for _, cell := range strings.Split(line, "│") {
			if f := strings.Fields(cell); len(f) > 1 && f[0] == app && !strings.Contains(cell, "in-proc") && !strings.Contains(cell, "pkts") {
				return strings.TrimSpace(cell)
			}
		}
	}
	return ""
}

// TestAppsPaneLiveNumbers runs a real embedded lab and drives the explorer
// as the program would: the apps running start a scrape (a Cmd, through
// the lab), and the apps pane shows each app's numbers from its /metrics —
// a send over ws moves its messages; a TLS front says it has none.
func TestAppsPaneLiveNumbers(t *testing.T) {
	apps := lab.OnFreePorts([]lab.App{{Name: "api", Protocol: protocol.HTTP}, {Name: "chat", Protocol: protocol.WS},
		{Name: "edge", Kind: protocol.KindTLSFront, Protocol: protocol.WSS, Upstream: []string{"chat"}}})
	l := runningLab(t, lab.Config{StateDir: t.TempDir(), Apps: apps, Capture: lab.CaptureConfig{Mode: "off"}})
	m := New(l, make(chan lab.Event), Options{Name: "protolab", Provider: "local", StateDir: t.TempDir(), Apps: l.Config().Apps, Now: time.Now})
	ev := eventsMsg{lab.StateEvent{From: lab.Deploying, To: lab.Running}}
	for _, a := range l.Snapshot().Apps {
		ev = append(ev, lab.AppEvent{App: a})
	}
	m = send(t, m, tea.WindowSizeMsg{Width: 200, Height: 40}, ev)
	if !m.scraping {
		t.Fatal("the lab running did not start a scrape")
	}
	if strings.Contains(m.text(), "live (") {
		t.Error("live numbers shown before any scrape")
	}
	scrape := func() metricsMsg {
		t.Helper()
		msg := scrapeMetrics(m.lab, m.opt.Apps)().(metricsMsg)
		m = send(t, m, msg)
		if m.scraping {
			t.Error("the scrape's answer left the model scraping")
		}
		return msg
	}
	first := scrape()
	for _, name := range []string{"api", "chat"} {
		if err := first[name].err; err != nil {
			t.Fatalf("scrape of %s: %v", name, err)
		}
	}
	v := m.text()
	c := first["chat"].m
	if got, want := liveLine(v, "chat"), fmt.Sprintf("chat %.0f req · 0 open · %.0f in %.0f out", c.Requests, c.MessagesIn, c.MessagesOut); !strings.HasPrefix(got, want) {
		t.Errorf("chat's live line %q, want it to start %q:\n%s", got, want, v)
	}
	if got, want := liveLine(v, "api"), fmt.Sprintf("api  %.0f req", first["api"].m.Requests); got != want {
		t.Errorf("api's live line %q, want %q", got, want)
	}
	if got := liveLine(v, "edge"); got != "edge no /metrics (tls-front)" {
		t.Errorf("edge's live line %q", got)
	}

	ctx := context.Background()
	if err := l.Send(ctx, "chat", "one").Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Send(ctx, "chat", "two").Wait(ctx); err != nil {
		t.Fatal(err)
	}
	next := scrape()["chat"].m
	if next.MessagesIn != c.MessagesIn+2 || next.MessagesOut != c.MessagesOut+2 {
		t.Fatalf("two sends moved chat's messages %+v → %+v", c, next)
	}
	if got, want := liveLine(m.text(), "chat"), fmt.Sprintf("%.0f in %.0f out", next.MessagesIn, next.MessagesOut); !strings.Contains(got, want) {
		t.Errorf("after two sends chat's line %q lacks %q", got, want)
	}

	// A scrape that fails shows quietly: the last numbers, marked stale,
	// and no error box.
	m = send(t, m, metricsMsg{"chat": {err: errors.New("connection refused")}})
	if got := liveLine(m.text(), "chat"); !strings.HasSuffix(got, "(stale)") || !strings.Contains(got, fmt.Sprintf("%.0f in", next.MessagesIn)) {
		t.Errorf("a failed scrape: chat's line %q, want the last numbers marked stale", got)
	}
	if m.errText() != "" {
		t.Errorf("a failed scrape opened an error box: %q", m.errText())
	}
	// The tick asks for no second scrape while one is in flight.
	m.scraping = true
	if _, cmd := m.Update(metricsTick(time.Now())); cmd == nil {
		t.Error("the tick did not schedule the next")
	} else if batch, ok := cmd().(tea.BatchMsg); ok && len(batch) > 1 {
		t.Errorf("a tick during a scrape started another (%d commands)", len(batch))
	}
	// A lab that is no longer running shows no numbers.
	m = send(t, m, eventsMsg{lab.StateEvent{From: lab.Running, To: lab.TearingDown}})
	if strings.Contains(m.text(), "live (") {
		t.Errorf("live numbers of a lab tearing down:\n%s", m.text())
	}
}

// TestAppsPaneLiveGolden draws the live numbers of a round of scrapes.
func TestAppsPaneLiveGolden(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 140, Height: 30}, upEvents(), metricsMsg{
		"http":  {m: lab.AppMetrics{App: "http", Requests: 12}},
		"https": {err: errors.New("connection refused")},
		"ws":    {m: lab.AppMetrics{App: "ws", Requests: 3, WSOpen: 1, MessagesIn: 5, MessagesOut: 7, ClosesSent: 1}},
		"wss":   {m: lab.AppMetrics{App: "wss", Requests: 14200, MessagesIn: 2.5e6, MessagesOut: 2.5e6, ClosesSent: 40, ClosesReceived: 40}},
	})
	golden(t, "apps-live", m.text())
}
