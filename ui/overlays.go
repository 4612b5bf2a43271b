package ui

import (
	"strings"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// The explorer's overlays are components on one stack (Model.stack): each
// owns its keys (Update), its help (Keys) and its size (SetSize), and says
// where it is drawn (place). The root routes keys to the top one and keeps
// the stack; the lab events and data they show come from the root.

// placement is where an overlay is drawn.
type placement int

const (
	inBox    placement = iota // in the packets' box (the hop view)
	overBody                  // over the whole body, in a box (detail, connections, comparison)
	modal                     // a box centred over the screen, which stays in sight (help, error, question)
	inFooter                  // the footer's lines (a prompt)
)

// overlay is a view over the panes that owns the keys while it is on top.
// Update returns nil once the overlay closes.
type overlay interface {
	Update(tea.KeyMsg) (overlay, tea.Cmd)
	View() string
	SetSize(w, h int)
	Keys() []key.Binding
	place() placement
}

// passer is an overlay that lets some keys through: it closes, and the key
// acts beneath it (the comparison, an error box).
type passer interface{ passes(tea.KeyMsg) bool }

var (
	_ overlay = (*errorView)(nil)
	_ overlay = (*helpView)(nil)
	_ overlay = (*confirmView)(nil)
	_ overlay = (*compareView)(nil)
	_ overlay = (*detailView)(nil)
	_ overlay = (*connsView)(nil)
	_ overlay = (*legsView)(nil)
	_ overlay = (*shellPane)(nil)
	_ overlay = (*promptView)(nil)
)

// errorView is an error in a box: esc or enter dismisses it; any other key
// dismisses it and acts.
type errorView struct {
	st   styles
	text string
	w    int
}

var errorKeys = struct{ Dismiss key.Binding }{
	Dismiss: key.NewBinding(key.WithKeys("esc", "enter"), key.WithHelp("esc/enter", "dismiss (other keys act)")),
}

func (e *errorView) SetSize(w, _ int)                     { e.w = w }
func (e *errorView) Keys() []key.Binding                  { return []key.Binding{errorKeys.Dismiss} }
func (e *errorView) place() placement                     { return modal }
func (e *errorView) passes(msg tea.KeyMsg) bool           { return !key.Matches(msg, errorKeys.Dismiss) }
func (e *errorView) Update(tea.KeyMsg) (overlay, tea.Cmd) { return nil, nil }
func (e *errorView) View() string {
	return e.st.box.Width(min(e.w-4, 100)).Render("[!] " + e.text + "\n" + e.st.dim.Render("esc or enter to dismiss"))
}

// helpView is every key, laid out in as many columns as fit.
type helpView struct {
	st   styles
	hm   help.Model
	keys keyMap
	w, h int
}

var helpKeys = struct{ Close key.Binding }{
	Close: key.NewBinding(key.WithKeys("?", "esc", "q"), key.WithHelp("?/esc", "close the help")),
}

func (v *helpView) SetSize(w, h int)    { v.w, v.h = w, h }
func (v *helpView) Keys() []key.Binding { return []key.Binding{helpKeys.Close} }
func (v *helpView) place() placement    { return modal }
func (v *helpView) Update(msg tea.KeyMsg) (overlay, tea.Cmd) {
	if key.Matches(msg, helpKeys.Close) {
		return nil, nil
	}
	return v, nil
}

// View lays every key out in as many columns as fit the width (as few
// rows as that allows), so that all are listed at any size.
func (v *helpView) View() string {
	hm := v.hm
	hm.Width = 0 // each row is fitted here, not cut
	var all []key.Binding
	for _, g := range v.keys.FullHelp() {
		all = append(all, g...)
	}
	inner := v.w - 2 // the box's border
	var keys string
	for n := 6; n >= 1; n-- {
		rows := (len(all) + n - 1) / n
		var groups [][]key.Binding
		for i := 0; i < len(all); i += rows {
			groups = append(groups, all[i:min(len(all), i+rows)])
		}
		if keys = hm.FullHelpView(groups); lipgloss.Width(keys) <= inner {
			break
		}
	}
	text := v.st.title.Render("Keys") + v.st.dim.Render("  (? or esc closes)") + "\n" + keys
	st := v.st.paneFocused
	if lipgloss.Height(text) > v.h-2 {
		st = st.BorderTop(false).BorderBottom(false) // the lines it needs, at 80×24
	}
	return st.Render(text)
}

// confirmView asks before a teardown or a quit. The root answers it (the
// answer starts lab commands): Update only closes it.
type confirmView struct {
	st        styles
	kind      confirmKind
	inProcess bool // quitting tears the lab down: no "leave it running"
}

var confirmKeys = struct{ Yes, Leave, No key.Binding }{
	Yes:   key.NewBinding(key.WithKeys("y", "t"), key.WithHelp("y/t", "tear down")),
	Leave: key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "leave it running (quit)")),
	No:    key.NewBinding(key.WithKeys("n", "esc"), key.WithHelp("any other key", "cancel")),
}

