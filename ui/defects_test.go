package ui

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/gopacket/gopacket/layers"
	"github.com/muesli/termenv"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
)

// numbered decodes n WebSocket text frames "frame-000001"… on the ws app.
func numbered(t testing.TB, n int) *wire.Store { return numberedRing(t, n, 10*n) }

// numberedRing is numbered with a ring of the given size (the oldest go).
func numberedRing(t testing.TB, n, ring int) *wire.Store {
	s, more := numberedFeed(t, ring)
	more(n)
	return s
}

// numberedFeed is an empty numbered store and what adds the next n frames
// to it.
func numberedFeed(t testing.TB, ring int) (*wire.Store, func(n int)) {
	s := wire.NewStore(ring)
	return s, numberedInto(t, s)
}

// numberedInto is what adds the next n numbered frames to s.
func numberedInto(t testing.TB, s *wire.Store) func(n int) {
	d, err := wire.NewDecoder(layers.LinkTypeEthernet, wire.SeedPorts(map[uint16]protocol.Protocol{3002: protocol.WS}), nil, s)
	if err != nil {
		t.Fatal(err)
	}
	ws := wire.AppRef{Name: "ws", Protocol: protocol.WS}
	flow := wire.Flow{Client: netip.MustParseAddrPort("127.0.0.1:51000"), Server: netip.MustParseAddrPort("127.0.0.1:3002")}
	d.Stream(flow, ws, wire.ClientToServer, []byte("GET /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: a2V5\r\n\r\n"), t0)
	d.Stream(flow, ws, wire.ServerToClient, []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"), t0)
	sent := 0
	return func(n int) {
		for range n {
			sent++
			text := fmt.Sprintf("frame-%06d", sent)
			d.Stream(flow, ws, wire.ServerToClient, append([]byte{0x81, byte(len(text))}, text...), t0.Add(time.Duration(sent)*time.Millisecond))
		}
	}
}

// onWS is a running explorer of the given size showing the ws list, with
// the store's rows fetched.
func onWS(t *testing.T, w, h int, store *wire.Store) Model {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: w, Height: h}, upEvents(), keys("3")[0])
	return send(t, m, m.packets.fetch(store, nil)())
}

// TestFollowShowsTheNewestRow: in follow mode the newest record's row and
// the cursor are on screen, at every size.
func TestFollowShowsTheNewestRow(t *testing.T) {
	store := numbered(t, 500)
	for _, size := range [][2]int{{80, 24}, {120, 40}, {200, 50}} {
		m := onWS(t, size[0], size[1], store)
		v := m.text()
		if !strings.Contains(v, "frame-000500") {
			t.Errorf("%dx%d: the newest row is not on screen:\n%s", size[0], size[1], v)
		}
		if got := strings.Count(v, "\n") + 1; got != size[1] {
			t.Errorf("%dx%d: the view is %d lines", size[0], size[1], got)
		}
		if r, ok := m.packets.selected(); !ok || !strings.Contains(r.Text(), "frame-000500") {
			t.Errorf("%dx%d: the cursor is on %q, not the newest row", size[0], size[1], r.Text())
		}
		if rows := len(regexp.MustCompile(`(?m)[┃│](\d+ +12:00:\d\d\.\d{3}|\d+ )`).FindAllString(v, -1)); rows < 5 {
			t.Errorf("%dx%d: %d packet rows on screen", size[0], size[1], rows)
		}
	}
}

// TestKeyBursts: keys that arrive together in one message all count.
func TestKeyBursts(t *testing.T) {
	store := numbered(t, 500)
	m := onWS(t, 80, 24, store)
	m.packets.filter = "message" // one row per frame
	m = send(t, m, m.packets.fetch(store, nil)())
	if m.focus != panePackets { // 3 showed the ws list and focused it
		t.Fatalf("focus %d", m.focus)
	}
	at := func() string { r, _ := m.packets.selected(); return r.Text() }
	burst := func(s string) {
		next, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)})
		m = next.(Model)
		if cmd != nil {
			m = send(t, m, m.packets.fetch(store, nil)())
		}
	}
	burst("kkkkk")
	if !strings.Contains(at(), "frame-000495") {
		t.Errorf("after kkkkk the cursor is on %q, want frame-000495", at())
	}
	burst("4j")
	if !strings.Contains(at(), "frame-000499") {
		t.Errorf("after 4j the cursor is on %q, want frame-000499", at())
	}
	burst("20k")
	if !strings.Contains(at(), "frame-000479") || m.packets.focused().follow {
		t.Errorf("after 20k the cursor is on %q (follow %v), want frame-000479", at(), m.packets.focused().follow)
	}
	if v := m.text(); !strings.Contains(v, "paused 482/503") {
		t.Errorf("the position with a filter is wrong:\n%s", v)
	}
	// A burst that opens a prompt: the rest is its text.
	burst("shello")
	if m.prompting() != inputSend || m.promptValue() != "hello" {
		t.Errorf("burst shello: input %v %q", m.prompting(), m.promptValue())
	}
}

// TestSmallestTerminal: at 80×24 every app row, packet rows, the whole
// footer and every key in the help are on screen.
func TestSmallestTerminal(t *testing.T) {
	m := onWS(t, 80, 24, numbered(t, 50))
	v := m.text()
	for _, want := range []string{"http  in-proc", "https in-proc", "ws    in-proc", "wss   in-proc", "? help", "q/ctrl+c quit"} {
		if !strings.Contains(v, want) {
			t.Errorf("80x24 lacks %q:\n%s", want, v)
		}
	}
	m = send(t, m, keys("?")...)
	v = m.text()
	for _, group := range m.keys.FullHelp() {
		for _, k := range group {
			if !strings.Contains(v, k.Help().Key+" "+k.Help().Desc) && !strings.Contains(v, k.Help().Desc) {
				t.Errorf("the help at 80x24 does not list %q (%s)", k.Help().Key, k.Help().Desc)
			}
		}
	}
	for _, line := range strings.Split(v, "\n") {
		if w := len([]rune(line)); w > 80 {
			t.Errorf("a help line is %d wide: %q", w, line)
		}
	}
	golden(t, "help-80x24", v)
}

// TestFooterFollowsTheState: p is offered while the lab is down, not once
// it is up.
func TestFooterFollowsTheState(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 120, Height: 30})
	if f := ansi.Strip(m.footer()); !strings.Contains(f, "p bring the lab up") {
		t.Errorf("down: footer %q", f)
	}
	m = send(t, m, upEvents())
	if f := ansi.Strip(m.footer()); strings.Contains(f, "p bring") || !strings.Contains(f, "s send ws") {
		t.Errorf("up: footer %q", f)
	}
}

// TestCtrlCAsks: ctrl+c quits at once only while the lab is down; once it
// is up it asks, as q does.
func TestCtrlCAsks(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 120, Height: 30})
	down, cmd := m.Update(tea.KeyMsg{Type: tea.KeyCtrlC})
	if cmd == nil || cmd() != tea.Quit() {
		t.Error("ctrl+c with the lab down does not quit")
	}
	if !down.(Model).Interrupted() {
		t.Error("a quit on ctrl+c is not reported as interrupted")
	}
	if q, _ := m.Update(keys("q")[0]); q.(Model).Interrupted() {
		t.Error("a quit on q is reported as interrupted")
	}
	m = send(t, m, upEvents())
	next, cmd := m.Update(tea.KeyMsg{Type: tea.KeyCtrlC})
	m = next.(Model)
	if cmd != nil || m.confirming() != confirmQuit || !strings.Contains(m.text(), "The lab is up") {
		t.Fatalf("ctrl+c with the lab up: confirm %v, cmd %v", m.confirming(), cmd)
	}
	if yes, _ := m.Update(keys("y")[0]); !yes.(Model).Interrupted() {
		t.Error("ctrl+c confirmed with y is not reported as interrupted")
	}
	no, cmd := m.Update(keys("n")[0])
	if cmd != nil {
		t.Error("any other key should cancel, not quit")
	}
	if no.(Model).Interrupted() {
		t.Error("a quit called off still counts as interrupted")
	}
}

