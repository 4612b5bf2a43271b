package ui

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/charmbracelet/bubbles/key"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/probe"
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

// View draws the figures: setup split TCP/TLS/first request or upgrade,
// RTT p50 and p99, throughput, bytes per message and, when captured, what
// the wire carried per message.
func (c *compareView) View() string {
	title := c.st.title.Render("Comparison") + "\n" + c.st.dim.Render(truncate("the figures --headless prints · r measures again · ↓/↑ scroll · esc closes", c.width))
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
	if !measured {
		if c.running {
			return title
		}
		return title + "\n\nnothing measured yet: r runs the probes (the lab must be running)"
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
	name := func(a lab.App) string {
		p := string(a.Protocol)
		if a.Compression != "" && a.Compression != protocol.CompressionNone {
			p += "+" + a.Compression
		}
		if a.Name == p {
			return a.Name
		}
		return a.Name + " (" + p + ")"
	}
	nameW := 4
	for _, r := range rows {
		nameW = max(nameW, len(name(r.app)))
	}
	barW := max(8, min(40, (c.width-nameW-28)))
	var maxSetup, maxP99, maxRate, maxBytes float64
	for _, r := range rows {
		maxSetup = math.Max(maxSetup, r.res.SetupMs)
		maxP99 = math.Max(maxP99, r.res.RTTP99Ms)
		maxRate = math.Max(maxRate, r.res.MsgsPerS)
		for _, v := range r.res.Variants {
			maxP99 = math.Max(maxP99, v.RTTP99Ms)
			maxRate = math.Max(maxRate, v.MsgsPerS)
		}
		b := r.res.BytesPerM
		if r.rep != nil && r.rep.Wire != nil {
			b = math.Max(b, r.rep.Wire.BytesPerMessage)
		}
		maxBytes = math.Max(maxBytes, b)
	}
	label := func(r compareRow) string {
		return fmt.Sprintf("%-*s", nameW, name(r.app))
	}
	var b strings.Builder
	section := func(name string) { b.WriteString("\n" + c.st.title.Render(name) + "\n") }
	failed := func(r compareRow) bool {
		if r.res.App == "" {
			fmt.Fprintf(&b, "%s %s\n", label(r), c.st.dim.Render("not measured"))
			return true
		}
		if !r.res.OK {
			fmt.Fprintf(&b, "%s %s\n", label(r), c.st.errText.Render(truncate("FAILED: "+r.res.Error, c.width-nameW-2)))
			return true
		}
		return false
	}
	section("Connection setup, ms  (█ TCP  ▓ TLS  ░ first request / upgrade)")
	for _, r := range rows {
		if failed(r) {
			continue
		}
		scale := func(v float64) int {
			if maxSetup <= 0 {
				return 0
			}
			return int(math.Round(v / maxSetup * float64(barW)))
		}
		tcp, tls, hs := scale(r.res.ConnectMs), scale(r.res.TLSMs), scale(r.res.HandshakeMs)
		drawn := strings.Repeat("█", tcp) + strings.Repeat("▓", tls) + strings.Repeat("░", hs)
		fmt.Fprintf(&b, "%s %s%s %6.2f  (%.2f+%.2f+%.2f)\n", label(r), drawn, strings.Repeat(" ", max(0, barW-tcp-tls-hs)),
			r.res.SetupMs, r.res.ConnectMs, r.res.TLSMs, r.res.HandshakeMs)
	}
	// A variant (gRPC's chat stream) is a row of its own under its app's.
	variant := func(v probe.Variant) string { return fmt.Sprintf("%-*s", nameW, truncate("  └ "+v.Name, nameW)) }
	section("Round trip, ms  (p50 │ p99)")
	for _, r := range rows {
		if failed(r) {
			continue
		}
		fmt.Fprintf(&b, "%s %-*s %7.3f │ %7.3f\n", label(r), barW, bar(r.res.RTTP99Ms, maxP99, barW), r.res.RTTP50Ms, r.res.RTTP99Ms)
		for _, v := range r.res.Variants {
			fmt.Fprintf(&b, "%s %-*s %7.3f │ %7.3f\n", variant(v), barW, bar(v.RTTP99Ms, maxP99, barW), v.RTTP50Ms, v.RTTP99Ms)
		}
	}
	section("Throughput, messages/s (one connection, echo)")
	for _, r := range rows {
		if failed(r) {
			continue
		}
		fmt.Fprintf(&b, "%s %-*s %8.0f\n", label(r), barW, bar(r.res.MsgsPerS, maxRate, barW), r.res.MsgsPerS)
		for _, v := range r.res.Variants {
			fmt.Fprintf(&b, "%s %-*s %8.0f\n", variant(v), barW, bar(v.MsgsPerS, maxRate, barW), v.MsgsPerS)
		}
	}
	section("Bytes per message  (socket │ wire, with headers, when captured)")
	for _, r := range rows {
		if failed(r) {
			continue
		}
		wire := ""
		if r.rep != nil && r.rep.Wire != nil && r.rep.Wire.Messages > 0 {
			w := r.rep.Wire
			wire = fmt.Sprintf(" │ %6.1f wire, %.1f payload, %.1f setup packets", w.BytesPerMessage, w.PayloadPerMessage, w.SetupPacketsPerConn)
		}
		fmt.Fprintf(&b, "%s %-*s %6.1f%s\n", label(r), barW, bar(r.res.BytesPerM, maxBytes, barW), r.res.BytesPerM, wire)
	}
	c.writeHops(&b, rows, nameW)
	lines := strings.Split(strings.TrimRight(title+"\n"+b.String(), "\n"), "\n")
	for i := range lines {
		lines[i] = truncate(lines[i], c.width)
	}
	if c.height > 0 && len(lines) > c.height {
		// The title stays; the figures under it scroll.
		head := strings.Count(title, "\n") + 1
		body := lines[head:]
		room := max(1, c.height-head)
		c.offset = min(c.offset, max(0, len(body)-room))
		end := min(len(body), c.offset+room)
		shown := slices.Clone(body[c.offset:end])
		if end < len(body) {
			shown[len(shown)-1] = c.st.dim.Render(truncate(fmt.Sprintf("↓ %d more lines (j, pgdn)", len(body)-end), c.width))
		}
		lines = append(lines[:head:head], shown...)
	}
	return c.st.plain.MaxWidth(c.width).Render(strings.Join(lines, "\n"))
}
