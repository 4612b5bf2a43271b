package ui

import (
	"context"
	"encoding/binary"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
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
	"github.com/protolab/protolab-tui/lab/providers/local"
	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) {
	probe.ServeWorker()                     // this test binary is the probe worker the lab re-executes
	lipgloss.SetColorProfile(termenv.Ascii) // goldens hold text, not colours
	os.Exit(m.Run())
}

// t0 is the fixed clock of the golden tests.
var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// newModel builds the explorer on a real (not started) embedded lab; the
// tests drive Update with messages, as the program would.
func newModel(t *testing.T) (Model, *lab.Lab) {
	t.Helper()
	l, err := lab.New(lab.Config{StateDir: t.TempDir()}, local.New)
	if err != nil {
		t.Fatal(err)
	}
	m := New(l, make(chan lab.Event), Options{Name: "protolab", Provider: "local", StateDir: "/state",
		Fingerprint: "AB:CD:EF:01:23:45:67:89", CaptureMode: "auto", Apps: l.Config().Apps, Now: func() time.Time { return t0.Add(90 * time.Second) }})
	return m, l
}

func send(t *testing.T, m Model, msgs ...tea.Msg) Model {
	t.Helper()
	for _, msg := range msgs {
		next, _ := m.Update(msg)
		m = next.(Model)
	}
	return m
}

func keys(s string) []tea.Msg {
	var out []tea.Msg
	for _, r := range s {
		out = append(out, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
	}
	return out
}

// golden compares a view with its golden file, as text: the attributes
// that stand for colour under NO_COLOR (reverse, bold…) are stripped.
func golden(t *testing.T, name, got string) {
	t.Helper()
	got = ansi.Strip(got)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./ui -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (go test ./ui -update rewrites it):\n%s", name, path, got)
	}
}

// upEvents is what a lab coming up publishes.
func upEvents() tea.Msg {
	at := func(s int) lab.At { return lab.At{Time: t0.Add(time.Duration(s) * time.Millisecond)} }
	ev := []lab.Event{
		lab.StateEvent{At: at(0), Lab: "protolab", From: lab.Down, To: lab.Provisioning},
		lab.HostEvent{At: at(1), Host: lab.HostInfo{Provider: "local", Name: "labhost", Address: "127.0.0.1", OS: "linux/amd64",
			Ports: []string{"http 3000", "https 3001", "ws 3002", "wss 3003"}}},
		lab.StateEvent{At: at(2), Lab: "protolab", From: lab.Provisioning, To: lab.Ready},
		lab.StateEvent{At: at(3), Lab: "protolab", From: lab.Ready, To: lab.Deploying},
	}
	for i, p := range protocol.Seed() {
		ev = append(ev, lab.AppEvent{At: at(4), App: lab.AppStatus{Name: string(p), Kind: p.Desc().DefaultKind, Protocol: p, Image: "in-process (goroutine)",
			State: lab.AppRunning, Health: "healthy", Endpoint: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(3000+i)).String(),
			Started: t0}})
	}
	ev = append(ev,
		lab.LogEvent{At: at(5), Level: "info", Source: "ws", Message: "serving mode=ws addr=127.0.0.1:3002"},
		lab.StateEvent{At: at(6), Lab: "protolab", From: lab.Deploying, To: lab.Running},
		lab.CaptureEvent{At: at(7), State: "on", Stats: capture.Stats{Mode: capture.ModeLive, Source: "AF_PACKET on lo"}})
	return eventsMsg(ev)
}

// wsConversation decodes a ws send as the capture would see it: the real
// decoder fed the real bytes of an upgrade and an echoed text frame.
func wsConversation(t *testing.T) *wire.Store {
	t.Helper()
	s := wire.NewStore(100)
	d, err := wire.NewDecoder(layers.LinkTypeEthernet, wire.SeedPorts(map[uint16]protocol.Protocol{3002: protocol.WS}), nil, s)
	if err != nil {
		t.Fatal(err)
	}
	flow := wire.Flow{Client: netip.MustParseAddrPort("127.0.0.1:51000"), Server: netip.MustParseAddrPort("127.0.0.1:3002")}
	at := t0.Add(80 * time.Second)
	step := func(dir wire.Dir, b []byte) {
		at = at.Add(time.Millisecond)
		d.Stream(flow, wire.AppRef{Name: "ws", Protocol: protocol.WS}, dir, b, at)
	}
	step(wire.ClientToServer, []byte("GET /echo HTTP/1.1\r\nHost: localhost:3002\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	step(wire.ServerToClient, []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"))
	text := []byte("hello lab")
	masked := []byte{0x81, 0x80 | byte(len(text)), 1, 2, 3, 4}
	for i, c := range text {
		masked = append(masked, c^[]byte{1, 2, 3, 4}[i%4])
	}
	step(wire.ClientToServer, masked)
	step(wire.ServerToClient, append([]byte{0x81, byte(len(text))}, text...))
	closeFrame := binary.BigEndian.AppendUint16([]byte{0x88, 2}, 1000)
	step(wire.ServerToClient, closeFrame)
	d.StreamEnd(flow, at)
	return s
}

