package ui

import (
	"io"
	"strings"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/table"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// styles are the explorer's lipgloss styles, all made by one renderer: the
// terminal's own (lipgloss's default) or, for an explorer served over SSH,
// the session's, so that each session gets its own colour profile and
// background. With NO_COLOR set (or no colour terminal) the renderer draws
// them without colour.
type styles struct {
	r                                     *lipgloss.Renderer
	plain                                 lipgloss.Style // no attributes: for sizing and clipping
	header, title, dim, errText, ok, warn lipgloss.Style
	pane, paneFocused, box                lipgloss.Style
	tab, tabActive                        lipgloss.Style
	table                                 table.Styles
	help                                  help.Styles
	// Row tints: a list's rows by direction and kind, the apps by state.
	toServer, toClient, segment, failed lipgloss.Style
	// mono: no colours (NO_COLOR, or a terminal without them). The cues
	// colour gives — the cursor's row, the active tab, the focused pane,
	// what failed — are then attributes no-color.org allows (reverse,
	// bold, underline, faint) and marks in the text ([tab], a thick
	// border).
	mono bool
	// Per-section hues of the comparison (setup phases, figures).
	hues []lipgloss.Style
}

func newStyles(r *lipgloss.Renderer) styles {
	if r == nil {
		r = lipgloss.DefaultRenderer()
	}
	if r.ColorProfile() == termenv.Ascii {
		return monoStyles(r)
	}
	accent := lipgloss.AdaptiveColor{Light: "#5A3FC0", Dark: "#B9A5FF"}
	ns := r.NewStyle
	s := styles{
		r:           r,
		plain:       ns(),
		header:      ns().Bold(true).Foreground(accent),
		title:       ns().Bold(true),
		dim:         ns().Faint(true),
		errText:     ns().Foreground(lipgloss.Color("9")).Bold(true),
		ok:          ns().Foreground(lipgloss.Color("10")),
		warn:        ns().Foreground(lipgloss.Color("11")),
		pane:        ns().Border(lipgloss.NormalBorder()).BorderForeground(lipgloss.Color("8")),
		paneFocused: ns().Border(lipgloss.ThickBorder()).BorderForeground(accent),
		box:         ns().Border(lipgloss.DoubleBorder()).BorderForeground(lipgloss.Color("9")).Padding(0, 1),
		tab:         ns().Faint(true),
		tabActive:   ns().Bold(true).Reverse(true),
	}
	// The bubbles' default styles, remade with this renderer.
	s.table = table.Styles{
		Header:   ns().Bold(true).Padding(0, 1),
		Cell:     ns().Padding(0, 1),
		Selected: ns().Bold(true).Foreground(lipgloss.Color("212")),
	}
	s.table.Header = s.table.Header.Padding(0, 1, 0, 0).BorderStyle(lipgloss.NormalBorder()).BorderBottom(true)
	s.table.Cell = s.table.Cell.Padding(0, 1, 0, 0)
	s.table.Selected = s.table.Selected.Foreground(lipgloss.NoColor{}).Reverse(true).Bold(false)
	// Directions as termshark and mitmproxy users know them: what the
	// client sends in one hue, what the server answers in another; TCP
	// segments under the decoded messages faint; errors red.
	s.toServer = ns().Foreground(lipgloss.AdaptiveColor{Light: "#005F87", Dark: "#5FD7FF"})
	s.toClient = ns().Foreground(lipgloss.AdaptiveColor{Light: "#875F00", Dark: "#FFD787"})
	s.segment = ns().Faint(true)
	s.failed = ns().Foreground(lipgloss.Color("9"))
	keyStyle := ns().Foreground(lipgloss.AdaptiveColor{Light: "#909090", Dark: "#626262"})
	descStyle := ns().Foreground(lipgloss.AdaptiveColor{Light: "#B2B2B2", Dark: "#4A4A4A"})
	sepStyle := ns().Foreground(lipgloss.AdaptiveColor{Light: "#DDDADA", Dark: "#3C3C3C"})
	s.help = help.Styles{
		ShortKey: keyStyle, ShortDesc: descStyle, ShortSeparator: sepStyle, Ellipsis: sepStyle,
		FullKey: keyStyle, FullDesc: descStyle, FullSeparator: sepStyle,
	}
	for _, c := range []string{"#5FAFFF", "#D7AF5F", "#AF87FF", "#5FD787", "#FF8787", "#87D7D7"} {
		s.hues = append(s.hues, ns().Foreground(lipgloss.Color(c)))
	}
	return s
}

// monoStyles are the styles without colour: attributes only, drawn by a
// renderer that writes them (an Ascii profile would drop them too). r's
// profile is Ascii; r is kept for placing text.
func monoStyles(r *lipgloss.Renderer) styles {
	ar := lipgloss.NewRenderer(io.Discard)
	ar.SetColorProfile(termenv.ANSI) // attributes; no style here has a colour
	ns := ar.NewStyle
	s := styles{
		r:           r,
		mono:        true,
		plain:       ns(),
		header:      ns().Bold(true),
		title:       ns().Bold(true),
		dim:         ns().Faint(true),
		errText:     ns().Bold(true),
		ok:          ns(),
		warn:        ns().Underline(true),
		pane:        ns().Border(lipgloss.NormalBorder()),
		paneFocused: ns().Border(lipgloss.ThickBorder()),
		box:         ns().Border(lipgloss.DoubleBorder()).Padding(0, 1),
		tab:         ns(),
		tabActive:   ns().Bold(true).Reverse(true),
		toServer:    ns(),
		toClient:    ns(),
		segment:     ns().Faint(true),
		failed:      ns().Bold(true),
	}
	s.table = table.Styles{
		Header:   ns().Bold(true).Padding(0, 1, 0, 0).BorderStyle(lipgloss.NormalBorder()).BorderBottom(true),
		Cell:     ns().Padding(0, 1, 0, 0),
		Selected: ns().Reverse(true),
	}
	s.help = help.Styles{
		ShortKey: ns().Bold(true), ShortDesc: ns(), ShortSeparator: ns().Faint(true), Ellipsis: ns().Faint(true),
		FullKey: ns().Bold(true), FullDesc: ns(), FullSeparator: ns().Faint(true),
	}
	s.hues = []lipgloss.Style{ns(), ns()}
	return s
}

// tableFor shows the cursor only in the focused table.
func (s styles) tableFor(focused bool) table.Styles {
	t := s.table
	if !focused {
		t.Selected = s.plain
	}
	return t
}

// tint colours the rows of a rendered bubbles table, whose cells the table
// truncates without regard to escape codes (so colour cannot go into a
// cell): view is the table's View, height its viewport's, and row i takes
// tints[i] — but for the cursor's row, which keeps the selection's style.
// A table scrolled past its first row (more rows than fit) is left as it
// is: its lines no longer match the rows.
func tint(view string, height int, tints []lipgloss.Style, cursor int) string {
	lines := strings.Split(view, "\n")
	head := len(lines) - height
	if head < 0 || len(tints) > height {
		return view
	}
	for i, st := range tints {
		if i == cursor || head+i >= len(lines) {
			continue
		}
		lines[head+i] = st.Render(lines[head+i])
	}
	return strings.Join(lines, "\n")
}
