// Package wsraw is a raw-socket WebSocket client for tests: it writes
// frames exactly as told — any opcode, reserved bits, masked or not, a
// declared length that lies, split into chops of any size — and reads what
// the server sends frame by frame, so a test can break RFC 6455 on purpose
// and see how a server answers. It is the conformance suite's client and
// the apps' tests' hostile peer.
package wsraw

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/protolab/protolab-tui/protocol/rfc6455"
)

// Frame is one WebSocket frame to send or as received.
type Frame struct {
	Fin     bool
	RSV     byte // the three reserved bits, 0–7
	Op      byte
	Payload []byte
	// Unmasked sends a client frame without a mask (a breach: §5.1).
	Unmasked bool
	// Masked says a received frame carried a mask (a server must not).
	Masked bool
}

// Text is a final text frame.
func Text(s string) Frame { return Frame{Fin: true, Op: rfc6455.OpText, Payload: []byte(s)} }

// Binary is a final binary frame.
func Binary(b []byte) Frame { return Frame{Fin: true, Op: rfc6455.OpBinary, Payload: b} }

// Ping is a ping with payload p.
func Ping(p []byte) Frame { return Frame{Fin: true, Op: rfc6455.OpPing, Payload: p} }

// Pong is an (unsolicited) pong with payload p.
func Pong(p []byte) Frame { return Frame{Fin: true, Op: rfc6455.OpPong, Payload: p} }

// Close is a close frame with code and reason.
func Close(code uint16, reason string) Frame {
	return Frame{Fin: true, Op: rfc6455.OpClose, Payload: append(binary.BigEndian.AppendUint16(nil, code), reason...)}
}

// CloseRaw is a close frame with any payload (none, one byte, …).
func CloseRaw(payload []byte) Frame { return Frame{Fin: true, Op: rfc6455.OpClose, Payload: payload} }

// Fragment is a frame of a fragmented message: op (text, binary or
// continuation) with fin as given.
func Fragment(op byte, fin bool, payload []byte) Frame {
	return Frame{Fin: fin, Op: op, Payload: payload}
}

// Fragments splits a message into frames of at most size bytes.
func Fragments(op byte, msg []byte, size int) []Frame {
	var out []Frame
	for i := 0; i == 0 || i < len(msg); i += size {
		j := min(i+size, len(msg))
		o := op
		if i > 0 {
			o = rfc6455.OpContinuation
		}
		out = append(out, Frame{Fin: j == len(msg), Op: o, Payload: msg[i:j]})
	}
	return out
}

// Encode lays the frame out as a client sends it (masked with a random key
// unless Unmasked).
func (f Frame) Encode() []byte {
	b0 := f.Op&0x0f | (f.RSV&7)<<4
	if f.Fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	var m byte
	if !f.Unmasked {
		m = 0x80
	}
	switch n := len(f.Payload); {
	case n < 126:
		out = append(out, m|byte(n))
	case n <= 0xffff:
		out = append(out, m|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, m|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if f.Unmasked {
		return append(out, f.Payload...)
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	out = append(out, key[:]...)
	for i, c := range f.Payload {
		out = append(out, c^key[i&3])
	}
	return out
}

// CloseCode returns a received close frame's code (1005 when it has none)
// and reason.
func (f Frame) CloseCode() (uint16, string) {
	if len(f.Payload) < 2 {
		return rfc6455.CloseNoStatus, ""
	}
	return binary.BigEndian.Uint16(f.Payload), string(f.Payload[2:])
}

// String describes a received frame in a few words ("text 5 B", "close
// 1002").
func (f Frame) String() string {
	var s string
	switch f.Op {
	case rfc6455.OpText:
		s = fmt.Sprintf("text %d B", len(f.Payload))
	case rfc6455.OpBinary:
		s = fmt.Sprintf("binary %d B", len(f.Payload))
	case rfc6455.OpContinuation:
		s = fmt.Sprintf("continuation %d B", len(f.Payload))
	case rfc6455.OpPing:
		s = fmt.Sprintf("ping %d B", len(f.Payload))
	case rfc6455.OpPong:
		s = fmt.Sprintf("pong %d B", len(f.Payload))
	case rfc6455.OpClose:
		if len(f.Payload) < 2 {
			s = "close (no code)"
		} else {
			code, _ := f.CloseCode()
			s = fmt.Sprintf("close %d", code)
		}
	default:
		s = fmt.Sprintf("opcode 0x%x %d B", f.Op, len(f.Payload))
	}
	if !f.Fin {
		s += " (not final)"
	}
	return s
}

// Conn is a client connection after the handshake.
type Conn struct {
	nc        net.Conn
	br        *bufio.Reader
	closeSent bool // a close frame was written
	// Response is the server's answer to the handshake.
	Response *http.Response
}

// Target is where to connect.
type Target struct {
	// Addr is host:port.
	Addr string
	// TLS, when set, wraps the connection (wss).
	TLS *tls.Config
}

// Key is a fresh Sec-WebSocket-Key.
func Key() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// Request is a handshake request for path, with extra header lines
// ("Origin: …") added before the end.
func Request(host, path string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", path, host, Key())
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// dial opens TCP (and TLS) to t within ctx.
func dial(ctx context.Context, t Target) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", t.Addr, err)
	}
	if t.TLS == nil {
		return nc, nil
	}
	tc := tls.Client(nc, t.TLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("TLS with %s: %w", t.Addr, err)
	}
	return tc, nil
}

// Handshake sends request (as written, byte for byte) and reads the
// answer. The connection is returned whatever the status, so a refusal's
// body can be read; the caller closes it.
func Handshake(ctx context.Context, t Target, request string) (*Conn, error) {
	nc, err := dial(ctx, t)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	if _, err := io.WriteString(nc, request); err != nil {
		nc.Close()
		return nil, fmt.Errorf("sending the handshake: %w", err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("reading the handshake's answer: %w", err)
	}
	_ = nc.SetDeadline(time.Time{})
	return &Conn{nc: nc, br: br, Response: resp}, nil
}

// Dial opens a WebSocket connection to path and checks the server's 101
// and Sec-WebSocket-Accept.
func Dial(ctx context.Context, t Target, path string, extra ...string) (*Conn, error) {
	req := Request(t.Addr, path, extra...)
	key := req[strings.Index(req, "Sec-WebSocket-Key: ")+len("Sec-WebSocket-Key: "):]
	key = key[:strings.Index(key, "\r\n")]
	c, err := Handshake(ctx, t, req)
	if err != nil {
		return nil, err
	}
	if c.Response.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(c.Response.Body, 512))
		c.Close()
		return nil, &RefusedError{Status: c.Response.StatusCode, Body: strings.TrimSpace(string(body))}
	}
	if got, want := c.Response.Header.Get("Sec-WebSocket-Accept"), rfc6455.AcceptKey(key); got != want {
		c.Close()
		return nil, fmt.Errorf("Sec-WebSocket-Accept %q, want %q", got, want)
	}
	return c, nil
}

// RefusedError is a handshake answered with a status other than 101.
type RefusedError struct {
	Status int
	Body   string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("handshake refused: %d %s", e.Status, e.Body)
}

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// Write sends raw bytes.
func (c *Conn) Write(b []byte) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.nc.Write(b)
	return err
}

