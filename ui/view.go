package ui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/table"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/protolab/protolab-tui/lab"
)

// This file draws the explorer: the layout of the panes, the header, the
// footer and the body with its overlays. Nothing here does I/O.

// appTitles are the apps table's columns; appDrop the ones that go, in
// this order, when the table does not fit (the image, then the age).
var (
	appTitles = []string{"name", "image", "state", "health", "ports", "rs", "age"}
	appDrop   = []string{"image", "age"}
)

// appColumns sizes the apps table's columns from what they hold (rows
// have a cell per appTitles) and the width w: each as wide as its widest
// cell, the room left to the ports; where that does not fit, the image
// goes, then the age (a cell is whole or not shown). It returns the columns and the
// rows with the dropped columns' cells removed.
func appColumns(w int, rows []table.Row) ([]table.Column, []table.Row) {
	widths := make([]int, len(appTitles))
	for i, t := range appTitles {
		widths[i] = lipgloss.Width(t)
		for _, r := range rows {
			widths[i] = max(widths[i], lipgloss.Width(r[i]))
		}
	}
	keep := make([]bool, len(appTitles))
	for i := range keep {
		keep[i] = true
	}
	used := func() int {
		n := 0
		for i, k := range keep {
			if k {
				n += widths[i] + 1 // a column of padding each
			}
		}
		return n
	}
	for _, drop := range appDrop {
		if used() <= w {
			break
		}
		keep[slices.Index(appTitles, drop)] = false // whole or not at all: "protol…" says nothing
	}
	var cols []table.Column
	for i, t := range appTitles {
		if keep[i] {
			cols = append(cols, table.Column{Title: t, Width: widths[i]})
		}
	}
	if extra := w - used(); extra > 0 {
		for i := range cols {
			if cols[i].Title == "ports" {
				cols[i].Width += extra
			}
		}
	}
	out := make([]table.Row, len(rows))
	for j, r := range rows {
		for i := range appTitles {
			if keep[i] {
				out[j] = append(out[j], r[i])
			}
		}
	}
	return cols, out
}

// bodyHeight is the room between header and footer.
func (m Model) bodyHeight() int { return max(0, m.height-3-m.warningHeight()) }

// maxWarningLines bounds the earlier-lab warning's lines.
const maxWarningLines = 4

// warning is the earlier-lab warning as drawn above the footer ("" when
// there is none, or it was dismissed): what was found and the command that
// removes it, until D dismisses it.
func (m Model) warning() string {
	e := m.earlier
	if e == nil || m.width == 0 {
		return ""
	}
	text := fmt.Sprintf("[!] An earlier lab %q is still on %s: %s, %d running. This lab will not start beside it.\n    Remove it with: %s   (D dismisses)",
		e.Lab, e.Where, lab.Containers(e.Containers), e.Running, e.Remove)
	return m.st.errText.Width(m.width).MaxHeight(maxWarningLines).Render(text)
}

// warningHeight is the lines the warning takes.
func (m Model) warningHeight() int {
	if w := m.warning(); w != "" {
		return lipgloss.Height(w)
	}
	return 0
}

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
	m.cmp.SetSize(m.width-4, m.bodyHeight()-2) // over the whole body, inside its border and padding
	m.overW, m.overH = packW-2, max(minListHeight, packH)
	for _, o := range m.stack {
		m.sizeOverlay(o)
	}
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

// View implements tea.Model: the last frame again when the last message
// changed nothing on screen, else a new one.
func (m Model) View() string {
	if c := m.frames; c != nil && m.same && c.w == m.width && c.h == m.height && c.frame != "" {
		return c.frame
	}
	v := m.view()
	if m.frames != nil {
		m.frames.w, m.frames.h, m.frames.frame, m.frames.clock = m.width, m.height, v, m.clock()
	}
	return v
}

// clock is the header's "up" figure, which changes once a second.
func (m Model) clock() string {
	if m.state == lab.Down || m.upSince.IsZero() {
		return "-"
	}
	return shortDuration(m.opt.Now().Sub(m.upSince))
}

