package wire

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/protolab/protolab-tui/protocol/rfc6455"
)

// WebSocket permessage-deflate (RFC 7692): the 101 answer's
// Sec-WebSocket-Extensions says what was agreed; a data message whose
// first frame has RSV1 set is compressed. Its payload is gathered across
// its frames (bounded), then inflated with the 4 bytes 00 00 ff ff the
// sender took off appended, through a limited reader a chunk at a time:
// nothing the size of the inflated message is ever allocated, and a
// message that inflates past maxWSInflated is refused as a decompression
// bomb. With context takeover (the default) the sender's LZ77 window runs
// across messages, so the last 32 KiB inflated each way are the next
// message's dictionary; with no_context_takeover each message stands
// alone.

// Bounds.
const (
	// maxWSCompressed is the largest compressed message gathered to be
	// inflated.
	maxWSCompressed = 1 << 20
	// maxWSInflated is the most one message may inflate to: past it the
	// message is refused (a decompression bomb) and not inflated further.
	maxWSInflated = 16 << 20
	// wsWindow is deflate's largest window: the dictionary kept with
	// context takeover.
	wsWindow = 32 << 10
)

// deflateTail ends a message's compressed payload: the empty stored block
// the sender took off (00 00 ff ff), then a final empty stored block, so
// the reader ends cleanly.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// inflateCapped reads a decompressing reader through a limited reader, a
// chunk at a time, handing each chunk to out: it never holds more than
// one chunk. over says the stream holds more than limit bytes (what is
// past the limit is not read).
func inflateCapped(r io.Reader, limit int, out func([]byte)) (n int, over bool, err error) {
	var buf [8 << 10]byte
	lr := io.LimitReader(r, int64(limit)+1)
	for {
		k, err := lr.Read(buf[:])
		if k > 0 {
			if n+k > limit {
				out(buf[:limit-n])
				return limit, true, nil
			}
			n += k
			out(buf[:k])
		}
		if err == io.EOF {
			return n, false, nil
		}
		if err != nil {
			return n, false, err
		}
	}
}

// WSDeflate is the permessage-deflate agreement of a connection.
type WSDeflate struct {
	// Offer is the request's Sec-WebSocket-Extensions, Agreed the
	// answer's permessage-deflate element.
	Offer, Agreed string
	// ServerNoContext and ClientNoContext say each side resets its
	// compressor after every message; ServerBits and ClientBits are the
	// window bits each side compresses with (15 when not given).
	ServerNoContext, ClientNoContext bool
	ServerBits, ClientBits           int
}

// parseDeflate reads the answer's Sec-WebSocket-Extensions: nil when it
// agreed no permessage-deflate, an error when what it agreed is not what
// RFC 7692 allows.
func parseDeflate(offer, answer string) (*WSDeflate, error) {
	for _, ext := range strings.Split(answer, ",") {
		params := strings.Split(ext, ";")
		if strings.TrimSpace(params[0]) != "permessage-deflate" {
			continue
		}
		d := &WSDeflate{Offer: offer, Agreed: strings.TrimSpace(ext), ServerBits: 15, ClientBits: 15}
		seen := map[string]bool{}
		for _, p := range params[1:] {
			name, value, hasValue := strings.Cut(strings.TrimSpace(p), "=")
			name = strings.TrimSpace(name)
			value = strings.Trim(strings.TrimSpace(value), `"`)
			if seen[name] {
				return d, fmt.Errorf("permessage-deflate parameter %s given twice (RFC 7692 §7)", name)
			}
			seen[name] = true
			switch name {
			case "server_no_context_takeover", "client_no_context_takeover":
				if hasValue {
					return d, fmt.Errorf("permessage-deflate parameter %s takes no value", name)
				}
				if name[0] == 's' {
					d.ServerNoContext = true
				} else {
					d.ClientNoContext = true
				}
			case "server_max_window_bits", "client_max_window_bits":
				bits, err := strconv.Atoi(value)
				if err != nil || bits < 8 || bits > 15 {
					return d, fmt.Errorf("permessage-deflate parameter %s=%q: want 8 to 15", name, value)
				}
				if name[0] == 's' {
					d.ServerBits = bits
				} else {
					d.ClientBits = bits
				}
			default:
				return d, fmt.Errorf("permessage-deflate parameter %q is not one RFC 7692 defines", name)
			}
		}
		return d, nil
	}
	return nil, nil
}

// headerValues joins every value of a header (it may come on several
// lines).
func (m *HTTPMessage) headerValues(name string) string {
	var vals []string
	for _, h := range m.Headers {
		if strings.EqualFold(h.Name, name) {
			vals = append(vals, h.Value)
		}
	}
	return strings.Join(vals, ", ")
}