func TestStartupView(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 140, Height: 30})
	golden(t, "startup", m.text())
}

func TestLabComingUp(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 140, Height: 30}, upEvents())
	v := m.text()
	for _, want := range []string{"running", "capture live", ":3003", "healthy", "AB:CD:EF"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q", want)
		}
	}
	golden(t, "running", v)
}

func TestSendOverWS(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 140, Height: 30}, upEvents())
	m = send(t, m, keys("s")...)
	if m.prompting() != inputSend || !strings.Contains(m.text(), "send over ws:") {
		t.Fatalf("s did not open the ws prompt")
	}
	m = send(t, m, keys("hello lab")...)
	next, cmd := m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	m = next.(Model)
	if cmd == nil || m.prompting() != inputNone || m.packets.focus != 2 {
		t.Fatalf("enter: cmd %v, input %v, focus %d", cmd, m.prompting(), m.packets.focus)
	}
	// What the lab reports back, and what the capture decoded.
	store := wsConversation(t)
	m = send(t, m, eventsMsg{lab.SendEvent{At: lab.At{Time: t0}, SendResult: sendResult("hello lab")}})
	m = send(t, m, m.packets.fetch(store, nil)())
	v := m.text()
	for _, want := range []string{`send ws "hello lab" → "hello lab"`, `WS TEXT [MASKED] len=9 "hello lab"`, `WS TEXT len=9 "hello lab"`, "GET /echo HTTP/1.1 [WebSocket upgrade]"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q", want)
		}
	}
	golden(t, "ws-send", v)

	// Enter opens the selected record's details with its hex dump.
	m = send(t, m, tea.KeyMsg{Type: tea.KeyUp}, tea.KeyMsg{Type: tea.KeyUp})
	m = send(t, m, m.packets.fetch(store, nil)())
	m = send(t, m, tea.KeyMsg{Type: tea.KeyEnter})
	if m.topDetail() == nil || !strings.Contains(m.text(), "opcode") {
		t.Fatalf("no detail view:\n%s", m.text())
	}
	golden(t, "ws-detail", m.text())
}

func TestScrollStopsFollow(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 140, Height: 30}, upEvents(), keys("3")[0])
	store := wsConversation(t)
	m = send(t, m, m.packets.fetch(store, nil)())
	l := m.packets.focused()
	if !l.follow {
		t.Fatal("a new list does not follow")
	}
	m = send(t, m, tea.KeyMsg{Type: tea.KeyUp})
	if l := m.packets.focused(); l.follow {
		t.Error("scrolling up kept follow mode: new packets would move the list")
	}
	m = send(t, m, keys("G")...)
	if l := m.packets.focused(); !l.follow {
		t.Error("G did not return to follow mode")
	}
}

func TestFilter(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 140, Height: 30}, upEvents(), keys("3")[0])
	store := wsConversation(t)
	m = send(t, m, keys("/")...)
	m = send(t, m, keys("ws text")...)
	m = send(t, m, tea.KeyMsg{Type: tea.KeyEnter})
	m = send(t, m, m.packets.fetch(store, nil)())
	l := m.packets.focused()
	if l.total != 2 || len(l.rows) != 2 {
		t.Fatalf("filter matched %d (%d shown), want the 2 text frames", l.total, len(l.rows))
	}
	golden(t, "filter", m.text())
}

func TestTeardownConfirm(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 140, Height: 30}, upEvents())
	m = send(t, m, keys("t")...)
	golden(t, "teardown-confirm", m.text())
	next, cmd := m.Update(keys("n")[0])
	if m = next.(Model); cmd != nil || m.confirming() != confirmNone {
		t.Error("n did not cancel the teardown")
	}
	m = send(t, m, keys("t")...)
	next, cmd = m.Update(keys("y")[0])
	if m = next.(Model); cmd == nil || m.confirming() != confirmNone {
		t.Error("y did not start the teardown")
	}
	// Quitting while the lab is up asks too.
	m = send(t, m, keys("q")...)
	if m.confirming() != confirmQuit || !strings.Contains(m.text(), "tear down and quit") {
		t.Error("q while up did not ask")
	}
}

