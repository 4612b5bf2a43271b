package wire

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/protolab/protolab-tui/protocol/rfc6455"
)

// WebSocket opcodes (RFC 6455 §5.2).
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xA
)

// WSFrame is one decoded WebSocket frame.
type WSFrame struct {
	Fin    bool
	RSV    byte // the three RSV bits, 0–7
	Opcode byte
	Masked bool
	Key    [4]byte
	Length uint64
	// HeaderLen is the frame header's size on the wire (2–14 bytes).
	HeaderLen int
	// Data is the unmasked start of the payload (at most PreviewBytes; a
	// control frame is always whole).
	Data []byte
	// Lost counts payload bytes missing from the capture: the frame is
	// partial (its header was seen, so the next frame was found by length).
	Lost uint64
	// Compressed marks the frames of a message sent compressed
	// (permessage-deflate: RSV1 on its first frame); Inflated, on its last
	// frame, is the whole message inflated.
	Compressed bool
	Inflated   *WSInflated
}

// OpcodeName names an opcode as Wireshark does.
func OpcodeName(op byte) string {
	switch op {
	case wsContinuation:
		return "CONTINUATION"
	case wsText:
		return "TEXT"
	case wsBinary:
		return "BINARY"
	case wsClose:
		return "CLOSE"
	case wsPing:
		return "PING"
	case wsPong:
		return "PONG"
	}
	return fmt.Sprintf("RESERVED(0x%x)", op)
}

// Control reports whether the frame is a control frame.
func (f *WSFrame) Control() bool { return f.Opcode&0x8 != 0 }

// CloseCode returns the close frame's status code and reason, if any.
func (f *WSFrame) CloseCode() (code uint16, reason string, ok bool) {
	if f.Opcode != wsClose || len(f.Data) < 2 {
		return 0, "", false
	}
	return binary.BigEndian.Uint16(f.Data), string(f.Data[2:]), true
}

// wsParser reads frames from one direction of a WebSocket connection, a
// chunk at a time; payloads are not buffered beyond the preview. Besides
// the frames it checks what RFC 6455 asks a receiver to check of the
// messages they make up — text valid UTF-8 across fragments and segments,
// fragments in order, close frames well formed — and reports a breach
// through flag without stopping: the connection goes on, and so does
// decoding.
type wsParser struct {
	hdr       []byte   // header bytes gathered so far
	cur       *WSFrame // frame whose payload is being read
	remaining uint64
	got       uint64
	// flag reports a breach of the protocol (nil: not reported).
	flag func(problem string)

	inMsg   bool         // a fragmented message is in progress
	text    bool         // the message in progress is text to validate
	msgLen  uint64       // bytes of the message so far
	utf8    rfc6455.UTF8 // the message's text so far
	flagged bool         // the message's text was reported already

	// deflate inflates compressed messages when permessage-deflate was
	// agreed (nil: no extension, and RSV1 is a breach); compressed says
	// the message in progress is; ctext that it is text, checked once
	// inflated.
	deflate    *wsInflater
	compressed bool
	ctext      bool

	// client says this side is the client's (its frames are masked);
	// resync, when set, is the search for a frame start after a gap that
	// hid a header (wsresync.go).
	client bool
	resync *wsResync
}

// maxWSHeader is the largest frame header: 2 + 8 (length) + 4 (mask).
const maxWSHeader = 14

