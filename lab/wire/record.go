// Package wire decodes the lab's traffic: link, IP and TCP layers (gopacket's
// DecodingLayerParser on the hot path), per-flow TCP reassembly, and the
// protocol parsers — HTTP/1.1 (with a streaming body path: a
// text/event-stream response is reported when its headers arrive and its
// body goes, as it comes, to an SSE event parser), the TLS record layer
// (with TLS 1.3 decryption when the lab's own clients logged their keys),
// WebSocket frames after an upgrade (permessage-deflate messages inflated
// with a hard cap), and HTTP/2 (frames, HPACK-decoded header blocks, each
// stream's request and response) with the gRPC messages its streams carry.
// The parser is chosen from the content and the app's protocol descriptor.
// It turns packets into Records, one per packet and one per application
// message (HTTP message, TLS record, WebSocket frame, SSE event, HTTP/2
// frame and message, gRPC message), and keeps them in bounded per-app ring
// buffers with counters. Every parser bounds what it holds, whatever the
// bytes.
package wire

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/protolab/protolab-tui/protocol"
)

// Dir is a direction within a flow.
type Dir uint8

// Directions.
const (
	ClientToServer Dir = iota
	ServerToClient
)

func (d Dir) String() string {
	if d == ServerToClient {
		return "s→c"
	}
	return "c→s"
}

// MarshalText implements encoding.TextMarshaler.
func (d Dir) MarshalText() ([]byte, error) {
	if d == ServerToClient {
		return []byte("server_to_client"), nil
	}
	return []byte("client_to_server"), nil
}

// Kind says whether a record is a packet or an application message.
type Kind uint8

// Record kinds.
const (
	KindPacket Kind = iota
	KindMessage
	KindError
)

func (k Kind) String() string {
	switch k {
	case KindMessage:
		return "message"
	case KindError:
		return "error"
	}
	return "packet"
}

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Flow is one TCP connection, named from the client's side.
type Flow struct {
	Client netip.AddrPort `json:"client"`
	Server netip.AddrPort `json:"server"`
}

func (f Flow) String() string { return f.Client.String() + " ⇄ " + f.Server.String() }

// Field is one decoded field of a record.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Record is one packet or one application message, decoded.
type Record struct {
	ID uint64 `json:"id"`
	// Seq numbers the records of one protocol: 0, 1, 2… in the order added.
	Seq      uint64            `json:"seq"`
	Time     time.Time         `json:"time"`
	App      string            `json:"app"`
	Protocol protocol.Protocol `json:"protocol"`
	Flow     Flow              `json:"flow"`
	Dir      Dir               `json:"dir"`
	Kind     Kind              `json:"kind"`
	// Layer is what decoded it: "tcp", "socket", "http", "tls", "ws",
	// "sse", "http2", "grpc" (and "decode", "gap" for errors).
	Layer string `json:"layer"`
	// Len is the packet's length on the wire, or the message's size.
	Len int `json:"len"`
	// Payload is the message's payload size (HTTP body, WS payload, TLS
	// record body), or a packet's TCP payload size.
	Payload int    `json:"payload"`
	Summary string `json:"summary"`
	Fields  []Field
	// Decrypted marks content recovered with the lab's TLS keys.
	Decrypted bool `json:"decrypted,omitempty"`
	// Data is the start of the payload (at most PreviewBytes), for hex dumps.
	Data []byte `json:"-"`
	// Err says what could not be decoded (Kind == KindError).
	Err string `json:"error,omitempty"`
	// TCP holds a packet record's TCP header fields.
	TCP TCPInfo `json:"tcp,omitzero"`
	// lazy writes Summary and Fields when first asked (decoding never
	// formats text: most records are never looked at); so does lazyOf, the
	// message the record is of, which costs no closure (an allocation per
	// message on the hot path).
	lazy   func(*Record)
	lazyOf formatter
}

// formatter writes a record's Summary and Fields.
type formatter interface{ format(*Record) }

