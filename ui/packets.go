package ui

import (
	"fmt"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/table"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/wire"
)

// appList is one app's packet list: a window onto the store's ring for the
// app. Only the rows on screen are fetched and formatted.
type appList struct {
	app      lab.App
	table    table.Model
	rows     []wire.Record // the window on screen
	counters wire.Counters
	first    uint64 // ring span [first, next) in Seq
	next     uint64
	total    int  // with a filter: how many records match
	start    int  // the window's first row: its index among those (0: the oldest held)
	follow   bool // stick to the newest row
	top      uint64
	shift    int    // rows to move the window from top, in the list's own rows (filtered or not)
	held     bool   // paused rows kept on screen after the ring evicted them
	land     uint64 // Seq+1 of a row to put the cursor on once fetched (0: none)
	base     time.Time
	prev     time.Time       // the row before the window's (the top row's Δ)
	answers  []time.Duration // per row in a conversation: the time since the message it answers (-1: none)
	span     time.Duration   // the ring's, oldest to newest
	cursor   int
}

// listRequest is what a list wants fetched.
type listRequest struct {
	app    string
	from   uint64 // Seq of the first row (ignored when following)
	shift  int    // then this many rows later (negative: earlier)
	follow bool
	n      int
	filter string
	conv   bool // one connection, followed: its replies are timed
	fold   bool // and its setup folded into its first row
}

// listData is what a fetch brought back for one list.
type listData struct {
	app      string
	rows     []wire.Record
	counters wire.Counters
	first    uint64
	next     uint64
	total    int
	start    int       // index of rows[0] among the list's rows
	base     time.Time // the first matching record's time (a filter's first row)
	prev     time.Time // the time of the list's row before rows[0] (zero: none)
	answers  []time.Duration
	span     time.Duration // from the oldest record the ring holds to the newest
}

// packetsMsg carries freshly fetched windows; unchanged says nothing was
// fetched because nothing changed since the last fetch.
type packetsMsg struct {
	lists     []listData
	version   uint64
	reqs      string // the windows asked for, as fetched
	unchanged bool
}

// fetch reads the windows the lists want from the store; it runs as a
// tea.Cmd, never inside Update or View. See fetchChanged for since.
func (p *packetsPane) fetch(store *wire.Store, since *uint64) tea.Cmd {
	return fetchChanged(store, p.idx, p.requests(), since)
}

// fetchChanged reads the windows reqs ask for, or does nothing when the
// store is still at version *since (a refresh tick with no new records costs a look, not a
// copy). With a filter, idx holds what matched so far: a frame matches only
// the records new since the last.
func fetchChanged(store *wire.Store, idx *filterIndex, reqs []listRequest, since *uint64) tea.Cmd {
	return func() tea.Msg {
		v, key := store.Version(), fmt.Sprint(reqs)
		if since != nil && v == *since {
			return packetsMsg{version: v, reqs: key, unchanged: true}
		}
		msg := packetsMsg{version: v, reqs: key}
		for _, r := range reqs {
			d := listData{app: r.app, counters: store.Counters(r.app)}
			d.first, d.next = store.Span(r.app)
			if ends := store.Pick(r.app, []uint64{d.first, max(d.first, d.next-1)}); len(ends) == 2 {
				d.span = ends[1].Time.Sub(ends[0].Time)
			}
			if r.filter != "" {
				idx.window(store, r, &d)
			} else {
				from := max(int64(r.from)+int64(r.shift), int64(d.first))
				if r.follow || from+int64(r.n) > int64(d.next) {
					from = int64(d.next - min(d.next, uint64(r.n)))
				}
				d.rows = store.Window(r.app, uint64(from), r.n)
				d.total = int(d.next - d.first)
				if len(d.rows) > 0 {
					d.start = int(d.rows[0].Seq - d.first)
					if s := d.rows[0].Seq; s > d.first {
						if before := store.Pick(r.app, []uint64{s - 1}); len(before) == 1 {
							d.prev = before[0].Time // the top row's Δ
						}
					}
				}
			}
			msg.lists = append(msg.lists, d)
		}
		return msg
	}
}

