package webapp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/protocol/rfc6455"
)

// The apps speak WebSocket themselves (this file and the handshake in
// websocket.go): a receiver must fail a connection that sends invalid UTF-8
// text or close reasons with 1007 and a one-byte close payload with 1002
// (RFC 6455 §5.5.1, §8.1), which gorilla/websocket — the library the apps
// used before — neither checks nor lets an application do.

// closeWait bounds how long a connection the server fails (or closes) waits
// for the peer's Close frame before it closes TCP itself.
const closeWait = 2 * time.Second

// errCloseSent is returned by writes after the server sent its Close frame
// (§5.5.1: no data may follow it).
var errCloseSent = errors.New("websocket: close frame already sent")

// peerClosed is ReadMessage's error when the peer closed the connection with
// a valid Close frame, which the server has answered.
type peerClosed struct {
	code   uint16 // 1005 when the frame had no code
	reason string
}

func (e *peerClosed) Error() string {
	return fmt.Sprintf("websocket: the peer closed the connection (%d %s) %q", e.code, rfc6455.CloseName(e.code), e.reason)
}

// failed is ReadMessage's error when the server failed the connection: it
// sent a Close frame with code, because of reason.
type failed struct {
	code   uint16
	reason string
}

func (e *failed) Error() string {
	return fmt.Sprintf("websocket: connection failed with %d (%s): %s", e.code, rfc6455.CloseName(e.code), e.reason)
}

// frameHeader is a frame's header as read.
type frameHeader struct {
	fin    bool
	rsv    byte
	op     byte
	masked bool
	key    [4]byte
	length uint64
}

// wsConn is the server's side of one WebSocket connection. One goroutine
// reads (ReadMessage); any number may write: frames never interleave.
type wsConn struct {
	nc        net.Conn
	br        *bufio.Reader
	readLimit int64
	// onPong is called for each Pong (the keep-alive extends the read
	// deadline); set it before reading starts.
	onPong func()
	// m counts messages and Close frames (nil: counts nothing).
	m *metrics
	// deflate says permessage-deflate was negotiated (deflate.go): data
	// messages go out compressed, and a client's may come compressed
	// (RSV1 on their first frame). Set before reading and writing start.
	deflate bool

	// wmu is a one-slot semaphore rather than a mutex so that a writer
	// stuck behind a peer that does not read (a write blocked until its
	// deadline) holds no one else past their own deadline.
	wmu       chan struct{}
	wbuf      []byte
	closeSent bool // guarded by wmu
}

func newWSConn(nc net.Conn, br *bufio.Reader, readLimit int64) *wsConn {
	if br == nil {
		br = bufio.NewReaderSize(nc, 4096)
	}
	c := &wsConn{nc: nc, br: br, readLimit: readLimit, onPong: func() {}, wmu: make(chan struct{}, 1)}
	return c
}

// Close closes the TCP connection.
func (c *wsConn) Close() error { return c.nc.Close() }

