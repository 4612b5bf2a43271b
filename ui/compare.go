package ui

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
)

// compareView is the comparison overlay: the lab's report — the same one
// --headless prints — drawn per app as bars a person reads at a glance.
// It owns its keys (r runs the probes again, esc closes) and is fed the
// probe events and the report as they arrive.
type compareView struct {
	st       styles
	width    int
	height   int
	running  bool
	progress string                  // "probing ws (3/4)"
	results  map[string]probe.Result // as the probe events arrive
	report   *lab.Report             // the last complete report
	apps     []lab.App
	offset   int // the first line shown: the figures scroll when they do not fit
	// live are every app's wire counters, read while the comparison is
	// open (nil: capture is off, or nothing was read yet).
	live      map[string]wire.Counters
	liveMoved bool // the last setLive changed them
}

func newCompareView(st styles, apps []lab.App) *compareView {
	return &compareView{st: st, apps: apps, results: map[string]probe.Result{}}
}

// compareKeys are the overlay's own keys.
var compareKeys = struct{ Rerun, Close, Down, Up key.Binding }{
	Rerun: key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "measure again")),
	Close: key.NewBinding(key.WithKeys("esc", "C", "q"), key.WithHelp("esc", "close")),
	Down:  key.NewBinding(key.WithKeys("down", "j", "pgdown", " "), key.WithHelp("↓/j", "scroll")),
	Up:    key.NewBinding(key.WithKeys("up", "k", "pgup"), key.WithHelp("↑/k", "scroll back")),
}

// scroll moves the figures by one line (a page for pgup/pgdown).
func (c *compareView) scroll(msg string) {
	n := 1
	if msg == "pgdown" || msg == "pgup" || msg == " " {
		n = max(1, c.height-2)
	}
	if msg == "up" || msg == "k" || msg == "pgup" {
		n = -n
	}
	c.offset = max(0, c.offset+n) // View keeps it within the lines
}

func (c *compareView) SetSize(w, h int) { c.width, c.height = w, h }

// rerunMsg asks the root to run the probes again (r in the comparison).
type rerunMsg struct{}

// place implements overlay: the comparison covers the body.
func (c *compareView) place() placement { return overBody }

// Keys implements overlay.
func (c *compareView) Keys() []key.Binding {
	return []key.Binding{compareKeys.Rerun, compareKeys.Down, compareKeys.Up, compareKeys.Close}
}

// passes implements passer: a key of the explorer's (not the comparison's)
// closes it and acts.
func (c *compareView) passes(msg tea.KeyMsg) bool {
	for _, k := range c.Keys() {
		if key.Matches(msg, k) {
			return false
		}
	}
	return true
}

// Update implements overlay.
func (c *compareView) Update(msg tea.KeyMsg) (overlay, tea.Cmd) {
	switch {
	case key.Matches(msg, compareKeys.Rerun):
		return c, func() tea.Msg { return rerunMsg{} }
	case key.Matches(msg, compareKeys.Close):
		return nil, nil
	case key.Matches(msg, compareKeys.Down), key.Matches(msg, compareKeys.Up):
		c.scroll(msg.String())
	}
	return c, nil
}

// apply takes the lab events the comparison is made of.
func (c *compareView) apply(e lab.Event) {
	switch e := e.(type) {
	case lab.ProgressEvent:
		if e.Op == "probe" {
			c.running = true
			c.progress = fmt.Sprintf("measuring %s (%d/%d)", e.Step, e.Done+1, e.Total)
		}
	case lab.ProbeEvent:
		c.results[e.Result.App] = e.Result
	case lab.ReportEvent:
		r := e.Report
		c.report, c.running, c.progress = &r, false, ""
	}
}

// row is one app's figures, from the report when there is one (wire
// figures included), else from the probe results so far.
type compareRow struct {
	app lab.App
	res probe.Result
	rep *lab.AppReport
}

func (c *compareView) rows() []compareRow {
	var out []compareRow
	for _, a := range c.apps {
		r := compareRow{app: a}
		if c.report != nil {
			if ar, ok := c.report.Apps[a.Name]; ok {
				r.rep, r.res = &ar, ar.Result
			}
		}
		if res, ok := c.results[a.Name]; ok && (r.rep == nil || c.running) {
			r.res = res
		}
		out = append(out, r)
	}
	return out
}

