package wire

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
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
// chunk at a time; payloads are not buffered beyond the preview.
type wsParser struct {
	hdr       []byte   // header bytes gathered so far
	cur       *WSFrame // frame whose payload is being read
	remaining uint64
	got       uint64
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
		}
		take := uint64(len(b))
		if take > p.remaining {
			take = p.remaining
		}
		f := p.cur
		if keep := min(uint64(PreviewBytes)-min(p.got, PreviewBytes), take); keep > 0 {
			start := len(f.Data)
			f.Data = append(f.Data, b[:keep]...)
			if f.Masked {
				for i := start; i < len(f.Data); i++ {
					f.Data[i] ^= f.Key[(uint64(i))%4]
				}
			}
		}
		p.got += take
		p.remaining -= take
		b = b[take:]
		if p.remaining == 0 {
			p.cur = nil
			emit(f)
		}
	}
	return nil
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
	r.lazy = f.format
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