// parseWSHeader decodes a frame header from b. It returns the frame and the
// header length, 0 when b is too short, or an error for an invalid header.
func parseWSHeader(b []byte) (*WSFrame, int, error) {
	if len(b) < 2 {
		return nil, 0, nil
	}
	f := &WSFrame{Fin: b[0]&0x80 != 0, RSV: (b[0] >> 4) & 0x7, Opcode: b[0] & 0x0f, Masked: b[1]&0x80 != 0}
	n := 2
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return nil, 0, nil
		}
		f.Length = uint64(binary.BigEndian.Uint16(b[2:]))
		n = 4
	case 127:
		if len(b) < 10 {
			return nil, 0, nil
		}
		f.Length = binary.BigEndian.Uint64(b[2:])
		n = 10
		if f.Length>>63 != 0 {
			return nil, 0, fmt.Errorf("websocket frame length has its most significant bit set (0x%x)", f.Length)
		}
	default:
		f.Length = uint64(l)
	}
	if f.Masked {
		if len(b) < n+4 {
			return nil, 0, nil
		}
		copy(f.Key[:], b[n:n+4])
		n += 4
	}
	f.HeaderLen = n
	switch {
	case f.Opcode >= 0x3 && f.Opcode <= 0x7, f.Opcode >= 0xB:
		return nil, 0, fmt.Errorf("websocket frame with reserved opcode 0x%x", f.Opcode)
	case f.Control() && f.Length > 125:
		return nil, 0, fmt.Errorf("websocket %s frame with a %d-byte payload (control frames carry at most 125)", OpcodeName(f.Opcode), f.Length)
	case f.Control() && !f.Fin:
		return nil, 0, fmt.Errorf("fragmented websocket %s frame (control frames cannot be fragmented)", OpcodeName(f.Opcode))
	}
	return f, n, nil
}

// feed consumes b and calls emit for each complete frame. After an error the
// parser must not be fed again.
func (p *wsParser) feed(b []byte, emit func(*WSFrame)) error {
	for len(b) > 0 {
		if p.cur == nil {
			// Parse straight from b when no partial header is pending.
			src := b
			if len(p.hdr) > 0 {
				take := min(maxWSHeader-len(p.hdr), len(b))
				src = append(p.hdr, b[:take]...)
			}
			f, n, err := parseWSHeader(src)
			if err != nil {
				return err
			}
			if f == nil {
				if len(p.hdr) == 0 {
					p.hdr = append(p.hdr[:0], b...)
				} else {
					p.hdr = src
				}
				return nil
			}
			consumed := n - len(p.hdr) // bytes of b in the header
			p.hdr = p.hdr[:0]
			b = b[consumed:]
			p.cur, p.remaining, p.got = f, f.Length, 0
			p.begin(f)
		}
		take := uint64(len(b))
		if take > p.remaining {
			take = p.remaining
		}
		f := p.cur
		// The preview is the payload's start; bytes after a gap are not in it.
		if keep := min(uint64(PreviewBytes)-min(p.got, PreviewBytes), take); keep > 0 && f.Lost == 0 {
			start := len(f.Data)
			f.Data = append(f.Data, b[:keep]...)
			if f.Masked {
				for i := start; i < len(f.Data); i++ {
					f.Data[i] ^= f.Key[(uint64(i))%4]
				}
			}
		}
		if p.text && !f.Control() && !p.flagged {
			p.checkText(f, b[:take])
		}
		if p.compressed && !f.Control() {
			p.deflate.take(b[:take], f, p.got)
		}
		p.got += take
		p.remaining -= take
		b = b[take:]
		if p.remaining == 0 {
			p.complete(f, emit)
		}
	}
	return nil
}

// skip passes over n bytes lost from the stream (n < 0: an unknown number)
// and reports whether it could: only when the gap falls inside the payload
// of the frame being read is the next frame header where the length says.
// A gap that hides a header, or part of one, cannot be skipped: frames carry
// no marker to find the next one by (lose and resume look for a proven
// start instead). The frame hit is emitted partial.
func (p *wsParser) skip(n int, emit func(*WSFrame)) bool {
	if n < 0 || p.cur == nil || len(p.hdr) > 0 || uint64(n) > p.remaining {
		return false
	}
	f := p.cur
	f.Lost += uint64(n)
	p.flagged = true // the text's UTF-8 cannot be followed across the gap
	if p.compressed && !f.Control() {
		p.deflate.gap()
	}
	p.got += uint64(n)
	p.remaining -= uint64(n)
	if p.remaining == 0 {
		p.complete(f, emit)
	}
	return true
}

