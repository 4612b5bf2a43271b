package ui

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/protolab/protolab-tui/lab/wire"
)

// The detail's whole packet: records keep only the first bytes of their
// payload (wire.PreviewBytes); the capture keeps every packet in its spool
// for export, and the detail fetches the one a record stands for from
// there, in a Cmd, by the record's identity (its time and its length on
// the wire), then shows it in hex with the selected layer's bytes marked.

// packetMsg carries a record's whole packet, or why there is none.
type packetMsg struct {
	app  string
	seq  uint64
	data []byte
	link layers.LinkType
	err  error
}

// packetRecord is the packet record that carried r: r itself, or for a
// message the packet of its connection and direction that completed it
// (the last one at or before it, among the records just before it).
func packetRecord(store *wire.Store, r wire.Record) (wire.Record, bool) {
	if r.Kind == wire.KindPacket {
		return r, true
	}
	seqs := make([]uint64, 0, 32)
	for s := r.Seq - min(r.Seq, 32); s < r.Seq; s++ {
		seqs = append(seqs, s)
	}
	recs := store.Pick(r.App, seqs)
	for i := len(recs) - 1; i >= 0; i-- {
		c := recs[i]
		if c.Kind == wire.KindPacket && c.Flow == r.Flow && c.Dir == r.Dir && !c.Time.After(r.Time) {
			return c, true
		}
	}
	return wire.Record{}, false
}

// fetchPacket reads the packet that carried r from the capture's spool; a
// tea.Cmd.
func fetchPacket(l Lab, r wire.Record) tea.Cmd {
	return func() tea.Msg {
		msg := packetMsg{app: r.App, seq: r.Seq}
		p, ok := packetRecord(l.Wire(), r)
		switch {
		case !ok:
			msg.err = errors.New("the ring no longer holds the packet that carried it")
		case p.Layer == "socket":
			msg.err = errors.New("a socket-level capture sees the bytes, not the packets: there are no headers to show")
		default:
			msg.data, msg.link, msg.err = l.Packet(p.Time, p.Len)
		}
		return msg
	}
}

// byteRange is [from, to) of a packet's bytes.
type byteRange struct{ from, to int }

func (b byteRange) has(i int) bool { return i >= b.from && i < b.to }

// packetLayout finds the IP header, the TCP header and the TCP payload in
// a packet.
type packetLayout struct{ ip, tcp, payload byteRange }

func layout(data []byte, link layers.LinkType) packetLayout {
	var out packetLayout
	pkt := gopacket.NewPacket(data, link, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	off := 0
	for _, l := range pkt.Layers() {
		n := len(l.LayerContents())
		switch l.LayerType() {
		case layers.LayerTypeIPv4, layers.LayerTypeIPv6:
			out.ip = byteRange{off, off + n}
		case layers.LayerTypeTCP:
			out.tcp = byteRange{off, off + n}
			out.payload = byteRange{off + n, len(data)}
			return out
		}
		off += n
	}
	return out
}

// rangeOf is the bytes of the packet that the detail's layer title stands
// for: the IP or TCP header, the payload, or — for the record's own
// message (an HTTP message, a WebSocket frame, a TLS record) — where its
// first bytes are found in the payload, with its header before them (a
// message recovered with the TLS keys is not in the packet as it is: the
// payload that carried it is marked).
func rangeOf(title string, r wire.Record, data []byte, pl packetLayout) byteRange {
	switch title {
	case "Record", "Packet":
		return byteRange{} // the packet as it is: tab marks a layer's bytes
	case "IP":
		return pl.ip
	case "TCP":
		return pl.tcp
	case "TLS", "Bytes":
		return pl.payload
	}
	if pl.payload.to <= pl.payload.from {
		return byteRange{}
	}
	body := data[pl.payload.from:pl.payload.to]
	if len(r.Data) > 0 && !r.Decrypted {
		if i := bytes.Index(body, r.Data[:min(len(r.Data), 64)]); i >= 0 {
			head := max(0, r.Len-r.Payload)
			return byteRange{pl.payload.from + max(0, i-head), pl.payload.from + min(len(body), i+max(r.Payload, len(r.Data)))}
		}
	}
	return pl.payload
}

// hexView dumps data, 16 bytes a line (offset, hex, text), the bytes of
// hi marked with mark.
func hexView(data []byte, hi byteRange, mark lipgloss.Style) string {
	var b strings.Builder
	run := func(i int, s string) string {
		if hi.has(i) {
			return mark.Render(s)
		}
		return s
	}
	for off := 0; off < len(data); off += 16 {
		fmt.Fprintf(&b, "%04x  ", off)
		var text strings.Builder
		for i := off; i < off+16; i++ {
			if i == off+8 {
				b.WriteString(" ")
			}
			if i >= len(data) {
				b.WriteString("   ")
				continue
			}
			sep := " "
			if hi.has(i) && hi.has(i+1) && i+1 < off+16 && i+1 != off+8 {
				sep = mark.Render(" ") // a marked run stays one block
			}
			b.WriteString(run(i, fmt.Sprintf("%02x", data[i])) + sep)
			c := data[i]
			if c < 0x20 || c > 0x7e {
				c = '.'
			}
			text.WriteString(run(i, string(rune(c))))
		}
		b.WriteString(" |" + text.String() + "|\n")
	}
	return b.String()
}

// packetLayer is the detail's Packet layer: the whole packet in hex with
// the selected layer's bytes marked, or why it is not there.
func (d *detailView) packetLayer(selected string) layer {
	l := layer{title: "Packet"}
	switch {
	case d.pkt == nil:
		l.summary = "reading the whole packet from the capture's spool…"
	case d.pkt.err != nil:
		l.summary = "not shown: " + d.pkt.err.Error()
	default:
		pl := layout(d.pkt.data, d.pkt.link)
		hi := rangeOf(selected, d.rec, d.pkt.data, pl)
		what := selected
		if hi.to <= hi.from {
			what = "nothing (tab to a layer marks its bytes)"
		}
		l.summary = fmt.Sprintf("%d bytes as captured; marked: %s (bytes %d–%d)", len(d.pkt.data), strings.ToLower(what), hi.from, max(hi.from, hi.to-1))
		if d.rec.Kind != wire.KindPacket {
			l.summary = fmt.Sprintf("the packet that completed it, %d bytes; marked: %s (bytes %d–%d)", len(d.pkt.data), strings.ToLower(what), hi.from, max(hi.from, hi.to-1))
		}
		l.body = hexView(d.pkt.data, hi, d.st.tabActive)
	}
	return l
}
