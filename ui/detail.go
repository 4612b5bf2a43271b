package ui

import (
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/protolab/protolab-tui/lab/wire"
)

// detailKeys are the detail view's own keys.
var detailKeys = struct{ Next, Prev, CopyText, CopyHex, Close key.Binding }{
	Next:     key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "next record")),
	Prev:     key.NewBinding(key.WithKeys("p", "N"), key.WithHelp("p", "previous record")),
	CopyText: key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "copy the text")),
	CopyHex:  key.NewBinding(key.WithKeys("Y"), key.WithHelp("Y", "copy the payload as hex")),
	Close:    key.NewBinding(key.WithKeys("esc", "enter", "q"), key.WithHelp("esc", "close")),
}

// stepMsg asks the explorer to select the list's next (n > 0) or previous
// record; it answers with the detail's new record (setRecord).
type stepMsg struct{ n int }

// logMsg is a line for the explorer's log line.
type logMsg string

// detailView is one record in full (Enter on a row): its fields, decrypted
// payload and hex, scrolled in a viewport; it covers the whole body.
type detailView struct {
	vp  viewport.Model
	rec wire.Record
	out io.Writer // the terminal, for OSC 52
}

// detailText renders one record for the detail view.
func detailText(r wire.Record) string {
	var b strings.Builder
	who := r.App
	if r.App != string(r.Protocol) {
		who += " (" + string(r.Protocol) + ")"
	}
	fmt.Fprintf(&b, "%s %s %s  %s  %s\n", who, r.Kind, r.Layer, r.Dir, r.Time.Format("15:04:05.000000"))
	fmt.Fprintf(&b, "flow %s  length %d  payload %d\n", r.Flow, r.Len, r.Payload)
	if r.Decrypted {
		b.WriteString("[dec] DECRYPTED with the TLS keys of the lab's own client (the wire carried only ciphertext)\n")
	}
	fmt.Fprintf(&b, "\n%s\n\n", r.Text())
	for _, f := range r.Details() {
		fmt.Fprintf(&b, "  %-22s %s\n", f.Name, f.Value)
	}
	if len(r.Data) > 0 {
		what := "payload"
		if r.Decrypted {
			what = "decrypted payload"
		}
		fmt.Fprintf(&b, "\n%s (first %d bytes):\n%s", what, len(r.Data), hex.Dump(r.Data))
	}
	return b.String()
}

func newDetailView(r wire.Record, out io.Writer, w, h int) *detailView {
	d := &detailView{vp: viewport.New(max(10, w), max(3, h)), out: out}
	d.setRecord(r)
	return d
}

func (d *detailView) setRecord(r wire.Record) {
	d.rec = r
	d.vp.SetContent(detailText(r))
	d.vp.GotoTop()
}

// SetSize implements overlay.
func (d *detailView) SetSize(w, h int) { d.vp.Width, d.vp.Height = max(10, w), max(3, h) }

// whole implements overlay: the detail covers the body.
func (d *detailView) whole() bool { return true }

// Keys implements overlay.
func (d *detailView) Keys() []key.Binding {
	return []key.Binding{detailKeys.Next, detailKeys.Prev, detailKeys.CopyText, detailKeys.CopyHex, detailKeys.Close}
}

// View implements overlay.
func (d *detailView) View() string { return d.vp.View() }

// Update implements overlay.
func (d *detailView) Update(msg tea.KeyMsg) (overlay, tea.Cmd) {
	switch {
	case key.Matches(msg, detailKeys.Close):
		return nil, nil
	case key.Matches(msg, detailKeys.Next), key.Matches(msg, detailKeys.Prev):
		n := 1
		if key.Matches(msg, detailKeys.Prev) {
			n = -1
		}
		return d, func() tea.Msg { return stepMsg{n: n} }
	case key.Matches(msg, detailKeys.CopyText), key.Matches(msg, detailKeys.CopyHex):
		what, data := "text", detailText(d.rec)
		if key.Matches(msg, detailKeys.CopyHex) {
			what, data = "payload hex", hex.EncodeToString(d.rec.Data)
		}
		line := logMsg(fmt.Sprintf("copied the %s (%d bytes) to the clipboard (OSC 52)", what, len(data)))
		return d, tea.Batch(copyOSC52(d.out, data), func() tea.Msg { return line })
	}
	var cmd tea.Cmd
	d.vp, cmd = d.vp.Update(msg)
	return d, cmd
}

// scroll moves the text by n lines (the mouse wheel).
func (d *detailView) scroll(n int) {
	if n < 0 {
		d.vp.ScrollUp(-n)
	} else {
		d.vp.ScrollDown(n)
	}
}