// writeHops adds, for each app reached through intermediaries, its hops:
// each hop's setup and round trip, what it adds over the hops behind it
// (drawn), where it hands on, and which replicas served the probe.
func (c *compareView) writeHops(b *strings.Builder, rows []compareRow, nameW int) {
	var maxAdded float64
	for _, r := range rows {
		if r.rep != nil {
			for _, h := range r.rep.Hops {
				maxAdded = math.Max(maxAdded, h.AddedRTTMs)
			}
		}
	}
	barW := max(6, min(24, c.width-nameW-60))
	for _, r := range rows {
		if r.rep == nil || len(r.rep.Hops) == 0 {
			continue
		}
		b.WriteString("\n" + c.st.title.Render(fmt.Sprintf("Through %s, hop by hop  (rtt p50, ms: each hop's own, and ▇ what it adds)", r.app.Name)) + "\n")
		for _, h := range r.rep.Hops {
			to := "answers"
			if len(h.Upstream) > 0 {
				to = "→ " + strings.Join(h.Upstream, ", ")
			}
			var reps []string
			for name, n := range h.Replicas {
				reps = append(reps, fmt.Sprintf("%s×%d", name, n))
			}
			slices.Sort(reps)
			added := ""
			if len(h.Upstream) > 0 {
				added = fmt.Sprintf("%+7.3f", h.AddedRTTMs)
			}
			fmt.Fprintf(b, "%-*s %-9s %7.3f %-7s %-*s %s", nameW, h.App, h.Kind, h.RTTP50Ms, added, barW, bar(h.AddedRTTMs, maxAdded, barW), to)
			if len(reps) > 0 {
				b.WriteString("  served by " + strings.Join(reps, " "))
			}
			b.WriteString("\n")
		}
	}
}

// bar draws v of max as a bar w cells wide (eighths for the last cell).
func bar(v, max float64, w int) string {
	if max <= 0 || v <= 0 || w <= 0 || math.IsNaN(v) {
		return ""
	}
	cells := v / max * float64(w)
	full := int(cells)
	out := strings.Repeat("█", min(full, w))
	if frac := cells - float64(full); full < w && frac > 0 {
		out += string([]rune(" ▏▎▍▌▋▊▉")[int(frac*8)])
	}
	return out
}