// complete ends a frame whose payload is all read: the last frame of a
// compressed message has it inflated first.
func (p *wsParser) complete(f *WSFrame, emit func(*WSFrame)) {
	p.cur = nil
	if p.compressed && !f.Control() && f.Fin {
		p.compressed = false
		f.Inflated = p.deflate.inflate(p.ctext, p.report)
		if z := f.Inflated; z.Err != "" && !z.after {
			p.report("websocket compressed message (permessage-deflate) " + z.Err)
		}
	}
	emit(f)
	p.end(f)
}

func (p *wsParser) report(problem string) {
	if p.flag != nil {
		p.flag(problem)
	}
}

// begin follows the message a new frame belongs to (§5.4): a text or
// binary frame starts one, a continuation goes on with it; control frames
// may come between fragments and belong to none. The RSV bits are checked
// against the extension agreed: RSV1 only with permessage-deflate, and
// then only on a data message's first frame (RFC 7692 §6.1).
func (p *wsParser) begin(f *WSFrame) {
	switch {
	case f.RSV&3 != 0:
		p.report(fmt.Sprintf("websocket frame with RSV2 or RSV3 set (rsv=%d): no extension agreed defines them (RFC 6455 §5.2: the receiver fails the connection, 1002)", f.RSV))
	case f.RSV&4 == 0:
	case p.deflate == nil:
		p.report("websocket frame with RSV1 set, but no extension (permessage-deflate) was agreed (RFC 6455 §5.2: the receiver fails the connection, 1002)")
	case f.Control():
		p.report("websocket " + OpcodeName(f.Opcode) + " frame with RSV1 set: control frames are never compressed (RFC 7692 §6.1: 1002)")
	case f.Opcode == wsContinuation:
		p.report("websocket continuation frame with RSV1 set: only a message's first frame carries it (RFC 7692 §6.1: 1002)")
	}
	switch {
	case f.Control():
		return
	case f.Opcode == wsContinuation && !p.inMsg:
		p.report("websocket continuation frame with no message to continue (RFC 6455 §5.4: the receiver fails the connection, 1002)")
		p.text = false // nothing to check it against
	case f.Opcode != wsContinuation && p.inMsg:
		p.report("websocket " + OpcodeName(f.Opcode) + " frame began a new message before the fragmented one ended (RFC 6455 §5.4: 1002)")
		fallthrough
	case f.Opcode != wsContinuation:
		// A compressed message (RSV1) is not text on the wire: with
		// permessage-deflate agreed it is checked once inflated; without,
		// RSV1 is the breach reported.
		p.compressed = f.RSV&4 != 0 && p.deflate != nil
		p.text = f.Opcode == wsText && f.RSV&4 == 0
		p.ctext = f.Opcode == wsText && p.compressed
		p.msgLen, p.flagged = 0, false
		p.utf8.Reset()
		if p.deflate != nil {
			p.deflate.comp, p.deflate.size, p.deflate.damaged = p.deflate.comp[:0], 0, ""
		}
	}
	f.Compressed = p.compressed
	p.inMsg = !f.Fin
}

// checkText unmasks a piece of a text message's payload (payload byte
// p.got on) and validates it.
func (p *wsParser) checkText(f *WSFrame, b []byte) {
	var buf [512]byte
	for off := 0; off < len(b); {
		n := copy(buf[:], b[off:])
		if f.Masked {
			for i := range n {
				buf[i] ^= f.Key[(p.got+uint64(off+i))%4]
			}
		}
		if !p.utf8.Write(buf[:n]) {
			p.flagged = true
			p.report(fmt.Sprintf("websocket text message is not valid UTF-8 (by byte %d of the message; RFC 6455 §8.1: the receiver fails the connection, 1007)", p.msgLen+uint64(off+n)))
			return
		}
		off += n
	}
	p.msgLen += uint64(len(b))
}

