package ui

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/spinner"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/gopacket/gopacket/layers"

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
	Get(ctx context.Context, app string, path string) *lab.Job
	CaptureStats() capture.Stats
	Wire() *wire.Store
	Provider() lab.Provider
	InProcess() bool
	ShellActions(selected string) []lab.ShellAction
	Probe(ctx context.Context, apps ...string) *lab.Job
	CheckEarlierLab(ctx context.Context) *lab.Job
	Metrics(ctx context.Context, app string) (lab.AppMetrics, error)
	Packet(at time.Time, length int) ([]byte, layers.LinkType, error)
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
	// Renderer draws the styles: nil is the terminal's (lipgloss's
	// default); an explorer served over SSH passes the session's.
	Renderer *lipgloss.Renderer
	// Out is the terminal the explorer draws on, where a copy (OSC 52)
	// is written: nil is standard output; an SSH session passes its own.
	Out io.Writer
	// Shared: one of several explorers on a lab another owns (a session of
	// protolab-tui serve). Quitting (q, Ctrl-C) leaves at once, the lab
	// running for the others; tearing it down (t) still asks.
	Shared bool
	// NoShell refuses the debugging shell (x: a root shell on the lab
	// host) to this explorer, saying why.
	NoShell string
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
	inputGet
	inputExport
	inputFilter
	inputFind
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

	focus   int
	hostP   *hostPane
	appsP   *appsPane
	packets *packetsPane

	question    *lab.PromptEvent     // waiting for the person's answer
	sendApp     string               // the app the send prompt sends to
	search      string               // what n and N find (ctrl+f)
	alerts      map[string]string    // app name → what happened to it (apps that died)
	earlier     *lab.EarlierLabEvent // an earlier lab of this name is on the provider: shown until dismissed (D)
	cmp         *compareView         // the comparison, fed by every probe event
	stack       []overlay            // the overlays (overlays.go); the top one has the keys
	overW       int                  // the size an overlay gets (the packets' box, inside)
	overH       int
	touched     bool  // a key was pressed since the explorer opened
	interrupted bool  // the quit under way was asked for with Ctrl+C
	leftRunning bool  // the user quit leaving the lab running (l)
	tearErr     error // the teardown chosen on quitting failed
	spinning    bool  // the spinner's tick is scheduled
	detailMoved bool  // n/p in the detail: show the selected record once fetched
	busy        int   // commands in flight
	fetching    bool
	scraping    bool       // a round of /metrics scrapes is in flight
	shown       uint64     // the store version the packet lists show
	shownReqs   string     // and the windows they asked for
	same        bool       // the last message changed nothing on screen: the cached frame stands
	calm        int        // looks at the store in a row that found nothing new (refreshEvery)
	frames      *viewCache // the last frame drawn
}

// Interrupted says whether the explorer quit on Ctrl+C rather than q, so
// that the program can exit as an interrupted one does.
func (m Model) Interrupted() bool { return m.interrupted }

// New builds the explorer for l; events is l's event stream.
func New(l Lab, events <-chan lab.Event, opt Options) Model {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Out == nil {
		opt.Out = os.Stdout
	}
	st := newStyles(opt.Renderer)
	keys := newKeyMap()
	if opt.Shared {
		keys.Quit.SetHelp("q/ctrl+c", "leave (the lab stays up)")
		keys.shared = true
	}
	sp := spinner.New(spinner.WithSpinner(spinner.Dot), spinner.WithStyle(st.plain))
	hm := help.New()
	hm.Styles = st.help
	return Model{
		lab: l, events: events, opt: opt, keys: keys, st: st, help: hm, spin: sp,
		state: lab.Down, focus: panePackets, frames: &viewCache{},
		alerts:  map[string]string{},
		cmp:     newCompareView(st, opt.Apps),
		hostP:   &hostPane{st: st, provider: opt.Provider, fingerprint: opt.Fingerprint, state: lab.Down},
		appsP:   newAppsPane(st, keys, l.InProcess(), opt.Now, opt.Apps),
		packets: newPacketsPane(st, keys, opt.Apps),
		logLine: "starting",
	}
}

// Init implements tea.Model.
func (m Model) Init() tea.Cmd {
	cmds := []tea.Cmd{waitEvents(m.events), tick(refresh), tickMetrics()}
	if m.opt.AutoStart {
		cmds = append(cmds, m.provision()) // Up looks for an earlier lab first
	} else {
		cmds = append(cmds, m.checkEarlierLab())
	}
	return tea.Batch(cmds...)
}