// shortDur prints a duration for a narrow column: µs, ms or s.
func shortDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.3fs", d.Seconds())
}

// compactDur prints a duration in at most 6 cells, 3 significant
// digits: 87µs, 2.05ms, 31.2ms, 412ms, 1.25s.
func compactDur(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case ms < 10:
		return fmt.Sprintf("%.2fms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1fms", ms)
	case d < time.Second:
		return fmt.Sprintf("%.0fms", ms)
	case d < 100*time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return fmt.Sprintf("%.0fs", d.Seconds())
}

// packetsPane shows one list per app of the lab, side by side when they
// fit, as tabs when not.
type packetsPane struct {
	// conv: the filter follows one connection (f): times are relative,
	// and its setup is folded into one row unless unfolded (z).
	conv     bool
	unfolded bool
	lists    []*appList
	focus    int
	active   bool // the pane has the focus: the focused list shows its cursor
	filter   string
	cols     []table.Column // the lists' columns (listColumns)
	width    int
	height   int
	keys     keyMap
	st       styles
	idx      *filterIndex // the filter's matches so far (the fetches')
}

func newPacketsPane(st styles, keys keyMap, apps []lab.App) *packetsPane {
	p := &packetsPane{keys: keys, st: st, idx: newFilterIndex()}
	for _, a := range apps {
		t := table.New(table.WithFocused(true), table.WithStyles(st.table))
		p.lists = append(p.lists, &appList{app: a, table: t, follow: true})
	}
	return p
}

// minColumn is the narrowest an app's column may be before the pane
// switches to tabs.
const minColumn = 44

func (p *packetsPane) wide() bool { return len(p.lists) > 1 && p.width >= len(p.lists)*minColumn }

// focusApp shows the i-th app's list (0-based); false when there is none.
func (p *packetsPane) focusApp(i int) bool {
	if i < 0 || i >= len(p.lists) {
		return false
	}
	p.focus = i
	return true
}

// focusName shows the named app's list.
func (p *packetsPane) focusName(name string) bool {
	for i, l := range p.lists {
		if l.app.Name == name {
			return p.focusApp(i)
		}
	}
	return false
}

// setActive shows the cursor in the focused list only (styles change only
// here, not at every frame: a table re-renders on every setter).
func (p *packetsPane) setActive(active bool) {
	p.active = active
	for i, l := range p.lists {
		l.table.SetStyles(p.st.tableFor(active && i == p.focus))
	}
}

// SetSize implements pane.
func (p *packetsPane) SetSize(w, h int) {
	p.width, p.height = w, h
	cols := 1
	if p.wide() {
		cols = len(p.lists)
	}
	colW := w / cols
	p.cols = listColumns(colW-2, p.conv)
	for _, l := range p.lists {
		l.table.SetRows(nil) // the rows must match the new columns
		l.table.SetColumns(p.cols)
		l.table.SetRows(p.tableRows(l)) // the window held, in them
		l.table.SetWidth(colW - 2)
		// The list's heading and mode line take two lines; the table's
		// own column titles two more: the rest are rows, all on screen.
		l.table.SetHeight(max(3, p.listHeight()-2))
		l.table.SetCursor(l.cursor)
	}
}