func TestTinyTerminal(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 60, Height: 20})
	golden(t, "tiny", m.text())
}

func TestErrorBoxIsDismissible(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 100, Height: 30},
		eventsMsg{lab.ErrorEvent{At: lab.At{Time: t0}, Op: "deploy", Error: "port for ws (127.0.0.1:3002) is already in use: choose another with --ws-port"}})
	if !strings.Contains(m.text(), "--ws-port") {
		t.Fatal("the error is not shown")
	}
	m = send(t, m, tea.KeyMsg{Type: tea.KeyEsc})
	if m.errText() != "" {
		t.Error("esc did not dismiss the error")
	}
}

func TestNarrowStacksPanes(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 90, Height: 30}, upEvents())
	v := m.text()
	if got := strings.Count(v, "┌") + strings.Count(v, "┏"); got != 3 {
		t.Errorf("%d pane borders, want the 3 panes stacked", got)
	}
	for _, line := range strings.Split(v, "\n") {
		if w := lipgloss.Width(line); w > 90 {
			t.Fatalf("a line is %d wide in a 90-column terminal: %q", w, line)
		}
	}
	if lines := strings.Count(v, "\n") + 1; lines != 30 {
		t.Errorf("view has %d lines, want 30", lines)
	}
}

func sendResult(text string) (r probeSend) {
	r.App, r.Protocol, r.Sent, r.Reply, r.RTTMs = "ws", protocol.WS, text, text, 0.05
	return r
}

type probeSend = probe.SendResult

// TestDebuggingShellPane opens the pane on the embedded lab (a local pty),
// types into it through Update, and reads the emulated screen back from View.
func TestDebuggingShellPane(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 100, Height: 30})
	next, cmd := m.Update(keys("x")[0])
	m = next.(Model)
	if m.shellOpen() == nil || cmd == nil {
		t.Fatal("x did not open the shell pane")
	}
	next, cmd = m.Update(cmd()) // shellOpened: the real pty
	m = next.(Model)
	defer func() {
		if m.shellOpen() != nil && m.shellOpen().sh != nil {
			m.shellOpen().sh.Close()
		}
	}()
	if m.shellOpen().sh == nil {
		t.Fatalf("no shell: %s", m.errText())
	}
	reader := cmd
	typeIn := func(s string) {
		for _, r := range s {
			k := tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}}
			if r == '\r' {
				k = tea.KeyMsg{Type: tea.KeyEnter}
			}
			next, c := m.Update(k)
			m = next.(Model)
			if c != nil {
				c()
			}
		}
	}
	typeIn("TERM=xterm-256color; export TERM; printf '\\033[31mRED\\033[0m'; tput cup 7 12; printf X; printf '\\n'\r")
	deadline := time.Now().Add(10 * time.Second)
	for {
		m.shellOpen().vt.Lock()
		done := m.shellOpen().vt.Cell(12, 7).Char == 'X'
		m.shellOpen().vt.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the X never arrived:\n%s", m.text())
		}
		next, reader = m.Update(reader())
		m = next.(Model)
	}
	lines := strings.Split(m.text(), "\n")
	// header, the pane's top border and its two title lines come first
	// (the pane has a column of padding: X is in column 1+12)
	if row := lines[1+1+2+7]; !strings.Contains(row, "┃             X") {
		t.Errorf("row 7 of the pane is %q, want X in column 12", row)
	}
	if !strings.Contains(m.text(), "ctrl+] leaves") {
		t.Error("the pane does not say how to leave it")
	}
	next, c := m.Update(tea.KeyMsg{Type: tea.KeyCtrlCloseBracket})
	m = next.(Model)
	if m.shellOpen() != nil || c == nil {
		t.Fatal("ctrl+] did not close the pane")
	}
	c()
}