// TestRendererPerModel: each explorer draws with its own renderer, so two
// sessions (an explorer served over SSH) keep their own colour profiles.
func TestRendererPerModel(t *testing.T) {
	view := func(p termenv.Profile) string {
		r := lipgloss.NewRenderer(io.Discard)
		r.SetColorProfile(p)
		m, _ := newModel(t)
		m = New(m.lab, make(chan lab.Event), Options{Name: "protolab", Provider: "local", Apps: m.opt.Apps, Renderer: r})
		return send(t, m, tea.WindowSizeMsg{Width: 120, Height: 30}, upEvents()).View()
	}
	colour, plain := view(termenv.TrueColor), view(termenv.Ascii)
	if !strings.Contains(colour, "\x1b[") {
		t.Error("the true-colour session's view has no colour")
	}
	if colour := regexp.MustCompile(`\x1b\[[0-9;]*(3[0-9]|4[0-9]|9[0-7]|10[0-7])(;[0-9;]*)?m`); colour.MatchString(plain) {
		t.Errorf("the ascii session's view has colours: %q", colour.FindString(plain))
	}
	if lipgloss.ColorProfile() != termenv.Ascii {
		t.Error("a session's renderer changed the default renderer's profile")
	}
}

// TestAppDeathIsLoud: an app that dies under a running lab turns the
// header to DEGRADED and puts an alert line up, with its exit code, until
// it runs again.
func TestAppDeathIsLoud(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 120, Height: 30}, upEvents())
	died := lab.AppStatus{Name: "ws", Protocol: protocol.WS, Image: "protolab-app", State: lab.AppExited, Detail: "exit code 137", Restarts: 1}
	m = send(t, m, eventsMsg{lab.AppEvent{At: lab.At{Time: t0}, App: died}})
	v := m.text()
	for _, want := range []string{"DEGRADED: ws down", "[!] app ws exited (exit code 137), 1 restart: r redeploys"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	back := died
	back.State, back.Detail = lab.AppRunning, ""
	m = send(t, m, eventsMsg{lab.AppEvent{At: lab.At{Time: t0}, App: back}})
	if v := m.text(); strings.Contains(v, "DEGRADED") || strings.Contains(v, "[!] app ws") {
		t.Errorf("the alert stays after the app is back:\n%s", v)
	}
	// Teardown stops the apps: no alert for that.
	m = send(t, m, eventsMsg{lab.StateEvent{At: lab.At{Time: t0}, From: lab.Running, To: lab.TearingDown},
		lab.AppEvent{At: lab.At{Time: t0}, App: lab.AppStatus{Name: "ws", State: lab.AppStopped}}})
	if v := m.text(); strings.Contains(v, "[!] app") {
		t.Errorf("a teardown raised an alert:\n%s", v)
	}
}

// TestShellActionsComeFromTheProvider: the embedded lab has no containers,
// so the debugging shell's keys offer its process and connections, never a
// docker command.
func TestShellActionsComeFromTheProvider(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 120, Height: 30})
	next, cmd := m.Update(keys("x")[0])
	m = next.(Model)
	next, _ = m.Update(cmd())
	m = next.(Model)
	if m.shellOpen() == nil || m.shellOpen().sh == nil {
		t.Fatalf("no shell: %s", m.errText())
	}
	defer m.shellOpen().sh.Close()
	if got := m.quickAction("f2"); !strings.HasPrefix(got, "ps -o ") {
		t.Errorf("f2 types %q in the embedded lab", got)
	}
	if got := m.quickAction("f4"); !strings.HasPrefix(got, "ss -tnp") {
		t.Errorf("f4 types %q", got)
	}
	v := m.text()
	if strings.Contains(v, "docker") || !strings.Contains(v, "F2 this process") {
		t.Errorf("the shell's title:\n%s", v)
	}
}

// TestMouseClick: a click focuses the pane under it and selects the row.
func TestMouseClick(t *testing.T) {
	store := numbered(t, 100)
	m := onWS(t, 200, 50, store)
	m = send(t, m, tea.MouseMsg{X: 60, Y: 6, Action: tea.MouseActionPress, Button: tea.MouseButtonLeft})
	if m.focus != paneApps {
		t.Fatalf("a click on the apps pane focused %d", m.focus)
	}
	if got := m.appsP.selected(); got != "https" {
		t.Errorf("the click selected app %q, want https (the second row)", got)
	}
	// The packets (tabs at this width: the ws list is shown): its fifth row,
	// under the header, the border, the tabs, the list's two lines and the
	// table's two.
	hostW, appsW, _, _ := m.paneWidths()
	m = send(t, m, tea.MouseMsg{X: hostW + appsW + 5, Y: 1 + 1 + 5 + 4, Action: tea.MouseActionPress, Button: tea.MouseButtonLeft})
	l := m.packets.focused()
	if m.focus != panePackets || l.app.Name != "ws" || l.cursor != 4 || l.follow {
		t.Errorf("the click: focus %d, app %s, cursor %d, follow %v", m.focus, l.app.Name, l.cursor, l.follow)
	}
}

// TestPausedViewHoldsStill: a paused list keeps its rows when the ring
// evicts them under load, and g stays on the rows it showed.
func TestPausedViewHoldsStill(t *testing.T) {
	store := numbered(t, 100)
	m := onWS(t, 120, 40, store)
	m = send(t, m, keys("g")...) // oldest, paused
	m = send(t, m, m.packets.fetch(store, nil)())
	l := m.packets.focused()
	first := l.rows[0].Seq
	if l.follow || first != 0 || !strings.Contains(m.text(), "frame-000001") {
		t.Fatalf("g: follow %v, first row %d:\n%s", l.follow, first, m.text())
	}
	// A flood evicts everything the view shows (the ring keeps 1000).
	flood := numberedRing(t, 5000, 1000)
	m = send(t, m, m.packets.fetch(flood, nil)())
	l = m.packets.focused()
	if l.rows[0].Seq != first || !l.held || !strings.Contains(m.text(), "held") || !strings.Contains(m.text(), "frame-000001") {
		t.Errorf("the paused rows were replaced: first %d (was %d), held %v", l.rows[0].Seq, first, l.held)
	}
	m = send(t, m, keys("G")...)
	m = send(t, m, m.packets.fetch(flood, nil)())
	if v := m.text(); !strings.Contains(v, "frame-005000") {
		t.Errorf("G does not follow the newest again:\n%s", v)
	}
	// The mode line says how much the ring holds, over how long, and how
	// many went: each frame is a (socket-level) packet record and a message
	// record, so the ring holds the newest 500 frames, 1 ms apart, of the
	// 10005 records.
	if v := m.text(); !strings.Contains(v, "ring 1000 rows, 499.000ms (9005 older gone)") {
		t.Errorf("the ring's span is not shown:\n%s", v)
	}
}

// TestDetailNextPrevious: n and p walk the list's records inside the
// detail view; y copies (an OSC 52 command).
func TestDetailNextPrevious(t *testing.T) {
	store := numbered(t, 50)
	m := onWS(t, 120, 40, store)
	m.packets.filter = "message"
	m = send(t, m, m.packets.fetch(store, nil)())
	m = send(t, m, tea.KeyMsg{Type: tea.KeyEnter})
	if m.topDetail() == nil || !strings.Contains(m.text(), "frame-000050") {
		t.Fatalf("enter: no detail of the newest frame:\n%s", m.text())
	}
	next, cmd := m.Update(keys("p")[0])
	m = send(t, next.(Model), cmd()) // the step, asked of the list
	m = send(t, m, m.packets.fetch(store, nil)())
	if v := m.text(); m.topDetail() == nil || !strings.Contains(v, "frame-000049") {
		t.Errorf("p: the detail does not show the previous frame:\n%s", v)
	}
	next, cmd = m.Update(keys("n")[0])
	m = send(t, next.(Model), cmd())
	if v := m.text(); !strings.Contains(v, "frame-000050") {
		t.Errorf("n: the detail does not show the next frame:\n%s", v)
	}
	var term bytes.Buffer
	m.topDetail().out = &term
	next, cmd = m.Update(keys("y")[0])
	m = next.(Model)
	if cmd == nil {
		t.Fatal("y gave no copy command")
	}
	for _, c := range cmd().(tea.BatchMsg) {
		m = send(t, m, c())
	}
	if want := "]52;c;" + base64.StdEncoding.EncodeToString([]byte(detailText(m.topDetail().rec))); !strings.Contains(term.String(), want) {
		t.Errorf("y wrote %q to the terminal, want OSC 52 with the detail's text", term.String())
	}
	if !strings.Contains(m.text(), "copied the text") {
		t.Error("y does not say what it copied")
	}
}

