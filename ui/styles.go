package ui

import (
	"github.com/charmbracelet/bubbles/table"
	"github.com/charmbracelet/lipgloss"
)

// styles are the explorer's lipgloss styles. With NO_COLOR set (or no
// colour terminal) lipgloss renders them without colour.
type styles struct {
	header, title, dim, errText, ok, warn lipgloss.Style
	pane, paneFocused, box                lipgloss.Style
	tab, tabActive                        lipgloss.Style
	table                                 table.Styles
}

func newStyles() styles {
	accent := lipgloss.AdaptiveColor{Light: "#5A3FC0", Dark: "#B9A5FF"}
	s := styles{
		header:      lipgloss.NewStyle().Bold(true).Foreground(accent),
		title:       lipgloss.NewStyle().Bold(true),
		dim:         lipgloss.NewStyle().Faint(true),
		errText:     lipgloss.NewStyle().Foreground(lipgloss.Color("9")).Bold(true),
		ok:          lipgloss.NewStyle().Foreground(lipgloss.Color("10")),
		warn:        lipgloss.NewStyle().Foreground(lipgloss.Color("11")),
		pane:        lipgloss.NewStyle().Border(lipgloss.NormalBorder()).BorderForeground(lipgloss.Color("8")),
		paneFocused: lipgloss.NewStyle().Border(lipgloss.NormalBorder()).BorderForeground(accent),
		box:         lipgloss.NewStyle().Border(lipgloss.DoubleBorder()).BorderForeground(lipgloss.Color("9")).Padding(0, 1),
		tab:         lipgloss.NewStyle().Faint(true),
		tabActive:   lipgloss.NewStyle().Bold(true).Reverse(true),
	}
	s.table = table.DefaultStyles()
	s.table.Header = s.table.Header.Bold(true).Padding(0, 1, 0, 0).BorderStyle(lipgloss.NormalBorder()).BorderBottom(true)
	s.table.Cell = s.table.Cell.Padding(0, 1, 0, 0)
	s.table.Selected = s.table.Selected.Foreground(lipgloss.NoColor{}).Reverse(true).Bold(false)
	return s
}

// tableFor shows the cursor only in the focused table.
func (s styles) tableFor(focused bool) table.Styles {
	t := s.table
	if !focused {
		t.Selected = lipgloss.NewStyle()
	}
	return t
}
