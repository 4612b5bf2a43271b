package ui

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/charmbracelet/bubbles/key"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
)

// This file turns keys and the mouse into changes of the model and the
// commands they start; the commands themselves run elsewhere, in tea.Cmds.

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
		if len(m.stack) > 0 {
			// A prompt takes the rest as text; an overlay takes its keys
			// one by one.
			if m.prompting() != inputNone || m.shellOpen() != nil {
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
		case len(m.stack) > 0:
			if d, ok := m.stack[len(m.stack)-1].(*detailView); ok {
				d.scroll(n)
			}
		case m.focus == panePackets:
			m.packets.scroll(n)
			return m, m.fetch()
		case m.focus == paneApps:
			m.appsP.move(n)
		}
	case tea.MouseButtonLeft:
		if len(m.stack) > 0 {
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
	if _, ok := m.top().(*shellPane); ok {
		// Every key goes to the shell (ctrl+c too): its pane owns them.
		next, cmd := m.top().Update(msg)
		m.stack = slices.Clone(m.stack[:len(m.stack)-1])
		if next != nil {
			m.stack = append(m.stack, next)
		}
		return m, cmd
	}
	if m.opt.Shared && (msg.String() == "ctrl+c" || key.Matches(msg, m.keys.Quit) && len(m.stack) == 0) {
		// A session of a shared lab: leaving leaves the lab to the others.
		return m, tea.Quit
	}
	if msg.String() == "ctrl+c" && m.prompting() == inputNone && m.confirming() == confirmNone {
		// Like q: a lab that is up is not left behind without asking.
		m.interrupted = true
		if m.state == lab.Down {
			return m, tea.Quit
		}
		m.ask(confirmQuit)
		return m, nil
	}
	if p, ok := m.top().(*promptView); ok {
		return m.inputKey(p, msg)
	}
	if m.earlier != nil && key.Matches(msg, m.keys.Dismiss) {
		m.earlier = nil
		m.layout() // the body takes the warning's lines back
		return m, m.fetch()
	}
	if top := m.top(); top != nil {
		if c, ok := top.(*confirmView); ok {
			// The question's answer starts lab commands: the root's.
			m.stack = slices.Clone(m.stack[:len(m.stack)-1])
			return m.confirmKey(c.kind, msg)
		}
		if p, ok := top.(passer); !ok || !p.passes(msg) {
			next, cmd := top.Update(msg)
			m.stack = slices.Clone(m.stack[:len(m.stack)-1]) // the stack is the model's: no sharing with older copies
			if next != nil {
				m.stack = append(m.stack, next)
			} else if top == overlay(m.cmp) {
				return m, tea.Batch(cmd, m.fetch())
			}
			return m, cmd
		}
		// It closes, and the key acts beneath it (on the overlay under
		// it, if any: a prompt under an error gets the typing).
		m.stack = slices.Clone(m.stack[:len(m.stack)-1])
		if top == overlay(m.cmp) {
			next, cmd := m.key(msg)
			return next, tea.Batch(cmd, m.fetch())
		}
		return m.key(msg)
	}
	k := m.keys
	switch {
	case key.Matches(msg, k.Compare):
		m.push(m.cmp)
		live := readLive(m.lab.Wire(), m.opt.Apps)
		if !m.cmp.running && m.cmp.report == nil && m.state == lab.Running {
			cmd := m.probe()
			return m, tea.Batch(cmd, live)
		}
		return m, live
	case key.Matches(msg, k.Quit):
		m.interrupted = false
		if m.state == lab.Down {
			return m, tea.Quit
		}
		m.ask(confirmQuit)
	case key.Matches(msg, k.Help):
		m.openHelp()
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
			want := "such"
			for _, p := range protocol.Seed() { // the protocol the key sends over
				if p.WebSocket() == ws && p.Secure() == secure {
					want = string(p)
				}
			}
			m.showError(fmt.Sprintf("this lab has no %s app to send to", want))
			return m, nil
		}
		m.sendApp = app
		return m.prompt(inputSend, fmt.Sprintf("send over %s: ", app), "")
	case key.Matches(msg, k.GetHTTP), key.Matches(msg, k.GetHTTPS):
		app, ok := m.sendTarget(key.Matches(msg, k.GetHTTPS), false)
		if !ok {
			m.showError("this lab has no such http app to ask")
			return m, nil
		}
		m.sendApp = app
		return m.prompt(inputGet, fmt.Sprintf("GET over %s, path: ", app), "/")
	case key.Matches(msg, k.Teardown):
		m.ask(confirmTeardown)
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
		return m.prompt(inputFilter, "filter: ", m.packets.filter)
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
	case key.Matches(msg, k.Debug) && m.opt.NoShell != "":
		m.logLine = m.opt.NoShell
	case key.Matches(msg, k.Debug):
		sp := newShellPane(m.st, m.hostP.host.Name, m.width-4, m.bodyHeight()-2)
		m.push(sp)
		return m, openShell(m.lab, m.appsP.selected(), sp.cols, sp.rows)
	case m.focus == panePackets && key.Matches(msg, k.Follow):
		// Follow the selected row's connection: its records alone, in
		// order, timed from its first one (f again, or / with an empty
		// filter, goes back to the whole list).
		if m.packets.conv {
			// Back to every record, on the row the cursor was on.
			r, ok := m.packets.selected()
			m.packets.conv, m.packets.filter = false, ""
			m.logLine = "back to every record (f on a row follows its connection)"
			m.rewind()
			m.layout() // the list's columns
			if ok {
				m.land(r.App, r.Seq) // (a fold's Seq is its first record's)
			}
			return m, m.fetch()
		}
		if r, ok := m.packets.selected(); ok {
			return m.followFlow(r.Flow)
		}
	case m.focus == panePackets && key.Matches(msg, k.Find):
		return m.prompt(inputFind, "find: ", m.search)
	case m.focus == panePackets && (key.Matches(msg, k.FindNext) || key.Matches(msg, k.FindPrev)):
		if m.search == "" {
			m.logLine = "nothing to find yet: ctrl+f sets it"
			return m, nil
		}
		return m, m.find(key.Matches(msg, k.FindNext))
	case m.focus == panePackets && m.packets.conv && key.Matches(msg, k.Fold):
		// The window stays where it is (on the row it shows first).
		m.packets.unfolded = !m.packets.unfolded
		if l := m.packets.focused(); l != nil && len(l.rows) > 0 {
			l.follow, l.top, l.shift = false, l.rows[0].Seq, 0
		}
		return m, m.fetch()
	case m.focus == panePackets && key.Matches(msg, k.Conns):
		if l := m.packets.focused(); l != nil {
			m.logLine = "gathering the connections of " + l.app.Name
			return m, fetchConns(m.lab.Wire(), l.app.Name)
		}
	case m.focus == panePackets && key.Matches(msg, k.Legs):
		if r, ok := m.packets.selected(); ok {
			return m.legs(r)
		}
	case m.focus == panePackets && key.Matches(msg, k.Enter):
		if r, ok := m.packets.selected(); ok {
			m.push(newDetailView(m.st, r, m.opt.Out, m.width-4, m.bodyHeight()-2))
			m.logLine = "detail of " + r.App + " record " + fmt.Sprint(r.Seq+1)
			return m, fetchPacket(m.lab, r)
		}
	default:
		return m, m.panes()[m.focus].Update(msg)
	}
	return m, nil
}

