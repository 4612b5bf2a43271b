package ui

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/hinshun/vt10x"

	"github.com/protolab/protolab-tui/lab"
)

// The debugging pane: a real shell on the lab host (a pty, locally or over
// SSH), its output run through a VT emulator (vt10x) so colours, cursor
// movement and full-screen programs render inside the pane. Keys go to the
// shell while the pane is open; ctrl+] leaves it.

// leaveShell is the key that closes the debugging pane.
const leaveShell = "ctrl+]"

type (
	shellOpened struct {
		sh      lab.Shell
		actions []lab.ShellAction
		err     error
	}
	shellOutput []byte
	shellClosed struct{ err error }
)

// shellPane is the open shell and its emulated screen: an overlay over
// the body that owns every key but ctrl+] (they go to the shell).
type shellPane struct {
	st         styles
	host       string // the lab host's name, for the title
	sh         lab.Shell
	vt         vt10x.Terminal
	cols, rows int
	ended      string
	actions    []lab.ShellAction // what F2–F4 type (from the provider)
}

// shellTitle is the lines above the emulated screen: what it is, then the
// provider's F keys (a line of their own, so that F4 shows at 80 columns).
const shellTitle = 2

func newShellPane(st styles, host string, w, h int) *shellPane {
	sp := &shellPane{st: st, host: host}
	sp.cols, sp.rows = max(20, w), max(5, h-shellTitle)
	sp.vt = vt10x.New(vt10x.WithSize(sp.cols, sp.rows))
	return sp
}

var shellKeys = struct{ Leave key.Binding }{
	Leave: key.NewBinding(key.WithKeys(leaveShell), key.WithHelp(leaveShell, "leave the shell (every other key goes to it)")),
}

// place implements overlay: the shell covers the body.
func (sp *shellPane) place() placement { return overBody }

// Keys implements overlay.
func (sp *shellPane) Keys() []key.Binding { return []key.Binding{shellKeys.Leave} }

// SetSize implements overlay: the emulated screen follows (the pty's size
// is the root's to set, from a Cmd).
func (sp *shellPane) SetSize(w, h int) {
	sp.cols, sp.rows = max(20, w), max(5, h-shellTitle)
	sp.vt.Resize(sp.cols, sp.rows)
}

// Update implements overlay: keys become terminal bytes, written from
// Cmds; ctrl+] (or any key once the shell ended) closes the pane.
func (sp *shellPane) Update(msg tea.KeyMsg) (overlay, tea.Cmd) {
	if msg.String() == leaveShell || sp.ended != "" {
		if sh := sp.sh; sh != nil {
			return nil, func() tea.Msg { sh.Close(); return nil }
		}
		return nil, nil
	}
	if sp.sh == nil {
		return sp, nil // still opening
	}
	if line := sp.quickAction(msg.String()); line != "" {
		return sp, writeShell(sp.sh, []byte(line+"\r"))
	}
	if b := keyBytes(msg); len(b) > 0 {
		return sp, writeShell(sp.sh, b)
	}
	return sp, nil
}

// View implements overlay.
func (sp *shellPane) View() string {
	title := fmt.Sprintf("debugging shell on %s · ctrl+] leaves", sp.host)
	var fkeys []string
	for _, a := range sp.actions {
		fkeys = append(fkeys, fmt.Sprintf("%s %s", strings.ToUpper(a.Key), a.Label))
	}
	if sp.ended != "" {
		title = sp.ended
	} else if sp.sh == nil {
		title = "opening a shell on the lab host…"
	}
	return lipgloss.JoinVertical(lipgloss.Left, sp.st.title.Render(truncate(title, sp.cols)),
		sp.st.dim.Render(truncate(strings.Join(fkeys, " · "), sp.cols)), renderVT(sp.vt, sp.st.plain, sp.st.mono, sp.cols, sp.rows))
}

// shellOpen is the debugging shell's pane when it is open (nil: not).
func (m Model) shellOpen() *shellPane {
	for _, o := range m.stack {
		if sp, ok := o.(*shellPane); ok {
			return sp
		}
	}
	return nil
}

func openShell(l Lab, selected string, cols, rows int) tea.Cmd {
	return func() tea.Msg {
		actions := l.ShellActions(selected)
		sh, err := l.Provider().Runner().OpenShell(context.Background(), cols, rows)
		return shellOpened{sh: sh, actions: actions, err: err}
	}
}