// Update implements tea.Model. The spinner runs only while something is
// in progress, so an idle explorer redraws only when something changes
// (and once a second for the clock).
//
// Bubble Tea draws the view after every message; a message that changed
// nothing on screen (a refresh tick that found the store as it was, the
// same capture figures again) gets the last frame back from the view's
// cache, not a new rendering: an idle explorer costs a look at the store
// ten times a second while capturing, and a frame when something changes
// (and once a second for the header's clock).
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	next, cmd := m.update(msg)
	nm := next.(Model)
	if nm.working() && !nm.spinning {
		nm.spinning = true
		cmd = tea.Batch(cmd, nm.spin.Tick)
	}
	nm.same = m.quiet(msg, nm)
	return nm, cmd
}

// quiet says msg changed nothing the view shows (next is the model after
// it): the last frame stands.
func (m Model) quiet(msg tea.Msg, next Model) bool {
	switch msg := msg.(type) {
	case tickMsg:
		// The header's clock (and the apps' ages) moved on since the
		// frame was drawn: once a second.
		return next.frames != nil && next.clock() == next.frames.clock
	case packetsMsg:
		return msg.unchanged
	case statsMsg:
		// The header shows the capture's mode and drops; the rest
		// (packets read) changes with every packet.
		return m.capture.Mode == msg.Mode && m.capture.Drops() == capture.Stats(msg).Drops()
	case metricsTick:
		return !next.scraping || m.scraping
	case liveMsg:
		return !m.comparing() || !next.cmp.liveMoved
	}
	return false
}

// viewCache keeps the last frame drawn, for the messages that change
// nothing (Model.same); shared by the model's copies.
type viewCache struct {
	w, h  int
	frame string
	clock string // the header's clock in the frame
}

// working says something is in progress (the spinner turns).
func (m Model) working() bool { return m.state.Busy() || m.busy > 0 || m.cmp.running }

// refreshEvery is how often the packet lists look for new records: often
// while capturing, else once a second (the header's clock).
// A capture that brings nothing new slows the look down, step by step,
// to calmRefresh: an idle explorer wakes four times a second, not ten;
// the first new record, an event or a key brings it back to refresh.
func (m Model) refreshEvery() time.Duration {
	if m.working() {
		return refresh
	}
	if m.capturing {
		return min(calmRefresh, refresh<<min(m.calm, 8))
	}
	return time.Second
}

// calmRefresh is the slowest look at the store while capturing.
const calmRefresh = 400 * time.Millisecond