// TestFollowAConnection: f on a row shows that connection's records alone,
// timed from its first record and from the row before.
func TestFollowAConnection(t *testing.T) {
	s := wire.NewStore(1000)
	d, err := wire.NewDecoder(layers.LinkTypeEthernet, wire.SeedPorts(map[uint16]protocol.Protocol{3002: protocol.WS}), nil, s)
	if err != nil {
		t.Fatal(err)
	}
	ws := wire.AppRef{Name: "ws", Protocol: protocol.WS}
	conn := func(client string, at time.Time, text string) {
		flow := wire.Flow{Client: netip.MustParseAddrPort(client), Server: netip.MustParseAddrPort("127.0.0.1:3002")}
		d.Stream(flow, ws, wire.ClientToServer, []byte("GET /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: a2V5\r\n\r\n"), at)
		d.Stream(flow, ws, wire.ServerToClient, []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"), at.Add(2*time.Millisecond))
		d.Stream(flow, ws, wire.ServerToClient, append([]byte{0x81, byte(len(text))}, text...), at.Add(5*time.Millisecond))
	}
	conn("127.0.0.1:51000", t0, "first-conn")
	conn("127.0.0.1:52000", t0.Add(time.Second), "second-conn")
	m := onWS(t, 120, 40, s)
	m = send(t, m, keys("g")...) // the oldest row: the first connection's
	m = send(t, m, m.packets.fetch(s, nil)())
	m = send(t, m, keys("f")...)
	m = send(t, m, m.packets.fetch(s, nil)())
	v := m.text()
	if !strings.Contains(v, "first-conn") || strings.Contains(v, "second-conn") {
		t.Errorf("f does not show the first connection alone:\n%s", v)
	}
	// Its setup (the upgrade and its segments) is one row, timed; the
	// frame's segment and the frame follow it.
	// (the request, the 101, the decoder's check of its accept, and the
	// segments of the first two).
	first := m.packets.focused().rows[0]
	if first.Text() != "setup: upgrade 2.000ms (5 records folded; z unfolds)" || !strings.Contains(v, "setup: upgrade 2.000ms") || strings.Contains(v, "101 Switching") {
		t.Errorf("the followed connection's setup is not folded:\n%s", v)
	}
	m = send(t, m, keys("z")...) // unfolded
	m = send(t, m, m.packets.fetch(s, nil)())
	v = m.text()
	for _, want := range []string{"+0µs", "+2.00ms", "+5.00ms", "101 Switching"} {
		if !strings.Contains(v, want) {
			t.Errorf("the followed connection lacks %q:\n%s", want, v)
		}
	}
	m = send(t, m, keys("f")...) // back to everything
	m = send(t, m, m.packets.fetch(s, nil)())
	if v := m.text(); !strings.Contains(v, "second-conn") || m.packets.conv {
		t.Errorf("f again does not leave the connection:\n%s", v)
	}
}

// TestColours: rows are tinted by direction (the client's in one colour,
// the server's in another), the apps by state (an exited one red), the
// cursor's row keeps the selection; NO_COLOR (an Ascii profile) draws no
// colour at all.
func TestColours(t *testing.T) {
	const (
		toServer = "38;2;95;215;255" // #5FD7FF
		toClient = "38;2;255;215;135"
		red      = "91m"
	)
	view := func(p termenv.Profile) string {
		r := lipgloss.NewRenderer(io.Discard)
		r.SetColorProfile(p)
		r.SetHasDarkBackground(true)
		base, _ := newModel(t)
		m := New(base.lab, make(chan lab.Event), Options{Name: "protolab", Provider: "local", Apps: base.opt.Apps, Renderer: r, Now: base.opt.Now})
		m = send(t, m, tea.WindowSizeMsg{Width: 200, Height: 50}, upEvents(),
			eventsMsg{lab.AppEvent{App: lab.AppStatus{Name: "wss", Protocol: protocol.WSS, State: lab.AppExited, Detail: "exit code 2"}}}, keys("3")[0])
		m = send(t, m, m.packets.fetch(wsConversation(t), nil)())
		return m.View()
	}
	lineWith := func(v, s string) string {
		for _, l := range strings.Split(v, "\n") {
			if strings.Contains(l, s) {
				return l
			}
		}
		t.Fatalf("no line with %q in\n%s", s, v)
		return ""
	}
	v := view(termenv.TrueColor)
	// The request is the client's; the upgrade's answer the server's.
	if l := lineWith(v, "GET /echo"); !strings.Contains(l, toServer) {
		t.Errorf("the client's request is not in the client's colour: %q", l)
	}
	if l := lineWith(v, "101 Switching"); !strings.Contains(l, toClient) {
		t.Errorf("the server's answer is not in the server's colour: %q", l)
	}
	if l := lineWith(v, "exited"); !strings.Contains(l, red) {
		t.Errorf("an exited app is not red: %q", l)
	}
	// NO_COLOR: no colour at all, but the cues colour gave remain as
	// attributes no-color.org allows and marks in the text: the cursor's
	// row reversed, the active tab reversed and in brackets, the focused
	// pane's thick border, an exited app bold.
	plain := view(termenv.Ascii)
	if colour := regexp.MustCompile(`\x1b\[[0-9;]*(3[0-9]|4[0-9]|9[0-7]|10[0-7])(;[0-9;]*)?m`); colour.MatchString(plain) {
		t.Errorf("the NO_COLOR view has colour codes: %q", colour.FindString(plain))
	}
	if l := lineWith(plain, "WS CLOSE"); !strings.Contains(l, "\x1b[7m") { // the newest row: the cursor's
		t.Errorf("the cursor's row has no cue under NO_COLOR: %q", l)
	}
	if l := lineWith(plain, "3 ws"); !strings.Contains(l, "[3 ws]") || !strings.Contains(l, "\x1b[1;7m") {
		t.Errorf("the active tab has no cue under NO_COLOR: %q", l)
	}
	if !strings.Contains(plain, "┏") {
		t.Error("the focused pane has no cue under NO_COLOR (a thick border)")
	}
	if l := lineWith(plain, "exited"); !strings.Contains(l, "\x1b[1m") {
		t.Errorf("an exited app has no cue under NO_COLOR: %q", l)
	}
}

// TestConnectionsList: o lists the focused app's connections (Wireshark's
// Conversations) from the records held, oldest first, with their counts;
// enter follows the one under the cursor, esc closes, and while it is open
// its keys are its own (the footer lists them, j moves its cursor).
func TestConnectionsList(t *testing.T) {
	s := wire.NewStore(100)
	d, err := wire.NewDecoder(layers.LinkTypeEthernet, wire.SeedPorts(map[uint16]protocol.Protocol{3002: protocol.WS}), nil, s)
	if err != nil {
		t.Fatal(err)
	}
	ws := wire.AppRef{Name: "ws", Protocol: protocol.WS}
	server := netip.MustParseAddrPort("127.0.0.1:3002")
	for i, client := range []string{"127.0.0.1:51000", "127.0.0.1:52000"} {
		flow := wire.Flow{Client: netip.MustParseAddrPort(client), Server: server}
		at := t0.Add(time.Duration(i) * time.Second)
		d.Stream(flow, ws, wire.ClientToServer, []byte("GET /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: a2V5\r\n\r\n"), at)
		d.Stream(flow, ws, wire.ServerToClient, []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"), at)
		for j := 0; j <= i; j++ { // the second connection says one thing more
			d.Stream(flow, ws, wire.ServerToClient, append([]byte{0x81, 2}, "hi"...), at.Add(time.Duration(j+1)*time.Millisecond))
		}
	}
	m := onWS(t, 120, 40, s)
	next, cmd := m.Update(keys("o")[0])
	m = next.(Model)
	if cmd == nil {
		t.Fatal("o gathers nothing")
	}
	if c, ok := cmd().(connsMsg); !ok || c.app != "ws" {
		t.Fatalf("o gathers %+v, want the ws app's connections", c)
	}
	msg := fetchConns(s, "ws")() // the lab's store is empty: this test's store instead
	// Each Stream call is one (socket-level) packet: 3 and 4 of them; the
	// second connection decoded one message more.
	if c, ok := msg.(connsMsg); !ok || len(c.conns) != 2 || c.conns[0].packets != 3 || c.conns[1].packets != 4 ||
		c.conns[1].messages != c.conns[0].messages+1 || c.held != 16 {
		t.Fatalf("o gathered %+v, want two connections of 3 and 4 packets, the oldest first", msg)
	}
	m = send(t, m, msg)
	v := m.text()
	for _, want := range []string{"Connections of ws: 2", "127.0.0.1:51000", "127.0.0.1:52000", "enter/f follow the connection", "esc/o close"} {
		if !strings.Contains(v, want) {
			t.Errorf("the connections list lacks %q:\n%s", want, v)
		}
	}
	m = send(t, m, keys("j")[0]) // its own cursor: the second connection
	next, cmd = m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	m = next.(Model)
	if len(m.stack) != 0 || cmd == nil {
		t.Fatalf("enter left the list open (%d) or did nothing", len(m.stack))
	}
	m = send(t, m, cmd())
	if !m.packets.conv || m.packets.filter != "flow == 127.0.0.1:52000" {
		t.Errorf("enter follows %q (conv %v), want the second connection", m.packets.filter, m.packets.conv)
	}
	m = send(t, m, keys("o")[0])
	m = send(t, m, fetchConns(s, "ws")(), tea.KeyMsg{Type: tea.KeyEscape})
	if len(m.stack) != 0 || strings.Contains(m.text(), "Connections of") {
		t.Error("esc does not close the connections list")
	}
}

// TestFind: ctrl+f sets what to find (a bad expression is refused as one
// types); n jumps to the next matching record and selects it, N to the
// previous one, both wrapping around; with a filter, only its records are
// found. The search runs over the lab's own store, as it would live.
func TestFind(t *testing.T) {
	m, l := newModel(t)
	numberedInto(t, l.Wire())(300)
	m = send(t, m, tea.WindowSizeMsg{Width: 120, Height: 40}, upEvents(), keys("3")[0])
	run := func(m Model, msgs ...tea.Msg) Model {
		t.Helper()
		for _, msg := range msgs {
			next, cmd := m.Update(msg)
			m = next.(Model)
			// A find's Cmd gives a foundMsg, whose Update fetches the
			// window (a batch holding a packetsMsg); nothing else is run.
			if k, isKey := msg.(tea.KeyMsg); !isKey || cmd == nil || !slices.Contains([]string{"enter", "n", "N"}, k.String()) {
				continue // (a typed key's Cmd is the cursor's blink: it waits)
			}
			found, ok := cmd().(foundMsg)
			if !ok {
				continue
			}
			next, cmd = m.Update(found)
			m = next.(Model)
			if cmd == nil {
				continue
			}
			if b, ok := cmd().(tea.BatchMsg); ok {
				for _, c := range b {
					if p, ok := c().(packetsMsg); ok {
						m = send(t, m, p)
					}
				}
			}
		}
		return m
	}
	selected := func(m Model) string {
		r, ok := m.packets.selected()
		if !ok {
			return ""
		}
		return r.Text()
	}
	m = run(m, m.packets.fetch(l.Wire(), nil)())
	m = run(m, tea.KeyMsg{Type: tea.KeyCtrlF})
	m = run(m, keys("text ~ (")...)
	if m.promptView().err == "" {
		t.Error("a search that does not parse is not flagged as one types")
	}
	m.promptView().input.SetValue("")
	m = run(m, keys("text ~ \"frame-0000[12]0\"")...) // frames 10 and 20
	m = run(m, tea.KeyMsg{Type: tea.KeyEnter})
	if got := selected(m); !strings.Contains(got, "frame-000010") || m.packets.focused().follow {
		t.Fatalf("enter found %q (follow %v), want frame 10: from the newest row it wraps to the first match", got, m.packets.focused().follow)
	}
	if !strings.Contains(m.logLine, "wrapped") {
		t.Errorf("the log line does not say the search wrapped: %q", m.logLine)
	}
	m = run(m, keys("n")[0])
	if got := selected(m); !strings.Contains(got, "frame-000020") {
		t.Errorf("n found %q, want frame 20", got)
	}
	m = run(m, keys("N")[0])
	if got := selected(m); !strings.Contains(got, "frame-000010") {
		t.Errorf("N found %q, want frame 10", got)
	}
	// With a filter that leaves frame 20 out, n finds only frame 10.
	m.packets.filter = "not frame-000020"
	m = run(m, m.packets.fetch(l.Wire(), nil)(), keys("n")[0])
	if got := selected(m); !strings.Contains(got, "frame-000010") || !strings.Contains(m.logLine, "wrapped") {
		t.Errorf("n with a filter found %q (%s), want frame 10 again", got, m.logLine)
	}
	m.search = "nothing-like-this"
	m = run(m, keys("n")[0])
	if !strings.Contains(m.logLine, "no record") {
		t.Errorf("a search that finds nothing says %q", m.logLine)
	}
}

// TestDetailLayers: the detail shows a record as layers, outermost first;
// tab moves between them, space folds one to its summary line, and the
// fold holds for the next record (n).
func TestDetailLayers(t *testing.T) {
	store := numbered(t, 3)
	m := onWS(t, 120, 40, store)
	m.packets.filter = "message" // the frames, not their segments
	m = send(t, m, m.packets.fetch(store, nil)())
	m = send(t, m, tea.KeyMsg{Type: tea.KeyEnter})
	v := m.text()
	for _, want := range []string{"Record", "IP           127.0.0.1 → 127.0.0.1 (s→c)", "TCP          3002 → 51000", "▾ Bytes", "payload_length"} {
		if !strings.Contains(v, want) {
			t.Errorf("the detail lacks %q:\n%s", want, v)
		}
	}
	m = send(t, m, tea.KeyMsg{Type: tea.KeyTab}) // IP
	m = send(t, m, tea.KeyMsg{Type: tea.KeyTab}) // TCP
	m = send(t, m, tea.KeyMsg{Type: tea.KeyTab}) // the frame's own layer
	if d := m.topDetail(); d == nil || d.layers[d.cursor].title != "WebSocket" {
		t.Fatalf("three tabs do not reach the WebSocket layer")
	}
	m = send(t, m, tea.KeyMsg{Type: tea.KeySpace})
	v = m.text()
	if strings.Contains(v, "payload_length") || !strings.Contains(v, "▸ WebSocket") || !strings.Contains(v, `WS TEXT len=12 "frame-000003"`) {
		t.Errorf("space does not fold the WebSocket layer to its summary:\n%s", v)
	}
	next, cmd := m.Update(keys("p")[0])
	m = send(t, next.(Model), cmd())
	m = send(t, m, m.packets.fetch(store, nil)())
	if v := m.text(); !strings.Contains(v, "frame-000002") || strings.Contains(v, "payload_length") {
		t.Errorf("the fold does not hold for the previous record:\n%s", v)
	}
}

// TestTypedWordsThatNameKeys: text that arrives in one read — fast typing,
// a burst over SSH — is text even when a word of it is a key's name: "x
// left" sends "x left", not "x " with the cursor moved left.
func TestTypedWordsThatNameKeys(t *testing.T) {
	for _, text := range []string{"after alice left", "up and down", "home", "end of the line", "x right"} {
		m, _ := newModel(t)
		m = send(t, m, tea.WindowSizeMsg{Width: 120, Height: 40}, upEvents())
		m = send(t, m, keys("s")...)
		// As bubbletea reads it: words, and spaces between them.
		for i, w := range strings.Split(text, " ") {
			if i > 0 {
				m = send(t, m, tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}})
			}
			m = send(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(w)})
		}
		if got := m.promptValue(); got != text {
			t.Errorf("typed %q, the prompt holds %q", text, got)
		}
	}
}