// WSInflated is what inflating a compressed message gave.
type WSInflated struct {
	// Compressed is the message's payload as sent (every frame);
	// Inflated its size inflated.
	Compressed, Inflated int
	// Preview is the start of the inflated payload (at most
	// PreviewBytes).
	Preview []byte
	// Err says why the message was not inflated (whole); Bomb that it
	// inflated past maxWSInflated.
	Err  string
	Bomb bool
	// after says Err follows from an earlier message's (the context
	// lost): that one was reported.
	after bool
}

// wsInflater inflates one direction's compressed messages.
type wsInflater struct {
	noContext bool
	bits      int
	window    []byte // the last inflated bytes (context takeover)
	lost      string // why the context is unknown: later messages cannot be inflated
	comp      []byte // the message's compressed payload so far
	size      int    // its size, all of it
	damaged   string // why the message in progress cannot be inflated
	fr        io.ReadCloser
}

// take gathers a piece of a compressed message's payload (masked as sent:
// got is the frame's payload offset of b).
func (z *wsInflater) take(b []byte, f *WSFrame, got uint64) {
	z.size += len(b)
	if z.damaged != "" {
		return
	}
	if len(z.comp)+len(b) > maxWSCompressed {
		z.damaged = fmt.Sprintf("its compressed payload is more than the %d bytes the decoder gathers", maxWSCompressed)
		z.comp = nil
		return
	}
	start := len(z.comp)
	z.comp = append(z.comp, b...)
	if f.Masked {
		for i := start; i < len(z.comp); i++ {
			z.comp[i] ^= f.Key[(got+uint64(i-start))%4]
		}
	}
}

// inflate inflates the message gathered; text messages are checked as
// UTF-8 as they inflate (report says how a check failed).
func (z *wsInflater) inflate(text bool, report func(string)) *WSInflated {
	res := &WSInflated{Compressed: z.size}
	comp, damaged := z.comp, z.damaged
	z.comp, z.size, z.damaged = z.comp[:0], 0, ""
	if cap(z.comp) > 64<<10 {
		z.comp = nil
	}
	switch {
	case z.lost != "" && !z.noContext:
		res.Err, res.after = "not inflated: "+z.lost, true
		return res
	case damaged != "":
		res.Err = "not inflated: " + damaged
		z.loseContext(damaged)
		return res
	}
	var dict []byte
	if !z.noContext {
		dict = z.window[max(0, len(z.window)-wsWindow):]
	}
	src := io.MultiReader(bytes.NewReader(comp), bytes.NewReader(deflateTail))
	if z.fr == nil {
		z.fr = flate.NewReaderDict(src, dict)
	} else if err := z.fr.(flate.Resetter).Reset(src, dict); err != nil {
		res.Err = "not inflated: " + err.Error()
		return res
	}
	var utf rfc6455.UTF8
	bad := false
	n, over, err := inflateCapped(z.fr, maxWSInflated, func(b []byte) {
		if room := PreviewBytes - len(res.Preview); room > 0 {
			res.Preview = append(res.Preview, b[:min(room, len(b))]...)
		}
		if text && !bad {
			before := res.Inflated
			if !utf.Write(b) {
				bad = true
				report(fmt.Sprintf("websocket text message (inflated) is not valid UTF-8 (by byte %d of the inflated message; RFC 6455 §8.1: the receiver fails the connection, 1007)", before+len(b)))
			}
		}
		res.Inflated += len(b)
		if !z.noContext {
			z.window = append(z.window, b...)
			if len(z.window) > 2*wsWindow {
				z.window = append(z.window[:0], z.window[len(z.window)-wsWindow:]...)
			}
		}
	})
	res.Inflated = n
	switch {
	case over:
		res.Bomb = true
		res.Err = fmt.Sprintf("refused: it inflates past %d bytes (a decompression bomb?); inflating stopped there, nothing of that size was held", maxWSInflated)
		z.loseContext("an earlier message was refused (it inflated past the bound)")
	case err != nil:
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("the deflate data ends inside a block")
		}
		res.Err = "not inflated: the compressed payload is not valid deflate data: " + err.Error()
		z.loseContext("an earlier message did not inflate")
	case text && !bad && !utf.Complete():
		report("websocket text message (inflated) ends inside a UTF-8 sequence (RFC 6455 §8.1: 1007)")
	}
	return res
}

// loseContext: with context takeover, later messages depend on what this
// one would have added to the window.
func (z *wsInflater) loseContext(why string) {
	if !z.noContext {
		z.lost = why + ": with context takeover, later messages of this side depend on it"
		z.window = nil
	}
}

// gap: bytes of the message in progress were lost.
func (z *wsInflater) gap() {
	if z.damaged == "" {
		z.damaged = "bytes of it were lost from the capture"
	}
	z.comp = nil
}
