package ui

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/spinner"
	"github.com/charmbracelet/bubbles/table"
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/hinshun/vt10x"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/wire"
)

// Lab is what the explorer needs of a lab. *lab.Lab implements it; the
// explorer calls it only from tea.Cmds.
type Lab interface {
	Up(ctx context.Context) *lab.Job
	Deploy(ctx context.Context) *lab.Job
	Redeploy(ctx context.Context) *lab.Job
	Teardown(ctx context.Context) *lab.Job
	StartCapture(ctx context.Context) *lab.Job
	StopCapture() *lab.Job
	Export(path string) *lab.Job
	Send(ctx context.Context, app string, text string) *lab.Job
	CaptureStats() capture.Stats
	Wire() *wire.Store
	Provider() lab.Provider
	InProcess() bool
	ShellActions(selected string) []lab.ShellAction
	Probe(ctx context.Context, apps ...string) *lab.Job
}

// Options describe the lab to the explorer.
type Options struct {
	Name        string
	Provider    string
	StateDir    string
	Fingerprint string // the lab CA's SHA-256 fingerprint
	CaptureMode string // "auto", "on", "off"
	// Apps are the lab's apps: one packet list each, in this order.
	Apps []lab.App
	// AutoStart brings the lab up when the explorer opens.
	AutoStart bool
	// Now is the clock (tests fix it).
	Now func() time.Time
}

// Minimum terminal size.
const minWidth, minHeight = 80, 24

// Panes that take focus.
const (
	paneHost = iota
	paneApps
	panePackets
	numPanes
)

// Input prompts.
type inputKind int

const (
	inputNone inputKind = iota
	inputSend
	inputExport
	inputFilter
	inputAnswer
)

// Confirmations.
type confirmKind int

const (
	confirmNone confirmKind = iota
	confirmTeardown
	confirmQuit
)

// Messages.
type (
	eventsMsg   []lab.Event
	eventsEnded struct{}
	tickMsg     time.Time
	jobMsg      struct {
		op   string
		err  error
		quit bool
	}
	statsMsg capture.Stats
	refetch  struct{}
)

// Model is the explorer: lab state mirrored from events, the panes, and the
// prompts. It does no I/O: everything that waits or reads runs in a tea.Cmd.
type Model struct {
	lab    Lab
	events <-chan lab.Event
	opt    Options

	width, height int
	keys          keyMap
	st            styles
	help          help.Model
	spin          spinner.Model

	state     lab.State
	upSince   time.Time
	capturing bool
	capture   capture.Stats
	logLine   string
	errBox    string

	focus   int
	hostP   *hostPane
	appsP   *appsPane
	packets *packetsPane

	input       textinput.Model
	inputKind   inputKind
	confirm     confirmKind
	showHelp    bool
	detail      *viewport.Model
	shell       *shellPane
	question    *lab.PromptEvent  // waiting for the person's answer
	sendApp     string            // the app the send prompt sends to
	filterErr   string            // what is wrong with the filter being typed
	alerts      map[string]string // app name → what happened to it (apps that died)
	cmp         *compareView      // the comparison, fed by every probe event
	compare     bool              // the comparison is shown (in the packets' place)
	touched     bool              // a key was pressed since the explorer opened
	spinning    bool              // the spinner's tick is scheduled
	detailMoved bool              // n/p in the detail: show the selected record once fetched
	busy        int               // commands in flight
	fetching    bool
	shown       uint64 // the store version the packet lists show
	shownReqs   string // and the windows they asked for
}

// sendTarget picks the app a send key sends to (s: ws, w: wss, h: http,
// H: https): the shown app when it is of that kind, else the first such
// app of the lab.
func (m Model) sendTarget(secure, websocket bool) (string, bool) {
	fits := func(a lab.App) bool { return a.Protocol.WebSocket() == websocket && a.Protocol.Secure() == secure }
	if l := m.packets.focused(); l != nil && fits(l.app) {
		return l.app.Name, true
	}
	for _, a := range m.opt.Apps {
		if fits(a) {
			return a.Name, true
		}
	}
	return "", false
}

// New builds the explorer for l; events is l's event stream.
func New(l Lab, events <-chan lab.Event, opt Options) Model {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	st := newStyles()
	keys := newKeyMap()
	sp := spinner.New(spinner.WithSpinner(spinner.Dot))
	ti := textinput.New()
	ti.CharLimit = 4096
	return Model{
		lab: l, events: events, opt: opt, keys: keys, st: st, help: help.New(), spin: sp,
		state: lab.Down, focus: panePackets,
		alerts:  map[string]string{},
		cmp:     newCompareView(st, opt.Apps),
		hostP:   &hostPane{st: st, provider: opt.Provider, fingerprint: opt.Fingerprint, state: lab.Down},
		appsP:   newAppsPane(st, keys, l.InProcess(), opt.Now, opt.Apps),
		packets: newPacketsPane(st, keys, opt.Apps), input: ti,
		logLine: "starting",
	}
}

// appColumns fits the apps table to w columns; below 48 the image column
// goes (the detail is one tab away in a wider terminal).
func appColumns(w int) []table.Column {
	cols := []table.Column{{Title: "name", Width: 5}, {Title: "image", Width: 7}, {Title: "state", Width: 7},
		{Title: "health", Width: 8}, {Title: "ports", Width: 0}, {Title: "rs", Width: 2}, {Title: "age", Width: 5}}
	if w < 48 {
		cols = append(cols[:1], cols[2:]...)
	}
	used := 0
	for _, c := range cols {
		used += c.Width + 1 // one column of padding each
	}
	for i := range cols {
		if cols[i].Title == "ports" {
			cols[i].Width = max(6, w-used)
		}
	}
	return cols
}