// TestNoScrapesWithoutRoom: at 80×24 the apps pane has no room for the
// live numbers, so the explorer does not scrape /metrics (each scrape is
// an HTTP exchange in every app's packet list); with room it does.
func TestNoScrapesWithoutRoom(t *testing.T) {
	for _, tc := range []struct {
		w, h   int
		scrape bool
	}{{80, 24, false}, {120, 40, true}, {200, 50, true}} {
		m, _ := newModel(t)
		m = send(t, m, tea.WindowSizeMsg{Width: tc.w, Height: tc.h}, upEvents())
		next, _ := m.Update(metricsTick(time.Now()))
		if got := next.(Model).scraping; got != tc.scrape {
			t.Errorf("%d×%d: scraping %v, want %v", tc.w, tc.h, got, tc.scrape)
		}
	}
}

// outOfProcess is a lab whose apps do not live in this process (a docker
// lab, say): quitting may leave it running.
type outOfProcess struct{ Lab }

func (outOfProcess) InProcess() bool { return false }

// TestQuitLeavingTheLabRunning: q or Ctrl-C, then l, quits leaving the lab
// up, and Run's error says so (ErrLeftRunning, with ErrInterrupted after
// Ctrl-C) so that the program says what is left and how to remove it; t
// tears down, and a failed teardown is reported too.
func TestQuitLeavingTheLabRunning(t *testing.T) {
	base, _ := newModel(t)
	for _, tc := range []struct {
		first       tea.Msg
		left, ctrlC bool
	}{{keys("q")[0], true, false}, {tea.KeyMsg{Type: tea.KeyCtrlC}, true, true}} {
		m := New(outOfProcess{base.lab}, make(chan lab.Event), base.opt)
		m = send(t, m, tea.WindowSizeMsg{Width: 120, Height: 30}, upEvents(), tc.first)
		if !strings.Contains(m.text(), "l: leave it running and quit") {
			t.Fatalf("the quit question does not offer to leave the lab:\n%s", m.text())
		}
		next, cmd := m.Update(keys("l")[0])
		m = next.(Model)
		if cmd == nil || cmd() != tea.Quit() {
			t.Fatal("l does not quit")
		}
		err := m.quitErr()
		if !errors.Is(err, ErrLeftRunning) || errors.Is(err, ErrInterrupted) != tc.ctrlC {
			t.Errorf("after %v then l: %v", tc.first, err)
		}
	}
	m := New(outOfProcess{base.lab}, make(chan lab.Event), base.opt)
	m = send(t, m, tea.WindowSizeMsg{Width: 120, Height: 30}, upEvents(), tea.KeyMsg{Type: tea.KeyCtrlC}, keys("t")[0],
		jobMsg{op: "teardown", quit: true, err: errors.New("engine gone")})
	if err := m.quitErr(); !errors.Is(err, ErrTeardownFailed) || !errors.Is(err, ErrInterrupted) || errors.Is(err, ErrLeftRunning) {
		t.Errorf("ctrl+c, t, failed: %v", err)
	}
}