func (m Model) view() string {
	if m.width == 0 {
		return "starting…"
	}
	if m.width < minWidth || m.height < minHeight {
		return fmt.Sprintf("terminal too small: protolab-tui needs %d×%d, this one is %d×%d.\nMake the window larger (q quits).", minWidth, minHeight, m.width, m.height)
	}
	body := m.st.plain.Height(m.bodyHeight()).MaxHeight(m.bodyHeight()).MaxWidth(m.width).Render(m.body())
	// The modals are drawn over the screen, which stays in sight around
	// them: the help, an error, a question.
	body = m.modalsOver(body)
	if w := m.warning(); w != "" {
		return lipgloss.JoinVertical(lipgloss.Left, m.header(), body, w, m.footer())
	}
	return lipgloss.JoinVertical(lipgloss.Left, m.header(), body, m.footer())
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
	up := m.clock()
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
	if p := m.promptView(); p != nil {
		// The prompt's label is short, so the input gets the line; what
		// to type is said under it, or what does not parse.
		return lipgloss.JoinVertical(lipgloss.Left, p.View(), p.hint())
	}
	m.help.Width = m.width
	keys := m.keys
	keys.up = m.state != lab.Down && m.state != lab.Failed
	keys.warned = m.earlier != nil
	if n := len(m.stack); n > 0 {
		return lipgloss.JoinVertical(lipgloss.Left, log, fitHelp(m.help, m.stack[n-1].Keys(), m.width))
	}
	return lipgloss.JoinVertical(lipgloss.Left, log, fitHelp(m.help, keys.ShortHelp(), m.width))
}

// fitHelp is the short help of as many of bindings, in their order, as
// fit width whole: nothing is cut in the middle ("c capture …").
func fitHelp(hm help.Model, bindings []key.Binding, width int) string {
	hm.Width = 0
	n := len(bindings)
	for n > 1 && lipgloss.Width(hm.ShortHelpView(bindings[:n])) > width {
		n--
	}
	return hm.ShortHelpView(bindings[:n])
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

// placeOver draws fg centred over bg (w×h), leaving bg around it in
// sight; both may hold escape codes.
func placeOver(bg, fg string, w, h int) string {
	bgLines := strings.Split(bg, "\n")
	for len(bgLines) < h {
		bgLines = append(bgLines, "")
	}
	fgLines := strings.Split(fg, "\n")
	fw := lipgloss.Width(fg)
	x, y := max(0, (w-fw)/2), max(0, (h-len(fgLines))/2)
	for i, fl := range fgLines {
		row := y + i
		if row >= len(bgLines) {
			break
		}
		b := bgLines[row]
		left := ansi.Truncate(b, x, "")
		if lw := ansi.StringWidth(left); lw < x {
			left += strings.Repeat(" ", x-lw)
		}
		if strings.Contains(left, "\x1b") {
			left += "\x1b[m" // a style cut short ends before the box
		}
		if pad := fw - ansi.StringWidth(fl); pad > 0 {
			fl += strings.Repeat(" ", pad)
		}
		bgLines[row] = left + fl + ansi.TruncateLeft(b, x+fw, "")
	}
	return strings.Join(bgLines, "\n")
}

func (m Model) body() string {
	h := m.bodyHeight()
	if o := m.base(); o != nil && o.place() == overBody {
		return m.st.paneFocused.Width(m.width-2).Height(h-2).Padding(0, 1).Render(o.View())
	}
	hostW, appsW, packW, _ := m.paneWidths()
	ps := m.panes()
	view := func(i int) string {
		if o := m.base(); i == panePackets && o != nil {
			return o.View() // an overlay in the packets' box
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
	return st.Width(w - 2).Height(h - 2).MaxHeight(h).Render(m.st.plain.MaxWidth(w - 2).MaxHeight(h - 2).Render(content))
}