// Init implements tea.Model.
func (m Model) Init() tea.Cmd {
	cmds := []tea.Cmd{waitEvents(m.events), tick(refresh)}
	if m.opt.AutoStart {
		cmds = append(cmds, m.provision())
	}
	return tea.Batch(cmds...)
}

// waitEvents blocks (in a Cmd) for the next event and takes whatever else
// is already queued, so a burst becomes one message.
func waitEvents(ch <-chan lab.Event) tea.Cmd {
	return func() tea.Msg {
		e, ok := <-ch
		if !ok {
			return eventsEnded{}
		}
		batch := eventsMsg{e}
		for len(batch) < 256 {
			select {
			case e, ok := <-ch:
				if !ok {
					return batch
				}
				batch = append(batch, e)
			default:
				return batch
			}
		}
		return batch
	}
}

// The packet view refreshes at most this often: faster arrivals are batched.
const refresh = 100 * time.Millisecond

func tick(every time.Duration) tea.Cmd {
	return tea.Tick(every, func(t time.Time) tea.Msg { return tickMsg(t) })
}

func (m Model) provision() tea.Cmd {
	l, mode := m.lab, m.opt.CaptureMode
	return func() tea.Msg {
		ctx := context.Background()
		for _, step := range []func(context.Context) *lab.Job{l.Up, l.Deploy} {
			if err := step(ctx).Wait(ctx); err != nil {
				return jobMsg{op: "provision", err: err}
			}
		}
		if mode != "off" {
			_ = l.StartCapture(ctx).Wait(ctx) // its event says how, or why not
		}
		_ = l.Probe(ctx).Wait(ctx) // the comparison's figures; each app's event says how it went
		return jobMsg{op: "provision"}
	}
}

func job(op string, quit bool, run func(ctx context.Context) *lab.Job) tea.Cmd {
	return func() tea.Msg {
		ctx := context.Background()
		return jobMsg{op: op, err: run(ctx).Wait(ctx), quit: quit}
	}
}

func (m Model) fetch() tea.Cmd {
	if m.width == 0 {
		return nil
	}
	l := m.lab
	return tea.Batch(fetchPackets(l.Wire(), m.packets.requests()), func() tea.Msg { return statsMsg(l.CaptureStats()) })
}

// Update implements tea.Model. The spinner runs only while something is
// in progress, so an idle explorer redraws only when something changes
// (and once a second for the clock).
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	next, cmd := m.update(msg)
	nm := next.(Model)
	if nm.working() && !nm.spinning {
		nm.spinning = true
		cmd = tea.Batch(cmd, nm.spin.Tick)
	}
	return nm, cmd
}

// working says something is in progress (the spinner turns).
func (m Model) working() bool { return m.state.Busy() || m.busy > 0 || m.cmp.running }

// refreshEvery is how often the packet lists look for new records: often
// while capturing, else once a second (the header's clock).
func (m Model) refreshEvery() time.Duration {
	if m.capturing || m.working() {
		return refresh
	}
	return time.Second
}

func (m Model) update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		cmds := []tea.Cmd{m.fetch()}
		if sp := m.shell; sp != nil {
			sp.cols, sp.rows = m.shellSize()
			sp.vt.Resize(sp.cols, sp.rows)
			if sp.sh != nil {
				cmds = append(cmds, resizeShell(sp.sh, sp.cols, sp.rows))
			}
		}
		return m, tea.Batch(cmds...)
	case shellOpened:
		if m.shell == nil {
			if msg.sh != nil {
				msg.sh.Close()
			}
			return m, nil
		}
		if msg.err != nil {
			m.shell = nil
			m.errBox = "debugging shell: " + msg.err.Error()
			return m, nil
		}
		m.shell.sh, m.shell.actions = msg.sh, msg.actions
		return m, readShell(msg.sh)
	case shellOutput:
		if m.shell == nil || m.shell.sh == nil {
			return m, nil
		}
		_, _ = m.shell.vt.Write(msg) // the emulator parses in memory
		return m, readShell(m.shell.sh)
	case shellClosed:
		if m.shell != nil {
			m.shell.ended = "the shell ended"
			if msg.err != nil && msg.err.Error() != "EOF" {
				m.shell.ended += ": " + msg.err.Error()
			}
			m.shell.ended += " (any key closes the pane)"
		}
		return m, nil
	case eventsMsg:
		for _, e := range msg {
			m.apply(e)
		}
		m.layout()
		if q := m.question; q != nil && m.inputKind != inputAnswer {
			next, focus := m.prompt(inputAnswer, q.Question+" ", "")
			nm := next.(Model)
			if q.Secret {
				nm.input.EchoMode = textinput.EchoPassword
			}
			return nm, tea.Batch(waitEvents(m.events), focus)
		}
		return m, waitEvents(m.events)
	case eventsEnded:
		return m, nil
	case tickMsg:
		cmds := []tea.Cmd{tick(m.refreshEvery())}
		if !m.fetching && m.width != 0 {
			m.fetching = true
			reqs := m.packets.requests()
			var since *uint64
			if key := fmt.Sprint(reqs); key == m.shownReqs {
				v := m.shown
				since = &v
			}
			l := m.lab
			cmds = append(cmds, fetchChanged(l.Wire(), reqs, since), func() tea.Msg { return statsMsg(l.CaptureStats()) })
		}
		return m, tea.Batch(cmds...)
	case packetsMsg:
		m.fetching = false
		if !msg.unchanged {
			m.packets.apply(msg)
			m.shown, m.shownReqs = msg.version, msg.reqs
			if m.detail != nil && m.detailMoved {
				// n/p may have moved past the window: show the record now
				// selected, once the window has followed.
				m.detailMoved = false
				if r, ok := m.packets.selected(); ok {
					m.detail.SetContent(detailText(r))
				}
			}
		}
		return m, nil
	case refetch:
		return m, m.fetch()
	case statsMsg:
		m.capture = capture.Stats(msg)
		return m, nil
	case spinner.TickMsg:
		if !m.working() {
			m.spinning = false // stops here; Update starts it again when needed
			return m, nil
		}
		var cmd tea.Cmd
		m.spin, cmd = m.spin.Update(msg)
		return m, cmd
	case jobMsg:
		// Every Lab command reports its outcome as one event (an ErrorEvent,
		// a CaptureEvent, an ExportEvent…), which apply shows; the job's
		// error is the same one and is not shown again.
		m.busy = max(0, m.busy-1)
		if msg.quit {
			return m, tea.Quit
		}
		return m, nil
	case tea.MouseMsg:
		return m.mouse(msg)
	case tea.KeyMsg:
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste && m.shell == nil && m.inputKind == inputNone {
			return m.burst(msg.Runes)
		}
		return m.key(msg)
	}
	return m, nil
}