// TestLogLineLeavesFollow: leaving follow mode (f again) does not leave
// the log line saying "following …".
func TestLogLineLeavesFollow(t *testing.T) {
	s := wsConversation(t)
	m := onWS(t, 120, 40, s)
	m = send(t, m, m.packets.fetch(s, nil)(), keys("f")[0])
	if !strings.Contains(m.logLine, "following") {
		t.Fatalf("f: %q", m.logLine)
	}
	m = send(t, m, keys("f")[0])
	if strings.Contains(m.text(), "following") {
		t.Errorf("after f again the screen still says following: %q", m.logLine)
	}
}

// TestCopyHexSaysBytes: Y says how many payload bytes it copied, not the
// length of their hex.
func TestCopyHexSaysBytes(t *testing.T) {
	store := numbered(t, 3)
	m := onWS(t, 120, 40, store)
	m.packets.filter = "message"
	m = send(t, m, m.packets.fetch(store, nil)(), tea.KeyMsg{Type: tea.KeyEnter})
	m.topDetail().out = io.Discard
	next, cmd := m.Update(keys("Y")[0])
	m = next.(Model)
	for _, c := range cmd().(tea.BatchMsg) {
		m = send(t, m, c())
	}
	if n := len(m.topDetail().rec.Data); !strings.Contains(m.logLine, fmt.Sprintf("(%d bytes, %d hex digits)", n, 2*n)) {
		t.Errorf("Y says %q for %d bytes", m.logLine, n)
	}
}

// TestHelpListsDOnlyWithAWarning: D is in the help only while there is an
// earlier-lab warning to dismiss.
func TestHelpListsDOnlyWithAWarning(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 120, Height: 40}, keys("?")[0])
	if strings.Contains(m.text(), "dismiss the warning") {
		t.Errorf("the help lists D with no warning up:\n%s", m.text())
	}
	m = send(t, m, keys("?")[0], eventsMsg{lab.EarlierLabEvent{Lab: "protolab", Where: "the Docker engine", Containers: 2, Running: 1, Remove: "protolab-tui --teardown"}}, keys("?")[0])
	if !strings.Contains(m.text(), "dismiss the warning") {
		t.Errorf("the help does not list D with a warning up:\n%s", m.text())
	}
}

// TestSendHTTPKeys: h and H open a prompt to the lab's http and https
// apps; enter sends (a job over the lab's Send).
func TestSendHTTPKeys(t *testing.T) {
	for _, tc := range []struct{ key, app string }{{"h", "http"}, {"H", "https"}, {"u", "http"}, {"U", "https"}} {
		m, _ := newModel(t)
		m = send(t, m, tea.WindowSizeMsg{Width: 120, Height: 40}, upEvents(), keys(tc.key)[0])
		if m.prompting() != inputSend && m.prompting() != inputGet || m.sendApp != tc.app || !strings.Contains(m.text(), " over "+tc.app) {
			t.Fatalf("%s: input %v to %q:\n%s", tc.key, m.prompting(), m.sendApp, m.text())
		}
		m = send(t, m, keys("ping")...)
		next, cmd := m.Update(tea.KeyMsg{Type: tea.KeyEnter})
		m = next.(Model)
		if cmd == nil || m.busy != 1 || m.packets.focused().app.Name != tc.app {
			t.Errorf("%s: enter sends nothing (busy %d) or shows %s", tc.key, m.busy, m.packets.focused().app.Name)
		}
	}
}

// TestNarrowFooterAndPrompts: at 80 columns the footer's keys are whole
// (none cut with "…"), the filter and find prompts leave the input most
// of the line (a short label; what to type on the line under it), and
// the debugging shell's title shows every F key.
func TestNarrowFooterAndPrompts(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 80, Height: 24}, upEvents())
	lines := strings.Split(m.text(), "\n")
	if f := lines[len(lines)-1]; strings.Contains(f, "…") || !strings.Contains(f, "? help") {
		t.Errorf("the footer is cut: %q", f)
	}
	for _, k := range []tea.Msg{keys("/")[0], tea.KeyMsg{Type: tea.KeyCtrlF}} {
		p := send(t, m, k)
		if w := lipgloss.Width(p.promptView().input.Prompt); w > 10 || p.promptView().input.Width < 60 {
			t.Errorf("%v: the label takes %d columns, the input %d", k, w, p.promptView().input.Width)
		}
		if !strings.Contains(p.text(), "esc cancels") {
			t.Errorf("%v: no hint under the prompt:\n%s", k, p.text())
		}
	}
	sp := newShellPane(m.st, "engine", 76, 19)
	sp.sh, sp.actions = fakeShell{}, []lab.ShellAction{{Key: "f2", Label: "docker ps (this lab)"}, {Key: "f3", Label: "logs of https"}, {Key: "f4", Label: "ss for the lab's ports"}}
	m.push(sp)
	if v := m.text(); !strings.Contains(v, "F4 ss for the lab's ports") {
		t.Errorf("the shell's title hides F4:\n%s", v)
	}
}

// fakeShell is an open shell that says nothing.
type fakeShell struct{ lab.Shell }

// dockerApps is what a docker lab's apps look like: an image name, an
// unhealthy one, ports the engine picked.
func dockerApps() tea.Msg {
	var ev []lab.Event
	ev = append(ev, lab.HostEvent{Host: lab.HostInfo{Provider: "docker", Name: "engine", Address: "127.0.0.1", OS: "linux/amd64"}})
	for i, p := range protocol.Seed() {
		health := "healthy"
		if p == protocol.WSS {
			health = "unhealthy"
		}
		ev = append(ev, lab.AppEvent{App: lab.AppStatus{Name: string(p), Protocol: p, Image: "protolab-app:dev", State: lab.AppRunning,
			Health: health, Endpoint: fmt.Sprintf("127.0.0.1:%d", 32768+i), Started: t0}})
	}
	return eventsMsg(ev)
}

// TestRealPortsAndNamesWhole: the apps table's columns fit what they hold
// (no "protol…", "unhealt…" where there is room), and the host pane shows
// every app's real port, at 80×24 too.
func TestRealPortsAndNamesWhole(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {120, 40}, {200, 50}} {
		m, _ := newModel(t)
		m = send(t, m, tea.WindowSizeMsg{Width: size[0], Height: size[1]}, upEvents(), dockerApps())
		v := m.text()
		for i, p := range protocol.Seed() {
			if want := fmt.Sprintf("%s :%d", p, 32768+i); !strings.Contains(v, want) {
				t.Errorf("%dx%d: the host pane lacks %q:\n%s", size[0], size[1], want, v)
			}
		}
		if !strings.Contains(v, "unhealthy") || strings.Contains(v, "unhealt…") {
			t.Errorf("%dx%d: the health is cut:\n%s", size[0], size[1], v)
		}
		if size[0] >= 200 && !strings.Contains(v, "protolab-app:dev") || strings.Contains(v, "protol…") {
			t.Errorf("%dx%d: the image is cut:\n%s", size[0], size[1], v)
		}
	}
}