// TestPromptIsAnswered shows a question from the lab (a key's passphrase),
// types the answer masked, and hands it back.
func TestPromptIsAnswered(t *testing.T) {
	var env lab.Env
	l, err := lab.New(lab.Config{StateDir: t.TempDir()}, func(e lab.Env) (lab.Provider, error) { env = e; return local.New(e) })
	if err != nil {
		t.Fatal(err)
	}
	l.Interactive(true)
	events, stop := l.Subscribe()
	defer stop()
	got := make(chan string, 1)
	go func() {
		a, _ := env.Ask(context.Background(), "Passphrase for /home/me/.ssh/id_ed25519:", true)
		got <- a
	}()
	var prompt lab.Event
	for e := range events {
		if _, ok := e.(lab.PromptEvent); ok {
			prompt = e
			break
		}
	}
	m := New(l, make(chan lab.Event), Options{Name: "protolab", Provider: "ssh", Apps: l.Config().Apps, Now: func() time.Time { return t0 }})
	m = send(t, m, tea.WindowSizeMsg{Width: 100, Height: 30}, eventsMsg{prompt})
	if m.prompting() != inputAnswer || !strings.Contains(m.text(), "Passphrase for /home/me/.ssh/id_ed25519:") {
		t.Fatalf("the question is not asked:\n%s", m.text())
	}
	m = send(t, m, keys("s3cret")...)
	if strings.Contains(m.text(), "s3cret") {
		t.Error("the passphrase is shown as typed")
	}
	next, cmd := m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	m = next.(Model)
	if cmd == nil || m.prompting() != inputNone {
		t.Fatal("enter did not answer")
	}
	cmd()
	select {
	case a := <-got:
		if a != "s3cret" {
			t.Errorf("answer %q", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the answer did not reach the asker")
	}
}

func TestHostPaneStreamsProvisioning(t *testing.T) {
	m, _ := newModel(t)
	at := lab.At{Time: t0}
	m = send(t, m, tea.WindowSizeMsg{Width: 140, Height: 30}, eventsMsg{
		lab.StateEvent{At: at, From: lab.Down, To: lab.Provisioning},
		lab.LogEvent{At: at, Level: "info", Source: "vagrant", Message: "==> default: Machine booted and ready!"},
		lab.LogEvent{At: at, Level: "info", Source: "provision", Message: "lab host ready: docker 20.10"},
		lab.HostEvent{At: at, Host: lab.HostInfo{Provider: "vagrant", Name: "protolab-centos", Details: []lab.KV{{Key: "vm", Value: "default running"}, {Key: "cpus/mem", Value: "2 / 2048 MiB"}}}},
	})
	v := m.text()
	for _, want := range []string{"provisioning:", "==> default: Machine bo", "lab host ready", "default running", "2 / 2048 MiB"} {
		if !strings.Contains(v, want) {
			t.Errorf("the host pane lacks %q:\n%s", want, v)
		}
	}
}

func TestRefreshSkipsWhenNothingChanged(t *testing.T) {
	store := wsConversation(t)
	reqs := []listRequest{{app: "ws", follow: true, n: 10}}
	first := fetchChanged(store, newFilterIndex(), reqs, nil)().(packetsMsg)
	if first.unchanged || len(first.lists) != 1 || len(first.lists[0].rows) == 0 {
		t.Fatalf("first fetch %+v", first)
	}
	v := first.version
	if again := fetchChanged(store, newFilterIndex(), reqs, &v)().(packetsMsg); !again.unchanged || again.lists != nil {
		t.Errorf("a tick with nothing new copied %d lists", len(again.lists))
	}
	old := v - 1
	if changed := fetchChanged(store, newFilterIndex(), reqs, &old)().(packetsMsg); changed.unchanged {
		t.Error("a newer store was not fetched")
	}
}

// TestPromptAnsweredElsewhereCloses: two explorers on one lab (the sessions
// of serve) both show a question; the first answer counts, and the lab's
// PromptClosedEvent takes the question down in the other, which answered
// nothing.
func TestPromptAnsweredElsewhereCloses(t *testing.T) {
	var env lab.Env
	l, err := lab.New(lab.Config{StateDir: t.TempDir()}, func(e lab.Env) (lab.Provider, error) { env = e; return local.New(e) })
	if err != nil {
		t.Fatal(err)
	}
	l.Interactive(true)
	events, stop := l.Subscribe()
	defer stop()
	got := make(chan string, 1)
	go func() {
		a, _ := env.Ask(context.Background(), "Accept the host key SHA256:abc? (yes/no)", false)
		got <- a
	}()
	next := func(want string) lab.Event {
		for e := range events {
			if e.EventType() == want {
				return e
			}
		}
		t.Fatalf("no %s event", want)
		return nil
	}
	prompt := next("prompt")
	open := func() Model {
		m := New(l, make(chan lab.Event), Options{Name: "protolab", Provider: "ssh", Apps: l.Config().Apps, Now: func() time.Time { return t0 }, Shared: true})
		return send(t, m, tea.WindowSizeMsg{Width: 100, Height: 30}, eventsMsg{prompt})
	}
	a, b := open(), open()
	if a.prompting() != inputAnswer || b.prompting() != inputAnswer {
		t.Fatal("the question is not asked in both")
	}
	a = send(t, a, keys("yes")...)
	_, cmd := a.Update(tea.KeyMsg{Type: tea.KeyEnter})
	cmd()
	if ans := <-got; ans != "yes" {
		t.Fatalf("answer %q", ans)
	}
	b = send(t, b, eventsMsg{next("prompt_closed")})
	if b.prompting() != inputNone || b.question != nil || strings.Contains(b.text(), "Accept the host key") {
		t.Errorf("the other session still asks:\n%s", b.text())
	}
	// A later answer from b (had it raced) is dropped: the question is gone.
	prompt.(lab.PromptEvent).Answer("no")
}

// TestSharedExplorerLeaves: in a session of serve, q leaves at once (the
// lab stays up for the others), and the debugging shell is refused with the
// reason when the session may not open it.
func TestSharedExplorerLeaves(t *testing.T) {
	l, err := lab.New(lab.Config{StateDir: t.TempDir()}, local.New)
	if err != nil {
		t.Fatal(err)
	}
	m := New(l, make(chan lab.Event), Options{Name: "protolab", Provider: "local", Apps: l.Config().Apps, Now: func() time.Time { return t0 },
		Shared: true, NoShell: "the shell is not open to this session"})
	m = send(t, m, tea.WindowSizeMsg{Width: 100, Height: 30}, upEvents())
	if !strings.Contains(m.text(), "q/ctrl+c leave") {
		t.Errorf("the footer does not say q leaves:\n%s", m.text())
	}
	next, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{'x'}})
	if m2 := next.(Model); m2.shellOpen() != nil || !strings.Contains(m2.text(), "the shell is not open to this session") {
		t.Errorf("x opened a shell or said nothing:\n%s", m2.text())
	}
	_ = cmd
	_, cmd = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{'q'}})
	if cmd == nil || cmd() != tea.Quit() {
		t.Error("q did not leave at once (a running lab, shared)")
	}
}