// end checks a frame once whole: a text message that ends must end on a
// character boundary; a close frame must carry nothing, or a code an
// endpoint may send and a UTF-8 reason (§5.5.1, §7.4).
func (p *wsParser) end(f *WSFrame) {
	switch {
	case f.Opcode == wsClose:
		code, reason, ok := f.CloseCode()
		switch {
		case len(f.Data) == 1:
			p.report("websocket close frame with a 1-byte payload (a code takes 2; RFC 6455 §5.5.1: 1002)")
		case ok && !rfc6455.ValidCloseCode(code):
			p.report(fmt.Sprintf("websocket close code %d is not one an endpoint may send (RFC 6455 §7.4: 1002)", code))
		case ok && !utf8.ValidString(reason):
			p.report("websocket close reason is not valid UTF-8 (RFC 6455 §5.5.1: the receiver fails the connection, 1007)")
		}
	case !f.Control() && f.Fin:
		if p.text && !p.flagged && !p.utf8.Complete() {
			p.report("websocket text message ends inside a UTF-8 sequence (RFC 6455 §8.1: 1007)")
		}
		p.text = false
	}
}

// pending reports whether a frame is partly read.
func (p *wsParser) pending() bool { return p.cur != nil || len(p.hdr) > 0 }

// fill sets a record's sizes from a frame; its text is formatted only when
// shown (format).
func (f *WSFrame) fill(r *Record) {
	r.Layer = "ws"
	r.Len = f.HeaderLen + int(f.Length)
	r.Payload = int(f.Length)
	r.Data = f.Data
	r.lazyOf = f
}

// format writes a record's summary and fields.
func (f *WSFrame) format(r *Record) {
	r.add("fin", "%v", f.Fin)
	r.add("rsv", "%d", f.RSV)
	r.add("opcode", "%s (0x%x)", OpcodeName(f.Opcode), f.Opcode)
	r.add("mask", "%v", f.Masked)
	if f.Masked {
		r.add("masking_key", "%x", f.Key)
	}
	r.add("payload_length", "%d", f.Length)
	s := fmt.Sprintf("WS %s", OpcodeName(f.Opcode))
	if !f.Fin {
		s += " (not FIN)"
	}
	if f.Masked {
		s += " [MASKED]"
	}
	s += fmt.Sprintf(" len=%d", f.Length)
	if f.Lost > 0 {
		r.add("lost_bytes", "%d", f.Lost)
		s += fmt.Sprintf(" [partial: %d bytes not captured]", f.Lost)
	}
	if z := f.Inflated; z != nil {
		r.add("compressed", "true")
		r.add("compressed_bytes", "%d", z.Compressed)
		if z.Err != "" {
			r.add("inflated", "%s", z.Err)
			s += " [deflate: " + z.Err + "]"
		} else {
			r.add("inflated_bytes", "%d", z.Inflated)
			s += fmt.Sprintf(" (deflate: %d → %d bytes)", z.Compressed, z.Inflated)
			if utf8.Valid(z.Preview) || len(z.Preview) == PreviewBytes {
				r.add("text", "%s", textPreview(z.Preview, PreviewBytes))
				s += fmt.Sprintf(" %q", textPreview(z.Preview, 64))
			} else {
				r.add("inflated_data", "%x", z.Preview)
			}
		}
		r.Summary = s
		return
	}
	if f.Compressed {
		r.add("compressed", "true")
		s += " [compressed: inflated with the message's last frame]"
		r.Summary = s
		return
	}
	switch f.Opcode {
	case wsText, wsContinuation:
		if utf8.Valid(f.Data) || len(f.Data) == PreviewBytes {
			text := textPreview(f.Data, 64)
			r.add("text", "%s", textPreview(f.Data, PreviewBytes))
			s += fmt.Sprintf(" %q", text)
		}
	case wsClose:
		if code, reason, ok := f.CloseCode(); ok {
			r.add("close_code", "%d", code)
			r.add("close_reason", "%s", reason)
			s += fmt.Sprintf(" code=%d", code)
			if reason != "" {
				s += fmt.Sprintf(" %q", reason)
			}
		}
	case wsPing, wsPong:
		if len(f.Data) > 0 {
			s += fmt.Sprintf(" %q", textPreview(f.Data, 32))
		}
	}
	r.Summary = s
}
