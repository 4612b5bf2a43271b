package webapp

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
)

// WebSocket permessage-deflate (RFC 7692), for a chat-ws app whose
// Compression is protocol.CompressionDeflate. The server takes a client's
// offer when it can honour it and answers with deflateResponse: neither side
// keeps its compression context from one message to the next, so every
// message inflates alone (no 32 KiB window per connection and direction
// kept between messages, and a message's size is the same whatever came
// before it). Data messages the server sends are compressed (RSV1 on their
// frame); a client's message with RSV1 is inflated through a reader limited
// to the read limit, so a decompression bomb costs at most the limit.

// deflateExtension is the extension's name in Sec-WebSocket-Extensions.
const deflateExtension = "permessage-deflate"

// deflateResponse is the server's answer to an offer it takes: what
// gorilla/websocket's client insists on, and browsers accept.
const deflateResponse = deflateExtension + "; server_no_context_takeover; client_no_context_takeover"

// deflateTail ends a message's compressed data for the inflater: the
// 0x00 0x00 0xff 0xff the sender took off (§7.2.2), then an empty final
// stored block, so the inflater ends cleanly at the message's end.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// extension is one entry of a Sec-WebSocket-Extensions header: a name and
// its parameters, in order.
type extension struct {
	name   string
	params []extParam
}

// extParam is one parameter; hasValue tells "p" from "p=".
type extParam struct {
	name, value string
	hasValue    bool
}

// maxExtensionHeader bounds what parseExtensions reads (the request's
// headers are bounded by the HTTP server already; this keeps the parser's
// work small whatever calls it).
const maxExtensionHeader = 4096

// parseExtensions parses Sec-WebSocket-Extensions values (RFC 6455 §9.1):
// a comma-separated list of extension tokens, each followed by
// ";"-separated parameters, a parameter being a token with an optional
// "=" and a token or quoted-string value (whose unescaped content must be
// a token, §9.1). Several header lines are one list.
func parseExtensions(values []string) ([]extension, error) {
	var out []extension
	total := 0
	for _, v := range values {
		total += len(v)
		if total > maxExtensionHeader {
			return nil, fmt.Errorf("Sec-WebSocket-Extensions longer than %d bytes", maxExtensionHeader)
		}
		p := extParser{s: v}
		for {
			p.skipSpace()
			if p.done() {
				break
			}
			if p.peek() == ',' { // empty list elements are allowed (#rule)
				p.i++
				continue
			}
			ext, err := p.extension()
			if err != nil {
				return nil, err
			}
			out = append(out, ext)
			p.skipSpace()
			if p.done() {
				break
			}
			if p.peek() != ',' {
				return nil, fmt.Errorf("Sec-WebSocket-Extensions: %q at byte %d where a ',' or the end should be", p.peek(), p.i)
			}
			p.i++
		}
	}
	return out, nil
}

type extParser struct {
	s string
	i int
}

func (p *extParser) done() bool { return p.i >= len(p.s) }
func (p *extParser) peek() byte { return p.s[p.i] }

func (p *extParser) skipSpace() {
	for !p.done() && (p.peek() == ' ' || p.peek() == '\t') {
		p.i++
	}
}

// token reads an RFC 7230 token.
func (p *extParser) token(what string) (string, error) {
	start := p.i
	for !p.done() && isTokenChar(p.peek()) {
		p.i++
	}
	if p.i == start {
		if p.done() {
			return "", fmt.Errorf("Sec-WebSocket-Extensions: %s missing at the end", what)
		}
		return "", fmt.Errorf("Sec-WebSocket-Extensions: %q at byte %d where %s should be", p.peek(), p.i, what)
	}
	return p.s[start:p.i], nil
}

func (p *extParser) extension() (extension, error) {
	name, err := p.token("an extension name")
	if err != nil {
		return extension{}, err
	}
	ext := extension{name: name}
	for {
		p.skipSpace()
		if p.done() || p.peek() != ';' {
			return ext, nil
		}
		p.i++
		p.skipSpace()
		var prm extParam
		if prm.name, err = p.token("a parameter name"); err != nil {
			return extension{}, err
		}
		p.skipSpace()
		if !p.done() && p.peek() == '=' {
			p.i++
			p.skipSpace()
			prm.hasValue = true
			if prm.value, err = p.value(); err != nil {
				return extension{}, err
			}
		}
		ext.params = append(ext.params, prm)
	}
}

// value reads a parameter's value: a token, or a quoted string whose
// content, unescaped, is a token.
func (p *extParser) value() (string, error) {
	if p.done() || p.peek() != '"' {
		return p.token("a parameter value")
	}
	p.i++
	var b strings.Builder
	for {
		if p.done() {
			return "", errors.New("Sec-WebSocket-Extensions: a quoted value does not end")
		}
		c := p.peek()
		p.i++
		switch {
		case c == '"':
			v := b.String()
			for i := 0; i < len(v); i++ {
				if !isTokenChar(v[i]) {
					return "", fmt.Errorf("Sec-WebSocket-Extensions: quoted value %q is not a token", v)
				}
			}
			if v == "" {
				return "", errors.New("Sec-WebSocket-Extensions: empty quoted value")
			}
			return v, nil
		case c == '\\':
			if p.done() {
				return "", errors.New("Sec-WebSocket-Extensions: a quoted value ends in a backslash")
			}
			b.WriteByte(p.peek())
			p.i++
		default:
			b.WriteByte(c)
		}
	}
}