// readShell waits (in a Cmd) for the shell's next output.
func readShell(sh lab.Shell) tea.Cmd {
	return func() tea.Msg {
		buf := make([]byte, 32<<10)
		n, err := sh.Read(buf)
		if n > 0 {
			return shellOutput(buf[:n])
		}
		return shellClosed{err: err}
	}
}

func writeShell(sh lab.Shell, b []byte) tea.Cmd {
	return func() tea.Msg {
		if _, err := sh.Write(b); err != nil {
			return shellClosed{err: err}
		}
		return nil
	}
}

func resizeShell(sh lab.Shell, cols, rows int) tea.Cmd {
	return func() tea.Msg { _ = sh.Resize(cols, rows); return nil }
}

// keyBytes turns a key into what a terminal would send.
func keyBytes(k tea.KeyMsg) []byte {
	switch k.Type {
	case tea.KeyRunes:
		b := make([]byte, 0, 4*len(k.Runes))
		if k.Alt {
			b = append(b, 0x1b)
		}
		for _, r := range k.Runes {
			b = utf8.AppendRune(b, r)
		}
		return b
	case tea.KeySpace:
		return []byte{' '}
	case tea.KeyEnter:
		return []byte{'\r'}
	case tea.KeyBackspace:
		return []byte{0x7f}
	case tea.KeyTab:
		return []byte{'\t'}
	case tea.KeyEsc:
		return []byte{0x1b}
	case tea.KeyUp:
		return []byte("\x1b[A")
	case tea.KeyDown:
		return []byte("\x1b[B")
	case tea.KeyRight:
		return []byte("\x1b[C")
	case tea.KeyLeft:
		return []byte("\x1b[D")
	case tea.KeyHome:
		return []byte("\x1b[H")
	case tea.KeyEnd:
		return []byte("\x1b[F")
	case tea.KeyPgUp:
		return []byte("\x1b[5~")
	case tea.KeyPgDown:
		return []byte("\x1b[6~")
	case tea.KeyDelete:
		return []byte("\x1b[3~")
	}
	if k.Type >= tea.KeyCtrlAt && k.Type <= tea.KeyCtrlUnderscore {
		return []byte{byte(k.Type)} // control characters are their own codes
	}
	return nil
}

// quickAction is the command line a function key types into the shell:
// the provider's own (lab.ShellActions), "" for a key that has none.
func (m Model) quickAction(key string) string {
	if sp := m.shellOpen(); sp != nil {
		return sp.quickAction(key)
	}
	return ""
}

func (sp *shellPane) quickAction(key string) string {
	for _, a := range sp.actions {
		if a.Key == key {
			return a.Command
		}
	}
	return ""
}

// renderVT draws the emulated screen, colours included unless mono.
func renderVT(v vt10x.View, base lipgloss.Style, mono bool, cols, rows int) string {
	v.Lock()
	defer v.Unlock()
	cur := v.Cursor()
	var b strings.Builder
	for y := 0; y < rows; y++ {
		var run strings.Builder
		var style lipgloss.Style
		var have bool
		flush := func() {
			if run.Len() > 0 {
				b.WriteString(style.Render(run.String()))
				run.Reset()
			}
		}
		for x := 0; x < cols; x++ {
			g := v.Cell(x, y)
			st := glyphStyle(base, g, mono, x == cur.X && y == cur.Y && v.CursorVisible())
			if !have || !sameStyle(st, style) {
				flush()
				style, have = st, true
			}
			c := g.Char
			if c == 0 {
				c = ' '
			}
			run.WriteRune(c)
		}
		flush()
		if y < rows-1 {
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func glyphStyle(base lipgloss.Style, g vt10x.Glyph, mono, cursor bool) lipgloss.Style {
	st := base
	if mono {
		g.FG, g.BG = vt10x.DefaultFG, vt10x.DefaultBG
	}
	if g.FG < 256 {
		st = st.Foreground(lipgloss.Color(fmt.Sprint(uint32(g.FG))))
	}
	if g.BG < 256 {
		st = st.Background(lipgloss.Color(fmt.Sprint(uint32(g.BG))))
	}
	if g.Mode&4 != 0 { // bold
		st = st.Bold(true)
	}
	if cursor || g.Mode&1 != 0 { // the cursor, or reverse video
		st = st.Reverse(true)
	}
	return st
}

func sameStyle(a, b lipgloss.Style) bool {
	return a.GetForeground() == b.GetForeground() && a.GetBackground() == b.GetBackground() &&
		a.GetBold() == b.GetBold() && a.GetReverse() == b.GetReverse()
}
