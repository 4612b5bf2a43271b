package webapp

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/protolab/protolab-tui/internal/wsraw"
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