// prompt opens a prompt in the footer.
func (m Model) prompt(kind inputKind, label, value string) (tea.Model, tea.Cmd) {
	secret := kind == inputAnswer && m.question != nil && m.question.Secret
	p := newPrompt(m.st, kind, label, value, m.width, secret)
	m.dropPrompt()
	m.push(p)
	return m, p.input.Focus()
}

// inputKey is a key for the open prompt p: enter acts on what it holds,
// esc cancels it (declines a lab's question); the rest is typing, the
// prompt's own.
func (m Model) inputKey(p *promptView, msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	if msg.Type != tea.KeyEsc && msg.Type != tea.KeyEnter {
		_, cmd := p.Update(msg)
		return m, cmd
	}
	kind, value := p.kind, p.input.Value()
	if kind == inputAnswer {
		q, answer := m.question, value
		if msg.Type == tea.KeyEsc {
			answer = "" // declined
		}
		m.question = nil
		m.dropPrompt()
		return m, func() tea.Msg { q.Answer(answer); return nil }
	}
	if msg.Type == tea.KeyEsc {
		m.dropPrompt()
		return m, nil
	}
	if (kind == inputFilter || kind == inputFind) && p.err != "" {
		return m, nil // not applied: the prompt stays, saying why
	}
	m.dropPrompt()
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
	case inputGet:
		app, path := m.sendApp, value
		if m.packets.focusName(app) {
			m.packets.focused().follow = true
		}
		m.focus = panePackets
		m.layout()
		m.busy++
		l := m.lab
		return m, job("GET over "+app, false, func(ctx context.Context) *lab.Job { return l.Get(ctx, app, path) })
	case inputExport:
		m.busy++
		l := m.lab
		return m, job("export", false, func(context.Context) *lab.Job { return l.Export(value) })
	case inputFind:
		m.search = strings.TrimSpace(value)
		if m.search == "" {
			return m, nil
		}
		return m, m.find(true)
	case inputFilter:
		if m.packets.conv {
			m.packets.conv = false
			m.logLine = "filter set: no longer following one connection"
			m.layout() // the list's columns
		}
		m.packets.filter = strings.TrimSpace(value)
		for _, l := range m.packets.lists {
			l.follow = true
		}
		return m, m.fetch()
	}
	return m, nil
}

// confirmKey answers the question of kind with msg: the question is off
// the stack already.
func (m Model) confirmKey(kind confirmKind, msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch s := msg.String(); {
	case kind == confirmTeardown && (s == "y" || s == "Y"):
		m.busy++
		return m, job("teardown", false, m.lab.Teardown)
	case kind == confirmQuit && (s == "t" || s == "y"):
		m.busy++
		return m, job("teardown", true, m.lab.Teardown)
	case kind == confirmQuit && s == "l" && !m.lab.InProcess():
		m.leftRunning = true // the program says what is left and how to remove it
		return m, tea.Quit
	}
	m.interrupted = false // the quit was called off
	return m, nil
}