// An earlier lab of this name still on the provider (the docker provider's
// EarlierLabEvent, published when the explorer starts without bringing the
// lab up; Up refuses to start beside it) is a warning above the
// footer that stays — later events do not overwrite it — saying what was
// found and the command that removes it, until D dismisses it; the body
// gives it its lines and takes them back.
func TestEarlierLabWarning(t *testing.T) {
	m, _ := newModel(t)
	m.opt.Provider = "docker"
	const remove = "protolab-tui --provider docker --name protolab --teardown"
	m = send(t, m, tea.WindowSizeMsg{Width: 120, Height: 30}, eventsMsg{lab.EarlierLabEvent{At: lab.At{Time: t0}, Lab: "protolab", Provider: "docker",
		Where: "the Docker engine at unix:///var/run/docker.sock", Containers: 4, Running: 3, Remove: remove}}, upEvents(),
		eventsMsg{lab.LogEvent{At: lab.At{Time: t0.Add(time.Second)}, Level: "warn", Source: "docker", Message: "a later warning"}})
	v := m.text()
	flat := strings.Join(strings.Fields(v), " ")
	for _, want := range []string{`[!] An earlier lab "protolab" is still on the Docker engine at unix:///var/run/docker.sock: 4 containers, 3 running. This lab will not start beside it.`,
		"Remove it with: " + remove, "(D dismisses)", "» log [docker] warn: a later warning", "D dismiss warning"} {
		if !strings.Contains(flat, want) {
			t.Errorf("the view lacks %q:\n%s", want, v)
		}
	}
	if h := lipgloss.Height(v); h != 30 {
		t.Errorf("the view is %d lines with the warning, want 30", h)
	}
	golden(t, "earlier-lab", v)
	// At the smallest size the explorer takes, the command still shows whole.
	small := send(t, m, tea.WindowSizeMsg{Width: 80, Height: 24})
	sv := small.text()
	if h := lipgloss.Height(sv); h != 24 || !strings.Contains(strings.Join(strings.Fields(sv), " "), remove) {
		t.Errorf("at 80×24 the view is %d lines, or the command is cut:\n%s", h, sv)
	}
	m = send(t, m, keys("D")...)
	v = m.text()
	if strings.Contains(v, "earlier lab") || strings.Contains(v, "dismiss warning") {
		t.Errorf("D did not dismiss the warning:\n%s", v)
	}
	if h := lipgloss.Height(v); h != 30 {
		t.Errorf("the view is %d lines after the warning, want 30", h)
	}
	// D means nothing once the warning is gone (no key of its own).
	if next := send(t, m, keys("D")...); next.text() != v {
		t.Error("D without a warning changed the view")
	}
}

// text is the view as text: the attributes that stand for colour under
// NO_COLOR (reverse, bold, faint) stripped.
func (m Model) text() string { return ansi.Strip(m.View()) }