func (c *confirmView) SetSize(int, int)                     { _ = c }
func (c *confirmView) place() placement                     { return modal }
func (c *confirmView) Update(tea.KeyMsg) (overlay, tea.Cmd) { return nil, nil }
func (c *confirmView) Keys() []key.Binding {
	if c.kind == confirmQuit && !c.inProcess {
		return []key.Binding{confirmKeys.Yes, confirmKeys.Leave, confirmKeys.No}
	}
	return []key.Binding{confirmKeys.Yes, confirmKeys.No}
}

func (c *confirmView) View() string {
	text := "Tear the lab down? Its apps stop and capture ends.\n\n  y: tear down    any other key: cancel"
	switch {
	case c.kind == confirmTeardown:
	case c.inProcess:
		text = "The lab is up. Quitting tears it down (its apps live in this process).\n\n  t: tear down and quit    any other key: cancel"
	default:
		text = "The lab is up.\n\n  t: tear down and quit    l: leave it running and quit    any other key: cancel"
	}
	return c.st.box.Render(text)
}

// top is the overlay on top of the stack (nil: none).
func (m Model) top() overlay {
	if n := len(m.stack); n > 0 {
		return m.stack[n-1]
	}
	return nil
}

// confirming is the question on top, if any.
func (m Model) confirming() confirmKind {
	if c, ok := m.top().(*confirmView); ok {
		return c.kind
	}
	return confirmNone
}

// errText is the error shown on top, if any.
func (m Model) errText() string {
	for i := len(m.stack) - 1; i >= 0; i-- {
		if e, ok := m.stack[i].(*errorView); ok {
			return e.text
		}
	}
	return ""
}

// comparing says the comparison is open.
func (m Model) comparing() bool {
	for _, o := range m.stack {
		if o == overlay(m.cmp) {
			return true
		}
	}
	return false
}

// showError puts an error in a box over the screen (replacing one shown).
func (m *Model) showError(text string) {
	if e, ok := m.top().(*errorView); ok {
		e.text = text
		return
	}
	m.push(&errorView{st: m.st, text: text})
}

// ask puts a question over the screen.
func (m *Model) ask(kind confirmKind) {
	m.push(&confirmView{st: m.st, kind: kind, inProcess: m.lab.InProcess()})
}

// openHelp puts every key over the screen.
func (m *Model) openHelp() {
	keys := m.keys
	keys.warned = m.earlier != nil
	m.push(&helpView{st: m.st, hm: m.help, keys: keys})
}

// closeOverlay takes o off the stack.
func (m *Model) closeOverlay(o overlay) {
	out := m.stack[:0:0]
	for _, x := range m.stack {
		if x != o {
			out = append(out, x)
		}
	}
	m.stack = out
}

// closeCompare takes the comparison off the stack.
func (m *Model) closeCompare() {
	out := m.stack[:0:0]
	for _, o := range m.stack {
		if o != overlay(m.cmp) {
			out = append(out, o)
		}
	}
	m.stack = out
}

// modalsOver draws the modal overlays over the body, in stack order.
func (m Model) modalsOver(body string) string {
	for _, o := range m.stack {
		if o.place() == modal {
			body = placeOver(body, o.View(), m.width, m.bodyHeight())
		}
	}
	return body
}

// base is the topmost overlay that is not modal (nil: none): what the body
// or the packets' box shows.
func (m Model) base() overlay {
	for i := len(m.stack) - 1; i >= 0; i-- {
		if p := m.stack[i].place(); p != modal && p != inFooter {
			return m.stack[i]
		}
	}
	return nil
}

var _ = strings.TrimSpace