// probe runs the Lab's probes (every app, one at a time) for the
// comparison; the events fill it in as they come.
func (m *Model) probe() tea.Cmd {
	m.busy++
	m.cmp.running, m.cmp.progress = true, "starting the probes"
	return job("probe", false, func(ctx context.Context) *lab.Job { return m.lab.Probe(ctx) })
}

// detailKeys are the detail view's own keys.
var detailKeys = struct{ Next, Prev, CopyText, CopyHex key.Binding }{
	Next:     key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "next record")),
	Prev:     key.NewBinding(key.WithKeys("p", "N"), key.WithHelp("p", "previous record")),
	CopyText: key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "copy the text")),
	CopyHex:  key.NewBinding(key.WithKeys("Y"), key.WithHelp("Y", "copy the payload as hex")),
}

// copyOSC52 puts text on the terminal's clipboard with OSC 52, which works
// over SSH and in tmux (set-clipboard on); a Cmd, as it writes to the
// terminal.
func copyOSC52(text string) tea.Cmd {
	return func() tea.Msg {
		seq := "\x1b]52;c;" + base64.StdEncoding.EncodeToString([]byte(text)) + "\a"
		if os.Getenv("TMUX") != "" {
			seq = "\x1bPtmux;\x1b" + strings.ReplaceAll(seq, "\x1b", "\x1b\x1b") + "\x1b\\"
		}
		_, _ = io.WriteString(os.Stdout, seq)
		return nil
	}
}

// move moves the focused pane's selection by n rows (negative: up).
func (m *Model) move(n int) tea.Cmd {
	switch m.focus {
	case panePackets:
		m.packets.scroll(n)
		return func() tea.Msg { return refetch{} }
	case paneApps:
		m.appsP.move(n)
	}
	return nil
}

// maxCount bounds a count prefix (a burst such as "40j").
const maxCount = 1000

// burst handles keys that arrived together (tmux, SSH, key repeat under
// load deliver them as one message): each is a key press of its own, in
// order; digits before j or k are a count ("4j" moves four rows; a digit
// alone still shows that app); once a key opens a prompt, the rest is text
// for it.
func (m Model) burst(runes []rune) (tea.Model, tea.Cmd) {
	var cmds []tea.Cmd
	press := func(r rune) {
		next, cmd := m.key(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
		m = next.(Model)
		cmds = append(cmds, cmd)
	}
	for i := 0; i < len(runes); i++ {
		if m.inputKind != inputNone || m.shell != nil || m.confirm != confirmNone || m.detail != nil || m.showHelp {
			// A prompt takes the rest as text; an overlay takes its keys
			// one by one.
			if m.inputKind != inputNone || m.shell != nil {
				next, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: runes[i:]})
				return next, tea.Batch(append(cmds, cmd)...)
			}
			press(runes[i])
			continue
		}
		// A run of j/k, with or without a count before it, moves once by
		// its sum (each move then sees the rows the last one left).
		j := i
		for j < len(runes) && unicode.IsDigit(runes[j]) {
			j++
		}
		if j < len(runes) && (runes[j] == 'j' || runes[j] == 'k') {
			count := 1
			if j > i {
				count, _ = strconv.Atoi(string(runes[i:j]))
				count = min(count, maxCount)
			}
			n := 0
			for ; j < len(runes) && (runes[j] == 'j' || runes[j] == 'k'); j++ {
				if runes[j] == 'j' {
					n += count
				} else {
					n -= count
				}
				count = 1
			}
			cmds = append(cmds, m.move(n))
			i = j - 1
			continue
		}
		press(runes[i])
	}
	return m, tea.Batch(cmds...)
}