// isLazy says whether the record's text is formatted when asked.
func (r *Record) isLazy() bool { return r.lazy != nil || r.lazyOf != nil }

// formatted returns r with Summary and Fields filled in.
func (r *Record) formatted() Record {
	c := *r
	if c.isLazy() && c.Summary == "" {
		c.Fields = nil
		if c.lazyOf != nil {
			c.lazyOf.format(&c)
		} else {
			c.lazy(&c)
		}
	}
	return c
}

// TCPInfo is what a packet record keeps of its TCP header; its text is
// formatted only when shown.
type TCPInfo struct {
	Seq, Ack uint32 // relative to the direction's first sequence number
	Flags    uint8  // FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10
	Window   uint32 // scaled by the SYN's window-scale option
	Retrans  bool
}

// TCP flag bits.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
)

func (t TCPInfo) flagText() string {
	var parts []string
	for _, f := range []struct {
		bit  uint8
		name string
	}{{FlagSYN, "SYN"}, {FlagFIN, "FIN"}, {FlagRST, "RST"}, {FlagPSH, "PSH"}, {FlagACK, "ACK"}} {
		if t.Flags&f.bit != 0 {
			parts = append(parts, f.name)
		}
	}
	return strings.Join(parts, ", ")
}

// Text is the record's one-line summary, like a line of tshark's output.
func (r *Record) Text() string {
	if r.Summary != "" {
		return r.Summary
	}
	if r.isLazy() {
		f := r.formatted()
		return f.Summary
	}
	if r.Kind != KindPacket {
		return r.Summary
	}
	if r.Layer == "socket" {
		return fmt.Sprintf("%s %d bytes (socket-level: no TCP header)", r.Dir, r.Payload)
	}
	src, dst := r.Flow.Client, r.Flow.Server
	if r.Dir == ServerToClient {
		src, dst = dst, src
	}
	s := fmt.Sprintf("%d → %d [%s] Seq=%d", src.Port(), dst.Port(), r.TCP.flagText(), r.TCP.Seq)
	if r.TCP.Flags&FlagACK != 0 {
		s += fmt.Sprintf(" Ack=%d", r.TCP.Ack)
	}
	s += fmt.Sprintf(" Win=%d Len=%d", r.TCP.Window, r.Payload)
	if r.TCP.Retrans {
		s += " [retransmission]"
	}
	return s
}

// Details returns the record's fields, with a packet's TCP fields formatted
// on demand.
func (r *Record) Details() []Field {
	if r.isLazy() && len(r.Fields) == 0 {
		f := r.formatted()
		return f.Fields
	}
	if r.Kind != KindPacket || r.Layer != "tcp" {
		return r.Fields
	}
	return []Field{
		{Name: "flags", Value: r.TCP.flagText()},
		{Name: "seq", Value: fmt.Sprint(r.TCP.Seq)},
		{Name: "ack", Value: fmt.Sprint(r.TCP.Ack)},
		{Name: "window", Value: fmt.Sprint(r.TCP.Window)},
		{Name: "tcp_payload", Value: fmt.Sprint(r.Payload)},
		{Name: "frame_length", Value: fmt.Sprint(r.Len)},
		{Name: "retransmission", Value: fmt.Sprint(r.TCP.Retrans)},
	}
}

// PreviewBytes bounds Record.Data.
const PreviewBytes = 256

func (r *Record) add(name, format string, args ...any) {
	r.Fields = append(r.Fields, Field{Name: name, Value: fmt.Sprintf(format, args...)})
}

// Field returns the value of the named field, or "".
func (r *Record) Field(name string) string {
	for _, f := range r.Details() {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

func preview(b []byte) []byte {
	if len(b) > PreviewBytes {
		b = b[:PreviewBytes]
	}
	return append([]byte(nil), b...)
}

// textPreview renders the start of b as one line of printable text.
func textPreview(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	out := make([]rune, 0, len(b))
	for _, c := range string(b) {
		if c < 0x20 || c == 0x7f || c == 0xfffd {
			c = '.'
		}
		out = append(out, c)
	}
	return string(out)
}