// listColumns are a list's columns in w cells: the record's number and
// the Δ from the row before where there is room, the time (+ from the
// connection's first record when one is followed), the reply's latency in
// a conversation (↩: since the request or message it answers), the
// direction and the summary, which takes the rest.
func listColumns(w int, conv bool) []table.Column {
	var cols []table.Column
	// Where the clock does not fit beside them, the number and the Δ
	// stay: they are what a reader refers to and compares.
	wide := w >= 66
	numbered := wide || w >= 40 && !conv // (a conversation keeps its +time and replies)
	if numbered {
		cols = append(cols, table.Column{Title: "no.", Width: 6})
	}
	switch {
	case conv:
		cols = append(cols, table.Column{Title: "+time", Width: 7})
	case wide || !numbered:
		cols = append(cols, table.Column{Title: "time", Width: 12})
	}
	if numbered && (wide || !conv) {
		cols = append(cols, table.Column{Title: "Δ", Width: 6})
	}
	if conv {
		cols = append(cols, table.Column{Title: "reply", Width: 7})
	}
	cols = append(cols, table.Column{Title: "dir", Width: 3})
	used := 0
	for _, c := range cols {
		used += c.Width + 1 // the cell's padding
	}
	return append(cols, table.Column{Title: "summary", Width: max(10, w-used-1)})
}

// listHeight is the height of one list: all of the pane, less the tabs
// line when the lists are tabs.
func (p *packetsPane) listHeight() int {
	if p.wide() {
		return p.height
	}
	return p.height - 1 // the tabs
}

// rowsShown is how many rows fit a list.
func (p *packetsPane) rowsShown() int { return max(1, p.listHeight()-4) }

// visible lists the lists on screen.
func (p *packetsPane) visible() []*appList {
	if p.wide() || len(p.lists) == 0 {
		return p.lists
	}
	return []*appList{p.lists[p.focus]}
}

// requests says what to fetch for the lists on screen.
func (p *packetsPane) requests() []listRequest {
	var out []listRequest
	for _, l := range p.visible() {
		out = append(out, listRequest{app: l.app.Name, from: l.top, shift: l.shift, follow: l.follow, n: p.rowsShown(), filter: p.filter,
			conv: p.conv, fold: p.conv && !p.unfolded})
	}
	return out
}

// apply takes fetched windows.
func (p *packetsPane) apply(msg packetsMsg) {
	for _, d := range msg.lists {
		for _, l := range p.lists {
			if l.app.Name != d.app {
				continue
			}
			if !l.follow && l.shift == 0 && len(l.rows) > 0 && l.top < d.first {
				// Paused, and the ring has moved past the rows on screen:
				// they stay (a copy), so the view holds still under the
				// reader; scrolling or G takes it on from what is held.
				l.counters, l.first, l.next, l.total, l.span = d.counters, d.first, d.next, d.total, d.span
				l.held = true
				continue
			}
			l.held = false
			l.rows, l.counters, l.first, l.next, l.total, l.start, l.base, l.span = d.rows, d.counters, d.first, d.next, d.total, d.start, d.base, d.span
			l.prev, l.answers = d.prev, d.answers
			if l.follow || l.cursor >= len(l.rows) {
				l.cursor = max(0, len(l.rows)-1)
			}
			if l.land != 0 {
				for i := range l.rows {
					if l.rows[i].Seq == l.land-1 {
						l.cursor = i
					}
				}
				l.land = 0
			}
			if len(l.rows) > 0 && !l.follow {
				l.top = l.rows[0].Seq
			}
			l.shift = 0 // the window has moved
			l.table.SetRows(p.tableRows(l))
			l.table.SetCursor(l.cursor)
		}
	}
}

// tableRows formats a list's rows for its columns.
func (p *packetsPane) tableRows(l *appList) []table.Row {
	rows := make([]table.Row, len(l.rows))
	for i := range l.rows {
		r := &l.rows[i]
		prev := l.prev
		if i > 0 {
			prev = l.rows[i-1].Time
		}
		dir := "→"
		if r.Dir == wire.ServerToClient {
			dir = "←"
		}
		text := r.Text()
		if r.Decrypted {
			text = "[dec] " + text // recovered with the lab's TLS keys
		}
		if r.Kind == wire.KindError {
			text = "[!] " + text
		}
		row := make(table.Row, 0, len(p.cols))
		for _, c := range p.cols {
			switch c.Title {
			case "no.":
				row = append(row, fmt.Sprint(r.Seq+1))
			case "time":
				row = append(row, r.Time.Format("15:04:05.000"))
			case "+time":
				row = append(row, "+"+compactDur(r.Time.Sub(l.base)))
			case "Δ":
				d := ""
				if !prev.IsZero() {
					d = compactDur(r.Time.Sub(prev))
				}
				row = append(row, d)
			case "reply":
				a := ""
				if i < len(l.answers) && l.answers[i] >= 0 {
					a = "↩" + compactDur(l.answers[i])
				}
				row = append(row, a)
			case "dir":
				row = append(row, dir)
			default:
				row = append(row, text)
			}
		}
		rows[i] = row
	}
	return rows
}