// isTokenChar reports whether c may appear in an RFC 7230 token.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// acceptDeflate reports whether one of the offers is a permessage-deflate
// this server can take (RFC 7692 §7.1), and why not when none is. An
// offer is declined for an unknown or repeated parameter, a window size
// out of 8–15, or server_max_window_bits below 15 (Go's compressor keeps a
// 32 KiB window; the client could not inflate what it sends). The client's
// own window does not matter: every message inflates alone.
func acceptDeflate(offers []extension) (bool, string) {
	why := "no permessage-deflate offered"
	for _, ext := range offers {
		if !strings.EqualFold(ext.name, deflateExtension) {
			continue
		}
		if reason := declineDeflate(ext); reason != "" {
			why = reason
			continue
		}
		return true, ""
	}
	return false, why
}

func declineDeflate(ext extension) string {
	seen := map[string]bool{}
	for _, prm := range ext.params {
		name := strings.ToLower(prm.name)
		if seen[name] {
			return "parameter " + name + " given twice"
		}
		seen[name] = true
		switch name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if prm.hasValue {
				return name + " takes no value"
			}
		case "client_max_window_bits":
			if prm.hasValue && !windowBits(prm.value) {
				return "client_max_window_bits " + strconv.Quote(prm.value) + " is not 8 to 15"
			}
		case "server_max_window_bits":
			if !prm.hasValue || !windowBits(prm.value) {
				return "server_max_window_bits needs a value from 8 to 15"
			}
			if prm.value != "15" {
				return "server_max_window_bits " + prm.value + ": this server compresses with a 32 KiB window (15)"
			}
		default:
			return "unknown parameter " + strconv.Quote(prm.name)
		}
	}
	return ""
}

// windowBits reports whether v is a window size RFC 7692 allows: 8 to 15,
// written without leading zeros.
func windowBits(v string) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n >= 8 && n <= 15 && strconv.Itoa(n) == v
}

// compressedLimit bounds a compressed message's size on the wire for a read
// limit: deflate grows incompressible data by a few bytes per 64 KiB
// block, so an honest message within the limit is never refused for its
// compressed size; the inflated size is checked against the limit itself.
func compressedLimit(readLimit int64) int64 {
	return readLimit + readLimit/64 + 1024
}

var (
	flateWriters = sync.Pool{New: func() any {
		w, _ := flate.NewWriter(nil, flate.DefaultCompression)
		return w
	}}
	flateReaders = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}
)

// deflateMessage compresses one message as permessage-deflate sends it:
// the deflate stream flushed and its 0x00 0x00 0xff 0xff tail taken off
// (§7.2.1), appended to dst.
func deflateMessage(dst, msg []byte) ([]byte, error) {
	buf := bytes.NewBuffer(dst)
	w := flateWriters.Get().(*flate.Writer)
	defer flateWriters.Put(w)
	w.Reset(buf)
	if _, err := w.Write(msg); err != nil {
		return nil, fmt.Errorf("compressing a message: %w", err)
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("compressing a message: %w", err)
	}
	out := buf.Bytes()
	if !bytes.HasSuffix(out, deflateTail[:4]) {
		return nil, errors.New("compressing a message: the flushed stream does not end in 00 00 ff ff")
	}
	return out[:len(out)-4], nil
}

// errInflatedTooBig is inflateMessage's error for a message that inflates
// past the limit.
var errInflatedTooBig = errors.New("inflates past the limit")

// inflateMessage inflates one compressed message, reading at most limit+1
// bytes of output: a message that inflates further is refused with
// errInflatedTooBig having cost no more than that. Other errors are
// compressed data that does not inflate.
func inflateMessage(compressed []byte, limit int64) ([]byte, error) {
	fr := flateReaders.Get().(io.ReadCloser)
	defer flateReaders.Put(fr)
	if err := fr.(flate.Resetter).Reset(io.MultiReader(bytes.NewReader(compressed), bytes.NewReader(deflateTail)), nil); err != nil {
		return nil, err
	}
	lr := io.LimitReader(fr, limit+1)
	out := make([]byte, 0, min(limit+1, int64(max(512, 4*len(compressed)))))
	for {
		if len(out) == cap(out) {
			if int64(len(out)) > limit {
				return nil, errInflatedTooBig
			}
			grown := make([]byte, len(out), min(2*int64(cap(out)), limit+1))
			copy(grown, out)
			out = grown
		}
		n, err := lr.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if errors.Is(err, io.EOF) {
			if int64(len(out)) > limit {
				return nil, errInflatedTooBig
			}
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