// apply mirrors one lab event.
func (m *Model) apply(e lab.Event) {
	m.cmp.apply(e)
	if _, ok := e.(lab.ReportEvent); ok && !m.touched && m.opt.AutoStart {
		m.compare = true // the first start's figures, until a key is pressed
	}
	switch e := e.(type) {
	case lab.StateEvent:
		if m.state == lab.Down && e.To != lab.Down {
			m.upSince = e.Time
		}
		m.state = e.To
		m.hostP.set(e.To, e.Reason)
		m.logLine = fmt.Sprintf("lab %s → %s", e.From, e.To)
		if e.Reason != "" {
			m.logLine += ": " + e.Reason
		}
	case lab.HostEvent:
		m.hostP.host = e.Host
		m.appsP.hostAddr = e.Host.Address
	case lab.AppEvent:
		m.appsP.apps[e.App.Name] = e.App
		switch {
		case e.App.State == lab.AppRunning:
			delete(m.alerts, e.App.Name)
		case m.state == lab.Running && e.App.State != lab.AppStopped:
			// An app died under a running lab: say so until it is back.
			a := e.App
			why := a.State
			if a.Detail != "" {
				why += " (" + a.Detail + ")"
			}
			if a.Restarts > 0 {
				why += fmt.Sprintf(", %d restarts", a.Restarts)
			}
			m.alerts[a.Name] = fmt.Sprintf("app %s %s: r redeploys, x opens a shell on the lab host", a.Name, why)
		}
		m.hostP.endpoints = m.hostP.endpoints[:0]
		for _, a := range m.opt.Apps {
			if st, ok := m.appsP.apps[a.Name]; ok && st.Endpoint != "" {
				ep := st.Endpoint
				if host, port, err := net.SplitHostPort(ep); err == nil && host == m.hostP.host.Address {
					ep = ":" + port // the address is the line above
				}
				m.hostP.endpoints = append(m.hostP.endpoints, a.Name+" "+ep)
			}
		}
	case lab.LogEvent:
		m.appsP.log(e.Source, fmt.Sprintf("%s %s %s", e.Time.Format("15:04:05"), e.Level, e.Message))
		switch e.Source {
		case "vagrant", "provision", "docker build":
			m.hostP.log(e.Message) // the host pane streams provisioning
		}
		if e.Level == "warn" || e.Level == "error" {
			m.logLine = e.Source + ": " + e.Message // e.g. "ssh link … lost: reconnecting"
		}
	case lab.ProgressEvent:
		m.logLine = fmt.Sprintf("%s: %s", e.Op, e.Step)
	case lab.ProbeEvent:
		if e.Result.OK {
			m.logLine = fmt.Sprintf("probe %s ok: setup %.2f ms, rtt p50 %.3f ms", e.Result.App, e.Result.SetupMs, e.Result.RTTP50Ms)
		} else {
			m.logLine = fmt.Sprintf("probe %s failed: %s", e.Result.App, e.Result.Error)
		}
	case lab.SendEvent:
		if e.Error != "" {
			m.errBox = fmt.Sprintf("send over %s failed: %s", e.App, e.Error)
			m.logLine = m.errBox
		} else {
			m.logLine = fmt.Sprintf("%s echo: %q in %.2f ms", e.App, e.Reply, e.RTTMs)
		}
	case lab.PromptEvent:
		q := e
		m.question = &q
	case lab.ErrorEvent:
		m.errBox = fmt.Sprintf("%s: %s", e.Op, e.Error)
		m.logLine = m.errBox
	case lab.CaptureEvent:
		m.capturing = e.State == "on"
		m.capture = e.Stats
		m.logLine = "capture " + e.State
		if e.Stats.Mode != "" && e.Stats.Mode != capture.ModeOff {
			m.logLine += fmt.Sprintf(" (%s: %s)", e.Stats.Mode, e.Stats.Source)
		}
		if e.Note != "" {
			m.logLine += ": " + e.Note
		}
	case lab.ExportEvent:
		if e.Error != "" {
			m.errBox = "export failed: " + e.Error
			m.logLine = m.errBox
		} else {
			m.logLine = fmt.Sprintf("exported %d packets and %d TLS secrets to %s", e.Packets, e.Secrets, e.Path)
			if e.Note != "" {
				m.errBox = "exported, but: " + e.Note // what the file leaves out
			}
		}
	}
}

func (m Model) mouse(msg tea.MouseMsg) (tea.Model, tea.Cmd) {
	if msg.Action != tea.MouseActionPress {
		return m, nil
	}
	switch msg.Button {
	case tea.MouseButtonWheelUp, tea.MouseButtonWheelDown:
		n := 3
		if msg.Button == tea.MouseButtonWheelUp {
			n = -3
		}
		switch {
		case m.detail != nil:
			if n < 0 {
				m.detail.ScrollUp(-n)
			} else {
				m.detail.ScrollDown(n)
			}
		case m.focus == panePackets:
			m.packets.scroll(n)
			return m, m.fetch()
		case m.focus == paneApps:
			m.appsP.move(n)
		}
	case tea.MouseButtonLeft:
		if m.detail != nil || m.shell != nil || m.showHelp || m.confirm != confirmNone || m.inputKind != inputNone {
			return m, nil
		}
		return m.click(msg.X, msg.Y)
	}
	return m, nil
}