// focused is the list with the focus (nil in a lab without apps).
func (p *packetsPane) focused() *appList {
	if len(p.lists) == 0 {
		return nil
	}
	return p.lists[p.focus]
}

// selected returns the record under the cursor of the focused list.
func (p *packetsPane) selected() (wire.Record, bool) {
	l := p.focused()
	if l == nil || l.cursor < 0 || l.cursor >= len(l.rows) {
		return wire.Record{}, false
	}
	return l.rows[l.cursor], true
}

// scroll moves the focused list by n rows (negative: up, towards older).
// Scrolling up leaves follow mode, so new packets do not move the list.
func (p *packetsPane) scroll(n int) {
	l := p.focused()
	if l == nil || len(l.rows) == 0 {
		return
	}
	l.cursor += n
	// A move past the window's edge is added to what is still to be
	// fetched (keys typed faster than the fetches come back all count).
	if l.cursor < 0 {
		// Past the top of the window: the next fetch moves it up by as
		// many rows (of this list: a filter's rows, when filtering).
		l.top, l.shift = l.rows[0].Seq, l.shift+l.cursor
		l.cursor = 0
		l.follow = false
	} else if l.cursor >= len(l.rows) {
		over := l.cursor - len(l.rows) + 1
		l.top, l.shift = l.rows[0].Seq, l.shift+over
		l.cursor = len(l.rows) - 1
		if p.filter == "" && l.rows[len(l.rows)-1].Seq+uint64(l.shift) >= l.next-1 {
			l.follow = true
		}
	} else if n < 0 {
		l.follow = false
		l.top = l.rows[0].Seq
	}
	l.table.SetCursor(l.cursor)
}

// Keys lists the pane's keys.
func (p *packetsPane) Keys() []key.Binding {
	k := p.keys
	return []key.Binding{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom, k.Enter, k.Follow, k.Filter, k.ShowApp}
}

// Update handles the keys of the focused pane; when the lists need a new
// window it asks for one.
func (p *packetsPane) Update(msg tea.KeyMsg) tea.Cmd {
	if p.scrollKey(msg) {
		return func() tea.Msg { return refetch{} }
	}
	return nil
}

func (p *packetsPane) scrollKey(msg tea.KeyMsg) (refetch bool) {
	l := p.focused()
	if l == nil {
		return false
	}
	page := p.rowsShown()
	switch {
	case key.Matches(msg, p.keys.Up):
		p.scroll(-1)
	case key.Matches(msg, p.keys.Down):
		p.scroll(1)
	case key.Matches(msg, p.keys.PageUp):
		p.scroll(-page)
	case key.Matches(msg, p.keys.PageDown):
		p.scroll(page)
	case key.Matches(msg, p.keys.Top):
		l.follow, l.top, l.shift, l.cursor = false, l.first, 0, 0
	case key.Matches(msg, p.keys.Bottom):
		l.follow, l.shift = true, 0
	default:
		return false
	}
	return true
}