// Send writes frames in one write.
func (c *Conn) Send(frames ...Frame) error {
	return c.Write(c.encode(frames))
}

func (c *Conn) encode(frames []Frame) []byte {
	var b []byte
	for _, f := range frames {
		c.closeSent = c.closeSent || (f.Op == rfc6455.OpClose && f.RSV == 0)
		b = append(b, f.Encode()...)
	}
	return b
}

// CloseSent reports whether a close frame was sent.
func (c *Conn) CloseSent() bool { return c.closeSent }

// SendChopped writes frames in writes of chop bytes each (a TLS
// connection makes each one a record; on TCP each usually leaves as its
// own segment).
func (c *Conn) SendChopped(chop int, frames ...Frame) error {
	b := c.encode(frames)
	for len(b) > 0 {
		n := min(chop, len(b))
		if err := c.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// SendFramewise writes each frame in its own write.
func (c *Conn) SendFramewise(frames ...Frame) error {
	for _, f := range frames {
		if err := c.Write(c.encode([]Frame{f})); err != nil {
			return err
		}
	}
	return nil
}

// ReadFrame reads the server's next frame, waiting until deadline.
func (c *Conn) ReadFrame(deadline time.Time) (Frame, error) {
	_ = c.nc.SetReadDeadline(deadline)
	var h [14]byte
	if _, err := io.ReadFull(c.br, h[:2]); err != nil {
		return Frame{}, err
	}
	f := Frame{Fin: h[0]&0x80 != 0, RSV: h[0] >> 4 & 7, Op: h[0] & 0x0f, Masked: h[1]&0x80 != 0}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(c.br, h[:2]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(h[:2]))
	case 127:
		if _, err := io.ReadFull(c.br, h[:8]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(h[:8])
	}
	var key [4]byte
	if f.Masked {
		if _, err := io.ReadFull(c.br, key[:]); err != nil {
			return f, err
		}
	}
	if n > 64<<20 {
		return f, fmt.Errorf("server frame of %d bytes: more than this client takes", n)
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, f.Payload); err != nil {
		return f, err
	}
	if f.Masked {
		for i := range f.Payload {
			f.Payload[i] ^= key[i&3]
		}
	}
	return f, nil
}

// ErrNotClosed means the server sent frames but did not close in time.
var ErrNotClosed = errors.New("the server did not close the connection")

// Closed reads frames until the server closes TCP (io.EOF, or a reset
// after its close frame) and returns them. Unless the client sent a Close
// frame already, it answers the server's with the same code, as a client
// does, so the server can finish the closing handshake.
func (c *Conn) Closed(deadline time.Time) ([]Frame, error) {
	var got []Frame
	answered := c.closeSent
	for {
		f, err := c.ReadFrame(deadline)
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
				return got, nil
			case errors.As(err, &ne) && ne.Timeout():
				return got, fmt.Errorf("%w within the deadline (frames so far: %v)", ErrNotClosed, got)
			case isReset(err):
				return got, nil
			}
			return got, err
		}
		got = append(got, f)
		if f.Op == rfc6455.OpClose && !answered {
			answered = true
			payload := f.Payload
			if len(payload) >= 2 {
				payload = payload[:2]
			}
			_ = c.Send(CloseRaw(payload))
		}
	}
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}