// click focuses the pane under the pointer and, in a list, selects the row
// clicked (the body starts under the header line; each pane has a border).
func (m Model) click(x, y int) (tea.Model, tea.Cmd) {
	hostW, appsW, _, h := m.paneWidths()
	by := y - 1 // the header line
	if by < 0 || by >= h {
		return m, nil
	}
	pane, top := panePackets, 0 // top: the pane's first line in the body
	switch {
	case m.sideBySide() && x < hostW:
		pane = paneHost
	case m.sideBySide() && x < hostW+appsW:
		pane = paneApps
	case !m.sideBySide() && by < m.topHeight():
		pane = paneHost
		if x >= hostW {
			pane = paneApps
		}
	case !m.sideBySide():
		top = m.topHeight()
	}
	m.focus = pane
	m.compare = false
	m.layout()
	inner := by - top - 1 // under the pane's top border
	switch pane {
	case paneApps:
		if row := inner - 3; row >= 0 { // the title, then the table's two title lines
			m.appsP.tbl.SetCursor(row)
		}
	case panePackets:
		lines := 4 // the list's heading and mode line, the table's two title lines
		if !m.packets.wide() {
			lines++ // the tabs
		} else if w := m.packets.width / max(1, len(m.packets.lists)); w > 0 {
			m.packets.focusApp((x - 1) / w) // the column clicked
		}
		if l := m.packets.focused(); l != nil {
			if row := inner - lines; row >= 0 && row < len(l.rows) {
				l.cursor = row
				l.table.SetCursor(row)
				if row < len(l.rows)-1 {
					l.follow, l.top = false, l.rows[0].Seq // a row picked: hold still
				}
			}
		}
		m.packets.setActive(true)
	}
	return m, m.fetch()
}

func (m Model) key(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	m.touched = true
	if m.shell != nil {
		return m.shellKey(msg)
	}
	if msg.String() == "ctrl+c" && m.inputKind == inputNone && m.confirm == confirmNone {
		// Like q: a lab that is up is not left behind without asking.
		if m.state == lab.Down {
			return m, tea.Quit
		}
		m.confirm = confirmQuit
		return m, nil
	}
	if m.inputKind != inputNone {
		return m.inputKey(msg)
	}
	if m.confirm != confirmNone {
		return m.confirmKey(msg)
	}
	if m.errBox != "" && (key.Matches(msg, m.keys.Back) || key.Matches(msg, m.keys.Enter)) {
		m.errBox = ""
		return m, nil
	}
	if m.showHelp {
		if key.Matches(msg, m.keys.Help) || key.Matches(msg, m.keys.Back) || key.Matches(msg, m.keys.Quit) {
			m.showHelp = false
		}
		return m, nil
	}
	if m.detail != nil {
		switch {
		case key.Matches(msg, m.keys.Back), key.Matches(msg, m.keys.Enter), key.Matches(msg, m.keys.Quit):
			m.detail = nil
		case key.Matches(msg, detailKeys.Next), key.Matches(msg, detailKeys.Prev):
			// The next or previous record of the list, without leaving.
			n := 1
			if key.Matches(msg, detailKeys.Prev) {
				n = -1
			}
			m.packets.scroll(n)
			if r, ok := m.packets.selected(); ok {
				m.detail.SetContent(detailText(r))
				m.detail.GotoTop()
			}
			m.detailMoved = true
			return m, m.fetch()
		case key.Matches(msg, detailKeys.CopyText), key.Matches(msg, detailKeys.CopyHex):
			if r, ok := m.packets.selected(); ok {
				what, data := "text", detailText(r)
				if key.Matches(msg, detailKeys.CopyHex) {
					what, data = "payload hex", hex.EncodeToString(r.Data)
				}
				m.logLine = fmt.Sprintf("copied the %s (%d bytes) to the clipboard (OSC 52)", what, len(data))
				return m, copyOSC52(data)
			}
		default:
			var cmd tea.Cmd
			*m.detail, cmd = m.detail.Update(msg)
			return m, cmd
		}
		return m, nil
	}
	k := m.keys
	if m.compare {
		switch {
		case key.Matches(msg, compareKeys.Rerun):
			cmd := m.probe()
			return m, cmd
		case key.Matches(msg, compareKeys.Close), key.Matches(msg, k.Compare):
			m.compare = false
			return m, m.fetch()
		}
		m.compare = false // any other key closes it and does what it does
	}
	switch {
	case key.Matches(msg, k.Compare):
		m.compare = true
		m.layout()
		if !m.cmp.running && m.cmp.report == nil && m.state == lab.Running {
			cmd := m.probe()
			return m, cmd
		}
		return m, nil
	case key.Matches(msg, k.Quit):
		if m.state == lab.Down {
			return m, tea.Quit
		}
		m.confirm = confirmQuit
	case key.Matches(msg, k.Help):
		m.showHelp = true
	case key.Matches(msg, k.Provision):
		m.busy++
		return m, m.provision()
	case key.Matches(msg, k.Redeploy):
		m.busy++
		return m, job("redeploy", false, m.lab.Redeploy)
	case key.Matches(msg, k.SendWS), key.Matches(msg, k.SendWSS), key.Matches(msg, k.SendHTTP), key.Matches(msg, k.SendHTTPS):
		secure := key.Matches(msg, k.SendWSS) || key.Matches(msg, k.SendHTTPS)
		ws := key.Matches(msg, k.SendWS) || key.Matches(msg, k.SendWSS)
		app, ok := m.sendTarget(secure, ws)
		if !ok {
			want := map[[2]bool]string{{false, true}: "ws", {true, true}: "wss", {false, false}: "http", {true, false}: "https"}[[2]bool{secure, ws}]
			m.errBox = fmt.Sprintf("this lab has no %s app to send to", want)
			return m, nil
		}
		m.sendApp = app
		return m.prompt(inputSend, fmt.Sprintf("send over %s: ", app), "")
	case key.Matches(msg, k.Teardown):
		m.confirm = confirmTeardown
	case key.Matches(msg, k.Capture):
		m.busy++
		if m.capturing {
			return m, job("capture off", false, func(context.Context) *lab.Job { return m.lab.StopCapture() })
		}
		return m, job("capture", false, m.lab.StartCapture)
	case key.Matches(msg, k.Export):
		def := filepath.Join(m.opt.StateDir, "captures", fmt.Sprintf("%s-%s.pcapng", m.opt.Name, m.opt.Now().Format("20060102-150405")))
		return m.prompt(inputExport, "export pcapng to: ", def)
	case key.Matches(msg, k.Filter):
		m.filterErr = ""
		return m.prompt(inputFilter, "filter (docs/filter.md: port == 3002 and not c>s, text ~ re; empty clears): ", m.packets.filter)
	case key.Matches(msg, k.ShowApp):
		if !m.packets.focusApp(int(msg.String()[0] - '1')) {
			return m, nil
		}
		m.focus = panePackets
		m.layout()
		return m, m.fetch()
	case key.Matches(msg, k.Next):
		m.focus = (m.focus + 1) % numPanes
		m.layout()
	case key.Matches(msg, k.Prev):
		m.focus = (m.focus + numPanes - 1) % numPanes
		m.layout()
	case key.Matches(msg, k.Debug):
		cols, rows := m.shellSize()
		m.shell = &shellPane{vt: vt10x.New(vt10x.WithSize(cols, rows)), cols: cols, rows: rows}
		return m, openShell(m.lab, m.appsP.selected(), cols, rows)
	case m.focus == panePackets && key.Matches(msg, k.Follow):
		// Follow the selected row's connection: its records alone, in
		// order, timed from its first one (f again, or / with an empty
		// filter, goes back to the whole list).
		if m.packets.conv {
			m.packets.conv, m.packets.filter = false, ""
		} else if r, ok := m.packets.selected(); ok {
			m.packets.conv, m.packets.filter = true, "flow == "+r.Flow.Client.String()
			m.logLine = "following " + r.Flow.String() + ": +time from its first record, Δ from the row before (f again leaves)"
		}
		for _, l := range m.packets.lists {
			l.follow = false
			l.top, l.shift, l.cursor = 0, 0, 0
		}
		return m, m.fetch()
	case m.focus == panePackets && key.Matches(msg, k.Enter):
		if r, ok := m.packets.selected(); ok {
			vp := viewport.New(max(10, m.width-4), max(3, m.bodyHeight()-2))
			vp.SetContent(detailText(r))
			m.detail = &vp
			m.logLine = "detail: n/p next/previous record · y copy the text · Y copy the payload (hex) · esc closes"
		}
	default:
		return m, m.panes()[m.focus].Update(msg)
	}
	return m, nil
}