// RemoteAddr is the peer's address.
func (c *wsConn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// ReadMessage returns the next data message (rfc6455.OpText or OpBinary),
// answering pings and closes on the way. A peer that breaks the protocol is
// failed with the code RFC 6455 gives (1002, 1007, 1009) and the error is a
// *failed; a peer that closes gets its Close answered and the error is a
// *peerClosed. Text is checked as it arrives, so a message that turns
// invalid in its first fragment is refused before the rest comes.
func (c *wsConn) ReadMessage() (op byte, msg []byte, err error) {
	var text rfc6455.UTF8
	// compressed: the message's first frame had RSV1 (permessage-deflate):
	// its payload is read whole (within compressedLimit), then inflated
	// within the read limit and checked as text.
	compressed := false
	limit := c.readLimit
	for {
		h, err := c.readHeader()
		if err != nil {
			return 0, nil, err
		}
		if rfc6455.Control(h.op) {
			if err := c.control(h); err != nil {
				return 0, nil, err
			}
			continue
		}
		switch {
		case h.op == rfc6455.OpContinuation && op == 0:
			return 0, nil, c.fail(rfc6455.CloseProtocolError, "continuation frame with no message to continue", h.length)
		case h.op != rfc6455.OpContinuation && op != 0:
			return 0, nil, c.fail(rfc6455.CloseProtocolError, "a new message began before the fragmented one ended", h.length)
		}
		if op == 0 {
			op = h.op
			if compressed = h.rsv&rsv1 != 0; compressed {
				limit = compressedLimit(c.readLimit)
			}
		}
		if h.length > uint64(limit-int64(len(msg))) {
			if compressed {
				return 0, nil, c.fail(rfc6455.CloseTooBig, fmt.Sprintf("compressed message larger than %d bytes: it cannot inflate to the %d bytes this server accepts", limit, c.readLimit), h.length)
			}
			return 0, nil, c.fail(rfc6455.CloseTooBig, fmt.Sprintf("message larger than the %d bytes this server accepts", c.readLimit), h.length)
		}
		start, n := len(msg), int(h.length)
		msg = slices.Grow(msg, n)[:start+n]
		for got := 0; got < n; {
			k, rerr := c.br.Read(msg[start+got : start+n])
			if k > 0 {
				piece := msg[start+got : start+got+k]
				maskBytes(h.key, got, piece)
				if op == rfc6455.OpText && !compressed && !text.Write(piece) {
					return 0, nil, c.fail(rfc6455.CloseInvalidPayload, "text message is not valid UTF-8", uint64(n-got-k))
				}
				got += k
			}
			if rerr != nil {
				return 0, nil, readErr(rerr)
			}
		}
		if h.fin && compressed {
			inflated, err := inflateMessage(msg, c.readLimit)
			switch {
			case errors.Is(err, errInflatedTooBig):
				return 0, nil, c.fail(rfc6455.CloseTooBig, fmt.Sprintf("compressed message inflates past the %d bytes this server accepts", c.readLimit), 0)
			case err != nil:
				return 0, nil, c.fail(rfc6455.CloseInvalidPayload, "compressed message does not inflate: "+err.Error(), 0)
			case op == rfc6455.OpText && !utf8.Valid(inflated):
				return 0, nil, c.fail(rfc6455.CloseInvalidPayload, "text message is not valid UTF-8 (once inflated)", 0)
			}
			c.m.messageIn()
			return op, inflated, nil
		}
		if h.fin {
			if op == rfc6455.OpText && !text.Complete() {
				return 0, nil, c.fail(rfc6455.CloseInvalidPayload, "text message ends inside a UTF-8 sequence", 0)
			}
			c.m.messageIn()
			return op, msg, nil
		}
	}
}

func readErr(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// rsv1 is the RSV1 bit as frameHeader.rsv holds it: permessage-deflate's
// "this message is compressed" (RFC 7692 §6).
const rsv1 = 4

// readHeader reads and checks one frame header (§5.2): no reserved bits
// but RSV1 on a data message's first frame when permessage-deflate was
// negotiated (RFC 7692 §6.1), a known opcode, the client's mask, control
// frames whole and short.
func (c *wsConn) readHeader() (frameHeader, error) {
	var b [8]byte
	if _, err := io.ReadFull(c.br, b[:2]); err != nil {
		return frameHeader{}, err // io.EOF: the peer went without a Close frame
	}
	h := frameHeader{fin: b[0]&0x80 != 0, rsv: b[0] >> 4 & 7, op: b[0] & 0x0f, masked: b[1]&0x80 != 0, length: uint64(b[1] & 0x7f)}
	switch h.length {
	case 126:
		if _, err := io.ReadFull(c.br, b[:2]); err != nil {
			return h, readErr(err)
		}
		h.length = uint64(binary.BigEndian.Uint16(b[:2]))
	case 127:
		if _, err := io.ReadFull(c.br, b[:8]); err != nil {
			return h, readErr(err)
		}
		h.length = binary.BigEndian.Uint64(b[:8])
	}
	if h.masked {
		if _, err := io.ReadFull(c.br, h.key[:]); err != nil {
			return h, readErr(err)
		}
	}
	if h.length>>63 != 0 {
		return h, c.fail(rfc6455.CloseProtocolError, "frame length has its most significant bit set", 0)
	}
	var why string
	switch {
	case h.rsv != 0 && !c.deflate:
		why = fmt.Sprintf("reserved bits %03b set, and no extension was negotiated", h.rsv)
	case h.rsv&^rsv1 != 0:
		why = fmt.Sprintf("reserved bits %03b set: only RSV1 (permessage-deflate) was negotiated", h.rsv)
	case h.rsv != 0 && rfc6455.Control(h.op):
		why = "RSV1 set on a control frame (only data messages are compressed)"
	case h.rsv != 0 && h.op == rfc6455.OpContinuation:
		why = "RSV1 set on a continuation frame (only a message's first frame says it is compressed)"
	case !rfc6455.KnownOpcode(h.op):
		why = fmt.Sprintf("reserved opcode 0x%x", h.op)
	case !h.masked:
		why = "client frame not masked"
	case rfc6455.Control(h.op) && !h.fin:
		why = "fragmented control frame"
	case rfc6455.Control(h.op) && h.length > rfc6455.MaxControlPayload:
		why = fmt.Sprintf("control frame with a %d-byte payload (at most 125)", h.length)
	default:
		return h, nil
	}
	if h.op == rfc6455.OpClose {
		// The peer is closing (badly): no answer to wait for.
		c.m.closeInvalid()
		return h, c.refuseClose(rfc6455.CloseProtocolError, why)
	}
	return h, c.fail(rfc6455.CloseProtocolError, why, h.length)
}

// control handles a ping, a pong or a close.
func (c *wsConn) control(h frameHeader) error {
	var buf [rfc6455.MaxControlPayload]byte
	p := buf[:h.length]
	if _, err := io.ReadFull(c.br, p); err != nil {
		return readErr(err)
	}
	maskBytes(h.key, 0, p)
	switch h.op {
	case rfc6455.OpPing:
		err := c.writeFrame(rfc6455.OpPong, p, time.Now().Add(5*time.Second))
		if errors.Is(err, errCloseSent) {
			return nil // closing: pings go unanswered
		}
		return err
	case rfc6455.OpPong:
		c.onPong()
		return nil
	}
	// Close (§5.5.1, §7.4).
	c.m.closeFrame(protocol.MetricReceived, p)
	code, reason := rfc6455.CloseNoStatus, ""
	switch {
	case len(p) == 1:
		return c.refuseClose(rfc6455.CloseProtocolError, "close frame with a 1-byte payload (a code takes 2)")
	case len(p) >= 2:
		code, reason = binary.BigEndian.Uint16(p), string(p[2:])
		if !rfc6455.ValidCloseCode(code) {
			return c.refuseClose(rfc6455.CloseProtocolError, fmt.Sprintf("close code %d is not one an endpoint may send", code))
		}
		if !utf8.ValidString(reason) {
			return c.refuseClose(rfc6455.CloseInvalidPayload, "close reason is not valid UTF-8")
		}
	}
	// Answer with the same code (none when the peer gave none).
	var answer []byte
	if len(p) >= 2 {
		answer = binary.BigEndian.AppendUint16(nil, code)
	}
	_ = c.writeClose(answer, time.Now().Add(time.Second))
	return &peerClosed{code: code, reason: reason}
}

// refuseClose answers a Close frame that breaks the rules with code: the
// peer has closed already (badly), so there is no answer to wait for.
func (c *wsConn) refuseClose(code uint16, reason string) error {
	_ = c.writeClose(closePayload(code, reason), time.Now().Add(time.Second))
	return &failed{code: code, reason: reason}
}

// fail sends a Close frame with code and reason (unless one went already),
// waits a little for the peer's Close, and returns the *failed that says
// why. skip is what is left of the payload of the frame at fault, read
// and dropped first. The caller then closes TCP.
func (c *wsConn) fail(code uint16, reason string, skip uint64) error {
	c.closeWith(code, reason, skip)
	return &failed{code: code, reason: reason}
}

// closeWith starts the closing handshake from the server's side: a Close
// frame with code and reason, then (after skip bytes) frames are read and
// dropped until the peer's Close, the end of the connection, or closeWait.
func (c *wsConn) closeWith(code uint16, reason string, skip uint64) {
	if err := c.writeClose(closePayload(code, reason), time.Now().Add(time.Second)); err != nil && !errors.Is(err, errCloseSent) {
		return // the peer cannot hear it: nothing to wait for
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(closeWait))
	if _, err := io.CopyN(io.Discard, c.br, int64(min(skip, 1<<62))); err != nil {
		return
	}
	var b [8]byte
	for {
		// After a protocol error the frames may not parse: only their
		// lengths are read, to skip them.
		if _, err := io.ReadFull(c.br, b[:2]); err != nil {
			return
		}
		op, masked, n := b[0]&0x0f, b[1]&0x80 != 0, uint64(b[1]&0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(c.br, b[:2]); err != nil {
				return
			}
			n = uint64(binary.BigEndian.Uint16(b[:2]))
		case 127:
			if _, err := io.ReadFull(c.br, b[:8]); err != nil {
				return
			}
			n = binary.BigEndian.Uint64(b[:8])
		}
		if masked {
			n += 4
		}
		if op == rfc6455.OpClose {
			return
		}
		if _, err := io.CopyN(io.Discard, c.br, int64(min(n, 1<<62))); err != nil {
			return
		}
	}
}

// closePayload is a Close frame's payload: the code, then as much of the
// reason as fits in 125 bytes, cut on a character boundary.
func closePayload(code uint16, reason string) []byte {
	max := rfc6455.MaxControlPayload - 2
	if len(reason) > max {
		reason = reason[:max]
		for len(reason) > 0 && !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// WriteMessage sends one unfragmented data message, compressed when
// permessage-deflate was negotiated.
func (c *wsConn) WriteMessage(op byte, data []byte, deadline time.Time) error {
	var err error
	if c.deflate {
		var z []byte
		if z, err = deflateMessage(nil, data); err != nil {
			return err
		}
		err = c.writeFrameRSV(op, rsv1, z, deadline)
	} else {
		err = c.writeFrame(op, data, deadline)
	}
	if err == nil {
		c.m.messageOut()
	}
	return err
}

// Ping sends a ping.
func (c *wsConn) Ping(deadline time.Time) error {
	return c.writeFrame(rfc6455.OpPing, nil, deadline)
}

// SendClose closes the connection from the server's side with code and
// reason (e.g. 1001 at shutdown): it sends the Close frame only and leaves
// the peer's answer to the reader.
func (c *wsConn) SendClose(code uint16, reason string, deadline time.Time) error {
	return c.writeClose(closePayload(code, reason), deadline)
}

// acquire takes the write slot, waiting until deadline at most.
func (c *wsConn) acquire(deadline time.Time) error {
	select {
	case c.wmu <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case c.wmu <- struct{}{}:
		return nil
	case <-t.C:
		return fmt.Errorf("websocket: another write held the connection past the deadline: %w", errWriteTimeout)
	}
}

var errWriteTimeout = errors.New("write timeout")

func (c *wsConn) release() { <-c.wmu }

func (c *wsConn) writeClose(payload []byte, deadline time.Time) error {
	if err := c.acquire(deadline); err != nil {
		return err
	}
	defer c.release()
	if c.closeSent {
		return errCloseSent
	}
	c.closeSent = true
	err := c.writeLocked(rfc6455.OpClose, 0, payload, deadline)
	if err == nil {
		c.m.closeFrame(protocol.MetricSent, payload)
	}
	return err
}

func (c *wsConn) writeFrame(op byte, data []byte, deadline time.Time) error {
	return c.writeFrameRSV(op, 0, data, deadline)
}

// writeFrameRSV writes a frame with reserved bits rsv (rsv1: compressed).
func (c *wsConn) writeFrameRSV(op, rsv byte, data []byte, deadline time.Time) error {
	if err := c.acquire(deadline); err != nil {
		return err
	}
	defer c.release()
	if c.closeSent {
		return errCloseSent
	}
	return c.writeLocked(op, rsv, data, deadline)
}

// writeLocked writes one final, unmasked frame (a server never masks, §5.1)
// as one write, so a TLS connection carries it in one record.
func (c *wsConn) writeLocked(op, rsv byte, data []byte, deadline time.Time) error {
	b := append(c.wbuf[:0], 0x80|rsv<<4|op)
	switch n := len(data); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, data...)
	if cap(b) <= 1<<16 {
		c.wbuf = b // keep a buffer for the common sizes only
	}
	_ = c.nc.SetWriteDeadline(deadline)
	_, err := c.nc.Write(b)
	return err
}

// maskBytes applies the masking key to b, whose first byte is byte pos of
// the payload (§5.3), eight bytes at a time.
func maskBytes(key [4]byte, pos int, b []byte) {
	k := [4]byte{key[pos&3], key[(pos+1)&3], key[(pos+2)&3], key[(pos+3)&3]}
	k32 := uint64(binary.LittleEndian.Uint32(k[:]))
	k64 := k32<<32 | k32
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= k[i&3]
	}
}

// hasToken reports whether a comma-separated header has token (any case).
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