// TestModalsOverTheScreen: the help, an error and a question are drawn
// over the screen; the panes stay in sight around them.
func TestModalsOverTheScreen(t *testing.T) {
	s := wsConversation(t)
	m := onWS(t, 200, 50, s)
	for name, mm := range map[string]Model{
		"help":    send(t, m, keys("?")[0]),
		"confirm": send(t, m, keys("t")[0]),
		"error":   send(t, m, eventsMsg{lab.ErrorEvent{Op: "send", Error: "boom"}}),
	} {
		v := mm.text()
		for _, want := range []string{"Lab host", "Containers", "[3 ws]"} {
			if !strings.Contains(v, want) {
				t.Errorf("%s: the screen around it is gone (no %q):\n%s", name, want, v)
			}
		}
		if lines := strings.Split(v, "\n"); len(lines) != 50 {
			t.Errorf("%s: %d lines", name, len(lines))
		}
	}
}

// echoConn is one ws connection: the upgrade, then n messages the client
// sends, each echoed by the server 300µs later, 10 ms apart.
func echoConn(t *testing.T, n int) *wire.Store {
	t.Helper()
	s := wire.NewStore(10000)
	d, err := wire.NewDecoder(layers.LinkTypeEthernet, wire.SeedPorts(map[uint16]protocol.Protocol{3002: protocol.WS}), nil, s)
	if err != nil {
		t.Fatal(err)
	}
	ws := wire.AppRef{Name: "ws", Protocol: protocol.WS}
	flow := wire.Flow{Client: netip.MustParseAddrPort("127.0.0.1:51000"), Server: netip.MustParseAddrPort("127.0.0.1:3002")}
	d.Stream(flow, ws, wire.ClientToServer, []byte("GET /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: a2V5\r\n\r\n"), t0)
	d.Stream(flow, ws, wire.ServerToClient, []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"), t0.Add(time.Millisecond))
	for i := range n {
		at := t0.Add(time.Duration(10*(i+1)) * time.Millisecond)
		text := []byte(fmt.Sprintf("msg-%03d", i+1))
		masked := []byte{0x81, 0x80 | byte(len(text)), 0, 0, 0, 0}
		d.Stream(flow, ws, wire.ClientToServer, append(masked, text...), at)
		d.Stream(flow, ws, wire.ServerToClient, append([]byte{0x81, byte(len(text))}, text...), at.Add(300*time.Microsecond))
	}
	return s
}

// TestConversationWindow: f on a ws row at 80×24 folds the setup into the
// connection's first row and fills the window with the rows after it; the
// fold stays the first row as the window scrolls away and back; each echo
// shows its latency (↩ since the message it answers), on the top row of
// a scrolled window too; z unfolds where the window is, and the next
// connection followed starts folded again.
func TestConversationWindow(t *testing.T) {
	s := echoConn(t, 20)
	m := onWS(t, 80, 24, s)
	fetch := func() { m = send(t, m, m.packets.fetch(s, nil)()) }
	m = send(t, m, keys("f")...)
	fetch()
	l := m.packets.focused()
	if len(l.rows) != m.packets.rowsShown() || l.rows[0].Layer != "setup" {
		t.Fatalf("f: %d rows (room for %d), the first %q:\n%s", len(l.rows), m.packets.rowsShown(), l.rows[0].Text(), m.text())
	}
	v := m.text()
	if !strings.Contains(v, "↩300µs") {
		t.Errorf("no echo latency:\n%s", v)
	}
	for range 3 { // down, past the window's end and back
		m = send(t, m, keys("j")[0])
		fetch()
	}
	m = send(t, m, keys(strings.Repeat("j", 20))...)
	fetch()
	l = m.packets.focused()
	if l.rows[0].Layer == "setup" || strings.Contains(m.text(), "Switching") {
		t.Fatalf("scrolled down: the setup shows unfolded or the fold is still on top:\n%s", m.text())
	}
	// The top row of the scrolled window: a message whose echo is below,
	// or an echo whose latency counts from the message above the window.
	top := l.rows[0]
	if top.Kind == wire.KindMessage && top.Dir == wire.ServerToClient {
		if first := strings.Split(strings.Split(m.text(), "───")[len(strings.Split(m.text(), "───"))-1], "\n")[1]; !strings.Contains(first, "↩300µs") {
			t.Errorf("the top row's echo has no latency: %q", first)
		}
	}
	m = send(t, m, keys("g")[0])
	fetch()
	if l := m.packets.focused(); l.rows[0].Layer != "setup" || len(l.rows) != m.packets.rowsShown() {
		t.Errorf("back at the top: the fold is gone or the window is short:\n%s", m.text())
	}
	m = send(t, m, keys("z")[0])
	fetch()
	if !strings.Contains(m.text(), "101 Switching") {
		t.Errorf("z does not unfold:\n%s", m.text())
	}
	m = send(t, m, keys("f")[0])
	fetch()
	if r, _ := m.packets.selected(); r.Layer != "setup" && r.Seq != 0 {
		t.Errorf("leaving the connection lands on %d %q, not the row the cursor was on", r.Seq, r.Text())
	}
	m = send(t, m, keys("f")[0]) // follow again: folded again
	fetch()
	if l := m.packets.focused(); l.rows[0].Layer != "setup" {
		t.Errorf("the next follow starts unfolded:\n%s", m.text())
	}
}

// TestListNumbersAndDelta: the main list's rows have their number and the
// Δ from the row before, the top row of a scrolled window too.
func TestListNumbersAndDelta(t *testing.T) {
	store := numbered(t, 200)
	m := onWS(t, 80, 24, store)
	m.packets.filter = "message"
	m = send(t, m, m.packets.fetch(store, nil)())
	m = send(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("20k")})
	m = send(t, m, m.packets.fetch(store, nil)())
	v := m.text()
	head := strings.Split(v, "───")
	rows := strings.Split(head[len(head)-1], "\n")[1:]
	if !strings.Contains(v, "no.") || !strings.Contains(v, "Δ") {
		t.Fatalf("no number or Δ column:\n%s", v)
	}
	// Frames are 1 ms apart: every row's Δ, the top one's too.
	for _, r := range rows[:m.packets.rowsShown()] {
		if !strings.Contains(r, "1.00ms") {
			t.Errorf("a row without its Δ: %q\n%s", r, v)
		}
	}
}

// TestKeysFasterThanFetches: j pressed again before the window of the
// last one came back still counts (each is a row).
func TestKeysFasterThanFetches(t *testing.T) {
	store := numbered(t, 200)
	m := onWS(t, 80, 24, store)
	m.packets.filter = "message"
	m = send(t, m, m.packets.fetch(store, nil)(), keys("g")[0])
	m = send(t, m, m.packets.fetch(store, nil)())
	m = send(t, m, keys(strings.Repeat("j", 12))...) // no fetch between them
	m = send(t, m, m.packets.fetch(store, nil)())
	// (the filter keeps the upgrade's three messages before the frames)
	if r, _ := m.packets.selected(); !strings.Contains(r.Text(), "frame-000010") {
		t.Errorf("12 j from the first row: on %q", r.Text())
	}
}

// fakeReport is a report of the seed lab's four apps; ws's setup is a slow
// outlier.
func fakeReport() lab.Report {
	rep := lab.Report{Lab: "protolab", Provider: "local", OK: true, Apps: map[string]lab.AppReport{}}
	for i, p := range protocol.Seed() {
		res := probe.Result{App: string(p), Protocol: p, OK: true, Client: probe.ClientWorker, ConnectMs: 0.1 + 0.01*float64(i),
			RTTP50Ms: 0.1 * float64(i+1), RTTP99Ms: 0.2 * float64(i+1), MsgsPerS: 9000 / float64(i+1), BytesPerM: 20}
		if p.Secure() {
			res.TLSMs = 1.5
		}
		if p.WebSocket() {
			res.HandshakeMs = 0.3
		} else {
			res.HandshakeMs = 0.2
		}
		if p == protocol.WS {
			res.HandshakeMs = 250 // a slow outlier
		}
		res.SetupMs = res.ConnectMs + res.TLSMs + res.HandshakeMs
		w := wire.Counters{Packets: 300, Bytes: 30000, Messages: 100, Payload: 2000, SetupPackets: 30, SetupFlows: 3}.Summarize()
		rep.Apps[string(p)] = lab.AppReport{Kind: p.Desc().DefaultKind, Result: res, Wire: &w}
		rep.Order = append(rep.Order, string(p))
	}
	return rep
}