// shellSize is the emulated screen's size inside the pane.
func (m Model) shellSize() (cols, rows int) { return max(20, m.width-2), max(5, m.bodyHeight()-3) }

func (m Model) shellKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	sp := m.shell
	if msg.String() == leaveShell || sp.ended != "" {
		m.shell = nil
		if sp.sh != nil {
			sh := sp.sh
			return m, func() tea.Msg { sh.Close(); return nil }
		}
		return m, nil
	}
	if sp.sh == nil {
		return m, nil // still opening
	}
	if line := m.quickAction(msg.String()); line != "" {
		return m, writeShell(sp.sh, []byte(line+"\r"))
	}
	if b := keyBytes(msg); len(b) > 0 {
		return m, writeShell(sp.sh, b)
	}
	return m, nil
}

func (m Model) prompt(kind inputKind, label, value string) (tea.Model, tea.Cmd) {
	m.inputKind = kind
	m.input.Prompt = label
	m.input.SetValue(value)
	m.input.CursorEnd()
	m.input.Width = max(10, m.width-lipgloss.Width(label)-2)
	return m, m.input.Focus()
}

func (m Model) inputKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	if m.inputKind == inputAnswer && (msg.Type == tea.KeyEsc || msg.Type == tea.KeyEnter) {
		q, answer := m.question, m.input.Value()
		if msg.Type == tea.KeyEsc {
			answer = "" // declined
		}
		m.question, m.inputKind = nil, inputNone
		m.input.Blur()
		m.input.EchoMode = textinput.EchoNormal
		m.input.SetValue("")
		return m, func() tea.Msg { q.Answer(answer); return nil }
	}
	switch msg.Type {
	case tea.KeyEsc:
		m.inputKind = inputNone
		m.input.Blur()
		return m, nil
	case tea.KeyEnter:
		kind, value := m.inputKind, m.input.Value()
		m.inputKind = inputNone
		m.input.Blur()
		switch kind {
		case inputSend:
			app := m.sendApp
			if m.packets.focusName(app) {
				m.packets.focused().follow = true
			}
			m.focus = panePackets
			m.layout()
			m.busy++
			l := m.lab
			return m, job("send over "+app, false, func(ctx context.Context) *lab.Job { return l.Send(ctx, app, value) })
		case inputExport:
			m.busy++
			l := m.lab
			return m, job("export", false, func(context.Context) *lab.Job { return l.Export(value) })
		case inputFilter:
			m.packets.conv = false
			if _, err := compileFilter(value); err != nil {
				// Not applied: the prompt stays, saying why.
				m.inputKind, m.filterErr = inputFilter, err.Error()
				m.input.Focus()
				return m, nil
			}
			m.packets.filter = strings.TrimSpace(value)
			for _, l := range m.packets.lists {
				l.follow = true
			}
			return m, m.fetch()
		}
		return m, nil
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	if m.inputKind == inputFilter {
		m.filterErr = ""
		if _, err := compileFilter(m.input.Value()); err != nil {
			m.filterErr = err.Error() // shown as one types
		}
	}
	return m, cmd
}

