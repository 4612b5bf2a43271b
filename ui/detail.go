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
var detailKeys = struct{ Next, Prev, Layer, Fold, CopyText, CopyHex, Legs, Close key.Binding }{
	Next:     key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "next record")),
	Prev:     key.NewBinding(key.WithKeys("p", "N"), key.WithHelp("p", "previous record")),
	Layer:    key.NewBinding(key.WithKeys("tab", "shift+tab"), key.WithHelp("tab", "next layer")),
	Fold:     key.NewBinding(key.WithKeys(" "), key.WithHelp("space", "fold/unfold the layer")),
	CopyText: key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "copy text")),
	CopyHex:  key.NewBinding(key.WithKeys("Y"), key.WithHelp("Y", "copy hex")),
	Legs:     key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "legs on each hop")),
	Close:    key.NewBinding(key.WithKeys("esc", "enter", "q"), key.WithHelp("esc", "close")),
}

// stepMsg asks the explorer to select the list's next (n > 0) or previous
// record; it answers with the detail's new record (setRecord).
type stepMsg struct{ n int }

// logMsg is a line for the explorer's log line.
type logMsg string

// detailView is one record in full (Enter on a row), as layers — the
// record, IP, TCP, TLS, the protocol's message, the bytes — each folded or
// not (tab picks one, space folds it), scrolled in a viewport; it covers
// the whole body.
type detailView struct {
	vp     viewport.Model
	st     styles
	rec    wire.Record
	pkt    *packetMsg // the whole packet, once fetched (packetbytes.go)
	layers []layer
	cursor int
	folded map[string]bool // by layer title: kept from record to record
	out    io.Writer       // the terminal, for OSC 52
}

// layer is one layer of a record: a title, a one-line summary and what it
// holds.
type layer struct {
	title, summary, body string
}

// detailLayers splits a record into its layers, outermost first.
func detailLayers(r wire.Record) []layer {
	who := r.App
	if r.App != string(r.Protocol) {
		who += " (" + string(r.Protocol) + ")"
	}
	out := []layer{{title: "Record", summary: fmt.Sprintf("%s · %s %s · record %d · %s · %d bytes", who, r.Kind, r.Layer, r.Seq+1,
		r.Time.Format("15:04:05.000000"), r.Len)}}
	src, dst := r.Flow.Client, r.Flow.Server
	if r.Dir == wire.ServerToClient {
		src, dst = dst, src
	}
	out = append(out, layer{title: "IP", summary: fmt.Sprintf("%s → %s (%s)", src.Addr(), dst.Addr(), r.Dir)})
	fields := func(fs []wire.Field) string {
		var b strings.Builder
		for _, f := range fs {
			fmt.Fprintf(&b, "  %-22s %s\n", f.Name, f.Value)
		}
		return b.String()
	}
	tcp := layer{title: "TCP", summary: fmt.Sprintf("%d → %d · connection %s", src.Port(), dst.Port(), r.Flow)}
	switch {
	case r.Kind == wire.KindPacket && r.Layer == "socket":
		tcp.summary += " · a socket-level read: no TCP header"
	case r.Kind == wire.KindPacket:
		tcp.summary = r.Text()
		tcp.body = fields(r.Details())
	}
	out = append(out, tcp)
	if r.Decrypted {
		out = append(out, layer{title: "TLS", summary: "[dec] decrypted with the TLS keys of the lab's own client (the wire carried only ciphertext)"})
	}
	if r.Kind != wire.KindPacket {
		title := map[string]string{"http": "HTTP", "ws": "WebSocket", "tls": "TLS record", "decode": "Decode error", "setup": "Setup"}[r.Layer]
		if title == "" {
			title = r.Layer
		}
		out = append(out, layer{title: title, summary: r.Text(), body: fields(r.Details())})
	}
	if len(r.Data) > 0 {
		what := "payload"
		if r.Decrypted {
			what = "decrypted payload"
		}
		out = append(out, layer{title: "Bytes", summary: fmt.Sprintf("%s, first %d bytes of %d", what, len(r.Data), max(r.Payload, len(r.Data))),
			body: hex.Dump(r.Data)})
	}
	return out
}

