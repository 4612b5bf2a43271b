package webapp

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	sse "github.com/tmaxmax/go-sse"

	"github.com/protolab/protolab-tui/internal/wsraw"
	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/protocol/rfc6455"
)

// bytesConn is a connection whose peer sent exactly in and reads nothing
// back: what the server writes is counted and dropped.
type bytesConn struct {
	in      io.Reader
	written int
}

func (c *bytesConn) Read(p []byte) (int, error)       { return c.in.Read(p) }
func (c *bytesConn) Write(p []byte) (int, error)      { c.written += len(p); return len(p), nil }
func (c *bytesConn) Close() error                     { return nil }
func (c *bytesConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *bytesConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *bytesConn) SetDeadline(time.Time) error      { return nil }
func (c *bytesConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bytesConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzWSConnRead: whatever a client sends, the server's frame reader never
// panics, never returns a message over its read limit, never hands the
// app invalid UTF-8 as text, and ends with an error at the end of input.
func FuzzWSConnRead(f *testing.F) {
	for _, frames := range [][]wsraw.Frame{
		{wsraw.Text("hello"), wsraw.Binary([]byte{0, 1, 2})},
		wsraw.Fragments(rfc6455.OpText, []byte("κόσμε fragmented"), 3),
		{wsraw.Ping([]byte("p")), wsraw.Close(1000, "bye")},
		{wsraw.Text("\xce\xba\xf4\x90")},
		{wsraw.CloseRaw([]byte{1})},
		{{Fin: true, RSV: 2, Op: 0x3}},
	} {
		var b []byte
		for _, fr := range frames {
			b = append(b, fr.Encode()...)
		}
		f.Add(b, uint8(7))
	}
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8) {
		const limit = 1024
		in := &chunkReader{b: b, n: int(chunk%64) + 1}
		nc := &bytesConn{in: in}
		c := newWSConn(nc, bufio.NewReaderSize(nc, 64), limit)
		for range len(b) + 1 {
			op, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if len(msg) > limit {
				t.Fatalf("a %d-byte message past the %d-byte limit", len(msg), limit)
			}
			if op != rfc6455.OpText && op != rfc6455.OpBinary {
				t.Fatalf("message of opcode 0x%x", op)
			}
			if op == rfc6455.OpText && !utf8.Valid(msg) {
				t.Fatalf("invalid UTF-8 handed over as text: %q", msg)
			}
		}
		t.Fatalf("%d messages from %d bytes", len(b)+1, len(b))
	})
}

// chunkReader returns b n bytes at a time (TCP segments).
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p, r.b[:min(r.n, len(r.b))])
	r.b = r.b[k:]
	return k, nil
}

// FuzzWSConnReadDeflate is FuzzWSConnRead on a connection that negotiated
// permessage-deflate: compressed messages (RSV1) are inflated within the
// read limit, whatever their compressed bytes, and what comes out obeys
// the same rules.
func FuzzWSConnReadDeflate(f *testing.F) {
	z := compress(f, []byte("hello, hello, hello"))
	for _, frames := range [][]wsraw.Frame{
		{{Fin: true, RSV: 4, Op: rfc6455.OpText, Payload: z}},
		{{RSV: 4, Op: rfc6455.OpBinary, Payload: z[:3]}, wsraw.Ping(nil), wsraw.Fragment(rfc6455.OpContinuation, true, z[3:])},
		{{Fin: true, RSV: 4, Op: rfc6455.OpBinary, Payload: compress(f, make([]byte, 1<<16))}},
		{{Fin: true, RSV: 4, Op: rfc6455.OpText, Payload: []byte{0xff, 0, 1}}},
		{{Fin: true, RSV: 4, Op: rfc6455.OpPing}},
		{wsraw.Text("plain")},
	} {
		var b []byte
		for _, fr := range frames {
			b = append(b, fr.Encode()...)
		}
		f.Add(b, uint8(7))
	}
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8) {
		const limit = 1024
		in := &chunkReader{b: b, n: int(chunk%64) + 1}
		nc := &bytesConn{in: in}
		c := newWSConn(nc, bufio.NewReaderSize(nc, 64), limit)
		c.deflate = true
		for range len(b) + 1 {
			op, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if len(msg) > limit {
				t.Fatalf("a %d-byte message past the %d-byte limit", len(msg), limit)
			}
			if op != rfc6455.OpText && op != rfc6455.OpBinary {
				t.Fatalf("message of opcode 0x%x", op)
			}
			if op == rfc6455.OpText && !utf8.Valid(msg) {
				t.Fatalf("invalid UTF-8 handed over as text: %q", msg)
			}
		}
		t.Fatalf("%d messages from %d bytes", len(b)+1, len(b))
	})
}