func (m Model) confirmKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	kind := m.confirm
	m.confirm = confirmNone
	switch s := msg.String(); {
	case kind == confirmTeardown && (s == "y" || s == "Y"):
		m.busy++
		return m, job("teardown", false, m.lab.Teardown)
	case kind == confirmQuit && (s == "t" || s == "y"):
		m.busy++
		return m, job("teardown", true, m.lab.Teardown)
	case kind == confirmQuit && s == "l" && !m.lab.InProcess():
		return m, tea.Quit
	}
	return m, nil
}

// bodyHeight is the room between header and footer.
func (m Model) bodyHeight() int { return max(0, m.height-3) }

// layout sizes the panes for the terminal.
func (m *Model) layout() {
	if m.width < minWidth || m.height < minHeight {
		return
	}
	hostW, appsW, packW, h := m.paneWidths()
	hostH, appsH, packH := h-2, h-2, h-2
	if !m.sideBySide() {
		top := m.topHeight()
		hostH, appsH, packH = top-2, top-2, h-2-top
	}
	m.hostP.SetSize(hostW-2, hostH)
	m.appsP.SetSize(appsW-2, appsH)
	m.appsP.setFocus(m.focus == paneApps)
	m.packets.SetSize(packW-2, max(minListHeight, packH))
	m.cmp.SetSize(packW-2, max(minListHeight, packH))
	m.packets.setActive(m.focus == panePackets)
}

// panes lists the panes in focus order.
func (m Model) panes() [numPanes]pane { return [numPanes]pane{m.hostP, m.appsP, m.packets} }

// sideBySide: the three panes in one row (wide terminals); else the host
// and apps panes share a row above the packets.
func (m Model) sideBySide() bool { return m.width >= 120 }

// minListHeight is the least room the packet lists get (inside their box):
// their heading, the column titles and a few rows.
const minListHeight = 8

// topHeight is the outer height of the host and apps row in a narrow
// terminal: every app's row when there is room, never so much that the
// packet lists get less than minListHeight.
func (m Model) topHeight() int {
	want := len(m.opt.Apps) + 5 // border 2, title, column titles 2
	return max(5, min(want, m.bodyHeight()-minListHeight-2))
}

// paneWidths returns the outer widths of the three panes and the body height.
func (m Model) paneWidths() (host, apps, packets, h int) {
	h = m.bodyHeight()
	if !m.sideBySide() {
		host = m.width * 38 / 100
		return host, m.width - host, m.width, h
	}
	host = m.width * 19 / 100
	apps = m.width * 36 / 100
	return host, apps, m.width - host - apps, h
}

func shortDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// View implements tea.Model.
func (m Model) View() string {
	if m.width == 0 {
		return "starting…"
	}
	if m.width < minWidth || m.height < minHeight {
		return fmt.Sprintf("terminal too small: protolab-tui needs %d×%d, this one is %d×%d.\nMake the window larger (q quits).", minWidth, minHeight, m.width, m.height)
	}
	body := m.body()
	if m.errBox != "" {
		box := m.st.box.Width(min(m.width-4, 100)).Render("[!] " + m.errBox + "\n" + m.st.dim.Render("esc or enter to dismiss"))
		body = lipgloss.Place(m.width, m.bodyHeight(), lipgloss.Center, lipgloss.Center, box)
	}
	if m.confirm != confirmNone {
		body = lipgloss.Place(m.width, m.bodyHeight(), lipgloss.Center, lipgloss.Center, m.st.box.Render(m.confirmText()))
	}
	body = lipgloss.NewStyle().Height(m.bodyHeight()).MaxHeight(m.bodyHeight()).MaxWidth(m.width).Render(body)
	return lipgloss.JoinVertical(lipgloss.Left, m.header(), body, m.footer())
}

func (m Model) confirmText() string {
	if m.confirm == confirmTeardown {
		return "Tear the lab down? Its apps stop and capture ends.\n\n  y: tear down    any other key: cancel"
	}
	if m.lab.InProcess() {
		return "The lab is up. Quitting tears it down (its apps live in this process).\n\n  t: tear down and quit    any other key: cancel"
	}
	return "The lab is up.\n\n  t: tear down and quit    l: leave it running and quit    any other key: cancel"
}