func (m Model) update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		cmds := []tea.Cmd{m.fetch()}
		if sp := m.shellOpen(); sp != nil && sp.sh != nil {
			cmds = append(cmds, resizeShell(sp.sh, sp.cols, sp.rows)) // (layout sized the emulator)
		}
		return m, tea.Batch(cmds...)
	case shellOpened:
		sp := m.shellOpen()
		if sp == nil {
			if msg.sh != nil {
				msg.sh.Close()
			}
			return m, nil
		}
		if msg.err != nil {
			m.closeOverlay(sp)
			m.showError("debugging shell: " + msg.err.Error())
			return m, nil
		}
		sp.sh, sp.actions = msg.sh, msg.actions
		return m, readShell(msg.sh)
	case shellOutput:
		sp := m.shellOpen()
		if sp == nil || sp.sh == nil {
			return m, nil
		}
		_, _ = sp.vt.Write(msg) // the emulator parses in memory
		return m, readShell(sp.sh)
	case shellClosed:
		if sp := m.shellOpen(); sp != nil {
			sp.ended = "the shell ended"
			if msg.err != nil && msg.err.Error() != "EOF" {
				sp.ended += ": " + msg.err.Error()
			}
			sp.ended += " (any key closes the pane)"
		}
		return m, nil
	case eventsMsg:
		m.calm = 0
		known, was := len(m.appsP.apps), m.state
		for _, e := range msg {
			m.apply(e)
		}
		wait := waitEvents(m.events)
		if was != lab.Running && m.state == lab.Running && !m.scraping && m.appsP.hasRoomForLive() {
			// The first numbers as soon as the apps run, not a tick later.
			m.scraping = true
			wait = tea.Batch(wait, scrapeMetrics(m.lab, m.opt.Apps))
		}
		if len(m.appsP.apps) != known {
			m.layout() // the apps pane's rows (and the room left for logs) changed
		} else {
			m.appsP.refresh()
		}
		if q := m.question; q != nil && m.prompting() != inputAnswer {
			next, focus := m.prompt(inputAnswer, q.Question+" ", "")
			return next, tea.Batch(wait, focus)
		}
		return m, wait
	case eventsEnded:
		return m, nil
	case tickMsg:
		cmds := []tea.Cmd{tick(m.refreshEvery())}
		if m.frames != nil && m.clock() != m.frames.clock {
			m.appsP.refresh() // the apps' ages: the frame is drawn again (quiet)
		}
		if !m.fetching && m.width != 0 {
			m.fetching = true
			reqs := m.packets.requests()
			var since *uint64
			if key := fmt.Sprint(reqs); key == m.shownReqs {
				v := m.shown
				since = &v
			}
			l := m.lab
			cmds = append(cmds, fetchChanged(l.Wire(), m.packets.idx, reqs, since), func() tea.Msg { return statsMsg(l.CaptureStats()) })
		}
		if m.comparing() && m.capturing {
			cmds = append(cmds, readLive(m.lab.Wire(), m.opt.Apps)) // the comparison's wire figures, live
		}
		return m, tea.Batch(cmds...)
	case packetsMsg:
		m.fetching = false
		if m.calm++; !msg.unchanged {
			m.calm = 0
			m.packets.apply(msg)
			m.shown, m.shownReqs = msg.version, msg.reqs
			if d := m.topDetail(); d != nil && m.detailMoved {
				// n/p may have moved past the window: show the record now
				// selected, once the window has followed.
				m.detailMoved = false
				if r, ok := m.packets.selected(); ok && (r.App != d.rec.App || r.Seq != d.rec.Seq) {
					d.setRecord(r)
					return m, fetchPacket(m.lab, r)
				}
			}
		}
		return m, nil
	case refetch:
		return m, m.fetch()
	case metricsTick:
		// The apps' /metrics, while the lab runs: a scrape at a time, and
		// whatever fails shows quietly in the apps pane.
		cmds := []tea.Cmd{tickMetrics()}
		if m.state == lab.Running && !m.scraping && m.appsP.hasRoomForLive() {
			m.scraping = true
			cmds = append(cmds, scrapeMetrics(m.lab, m.opt.Apps))
		}
		return m, tea.Batch(cmds...)
	case metricsMsg:
		m.scraping = false
		if m.state == lab.Running && m.appsP.setLive(msg) {
			m.layout() // the table makes room for the numbers
		}
		return m, nil
	case liveMsg:
		m.cmp.setLive(msg)
		return m, nil
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
			m.tearErr = msg.err // the program says what is left, if anything
			return m, tea.Quit
		}
		return m, nil
	case stepMsg:
		// The detail's n/p: the list's next or previous record, without
		// leaving the detail.
		m.packets.scroll(msg.n)
		var cmds []tea.Cmd
		if r, ok := m.packets.selected(); ok {
			if d := m.topDetail(); d != nil {
				d.setRecord(r)
				cmds = append(cmds, fetchPacket(m.lab, r))
			}
		}
		m.detailMoved = true
		return m, tea.Batch(append(cmds, m.fetch())...)
	case packetMsg:
		if d := m.topDetail(); d != nil {
			d.setPacket(msg)
		}
		return m, nil
	case rerunMsg:
		return m, m.probe()
	case logMsg:
		m.logLine = string(msg)
		return m, nil
	case connsMsg:
		m.push(newConnsView(m.st, msg))
		m.logLine = fmt.Sprintf("%d connections of %s: enter follows one, esc closes", len(msg.conns), msg.app)
		return m, nil
	case foundMsg:
		return m.found(msg)
	case legsRequest:
		return m.legs(msg.rec)
	case legsMsg:
		m.push(newLegsView(m.st, msg))
		m.logLine = fmt.Sprintf("%d legs of %s record %d: enter shows one in its list, esc closes", len(msg.legs), msg.of.App, msg.of.Seq+1)
		return m, nil
	case jumpMsg:
		return m.jump(msg)
	case followMsg:
		m.focus = panePackets
		return m.followFlow(msg.flow)
	case tea.MouseMsg:
		return m.mouse(msg)
	case tea.KeyMsg:
		m.calm = 0
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste && m.shellOpen() == nil && m.prompting() == inputNone {
			return m.burst(msg.Runes)
		}
		return m.key(msg)
	}
	return m, nil
}

// plural writes a count with its noun: "1 restart", "2 restarts".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