// TestComparisonFits: the comparison takes the whole body, fits its width
// (the wire figures whole), scrolls what does not fit, draws a slow
// outlier off the scale (») without flattening the others, and its wire
// figures follow the live counters; goldens at the three sizes.
func TestComparisonFits(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {120, 40}, {200, 50}} {
		m, _ := newModel(t)
		m = send(t, m, tea.WindowSizeMsg{Width: size[0], Height: size[1]}, upEvents(), eventsMsg{lab.ReportEvent{Report: fakeReport()}}, keys("C")[0])
		v := m.text()
		for _, line := range strings.Split(v, "\n") {
			if w := lipgloss.Width(line); w > size[0] {
				t.Errorf("%dx%d: a line %d wide: %q", size[0], size[1], w, line)
			}
		}
		if strings.Contains(v, "Lab host") || !strings.Contains(v, "Round trip") {
			t.Errorf("%dx%d: the comparison does not take the body, or shows no round trip:\n%s", size[0], size[1], v)
		}
		if !strings.Contains(v, "»") {
			t.Errorf("%dx%d: the outlier is not off the scale:\n%s", size[0], size[1], v)
		}
		// http's setup bar (0.3 ms against ws's 250) is not flattened.
		for _, l := range strings.Split(v, "\n") {
			if strings.HasPrefix(strings.TrimLeft(l, "┃ "), "http ") && strings.Contains(l, "(0.10+") && !strings.Contains(l, "█") {
				t.Errorf("%dx%d: http's setup bar is flat: %q", size[0], size[1], l)
			}
		}
		if size[0] == 200 && !strings.Contains(v, "3.00   300.0") {
			t.Errorf("200x50: the wire figures are not whole:\n%s", v)
		}
		golden(t, fmt.Sprintf("compare-%dx%d", size[0], size[1]), v)
		// Live: the counters move, the figures follow.
		m = send(t, m, liveMsg{"http": wire.Counters{Packets: 40, Bytes: 4000, Messages: 10, Payload: 200}})
		for range 30 {
			m = send(t, m, keys("j")[0])
		}
		if v := m.text(); !strings.Contains(v, "live") || !strings.Contains(v, "4.00   400.0") {
			t.Errorf("%dx%d: the live wire figures do not show:\n%s", size[0], size[1], v)
		}
	}
}

// TestGetOverHTTPS: U asks the https app for a path with GET on a real
// lab; the answer shows in the log line.
func TestGetOverHTTPS(t *testing.T) {
	l := runningLab(t, lab.Config{StateDir: t.TempDir(), Apps: lab.OnFreePorts(lab.SeedApps()), Capture: lab.CaptureConfig{Mode: "off"}})
	events, stop := l.Subscribe()
	defer stop()
	m := New(l, events, Options{Name: "protolab", Provider: "local", StateDir: t.TempDir(), Apps: l.Config().Apps, Now: time.Now})
	m = send(t, m, tea.WindowSizeMsg{Width: 120, Height: 40}, eventsMsg{lab.StateEvent{From: lab.Deploying, To: lab.Running}}, keys("U")[0])
	m.promptView().input.SetValue("/health")
	next, cmd := m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	m = next.(Model)
	go runAll(cmd) // the job (and the spinner's tick)
	for e := range events {
		if se, ok := e.(lab.SendEvent); ok {
			m = send(t, m, eventsMsg{se})
			break
		}
	}
	if !strings.Contains(m.logLine, `send https "GET /health" → "{\"app\":\"protolab-https\"`) {
		t.Errorf("the log line: %q", m.logLine)
	}
}

// TestIdleDrawsNothing: a message that changes nothing on screen (a
// refresh that found the store as it was, the same capture figures) gets
// the last frame back without rendering; one that changes something
// renders anew.
func TestIdleDrawsNothing(t *testing.T) {
	store := numbered(t, 100)
	m := onWS(t, 200, 50, store)
	first := m.View()
	for _, quiet := range []tea.Msg{packetsMsg{unchanged: true}, statsMsg(m.capture), tickMsg(time.Now())} {
		m = send(t, m, quiet)
		if allocs := testing.AllocsPerRun(5, func() { _ = m.View() }); allocs > 0 {
			t.Errorf("%T: the view was drawn again (%v allocations)", quiet, allocs)
		}
		if m.View() != first {
			t.Errorf("%T: the frame changed", quiet)
		}
	}
	m = send(t, m, eventsMsg{lab.LogEvent{Level: "warn", Source: "ws", Message: "something"}})
	if allocs := testing.AllocsPerRun(5, func() { _ = m.View() }); allocs == 0 {
		t.Error("an event that changes the screen was not drawn")
	}
	if !strings.Contains(m.text(), "log [ws] warn: something") {
		t.Errorf("the event is not on screen:\n%s", m.text())
	}
}

// TestIdleComparisonDrawsNothing: the comparison's live figures read
// again unchanged (an idle lab) draw nothing; changed, they are drawn.
func TestIdleComparisonDrawsNothing(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 200, Height: 50}, upEvents(), eventsMsg{lab.ReportEvent{Report: fakeReport()}}, keys("C")[0])
	live := liveMsg{"http": wire.Counters{Packets: 4, Messages: 1}}
	m = send(t, m, live, live)
	if allocs := testing.AllocsPerRun(5, func() { _ = m.View() }); allocs > 0 {
		t.Errorf("the same live figures drew the view again (%v allocations)", allocs)
	}
	m = send(t, m, liveMsg{"http": wire.Counters{Packets: 8, Messages: 2}})
	if allocs := testing.AllocsPerRun(5, func() { _ = m.View() }); allocs == 0 {
		t.Error("new live figures were not drawn")
	}
}

// TestDetailWholePacket: the detail shows the whole packet a record stands
// for, read from the capture's spool in a Cmd, in hex with the selected
// layer's bytes marked (live capture: as root).
func TestDetailWholePacket(t *testing.T) {
	l := runningLab(t, lab.Config{StateDir: t.TempDir(), Apps: lab.OnFreePorts(lab.SeedApps()), Capture: lab.CaptureConfig{Mode: "on"}})
	ctx := context.Background()
	if err := l.StartCapture(ctx).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, mode := l.Capturing(); mode != capture.ModeLive {
		t.Skipf("no live capture here (%s): the packets are not kept", mode)
	}
	text := strings.Repeat("whole packet ", 30) // past the records' preview
	if err := l.Send(ctx, "ws", text).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	_ = l.SyncCapture(ctx)
	got := l.Wire().Matching("ws", func(r *wire.Record) bool {
		return r.Kind == wire.KindMessage && r.Dir == wire.ServerToClient && r.Layer == "ws" && r.Payload == len(text)
	})
	if len(got) == 0 {
		t.Fatal("the echo was not decoded")
	}
	rec := got[0]
	msg, ok := fetchPacket(l, rec)().(packetMsg)
	if !ok || msg.err != nil || len(msg.data) < len(text) {
		t.Fatalf("the packet: %+v", msg.err)
	}
	if len(rec.Data) >= len(text) || !bytes.Contains(msg.data, []byte(text)) {
		t.Errorf("the packet (%d bytes) does not hold the whole echo; the record kept %d", len(msg.data), len(rec.Data))
	}
	st := newStyles(nil)
	d := newDetailView(st, rec, io.Discard, 120, 200)
	d.setPacket(msg)
	v := ansi.Strip(d.View())
	if !strings.Contains(v, "the packet that completed it") || !strings.Contains(v, "77 68 6f 6c 65") { // "whole"
		t.Errorf("the detail lacks the packet's hex:\n%s", v)
	}
	d.cursor = 1 // IP
	d.render()
	if v := ansi.Strip(d.View()); !strings.Contains(v, "marked: ip (bytes 14–33)") {
		t.Errorf("the IP layer's bytes are not marked:\n%s", v)
	}
	d.cursor = 3 // the WebSocket frame
	d.render()
	if v := ansi.Strip(d.View()); !strings.Contains(v, "marked: websocket (bytes 66–") {
		t.Errorf("the frame's bytes are not marked:\n%s", v)
	}
}

