package ui

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/table"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/protocol"
)

// pane is the component every pane of the explorer is: it takes its size,
// answers the keys it owns while it has the focus, lists them for the help,
// and renders itself. The model feeds it the lab state it shows; what a
// provider adds (HostInfo.Details, app states) appears without UI changes.
type pane interface {
	SetSize(width, height int)
	Update(msg tea.KeyMsg) tea.Cmd
	View(focused bool) string
	Keys() []key.Binding
}

var (
	_ pane = (*hostPane)(nil)
	_ pane = (*appsPane)(nil)
	_ pane = (*packetsPane)(nil)
)

// hostPane shows the lab host.
type hostPane struct {
	st          styles
	width       int
	height      int
	logs        []string // the provisioning log (vagrant up, provision scripts)
	provider    string
	fingerprint string
	state       lab.State
	reason      string
	host        lab.HostInfo
	// endpoints are the deployed apps' addresses, in the lab's order; once
	// known they replace the provider's port plan (e.g. "any free port").
	endpoints []string
}

func (p *hostPane) SetSize(w, h int)            { p.width, p.height = w, h }
func (p *hostPane) Update(tea.KeyMsg) tea.Cmd   { return nil }
func (p *hostPane) Keys() []key.Binding         { return nil }
func (p *hostPane) View(focused bool) string    { return p.view() }
func (p *hostPane) set(s lab.State, why string) { p.state, p.reason = s, why }

func (p *hostPane) view() string {
	h := p.host
	// Each line has a rank: where the pane is short, the lines of the
	// highest rank go first (the provider is in the header too), so the
	// state, the address and every app's real port stay.
	type line struct {
		text string
		rank int
	}
	var lines []line
	add := func(rank int, texts ...string) {
		for _, t := range texts {
			lines = append(lines, line{t, rank})
		}
	}
	add(0, p.st.title.Render("Lab host"), "state    "+string(p.state))
	if p.reason != "" {
		add(0, p.st.errText.Render("reason   "+p.reason))
	}
	add(3, "provider "+p.provider)
	if h.Provider != "" {
		add(2, "host     "+h.Name)
		add(1, "address  "+h.Address)
		add(2, "os       "+h.OS)
		ports := h.Ports
		if len(p.endpoints) > 0 {
			ports = p.endpoints
		}
		add(1, packWords(ports, "  ", p.width)...)
		for _, kv := range h.Details {
			add(3, fmt.Sprintf("%-8s %s", kv.Key, kv.Value))
		}
	}
	if p.fingerprint != "" {
		add(2, "CA sha256")
		add(2, packWords(strings.SplitAfter(p.fingerprint, ":"), "", p.width-2)...)
		for i := len(lines) - 1; i >= 0 && lines[i].text != "CA sha256"; i-- {
			lines[i].text = "  " + lines[i].text
		}
	}
	if p.height > 0 {
		for rank := 3; rank > 0 && len(lines) > p.height; rank-- {
			for i := len(lines) - 1; i >= 0 && len(lines) > p.height; i-- {
				if lines[i].rank == rank {
					lines = append(lines[:i], lines[i+1:]...)
				}
			}
		}
	}
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		out = append(out, truncate(l.text, p.width))
	}
	if p.state == lab.Provisioning && len(p.logs) > 0 {
		room := max(1, p.height-len(out)-1)
		logs := p.logs
		if len(logs) > room {
			logs = logs[len(logs)-room:]
		}
		out = append(out, p.st.dim.Render("provisioning:"))
		for _, l := range logs {
			out = append(out, truncate(l, p.width))
		}
	}
	return strings.Join(out, "\n")
}