func (m Model) header() string {
	state := string(m.state)
	if m.state == lab.Running && len(m.alerts) > 0 {
		var down []string
		for _, a := range m.opt.Apps {
			if _, ok := m.alerts[a.Name]; ok {
				down = append(down, a.Name)
			}
		}
		state = fmt.Sprintf("DEGRADED: %s down", strings.Join(down, ", "))
	}
	if m.state.Busy() || m.busy > 0 {
		state = m.spin.View() + " " + state
	}
	up := "-"
	if m.state != lab.Down && !m.upSince.IsZero() {
		up = shortDuration(m.opt.Now().Sub(m.upSince))
	}
	capt := "off"
	if m.capturing {
		capt = string(m.capture.Mode)
	}
	parts := []string{"protolab-tui", "lab " + m.opt.Name, "provider " + m.opt.Provider, state, "up " + up,
		"capture " + capt, fmt.Sprintf("drops %d", m.capture.Drops())}
	s := strings.Join(parts, " · ")
	for _, drop := range []int{0, 2} { // the program's name, then "provider"
		if lipgloss.Width(s) <= m.width {
			break
		}
		parts[drop] = ""
		s = strings.Join(slices.DeleteFunc(slices.Clone(parts), func(p string) bool { return p == "" }), " · ")
	}
	return m.st.header.Render(truncate(s, m.width))
}

func (m Model) footer() string {
	log := m.st.dim.Render(truncate("» "+m.logLine, m.width))
	if alert := m.alertLine(); alert != "" {
		log = m.st.errText.Render(truncate("[!] "+alert, m.width))
	}
	if m.inputKind != inputNone {
		log = m.input.View()
	}
	m.help.Width = m.width
	keys := m.keys
	keys.up = m.state != lab.Down && m.state != lab.Failed
	if m.inputKind == inputFilter && m.filterErr != "" {
		return lipgloss.JoinVertical(lipgloss.Left, log, m.st.errText.Render(truncate("filter: "+m.filterErr, m.width)))
	}
	return lipgloss.JoinVertical(lipgloss.Left, log, m.help.View(keys))
}

// alertLine is the first app alert, in the lab's order ("" when none).
func (m Model) alertLine() string {
	for _, a := range m.opt.Apps {
		if s, ok := m.alerts[a.Name]; ok {
			if n := len(m.alerts); n > 1 {
				s += fmt.Sprintf(" (+%d more)", n-1)
			}
			return s
		}
	}
	return ""
}

// fullHelp lays the help's columns out in as many rows as the terminal's
// width needs, so that every key is listed at any size.
func (m Model) fullHelp() string {
	hm := m.help
	hm.Width = 0 // each row is fitted here, not cut
	groups := m.keys.FullHelp()
	var rows []string
	for len(groups) > 0 {
		n := len(groups)
		for n > 1 && lipgloss.Width(hm.FullHelpView(groups[:n])) > m.width {
			n--
		}
		rows = append(rows, hm.FullHelpView(groups[:n]))
		groups = groups[n:]
	}
	return strings.Join(rows, "\n")
}

func (m Model) body() string {
	h := m.bodyHeight()
	switch {
	case m.showHelp:
		var own []string
		for _, k := range m.panes()[m.focus].Keys() {
			own = append(own, k.Help().Key+" "+k.Help().Desc)
		}
		return m.st.title.Render("Keys") + "\n" + m.fullHelp() + "\n\n" + truncate("In the focused pane: "+strings.Join(own, " · "), m.width)
	case m.detail != nil:
		return m.st.paneFocused.Width(m.width - 2).Height(h - 2).Render(m.detail.View())
	case m.shell != nil:
		sp := m.shell
		title := fmt.Sprintf("debugging shell on %s · ctrl+] leaves", m.hostP.host.Name)
		for _, a := range sp.actions {
			title += fmt.Sprintf(" · %s %s", strings.ToUpper(a.Key), a.Label)
		}
		if sp.ended != "" {
			title = sp.ended
		} else if sp.sh == nil {
			title = "opening a shell on the lab host…"
		}
		screen := renderVT(sp.vt, sp.cols, sp.rows)
		return m.st.paneFocused.Width(m.width - 2).Height(h - 2).Render(lipgloss.JoinVertical(lipgloss.Left, m.st.title.Render(truncate(title, m.width-2)), screen))
	}
	hostW, appsW, packW, _ := m.paneWidths()
	ps := m.panes()
	view := func(i int) string {
		if i == panePackets && m.compare {
			return m.cmp.View()
		}
		return ps[i].View(m.focus == i)
	}
	if m.sideBySide() {
		return lipgloss.JoinHorizontal(lipgloss.Top,
			m.box(paneHost, hostW, h, view(paneHost)), m.box(paneApps, appsW, h, view(paneApps)), m.box(panePackets, packW, h, view(panePackets)))
	}
	top := m.topHeight()
	return lipgloss.JoinVertical(lipgloss.Left,
		lipgloss.JoinHorizontal(lipgloss.Top, m.box(paneHost, hostW, top, view(paneHost)), m.box(paneApps, appsW, top, view(paneApps))),
		m.box(panePackets, m.width, h-top, view(panePackets)))
}

func (m Model) box(pane, w, h int, content string) string {
	st := m.st.pane
	if m.focus == pane {
		st = m.st.paneFocused
	}
	return st.Width(w - 2).Height(h - 2).MaxHeight(h).Render(lipgloss.NewStyle().MaxWidth(w - 2).MaxHeight(h - 2).Render(content))
}