// detailText renders a record with every layer unfolded (what y copies).
func detailText(r wire.Record) string { return renderLayers(detailLayers(r), nil, -1) }

// renderLayers draws the layers, the folded ones as their summary line,
// the cursor's marked.
func renderLayers(ls []layer, folded map[string]bool, cursor int) string {
	var b strings.Builder
	for i, l := range ls {
		mark, sel := "▾", "  "
		if folded[l.title] && l.body != "" {
			mark = "▸"
		}
		if l.body == "" {
			mark = " "
		}
		if i == cursor {
			sel = "› "
		}
		fmt.Fprintf(&b, "%s%s %-12s %s\n", sel, mark, l.title, l.summary)
		if l.body != "" && !folded[l.title] {
			for _, line := range strings.Split(strings.TrimSuffix(l.body, "\n"), "\n") {
				b.WriteString("    " + line + "\n") // under its layer's title
			}
		}
	}
	return b.String()
}

func newDetailView(st styles, r wire.Record, out io.Writer, w, h int) *detailView {
	d := &detailView{vp: viewport.New(max(10, w), max(3, h)), st: st, out: out, folded: map[string]bool{}}
	d.setRecord(r)
	return d
}

// setRecord shows r; its whole packet is fetched apart (setPacket).
func (d *detailView) setRecord(r wire.Record) {
	d.rec, d.pkt = r, nil
	d.layers = append(detailLayers(r), layer{title: "Packet"})
	d.cursor = min(d.cursor, len(d.layers)-1)
	d.render()
	d.vp.GotoTop()
}

// setPacket takes the whole packet of the record shown (or why there is
// none); one of another record is dropped.
func (d *detailView) setPacket(msg packetMsg) {
	if msg.app != d.rec.App || msg.seq != d.rec.Seq {
		return
	}
	d.pkt = &msg
	d.render()
}

func (d *detailView) render() {
	d.layers[len(d.layers)-1] = d.packetLayer(d.layers[d.cursor].title)
	d.vp.SetContent(renderLayers(d.layers, d.folded, d.cursor))
}

// SetSize implements overlay.
func (d *detailView) SetSize(w, h int) { d.vp.Width, d.vp.Height = max(10, w), max(3, h) }

// whole implements overlay: the detail covers the body.
func (d *detailView) place() placement { return overBody }

// Keys implements overlay.
func (d *detailView) Keys() []key.Binding {
	return []key.Binding{detailKeys.Next, detailKeys.Prev, detailKeys.Layer, detailKeys.Fold, detailKeys.CopyText, detailKeys.CopyHex, detailKeys.Legs, detailKeys.Close}
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
	case key.Matches(msg, detailKeys.Layer):
		step := 1
		if msg.String() == "shift+tab" {
			step = len(d.layers) - 1
		}
		d.cursor = (d.cursor + step) % len(d.layers)
		d.render()
		return d, nil
	case key.Matches(msg, detailKeys.Fold):
		t := d.layers[d.cursor].title
		d.folded[t] = !d.folded[t]
		d.render()
		return d, nil
	case key.Matches(msg, detailKeys.Legs):
		r := d.rec
		return d, func() tea.Msg { return legsRequest{rec: r} }
	case key.Matches(msg, detailKeys.CopyText), key.Matches(msg, detailKeys.CopyHex):
		data := detailText(d.rec)
		line := logMsg(fmt.Sprintf("copied the text (%d bytes) to the clipboard (OSC 52)", len(data)))
		if key.Matches(msg, detailKeys.CopyHex) {
			data = hex.EncodeToString(d.rec.Data)
			line = logMsg(fmt.Sprintf("copied the payload as hex (%d bytes, %d hex digits) to the clipboard (OSC 52)", len(d.rec.Data), len(data)))
		}
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