// packWords puts words on as few lines of width as they fit, sep between
// two on a line; a word wider than the line has one of its own.
func packWords(words []string, sep string, width int) []string {
	var out []string
	cur := ""
	for _, w := range words {
		switch {
		case cur == "":
			cur = w
		case lipgloss.Width(cur+sep+w) <= width:
			cur += sep + w
		default:
			out = append(out, cur)
			cur = w
		}
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}

// log keeps the provisioning log's recent lines.
func (p *hostPane) log(line string) {
	p.logs = append(p.logs, line)
	if len(p.logs) > 200 {
		p.logs = p.logs[len(p.logs)-200:]
	}
}

// appsPane shows the apps (containers, or in-process servers) in a table;
// the selected one's recent log lines show under it while focused.
type appsPane struct {
	st       styles
	keys     keyMap
	tbl      table.Model
	width    int
	height   int
	local    bool
	now      func() time.Time
	hostAddr string
	apps     map[string]lab.AppStatus
	logs     map[string][]string
	order    map[string]int   // the lab's apps in the configuration's order
	tints    []lipgloss.Style // the rows' colours, by state (k9s's habit)
	names    []string         // the rows' apps, in the table's order
	// live are the numbers of each app's last scrape of /metrics; empty
	// until the first one, and again once the lab is not running.
	live map[string]liveNumbers
}

// liveNumbers are what the pane shows of one app's /metrics.
type liveNumbers struct {
	m     lab.AppMetrics
	got   bool // m is from a scrape that answered (now or before)
	stale bool // the last scrape did not answer: m is older
	none  bool // the app's kind serves no /metrics
}

func newAppsPane(st styles, keys keyMap, local bool, now func() time.Time, apps []lab.App) *appsPane {
	order := make(map[string]int, len(apps))
	for i, a := range apps {
		order[a.Name] = i
	}
	return &appsPane{st: st, keys: keys, local: local, now: now, order: order,
		tbl:  table.New(table.WithStyles(st.table)),
		apps: map[string]lab.AppStatus{}, logs: map[string][]string{}}
}

// SetSize fits the table: room for log lines under it when there is some.
func (p *appsPane) SetSize(w, h int) {
	p.width, p.height = w, h
	p.tbl.SetWidth(w)
	logLines := min(5, max(0, h-len(p.apps)-4))
	th := max(3, h-logLines-1)
	if len(p.live) > 0 {
		// The rows and no more (title and rule take two lines): the live
		// numbers go under them.
		th = max(3, min(th, len(p.apps)+2))
	}
	p.tbl.SetHeight(th)
	p.refresh()
}

// hasRoomForLive says whether the pane can show live numbers under its
// table (two lines at least). Where it cannot (80×24), the explorer does
// not scrape: each scrape is an HTTP exchange in every app's packet list.
func (p *appsPane) hasRoomForLive() bool { return p.height-(len(p.apps)+2)-1 >= 2 }

// setLive takes a round of scrapes; it reports whether the pane's layout
// changes (the first numbers make room for themselves).
func (p *appsPane) setLive(res metricsMsg) bool {
	first := len(p.live) == 0
	if p.live == nil {
		p.live = map[string]liveNumbers{}
	}
	for name, r := range res {
		n := p.live[name]
		switch {
		case errors.Is(r.err, lab.ErrNoMetrics):
			n = liveNumbers{none: true}
		case r.err != nil:
			n.stale, n.none = true, false
		default:
			n = liveNumbers{m: r.m, got: true}
		}
		p.live[name] = n
	}
	return first && len(p.live) > 0
}

// clearLive forgets the numbers (the lab is not running); it reports
// whether there were any.
func (p *appsPane) clearLive() bool {
	had := len(p.live) > 0
	p.live = nil
	return had
}

// liveLines are the live numbers, one line per app in the table's order.
func (p *appsPane) liveLines(room int) []string {
	if len(p.live) == 0 || room < 2 {
		return nil
	}
	w := 0
	for _, n := range p.names {
		w = max(w, len(n))
	}
	lines := []string{p.st.dim.Render("live (" + protocol.MetricsPath + ", every " + metricsEvery.String() + ")")}
	for _, name := range p.names {
		if len(lines) >= room {
			break
		}
		n, ok := p.live[name]
		if !ok {
			continue
		}
		a := p.apps[name]
		head := fmt.Sprintf("%-*s ", w, name)
		var line string
		switch {
		case n.none:
			line = head + p.st.dim.Render("no "+protocol.MetricsPath+" ("+a.Kind+")")
		case !n.got:
			line = head + p.st.dim.Render("no answer")
		default:
			m := n.m
			line = head + fmt.Sprintf("%s req", count(m.Requests))
			switch {
			case a.Protocol.WebSocket():
				line += fmt.Sprintf(" · %s open · %s in %s out · close %s/%s", count(m.WSOpen), count(m.MessagesIn), count(m.MessagesOut),
					count(m.ClosesSent), count(m.ClosesReceived))
			case m.Calls > 0 || m.GRPCIn > 0 || m.GRPCOut > 0: // gRPC: its calls, not HTTP/1.1 requests
				line = head + fmt.Sprintf("%s calls · %s streams open · %s in %s out", count(m.Calls), count(m.StreamsOpen), count(m.GRPCIn), count(m.GRPCOut))
			case m.Events > 0 || m.StreamsOpen > 0:
				line += fmt.Sprintf(" · %s streams open · %s events", count(m.StreamsOpen), count(m.Events))
			}
			if n.stale {
				line += p.st.dim.Render(" (stale)")
			}
		}
		lines = append(lines, truncate(line, p.width))
	}
	return lines
}

// count writes a counter's value short: 999, 1.2k, 3.4M.
func count(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func (p *appsPane) setFocus(on bool) {
	if on {
		p.tbl.Focus()
	} else {
		p.tbl.Blur()
	}
}

// Update moves the selection.
func (p *appsPane) Update(msg tea.KeyMsg) tea.Cmd {
	var cmd tea.Cmd
	p.tbl, cmd = p.tbl.Update(msg)
	return cmd
}

// Keys lists the pane's keys.
func (p *appsPane) Keys() []key.Binding { return []key.Binding{p.keys.Up, p.keys.Down} }

func (p *appsPane) move(n int) {
	if n < 0 {
		p.tbl.MoveUp(-n)
	} else {
		p.tbl.MoveDown(n)
	}
}

// selected is the name of the selected app, or "".
func (p *appsPane) selected() string {
	if row := p.tbl.SelectedRow(); row != nil {
		return row[0]
	}
	return ""
}

// log keeps an app's recent log lines.
func (p *appsPane) log(source, line string) {
	logs := append(p.logs[source], line)
	if len(logs) > 50 {
		logs = logs[len(logs)-50:]
	}
	p.logs[source] = logs
}

// refresh rebuilds the rows from the apps' statuses.
func (p *appsPane) refresh() {
	names := make([]string, 0, len(p.apps))
	for n := range p.apps {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		oi, iok := p.order[names[i]]
		oj, jok := p.order[names[j]]
		switch {
		case iok && jok:
			return oi < oj
		case iok != jok:
			return iok // the configuration's apps first
		}
		return names[i] < names[j]
	})
	rows := make([]table.Row, 0, len(names))
	p.tints = p.tints[:0]
	p.names = names
	for _, n := range names {
		a := p.apps[n]
		p.tints = append(p.tints, p.stateStyle(a))
		age := "-"
		if !a.Started.IsZero() && a.State == lab.AppRunning {
			age = shortDuration(p.now().Sub(a.Started))
		}
		ports := a.Endpoint
		if host, port, err := net.SplitHostPort(a.Endpoint); err == nil && host == p.hostAddr {
			ports = ":" + port // the address is in the host pane
		}
		if ports == "" {
			ports = strings.Join(a.Ports, ",")
		}
		image := a.Image
		if strings.HasPrefix(image, "in-process") {
			image = "in-proc"
		}
		rows = append(rows, table.Row{a.Name, image, a.State, a.Health, ports, fmt.Sprint(a.Restarts), age})
	}
	// The columns fit what they hold now (an image's name, "unhealthy",
	// a port of five digits).
	cols, rows := appColumns(p.width, rows)
	p.tbl.SetRows(nil) // rows must match the new columns
	p.tbl.SetColumns(cols)
	p.tbl.SetRows(rows)
	if p.tbl.Cursor() < 0 && len(rows) > 0 {
		// SetRows(nil) on a resize left the cursor at -1, and the table
		// then renders one row fewer than it has room for.
		p.tbl.SetCursor(0)
	}
}

// stateStyle tints an app's row: running and healthy green, unhealthy
// yellow, exited or missing red, the rest (created, stopped) faint.
func (p *appsPane) stateStyle(a lab.AppStatus) lipgloss.Style {
	switch {
	case a.State == lab.AppExited || a.State == lab.AppMissing:
		return p.st.failed
	case a.State == lab.AppRunning && a.Health == "unhealthy":
		return p.st.warn
	case a.State == lab.AppRunning:
		return p.st.ok
	}
	return p.st.dim
}

// View renders the table, and the selected app's logs when focused.
func (p *appsPane) View(focused bool) string {
	title := p.st.title.Render("Containers (in-process apps)")
	if !p.local {
		title = p.st.title.Render("Containers")
	}
	// The cursor's row keeps the selection's style (the apps table shows
	// its cursor focused or not).
	parts := []string{title, tint(p.tbl.View(), p.tbl.Height(), p.tints, p.tbl.Cursor())}
	live := p.liveLines(p.height - p.tbl.Height() - 1)
	parts = append(parts, live...)
	if name := p.selected(); name != "" && focused {
		logs := p.logs[name]
		n := max(0, p.height-p.tbl.Height()-len(live)-3)
		if len(logs) > n {
			logs = logs[len(logs)-n:]
		}
		parts = append(parts, p.st.dim.Render("logs of "+name+":"))
		for _, l := range logs {
			parts = append(parts, truncate(l, p.width))
		}
	}
	return strings.Join(parts, "\n")
}