// View implements pane.
func (p *packetsPane) View(focused bool) string {
	lists := p.visible()
	if len(lists) == 0 {
		return p.st.dim.Render("this lab has no apps")
	}
	colW := p.width / len(lists)
	var cols []string
	for _, l := range lists {
		cols = append(cols, p.listView(l, colW))
	}
	body := lipgloss.JoinHorizontal(lipgloss.Top, cols...)
	if p.wide() {
		return body
	}
	var tabs []string
	for i, l := range p.lists {
		label := fmt.Sprintf(" %d %s ", i+1, l.app.Name)
		if i >= 9 {
			label = fmt.Sprintf(" %s ", l.app.Name) // number keys reach the first nine
		}
		if i == p.focus {
			if p.st.mono {
				label = "[" + label[1:len(label)-1] + "]" // seen without reverse video too
			}
			tabs = append(tabs, p.st.tabActive.Render(label))
		} else {
			tabs = append(tabs, p.st.tab.Render(label))
		}
	}
	return lipgloss.JoinVertical(lipgloss.Left, lipgloss.JoinHorizontal(lipgloss.Top, tabs...), body)
}

func (p *packetsPane) listView(l *appList, w int) string {
	c := l.counters
	head := fmt.Sprintf("%s  pkts %d  bytes %s  msgs %d", l.app.Name, c.Packets, human(c.Bytes), c.Messages)
	if l.app.Name != string(l.app.Protocol) {
		head = fmt.Sprintf("%s (%s)  pkts %d  bytes %s  msgs %d", l.app.Name, l.app.Protocol, c.Packets, human(c.Bytes), c.Messages)
	}
	if c.Errors > 0 {
		head += fmt.Sprintf("  err %d", c.Errors)
	}
	if c.Dropped > 0 {
		head += fmt.Sprintf("  dropped %d", c.Dropped) // by capture's queue, before decoding
	}
	mode := "follow"
	if !l.follow {
		// (a move past the window's edge counts before its rows come)
		mode = fmt.Sprintf("paused %d/%d", max(1, min(l.start+l.cursor+1+l.shift, l.total)), l.total)
		if l.held {
			mode = "paused, held: the ring moved on (G follows)"
		}
	}
	if p.filter != "" {
		mode += fmt.Sprintf("  filter %q: %d", p.filter, l.total)
	}
	if held := l.next - l.first; held > 0 {
		// What the ring holds, and over how long: how far back one can go.
		mode += fmt.Sprintf("  ring %d rows, %s", held, shortDur(l.span))
		if l.counters.Evicted > 0 {
			mode += fmt.Sprintf(" (%d older gone)", l.counters.Evicted)
		}
	}
	head = truncate(head, w-2)
	sub := p.st.dim.Render(truncate(mode, w-2))
	tints := make([]lipgloss.Style, len(l.rows))
	for i := range l.rows {
		tints[i] = p.rowStyle(&l.rows[i])
	}
	cursor := l.cursor
	if !p.active || l != p.focused() {
		cursor = -1 // no selection shown (tableFor): every row keeps its tint
	}
	rows := tint(l.table.View(), l.table.Height(), tints, cursor)
	return p.st.plain.Width(w).MaxWidth(w).Render(lipgloss.JoinVertical(lipgloss.Left, p.st.title.Render(head), sub, rows))
}

// rowStyle tints a record's row: errors red, TCP segments faint, messages
// by direction.
func (p *packetsPane) rowStyle(r *wire.Record) lipgloss.Style {
	switch {
	case r.Kind == wire.KindError:
		return p.st.failed
	case r.Kind == wire.KindPacket:
		return p.st.segment
	case r.Dir == wire.ServerToClient:
		return p.st.toClient
	}
	return p.st.toServer
}

func human(n uint64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%.0fM", float64(n)/(1<<20))
	case n >= 10<<10:
		return fmt.Sprintf("%.0fk", float64(n)/(1<<10))
	}
	return fmt.Sprint(n)
}

func truncate(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if lipgloss.Width(s) <= w {
		return s
	}
	r := []rune(s)
	for len(r) > 0 && lipgloss.Width(string(r)) > w-1 {
		r = r[:len(r)-1]
	}
	return string(r) + "…"
}