// FuzzParseExtensions: any Sec-WebSocket-Extensions value parses or is
// refused without a panic; what parses has token names and values, and
// written back out parses to the same.
func FuzzParseExtensions(f *testing.F) {
	for _, s := range []string{
		"permessage-deflate; client_max_window_bits",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
		`x-foo; a="b\c", permessage-deflate; server_max_window_bits="15"`,
		", ,a;b=c ,",
		`a; b="`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		exts, err := parseExtensions([]string{s})
		if err != nil {
			return
		}
		tokens := func(v string) bool {
			for i := 0; i < len(v); i++ {
				if !isTokenChar(v[i]) {
					return false
				}
			}
			return v != ""
		}
		var parts []string
		for _, e := range exts {
			part := e.name
			if !tokens(e.name) {
				t.Fatalf("%q: extension name %q is not a token", s, e.name)
			}
			for _, p := range e.params {
				if !tokens(p.name) || (p.hasValue && !tokens(p.value)) || (!p.hasValue && p.value != "") {
					t.Fatalf("%q: parameter %+v", s, p)
				}
				part += ";" + p.name
				if p.hasValue {
					part += "=" + p.value
				}
			}
			parts = append(parts, part)
		}
		again, err := parseExtensions([]string{strings.Join(parts, ",")})
		if err != nil || len(again) != len(exts) {
			t.Fatalf("%q parsed to %+v, which written out parses to %+v (%v)", s, exts, again, err)
		}
		for i := range exts {
			if again[i].name != exts[i].name || !slices.Equal(again[i].params, exts[i].params) {
				t.Fatalf("%q: %+v written out parses to %+v", s, exts[i], again[i])
			}
		}
	})
}

// FuzzSSEEvent: whatever text an event carries, the stream's bytes parse
// (with go-sse's client parser) to exactly one event of that type and id
// whose data is the text with its line ends made LF — a body can never
// end an event early or forge another.
func FuzzSSEEvent(f *testing.F) {
	for _, s := range []string{"", "one", "two\nlines", "a\r\nb\rc\n", "\n\n", "data: forged\n\nevent: x", " lead", "\x00"} {
		f.Add(s, uint64(7))
	}
	f.Fuzz(func(t *testing.T, data string, id uint64) {
		if !utf8.ValidString(data) {
			return // the app refuses such bodies (400)
		}
		b := appendEvent(nil, protocol.SSEEcho, id, data)
		var got []sse.Event
		for ev, err := range sse.Read(bytes.NewReader(b), &sse.ReadConfig{MaxEventSize: len(b) + 1}) {
			if err != nil {
				t.Fatalf("%q: %v", b, err)
			}
			got = append(got, ev)
		}
		want := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(data)
		if len(got) != 1 || got[0].Type != protocol.SSEEcho || got[0].LastEventID != strconv.FormatUint(id, 10) || got[0].Data != want {
			t.Fatalf("%q parses to %+v, want one echo event id %d with data %q", b, got, id, want)
		}
	})
}

// FuzzParseChatLine: any line of a chat room parses without a panic, keeps
// the line as it came, and what it names puts the line back together.
func FuzzParseChatLine(f *testing.F) {
	for _, s := range []string{"Hi bob! You have successfully connected to the chat.", "bob joined", "bob joined (age 30)", "bob left", "bob: hi: there", "notice", "a:b: c", "x joined (age 007)"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, line string, first bool) {
		ev := parseChatLine(line, first)
		if ev.Line != line {
			t.Fatalf("%q: line %q", line, ev.Line)
		}
		var back string
		switch ev.Kind {
		case "greeting":
			if !first || !strings.HasPrefix(line, "Hi "+ev.From+"! ") {
				t.Fatalf("%q (first %v): greeting %+v", line, first, ev)
			}
			return
		case "message":
			back = ev.From + ": " + ev.Text
		case "leave":
			back = ev.From + " left"
		case "join":
			back = ev.From + " joined"
			if ev.Age != nil {
				back += " (age " + strconv.Itoa(*ev.Age) + ")"
			}
		case "notice":
			if ev.From != "" || ev.Text != "" || ev.Age != nil {
				t.Fatalf("%q: notice %+v", line, ev)
			}
			return
		default:
			t.Fatalf("%q: kind %q", line, ev.Kind)
		}
		if back != line || validName(ev.From) != "" {
			t.Fatalf("%q parsed to %+v", line, ev)
		}
	})
}

// FuzzSniffPreface: whatever a connection's first bytes, in whatever
// pieces, the sniffer reads at most the preface's length, hands back
// exactly what it read (a prefix of the input), calls it HTTP/2 only for
// the preface, and stops as soon as what it read rules HTTP/2 out.
func FuzzSniffPreface(f *testing.F) {
	for _, s := range []string{http2Preface, http2Preface + "more", "GET / HTTP/1.1\r\n", "PRI", "", "P\x00"} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8) {
		nc := &bytesConn{in: &chunkReader{b: b, n: int(chunk%32) + 1}}
		read, h2, err := sniffPreface(nc, time.Second)
		if len(read) > len(http2Preface) || !bytes.HasPrefix(b, read) {
			t.Fatalf("%q: read %q", b, read)
		}
		if h2 != (string(read) == http2Preface) || h2 != bytes.HasPrefix(b, []byte(http2Preface)) {
			t.Fatalf("%q: h2 %v after %q", b, h2, read)
		}
		switch {
		case h2:
		case err != nil: // ended before telling: all it read fits the preface
			if !strings.HasPrefix(http2Preface, string(read)) {
				t.Fatalf("%q: error %v after %q, which already ruled HTTP/2 out", b, err, read)
			}
		default: // ruled out by the last read
			if len(read) == 0 || strings.HasPrefix(http2Preface, string(read)) {
				t.Fatalf("%q: not HTTP/2 after %q", b, read)
			}
		}
	})
}