// barScale is the value a full bar stands for: the largest, unless one
// value is far above the rest (a slow outlier), which would flatten every
// other bar to nothing: then four times the median, and the outlier's bar
// ends in » (off the scale).
func barScale(vals []float64) float64 {
	var vs []float64
	for _, v := range vals {
		if v > 0 && !math.IsNaN(v) {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return 0
	}
	slices.Sort(vs)
	top := vs[len(vs)-1]
	if len(vs) >= 3 {
		if med := vs[len(vs)/2]; top > 4*med {
			return 4 * med
		}
	}
	return top
}

// scaledBar is bar on a scale that may be exceeded: such a value's bar is
// full and ends in ».
func scaledBar(v, scale float64, w int) string {
	if scale > 0 && v > scale*1.0001 {
		return strings.Repeat("█", max(0, w-1)) + "»"
	}
	return bar(v, scale, w)
}

// setLive takes the wire counters of every app, read from the store while
// the comparison is open: its wire figures are live.
func (c *compareView) setLive(live map[string]wire.Counters) {
	c.liveMoved = !maps.Equal(c.live, live)
	c.live = live
}

// section is one block of the comparison: a title and its lines.
type section struct {
	title string
	lines []string
}

// View draws the figures: setup split TCP/TLS/first request or upgrade,
// RTT p50 and p99, throughput, bytes per message and, when captured, what
// the wire carries per message — live, from the capture's counters. Each
// app has its colour; a wide screen gets two columns of sections.
func (c *compareView) View() string {
	hint := "the figures --headless prints · r measures again · j/k scroll · esc closes"
	if c.width < 100 {
		hint = "as --headless prints · r again · j/k scroll · esc closes"
	}
	title := c.st.title.Render("Comparison") + "  " + c.st.dim.Render(truncate(hint, c.width-12))
	if c.running {
		title += "\n" + c.st.warn.Render(truncate(c.progress, c.width))
	}
	rows := c.rows()
	if len(rows) == 0 {
		return title + "\n\nthis lab has no apps"
	}
	measured := false
	for _, r := range rows {
		measured = measured || r.res.App != ""
	}
	// Where the client ran: the figures are what a client in that place
	// sees (a separate process, unless the lab file says in-process).
	var clients []string
	for _, r := range rows {
		if r.res.Client != "" && !slices.Contains(clients, r.res.Client) {
			clients = append(clients, r.res.Client)
		}
	}
	if len(clients) > 0 {
		title += "\n" + c.st.dim.Render(truncate("client: "+strings.Join(clients, ", "), c.width))
	}
	cols := 1
	if c.width >= 150 {
		cols = 2
	}
	colW := (c.width - 3*(cols-1)) / cols
	var secs []section
	if measured {
		secs = append(secs, c.probeSections(rows, colW)...)
	} else if !c.running {
		secs = append(secs, section{title: "Nothing measured yet", lines: []string{c.st.dim.Render(truncate("r runs the probes (the lab must be running)", colW))}})
	}
	if w := c.wireSection(rows, colW); len(w.lines) > 0 {
		secs = append(secs, w)
	}
	if h := c.hopSections(rows, colW); len(h) > 0 {
		secs = append(secs, h...)
	}
	render := func(ss []section) []string {
		var out []string
		for _, s := range ss {
			out = append(out, c.st.title.Render(truncate(s.title, colW)))
			out = append(out, s.lines...)
		}
		return out
	}
	var body []string
	if cols == 1 {
		body = render(secs)
	} else {
		// Two columns, balanced by lines.
		total := 0
		for _, s := range secs {
			total += len(s.lines) + 1
		}
		split, acc := len(secs), 0
		for i, s := range secs {
			if acc+len(s.lines)+1 > (total+1)/2 && i > 0 {
				split = i
				break
			}
			acc += len(s.lines) + 1
		}
		left, right := render(secs[:split]), render(secs[split:])
		for i := 0; i < max(len(left), len(right)); i++ {
			l, r := "", ""
			if i < len(left) {
				l = left[i]
			}
			if i < len(right) {
				r = right[i]
			}
			pad := max(0, colW-lipgloss.Width(l))
			body = append(body, l+strings.Repeat(" ", pad)+" │ "+r)
		}
	}
	head := strings.Split(title, "\n")
	for i := range body {
		body[i] = truncate(body[i], c.width)
	}
	if room := max(1, c.height-len(head)); c.height > 0 && len(body) > room {
		// The title stays; the figures under it scroll.
		c.offset = min(c.offset, max(0, len(body)-room))
		end := min(len(body), c.offset+room)
		shown := slices.Clone(body[c.offset:end])
		if end < len(body) {
			shown[len(shown)-1] = c.st.dim.Render(truncate(fmt.Sprintf("↓ %d more lines (j, pgdn)", len(body)-end), c.width))
		}
		body = shown
	}
	return c.st.plain.MaxWidth(c.width).Render(strings.Join(append(head, body...), "\n"))
}

// name is how an app is labelled: its name, and its protocol when that
// differs (with its compression).
func (c *compareView) name(a lab.App) string {
	p := string(a.Protocol)
	if a.Compression != "" && a.Compression != protocol.CompressionNone {
		p += "+" + a.Compression
	}
	if a.Name == p {
		return a.Name
	}
	return a.Name + " (" + p + ")"
}

// hue is app i's colour (none under NO_COLOR).
func (c *compareView) hue(i int) lipgloss.Style {
	if len(c.st.hues) == 0 {
		return c.st.plain
	}
	return c.st.hues[i%len(c.st.hues)]
}

// probeSections are the probe's figures: setup, round trip, throughput,
// bytes per message on the socket.
func (c *compareView) probeSections(rows []compareRow, colW int) []section {
	nameW := 4
	for _, r := range rows {
		nameW = max(nameW, len(c.name(r.app)))
	}
	nameW = min(nameW, max(8, colW/4))
	barW := max(6, min(40, colW-nameW-30))
	var setups, p99s, rates, bytes []float64
	for _, r := range rows {
		setups = append(setups, r.res.SetupMs)
		p99s = append(p99s, r.res.RTTP99Ms)
		rates = append(rates, r.res.MsgsPerS)
		bytes = append(bytes, r.res.BytesPerM)
		for _, v := range r.res.Variants {
			p99s = append(p99s, v.RTTP99Ms)
			rates = append(rates, v.MsgsPerS)
		}
	}
	sSetup, sP99, sRate, sBytes := barScale(setups), barScale(p99s), barScale(rates), barScale(bytes)
	label := func(i int, r compareRow) string {
		return c.hue(i).Render(fmt.Sprintf("%-*s", nameW, truncate(c.name(r.app), nameW)))
	}
	// A variant (gRPC's chat stream) is a row of its own under its app's.
	variant := func(v probe.Variant) string { return fmt.Sprintf("%-*s", nameW, truncate("  └ "+v.Name, nameW)) }
	failed := func(i int, r compareRow, s *section) bool {
		if r.res.App == "" {
			s.lines = append(s.lines, label(i, r)+" "+c.st.dim.Render("not measured"))
			return true
		}
		if !r.res.OK {
			s.lines = append(s.lines, label(i, r)+" "+c.st.errText.Render(truncate("FAILED: "+r.res.Error, colW-nameW-2)))
			return true
		}
		return false
	}
	pad := func(s string, w int) string { return s + strings.Repeat(" ", max(0, w-lipgloss.Width(s))) }
	setup := section{title: "Connection setup, ms  (" + c.hue(0).Render("█ TCP") + "  " + c.hue(1).Render("▓ TLS") + "  " + c.hue(2).Render("░ request/upgrade") + ")"}
	rtt := section{title: "Round trip, ms  (p50 │ p99)"}
	rate := section{title: "Throughput, messages/s (one connection, echo)"}
	sock := section{title: "Bytes per message on the socket"}
	for i, r := range rows {
		if failed(i, r, &setup) {
			failed(i, r, &rtt)
			continue
		}
		// The phases share the bar in proportion; an outlier's is full
		// and ends in ».
		w := barW
		scale := sSetup
		over := sSetup > 0 && r.res.SetupMs > sSetup*1.0001
		if over {
			w, scale = barW-1, r.res.SetupMs
		}
		cells := func(v float64) int {
			if scale <= 0 {
				return 0
			}
			return int(math.Round(v / scale * float64(w)))
		}
		tcp, tls, hs := cells(r.res.ConnectMs), cells(r.res.TLSMs), cells(r.res.HandshakeMs)
		drawn := c.hue(0).Render(strings.Repeat("█", tcp)) + c.hue(1).Render(strings.Repeat("▓", tls)) + c.hue(2).Render(strings.Repeat("░", hs))
		if over {
			drawn += "»"
		}
		setup.lines = append(setup.lines, fmt.Sprintf("%s %s %6.2f  (%.2f+%.2f+%.2f)", label(i, r), pad(drawn, barW),
			r.res.SetupMs, r.res.ConnectMs, r.res.TLSMs, r.res.HandshakeMs))
		rtt.lines = append(rtt.lines, fmt.Sprintf("%s %s %7.3f │ %7.3f", label(i, r), pad(c.hue(i).Render(scaledBar(r.res.RTTP99Ms, sP99, barW)), barW), r.res.RTTP50Ms, r.res.RTTP99Ms))
		rate.lines = append(rate.lines, fmt.Sprintf("%s %s %8.0f", label(i, r), pad(c.hue(i).Render(scaledBar(r.res.MsgsPerS, sRate, barW)), barW), r.res.MsgsPerS))
		for _, v := range r.res.Variants {
			rtt.lines = append(rtt.lines, fmt.Sprintf("%s %s %7.3f │ %7.3f", variant(v), pad(c.hue(i).Render(scaledBar(v.RTTP99Ms, sP99, barW)), barW), v.RTTP50Ms, v.RTTP99Ms))
			rate.lines = append(rate.lines, fmt.Sprintf("%s %s %8.0f", variant(v), pad(c.hue(i).Render(scaledBar(v.MsgsPerS, sRate, barW)), barW), v.MsgsPerS))
		}
		sock.lines = append(sock.lines, fmt.Sprintf("%s %s %6.1f", label(i, r), pad(c.hue(i).Render(scaledBar(r.res.BytesPerM, sBytes, barW)), barW), r.res.BytesPerM))
	}
	return []section{setup, rtt, rate, sock}
}

// wireSection is what the wire carries per message, per app: live from
// the capture's counters while the comparison is open (every connection
// since capture began, the lab's own scrapes aside), else the report's
// (its probe's connection) — packets and bytes per message, the payload,
// and the overhead (headers, framing, TLS, ACKs) as a share of the wire.
func (c *compareView) wireSection(rows []compareRow, colW int) section {
	s := section{title: "On the wire, per message — live, all traffic since capture began"}
	if len(c.live) == 0 {
		s.title = "On the wire, per message — the last measurement's connection"
	}
	nameW := 4
	for _, r := range rows {
		nameW = max(nameW, min(len(c.name(r.app)), max(8, colW/4)))
	}
	head := fmt.Sprintf("%-*s %7s %7s %7s %7s %13s %6s", nameW, "", "msgs", "pkt/msg", "B/msg", "payload", "overhead", "setup")
	barW := max(0, min(20, colW-lipgloss.Width(head)-1))
	for i, r := range rows {
		var sum wire.Summary
		if cn, ok := c.live[r.app.Name]; ok {
			sum = cn.Summarize()
		} else if r.rep != nil && r.rep.Wire != nil {
			sum = *r.rep.Wire
		}
		if sum.Messages == 0 {
			continue
		}
		over := sum.BytesPerMessage - sum.PayloadPerMessage
		share := 0.0
		if sum.BytesPerMessage > 0 {
			share = over / sum.BytesPerMessage
		}
		line := fmt.Sprintf("%s %7d %7.2f %7.1f %7.1f %7.1f (%2.0f%%) %6.1f", c.hue(i).Render(fmt.Sprintf("%-*s", nameW, truncate(c.name(r.app), nameW))),
			sum.Messages, float64(sum.Packets)/float64(sum.Messages), sum.BytesPerMessage, sum.PayloadPerMessage, over, 100*share, sum.SetupPacketsPerConn)
		if barW >= 4 {
			line += " " + c.hue(i).Render(bar(share, 1, barW))
		}
		s.lines = append(s.lines, line)
		if sum.WSCompressed > 0 { // permessage-deflate: what a message is on the wire and once inflated
			s.lines = append(s.lines, truncate(fmt.Sprintf("%-*s deflate: %.1f B/msg compressed, %.1f inflated (%.0f%%)",
				nameW, "  └", sum.CompressedPerMessage, sum.InflatedPerMessage, 100*sum.CompressedPerMessage/max(sum.InflatedPerMessage, 1)), colW))
		}
	}
	if len(s.lines) > 0 {
		s.lines = append([]string{c.st.dim.Render(truncate(head, colW))}, s.lines...)
	}
	return s
}

// hopSections are, for each app reached through intermediaries, its hops:
// each hop's round trip, what it adds over the hops behind it (drawn),
// where it hands on, and which replicas served the probe.
func (c *compareView) hopSections(rows []compareRow, colW int) []section {
	var b strings.Builder
	c.writeHops(&b, rows, 12)
	text := strings.TrimSpace(b.String())
	if text == "" {
		return nil
	}
	var out []section
	for _, block := range strings.Split(text, "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		for i := range lines {
			lines[i] = truncate(lines[i], colW)
		}
		out = append(out, section{title: ansiStrip(lines[0]), lines: lines[1:]})
	}
	return out
}

func ansiStrip(s string) string { return ansi.Strip(s) }
