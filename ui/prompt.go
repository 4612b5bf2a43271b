package ui

import (
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// promptView is a question typed into the footer (send, GET, export,
// filter, find, a lab's question): a bubbles textinput with a short label
// (the input gets the line) and, under it, what to type or what does not
// parse. It owns the typing; the root acts on enter (and on esc for a
// lab's question, which is then declined).
type promptView struct {
	st    styles
	kind  inputKind
	input textinput.Model
	err   string // what is wrong with the filter (or search) being typed
	width int
}

var promptKeys = struct{ Enter, Cancel key.Binding }{
	Enter:  key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "ok")),
	Cancel: key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")),
}

func newPrompt(st styles, kind inputKind, label, value string, width int, secret bool) *promptView {
	ti := textinput.New()
	ti.CharLimit = 4096
	ti.PromptStyle, ti.TextStyle, ti.PlaceholderStyle, ti.CompletionStyle = st.plain, st.plain, st.dim, st.dim
	ti.Cursor.Style, ti.Cursor.TextStyle = st.plain, st.plain
	ti.Prompt = label
	ti.SetValue(value)
	ti.CursorEnd()
	if secret {
		ti.EchoMode = textinput.EchoPassword
	}
	p := &promptView{st: st, kind: kind, input: ti}
	p.SetSize(width, 0)
	p.check()
	return p
}

// place implements overlay: a prompt is drawn in the footer.
func (p *promptView) place() placement { return inFooter }

// SetSize implements overlay: the input takes the line but its label.
func (p *promptView) SetSize(w, _ int) {
	p.width = w
	p.input.Width = max(10, w-lipgloss.Width(p.input.Prompt)-2)
}

// Keys implements overlay.
func (p *promptView) Keys() []key.Binding { return []key.Binding{promptKeys.Enter, promptKeys.Cancel} }

// View implements overlay: the input line.
func (p *promptView) View() string { return p.input.View() }

// hint is the line under the input: what does not parse, or what to type.
func (p *promptView) hint() string {
	if p.err != "" {
		return p.st.errText.Render(truncate("does not parse: "+p.err, p.width))
	}
	hint := "enter: ok · esc: cancel"
	switch p.kind {
	case inputFilter:
		hint = "e.g. port == 3002 and not c>s, text ~ re · docs/filter.md · esc cancels"
	case inputFind:
		hint = "a word, status >= 400, opcode == 8 · enter finds, n/N next/prev · esc cancels"
	case inputSend, inputGet:
		hint = "enter sends · esc cancels"
	case inputExport:
		hint = "enter exports (pcapng, with the TLS secrets) · esc cancels"
	case inputAnswer:
		hint = "enter answers · esc declines"
	}
	return p.st.dim.Render(truncate(hint, p.width))
}

// check says, for a filter or a search, what does not parse.
func (p *promptView) check() {
	p.err = ""
	if p.kind == inputFilter || p.kind == inputFind {
		if _, err := compileFilter(p.input.Value()); err != nil {
			p.err = err.Error() // shown as one types
		}
	}
}

// Update implements overlay: typing. Enter and esc are the root's.
func (p *promptView) Update(msg tea.KeyMsg) (overlay, tea.Cmd) {
	var cmd tea.Cmd
	if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 {
		// Typed text that came in one read (fast typing, a burst over
		// SSH): rune by rune, so that a word that names a key ("left",
		// "up", "end", "home") is text, not that key to the textinput.
		var cmds []tea.Cmd
		for _, r := range msg.Runes {
			p.input, cmd = p.input.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: msg.Alt, Paste: msg.Paste})
			cmds = append(cmds, cmd)
		}
		cmd = tea.Batch(cmds...)
	} else {
		p.input, cmd = p.input.Update(msg)
	}
	p.check()
	return p, cmd
}

// promptView is the prompt open (nil: none).
func (m Model) promptView() *promptView {
	for i := len(m.stack) - 1; i >= 0; i-- {
		if p, ok := m.stack[i].(*promptView); ok {
			return p
		}
	}
	return nil
}

// prompting is the kind of the prompt open (inputNone: none).
func (m Model) prompting() inputKind {
	if p := m.promptView(); p != nil {
		return p.kind
	}
	return inputNone
}

// promptValue is what the open prompt holds.
func (m Model) promptValue() string {
	if p := m.promptView(); p != nil {
		return p.input.Value()
	}
	return ""
}

// dropPrompt takes the prompt off the stack.
func (m *Model) dropPrompt() {
	out := m.stack[:0:0]
	for _, o := range m.stack {
		if _, ok := o.(*promptView); !ok {
			out = append(out, o)
		}
	}
	m.stack = out
}