// TestGoldensAtEverySize: the main screen, the connections list, follow
// mode and the held view at 80×24, 120×40 and 200×50 (the comparison's
// are TestComparisonFits').
func TestGoldensAtEverySize(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {120, 40}, {200, 50}} {
		name := func(what string) string { return fmt.Sprintf("%s-%dx%d", what, size[0], size[1]) }
		s := echoConn(t, 30)
		m := onWS(t, size[0], size[1], s)
		golden(t, name("main"), m.text())

		conns := send(t, m, fetchConns(s, "ws")())
		golden(t, name("conns"), conns.text())

		follow := send(t, m, keys("g")[0])
		follow = send(t, follow, follow.packets.fetch(s, nil)(), keys("f")[0])
		follow = send(t, follow, follow.packets.fetch(s, nil)())
		golden(t, name("follow"), follow.text())

		store := numberedRing(t, 300, 100)
		held := onWS(t, size[0], size[1], store)
		held = send(t, held, keys("g")[0])
		held = send(t, held, held.packets.fetch(store, nil)())
		more := numberedRing(t, 900, 100) // the ring moves on past what is shown
		held = send(t, held, held.packets.fetch(more, nil)())
		if !held.packets.focused().held {
			t.Fatalf("%dx%d: the view is not held", size[0], size[1])
		}
		golden(t, name("held"), held.text())
	}
}

// TestOneEventPresenter: the explorer's log line says an event in the
// words headless prints (lab.Describe), without its columns' padding.
func TestOneEventPresenter(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 200, Height: 50})
	for _, e := range []lab.Event{
		lab.StateEvent{From: lab.Down, To: lab.Provisioning},
		lab.ProbeEvent{Result: probe.Result{App: "ws", OK: true, SetupMs: 1.5, RTTP50Ms: 0.1, Client: "worker"}},
		lab.SendEvent{SendResult: probe.SendResult{App: "ws", Sent: "hi  there", Reply: "hi  there", RTTMs: 0.2}},
		lab.CaptureEvent{State: "on", Stats: capture.Stats{Mode: capture.ModeLive, Source: "AF_PACKET on lo"}},
		lab.ExportEvent{Path: "/x.pcapng", Packets: 3},
	} {
		m = send(t, m, eventsMsg{e})
		words := strings.Fields(lab.Describe(e))
		if m.logLine != lab.Brief(e) || strings.Join(strings.Fields(m.logLine), " ") != strings.Join(words, " ") {
			t.Errorf("%T: the log line %q, headless %q", e, m.logLine, lab.Describe(e))
		}
	}
	if !strings.Contains(lab.Brief(lab.SendEvent{SendResult: probe.SendResult{App: "ws", Sent: "hi  there"}}), `"hi  there"`) {
		t.Error("Brief changed quoted text")
	}
}

// TestLeavingAConnectionKeepsTheRow: f again, leaving the connection,
// shows every record with the row the cursor was on still selected.
func TestLeavingAConnectionKeepsTheRow(t *testing.T) {
	s := echoConn(t, 20)
	m := onWS(t, 80, 24, s)
	fetch := func() { m = send(t, m, m.packets.fetch(s, nil)()) }
	m = send(t, m, keys("f")[0])
	fetch()
	m = send(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("12j")})
	fetch()
	was, _ := m.packets.selected()
	m = send(t, m, keys("f")[0])
	fetch()
	if r, _ := m.packets.selected(); r.Seq != was.Seq || m.packets.conv {
		t.Errorf("left the connection on record %d, the cursor was on %d", r.Seq, was.Seq)
	}
}

// TestOverlaysOnTheStack: the help, an error, a question and the
// comparison are components on the one stack: the top one has the keys
// and its own help in the footer; closing it shows the one under it.
func TestOverlaysOnTheStack(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 120, Height: 40}, upEvents(), eventsMsg{lab.ReportEvent{Report: fakeReport()}}, keys("C")[0])
	if !m.comparing() || !strings.Contains(ansi.Strip(m.footer()), "r measure again") {
		t.Fatalf("C: the comparison is not on top with its keys: %q", ansi.Strip(m.footer()))
	}
	m = send(t, m, keys("?")[0]) // a key the comparison passes: it closes, and the help opens
	if _, ok := m.top().(*helpView); !ok || m.comparing() || !strings.Contains(ansi.Strip(m.footer()), "close the help") {
		t.Errorf("? over the comparison: top %T, comparing %v", m.top(), m.comparing())
	}
	m = send(t, m, tea.KeyMsg{Type: tea.KeyEsc}, keys("C")[0], eventsMsg{lab.ErrorEvent{Op: "probe", Error: "boom"}})
	if m.errText() != "probe: boom" || len(m.stack) != 2 || !strings.Contains(m.text(), "Comparison") {
		t.Errorf("an error over the comparison: %q, %d overlays:\n%s", m.errText(), len(m.stack), m.text())
	}
	m = send(t, m, tea.KeyMsg{Type: tea.KeyEnter})
	if m.errText() != "" || !m.comparing() {
		t.Errorf("enter: the error stays (%q) or took the comparison with it", m.errText())
	}
	m = send(t, m, keys("t")[0]) // passes: the comparison closes, the question opens
	if m.confirming() != confirmTeardown || m.comparing() {
		t.Errorf("t over the comparison: confirm %v, comparing %v", m.confirming(), m.comparing())
	}
	m = send(t, m, keys("n")[0])
	if len(m.stack) != 0 {
		t.Errorf("n: %d overlays left", len(m.stack))
	}
}

// TestPromptIsAnOverlay: a prompt is a component on the stack, drawn in
// the footer, sized with the terminal; an error over it lets the typing
// through to it.
func TestPromptIsAnOverlay(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 120, Height: 40}, upEvents(), keys("/")[0])
	if _, ok := m.top().(*promptView); !ok {
		t.Fatalf("/: the top is %T", m.top())
	}
	m = send(t, m, tea.WindowSizeMsg{Width: 200, Height: 50})
	if w := m.promptView().input.Width; w < 180 {
		t.Errorf("the prompt's input is %d wide at 200 columns", w)
	}
	m = send(t, m, eventsMsg{lab.ErrorEvent{Op: "send", Error: "boom"}}, keys("ws")[0], keys("ws")[1])
	if m.promptValue() != "ws" || m.errText() != "" {
		t.Errorf("typing over an error: the prompt holds %q, the error %q", m.promptValue(), m.errText())
	}
}

// TestClockAndAgesMove: a refresh tick a second later draws the header's
// clock and the apps' ages anew; one within the same second draws nothing.
func TestClockAndAgesMove(t *testing.T) {
	now := t0.Add(90 * time.Second)
	m, _ := newModel(t)
	m.opt.Now = func() time.Time { return now }
	m.appsP.now = m.opt.Now
	m = send(t, m, tea.WindowSizeMsg{Width: 120, Height: 40}, upEvents())
	_ = m.View()
	m = send(t, m, tickMsg(now))
	if !m.same {
		t.Error("a tick within the same second drew the frame again")
	}
	now = now.Add(5 * time.Second)
	m = send(t, m, tickMsg(now))
	if v := m.text(); m.same || !strings.Contains(v, "up 1m35s") || !strings.Contains(v, "1m35s") || strings.Contains(v, "1m30s") {
		t.Errorf("5 s later the clock or the ages did not move:\n%s", v)
	}
}

// TestCalmCaptureLooksLessOften: while capturing, looks at the store that
// find nothing new slow the refresh down to calmRefresh; a new record or
// a key brings it back.
func TestCalmCaptureLooksLessOften(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 120, Height: 40}, upEvents())
	if got := m.refreshEvery(); got != refresh {
		t.Fatalf("capturing: %v", got)
	}
	for range 5 {
		m = send(t, m, packetsMsg{unchanged: true})
	}
	if got := m.refreshEvery(); got != calmRefresh {
		t.Errorf("after five quiet looks: %v", got)
	}
	m = send(t, m, keys("j")[0])
	if got := m.refreshEvery(); got != refresh {
		t.Errorf("after a key: %v", got)
	}
}

// TestPositionCountsAPendingMove: a move past the window's edge shows in
// the position at once, before the window's rows come back.
func TestPositionCountsAPendingMove(t *testing.T) {
	store := numbered(t, 200)
	m := onWS(t, 80, 24, store)
	m = send(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("8k")})
	if v := m.text(); !strings.Contains(v, "paused 397/405") { // 405 records (the upgrade's 5 and 2 per frame): the newest is 405
		t.Errorf("8k from the newest: the position before the fetch:\n%s", v)
	}
}

// TestRowsStayWhenTheFocusMoves: moving the focus (tab) lays the panes out
// again; the packet list keeps its rows without a new fetch (the store did
// not change: none comes).
func TestRowsStayWhenTheFocusMoves(t *testing.T) {
	m := onWS(t, 80, 24, numbered(t, 50))
	m = send(t, m, tea.KeyMsg{Type: tea.KeyTab})
	if v := m.text(); !strings.Contains(v, "frame-000050") {
		t.Errorf("after tab the list lost its rows:\n%s", v)
	}
}