// followFlow shows only flow's records, in order, timed from its first one
// (f again, or / with an empty filter, goes back to the whole list).
func (m Model) followFlow(flow wire.Flow) (tea.Model, tea.Cmd) {
	m.packets.conv, m.packets.filter = true, "flow == "+flow.Client.String()
	m.packets.unfolded = false // each connection followed starts folded
	m.logLine = "following " + flow.String() + ": +time from its first record, ↩ a reply's latency (f again leaves)"
	m.rewind()
	m.layout() // the list's columns
	return m, m.fetch()
}

// rewind puts every list at its first row, paused: a new filter's list is
// read from its start.
func (m *Model) rewind() {
	for _, l := range m.packets.lists {
		l.follow = false
		l.top, l.shift, l.cursor = 0, 0, 0
	}
}

// find looks for the next (or previous) record of the focused list that
// matches the search and the filter, from the selected row on.
func (m Model) find(forward bool) tea.Cmd {
	l := m.packets.focused()
	if l == nil {
		return nil
	}
	from := l.first
	if r, ok := m.packets.selected(); ok {
		from = r.Seq
	} else if !forward {
		from = l.next
	}
	return findRecord(m.lab.Wire(), l.app.Name, m.packets.filter, m.search, from, forward)
}

// found puts the list on the record a search found, its row selected.
func (m Model) found(msg foundMsg) (tea.Model, tea.Cmd) {
	if !msg.found {
		m.logLine = fmt.Sprintf("find: no record of %s matches %q", msg.app, m.search)
		if m.packets.filter != "" {
			m.logLine += " among those the filter keeps"
		}
		return m, nil
	}
	if !m.land(msg.app, msg.seq) {
		return m, nil
	}
	m.logLine = fmt.Sprintf("find %q: record %d of %s (n next, N previous)", m.search, msg.seq+1, msg.app)
	if msg.wrapped {
		m.logLine += ", wrapped around"
	}
	return m, m.fetch()
}

// land focuses app's list, paused on record seq, its row selected once
// fetched; false when the lab has no such app.
func (m *Model) land(app string, seq uint64) bool {
	if !m.packets.focusName(app) {
		return false
	}
	m.packets.setActive(m.focus == panePackets) // the cursor shows in the list now focused
	l := m.packets.focused()
	l.follow, l.top, l.shift, l.cursor = false, seq, 0, 0
	l.land = seq + 1
	return true
}

// legs looks for the selected message on the other hops of its way (a
// front, a balancer, a replica): the hop view.
func (m Model) legs(r wire.Record) (tea.Model, tea.Cmd) {
	if r.Kind != wire.KindMessage {
		m.logLine = "legs follow a message (an HTTP request or response, a WebSocket frame); this row is a " + string(r.Kind)
		return m, nil
	}
	hops := lab.Config{Apps: m.opt.Apps}.Legs(r.App)
	if len(hops) < 2 {
		m.logLine = r.App + " has no intermediary before or after it (no upstream, no front): its messages have one leg"
		return m, nil
	}
	m.logLine = fmt.Sprintf("looking for %s record %d on the %d other hops", r.App, r.Seq+1, len(hops)-1)
	return m, fetchLegs(m.lab.Wire(), r, hops)
}

// jump shows a leg in its app's list: the overlays close, and a filter
// that would hide it is cleared.
func (m Model) jump(msg jumpMsg) (tea.Model, tea.Cmd) {
	m.stack = nil
	m.focus = panePackets
	if m.packets.filter != "" {
		m.packets.conv, m.packets.filter = false, ""
		m.rewind()
		m.layout()
	}
	if !m.land(msg.app, msg.seq) {
		return m, nil
	}
	m.logLine = fmt.Sprintf("%s record %d (l: its legs again)", msg.app, msg.seq+1)
	return m, m.fetch()
}

// push opens an overlay on top of the others, sized for where it goes.
func (m *Model) push(o overlay) {
	m.sizeOverlay(o)
	m.stack = append(slices.Clone(m.stack), o)
}

// sizeOverlay gives an overlay the room it covers: the body, or the
// packets' box.
func (m *Model) sizeOverlay(o overlay) {
	switch o.place() {
	case overBody:
		o.SetSize(m.width-4, m.bodyHeight()-2) // inside its border and padding
		return
	case modal:
		o.SetSize(m.width, m.bodyHeight())
		return
	case inFooter:
		o.SetSize(m.width, 2)
		return
	}
	o.SetSize(m.overW, m.overH)
}

// topDetail is the detail view when it is the overlay on top.
func (m Model) topDetail() *detailView {
	if n := len(m.stack); n > 0 {
		d, _ := m.stack[n-1].(*detailView)
		return d
	}
	return nil
}
