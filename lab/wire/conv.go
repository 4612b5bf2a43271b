package wire

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/protolab/protolab-tui/protocol"
)

// msgClass says what a decoded message is, for the counters.
type msgClass uint8

const (
	classOther msgClass = iota
	classHTTPRequest
	classHTTPResponse
	classWSData
	classWSControl
	classTLS
	classClientHello
	classSSEEvent    // a server-sent event (dispatched: it had data)
	classH2Frame     // an HTTP/2 frame, any type
	classH2Message   // an HTTP/2 request or response: one stream's way, ended
	classGRPCMessage // one length-prefixed gRPC message
	classCount       // the number of classes
)

// sink receives what a conversation decodes. The flow fills in time, flow,
// protocol and direction.
type sink interface {
	message(dir Dir, t time.Time, decrypted bool, class msgClass, fill func(*Record))
	failure(dir Dir, t time.Time, err error)
	// gap reports bytes lost from the stream (lost < 0: an unknown number)
	// and what decoding does about it.
	gap(dir Dir, t time.Time, lost int, what string)
	// count adds to the app's counters what a message's class alone does
	// not say (the inflated size of a compressed WebSocket message).
	count(add func(*Counters))
}

func httpClass(m *HTTPMessage) msgClass {
	if m.Request {
		return classHTTPRequest
	}
	return classHTTPResponse
}

type mode uint8

const (
	modeDetect mode = iota
	modeHTTP
	modeWS
	modeTLS
	modeHold   // client bytes after an upgrade request, until the response
	modeBroken // a decode error ended this direction
	modeH2     // HTTP/2 frames
)

// maxHeld bounds the client bytes held while an upgrade is answered.
const maxHeld = 1 << 20

// conv is the application-layer conversation of one flow (or of the
// decrypted stream inside a TLS connection): it detects HTTP or TLS from the
// content, follows HTTP messages, and switches to WebSocket frames after a
// 101 answer to an upgrade request.
type conv struct {
	out       sink
	decrypted bool
	mode      [2]mode
	http      [2]*httpParser
	ws        [2]*wsParser
	held      []byte
	heldTime  time.Time
	upgradeKy string
	heads     []bool // requests awaiting responses: true for HEAD
	tls       *tlsConn
	keys      *KeyLog
	// want is the app's protocol: what its descriptor says the connection
	// should start with is checked against what it does start with.
	want protocol.Descriptor
	// wsTime is the time of the bytes the WebSocket parser is reading,
	// httpTime those the HTTP parser is reading (a streamed body's records
	// take it).
	wsTime   time.Time
	httpTime [2]time.Time

	// h2 follows the connection once it speaks HTTP/2; pre holds the
	// client's first bytes while they may still be the preface.
	h2  *h2Conn
	pre [2][]byte
	// midstream marks a direction whose first bytes were not seen (the
	// capture began after them, or lost them).
	midstream [2]bool
	// alpn is the protocol the TLS handshake agreed on (the inner
	// conversation of a decrypted connection).
	alpn string
	// wsOffer is the upgrade request's Sec-WebSocket-Extensions; deflate
	// what the 101 answer agreed (nil: no permessage-deflate).
	wsOffer string
	deflate *WSDeflate
}

func newConv(out sink, keys *KeyLog, decrypted bool) *conv {
	return &conv{out: out, keys: keys, decrypted: decrypted}
}

// data feeds the bytes of one direction, in order.
func (c *conv) data(dir Dir, b []byte, t time.Time) {
	if len(b) == 0 {
		return
	}
	switch c.mode[dir] {
	case modeBroken:
		return
	case modeDetect:
		if b = c.detect(dir, b, t); b == nil {
			return
		}
	}
	switch c.mode[dir] {
	case modeTLS:
		if c.tls == nil {
			c.tls = newTLSConn(c)
		}
		c.tls.data(dir, b, t)
	case modeHTTP:
		c.httpData(dir, b, t)
	case modeWS:
		c.wsData(dir, b, t)
	case modeH2:
		c.h2.data(dir, b, t)
	case modeHold:
		if len(c.held)+len(b) > maxHeld {
			c.fail(dir, t, fmt.Errorf("more than %d bytes sent before the upgrade was answered", maxHeld))
			return
		}
		if len(c.held) == 0 {
			c.heldTime = t
		}
		c.held = append(c.held, b...)
	}
}

// detect chooses the parser from the content (a TLS record header, the
// HTTP/2 preface, else HTTP/1) and the app's descriptor: the port map said
// which protocol to expect, and a connection that does not start as its
// descriptor says is flagged, then decoded as what it is (plain HTTP sent
// to a TLS app, TLS sent to a plain one). An app that speaks HTTP/2 gets
// frames decoded without the preface too (the capture began
// mid-connection, or the server spoke first), but not what opens as
// HTTP/1 (a gRPC app answers GET /health that way). It returns the bytes
// to decode, nil while it waits for more (the preface's first bytes).
func (c *conv) detect(dir Dir, b []byte, t time.Time) []byte {
	first := len(c.pre[dir]) == 0
	if !first {
		b = append(c.pre[dir], b...)
		c.pre[dir] = nil
	}
	isTLS := !c.decrypted && (b[0] == tlsHandshake || b[0] == tlsAlert)
	if first && !c.decrypted && c.want.Name != "" && dir == ClientToServer && isTLS != c.want.TLS {
		what := "plain bytes (no TLS record)"
		if isTLS {
			what = "a TLS record"
		}
		c.out.failure(dir, t, fmt.Errorf("the app speaks %s (%s), but this connection starts with %s: decoding what it is", c.want.Name, c.want.Title, what))
	}
	if isTLS {
		c.mode[dir] = modeTLS
		return b
	}
	if dir == ClientToServer {
		if n := min(len(b), len(h2Preface)); string(b[:n]) == h2Preface[:n] {
			if n < len(h2Preface) {
				c.pre[dir] = append([]byte(nil), b...)
				return nil
			}
			c.startH2(dir, t, true, true)
			return b
		}
		if c.wantsH2() && (b[0] < 'A' || b[0] > 'Z') {
			c.startH2(dir, t, false, !c.midstream[dir])
			return b
		}
	} else if c.h2 != nil || c.alpn == "h2" || c.wantsH2() {
		if n := min(len(b), 5); string(b[:n]) != "HTTP/"[:n] {
			c.startH2(dir, t, false, !c.midstream[dir])
			return b
		}
	}
	c.mode[dir] = modeHTTP
	return b
}

// wantsH2 reports whether the app's descriptor says it speaks HTTP/2.
func (c *conv) wantsH2() bool {
	r := c.want.Recognise
	return r == protocol.RecogniseHTTP2 || r == protocol.RecogniseGRPC
}

// startH2 decodes dir as HTTP/2 frames from here on.
func (c *conv) startH2(dir Dir, t time.Time, preface, fromStart bool) {
	if c.h2 == nil {
		c.h2 = newH2Conn(c)
	}
	c.mode[dir] = modeH2
	c.h2.start(dir, t, preface, fromStart)
}

func (c *conv) fail(dir Dir, t time.Time, err error) {
	c.mode[dir] = modeBroken
	c.out.failure(dir, t, err)
}

// gap is told that n bytes of dir are missing from the capture (n < 0: an
// unknown number, e.g. the plaintext of TLS records that were lost). Each
// parser skips them exactly when a length it has read says where the next
// frame or message starts; otherwise HTTP and TLS look for the next start
// line or record header, and WebSocket, which has no marker to look for,
// resumes where a chain of valid frame headers proves a frame starts
// (wsresync.go). The gap is a record of its own either way.
func (c *conv) gap(dir Dir, n int, t time.Time) {
	var what string
	switch c.mode[dir] {
	case modeBroken:
		what = "the direction was not being decoded"
	case modeDetect:
		c.midstream[dir] = true
		c.pre[dir] = nil
		what = "nothing decoded yet: detecting the protocol from the bytes after it"
	case modeH2:
		what = c.h2.gap(dir, n, t)
	case modeHold:
		c.mode[dir] = modeBroken
		c.held = nil
		what = "lost while the upgrade was being answered: this direction is not decoded further"
	case modeTLS:
		if c.tls == nil {
			c.tls = newTLSConn(c)
		}
		what = c.tls.gap(dir, n, t)
	case modeHTTP:
		p := c.http[dir]
		if p == nil {
			what = "resuming at the next " + startName(dir)
			c.httpData(dir, nil, t) // makes the parser
			p = c.http[dir]
		}
		if p.skip(n, c.httpEmit(dir, t, new(mode))) {
			what = "skipped inside the message's body by its length: the message is partial, decoding goes on after it"
		} else {
			what = "no length spans it: resuming at the next " + startName(dir)
		}
		c.httpData(dir, nil, t)
	case modeWS:
		p := c.wsParser(dir)
		switch {
		case p.resync != nil:
			p.resync.dropped += len(p.resync.buf) + max(n, 0)
			p.resync.buf, p.resync.bounds, p.resync.next = p.resync.buf[:0], p.resync.bounds[:0], 0
			what = "another gap while looking for a WebSocket frame boundary: still looking"
		case p.skip(n, c.wsEmit(dir, t)):
			what = "skipped inside the WebSocket frame's payload by its length: the frame is partial, decoding goes on at the next frame"
		default:
			p.lose()
			what = "the gap hides a WebSocket frame header: frames carry no marker, so decoding resumes where a chain of valid frame headers proves a frame starts"
		}
	}
	c.out.gap(dir, t, n, what)
}

func startName(dir Dir) string {
	if dir == ClientToServer {
		return "request line"
	}
	return "status line"
}

func (c *conv) httpData(dir Dir, b []byte, t time.Time) {
	p := c.http[dir]
	if p == nil {
		p = &httpParser{request: dir == ClientToServer}
		if dir == ServerToClient {
			p.noBody = func() bool { return len(c.heads) > 0 && c.heads[0] }
			p.streamFor = c.streamFor
		}
		c.http[dir] = p
	}
	c.httpTime[dir] = t
	var switchTo mode
	rest, err := p.feed(b, c.httpEmit(dir, t, &switchTo))
	if err != nil {
		c.fail(dir, t, err)
		return
	}
	switch switchTo {
	case modeHold: // client: wait for the server's answer
		c.mode[dir] = modeHold
		c.data(dir, rest, t)
	case modeWS: // server said 101: both directions speak WebSocket now
		c.mode[ServerToClient] = modeWS
		held, heldTime := c.held, c.heldTime
		c.held = nil
		if c.mode[ClientToServer] == modeHold {
			c.mode[ClientToServer] = modeWS
			c.data(ClientToServer, held, heldTime)
		}
		c.data(ServerToClient, rest, t)
	}
	if dir == ServerToClient && switchTo == 0 && c.mode[ClientToServer] == modeHold && c.upgradeKy != "" && len(c.heads) == 0 {
		// The upgrade was refused (e.g. 409): the client goes on with HTTP.
		c.upgradeKy = ""
		c.mode[ClientToServer] = modeHTTP
		held := c.held
		c.held = nil
		c.data(ClientToServer, held, c.heldTime)
	}
}

// httpEmit reports each message of dir and follows requests and
// responses; a message that switches protocols stops the parser and says
// to what in switchTo.
func (c *conv) httpEmit(dir Dir, t time.Time, switchTo *mode) func(*HTTPMessage) bool {
	return func(m *HTTPMessage) bool {
		c.out.message(dir, t, c.decrypted, httpClass(m), m.fill)
		if m.Request {
			c.heads = append(c.heads, m.Method == "HEAD")
			if m.WebSocketUpgrade() {
				c.upgradeKy = m.Header("Sec-WebSocket-Key")
				c.wsOffer = m.headerValues("Sec-WebSocket-Extensions")
				*switchTo = modeHold
				return true
			}
			return false
		}
		if len(c.heads) > 0 && m.Status >= 200 {
			c.heads = c.heads[1:]
		}
		if m.Status == 101 && c.upgradeKy != "" {
			c.checkAccept(m, t)
			d, err := parseDeflate(c.wsOffer, m.headerValues("Sec-WebSocket-Extensions"))
			if err != nil {
				c.out.failure(dir, t, fmt.Errorf("Sec-WebSocket-Extensions %q: %w (RFC 7692: the client fails the connection); decoding as agreed anyway", d.Agreed, err))
			}
			c.deflate = d
			*switchTo = modeWS
			return true
		}
		return false
	}
}

// checkAccept verifies Sec-WebSocket-Accept against the request's key.
func (c *conv) checkAccept(m *HTTPMessage, t time.Time) {
	want := AcceptFor(c.upgradeKy)
	got := m.Header("Sec-WebSocket-Accept")
	offer, agreed := c.wsOffer, m.headerValues("Sec-WebSocket-Extensions")
	c.out.message(ServerToClient, t, c.decrypted, classOther, func(r *Record) {
		r.Layer = "ws"
		r.Kind = KindMessage
		if offer != "" {
			r.add("extensions_offered", "%s", offer)
		}
		if agreed != "" {
			r.add("extensions_agreed", "%s", agreed)
		}
		r.add("sec_websocket_key", "%s", c.upgradeKy)
		r.add("sec_websocket_accept", "%s", got)
		r.add("expected_accept", "%s", want)
		if got == want {
			r.add("accept_valid", "true")
			r.Summary = "WebSocket upgrade complete: Sec-WebSocket-Accept matches the key"
			if strings.Contains(agreed, "permessage-deflate") {
				r.Summary += "; permessage-deflate agreed: " + agreed
			}
		} else {
			r.add("accept_valid", "false")
			r.Summary = fmt.Sprintf("WebSocket upgrade: Sec-WebSocket-Accept %q does not match the key (want %q)", got, want)
		}
	})
}

func (c *conv) wsParser(dir Dir) *wsParser {
	p := c.ws[dir]
	if p == nil {
		p = &wsParser{client: dir == ClientToServer}
		p.flag = func(problem string) { c.out.failure(dir, c.wsTime, errors.New(problem)) }
		if d := c.deflate; d != nil {
			p.deflate = &wsInflater{noContext: d.ServerNoContext, bits: d.ServerBits}
			if dir == ClientToServer {
				p.deflate.noContext, p.deflate.bits = d.ClientNoContext, d.ClientBits
			}
		}
		c.ws[dir] = p
	}
	return p
}

func (c *conv) wsEmit(dir Dir, t time.Time) func(*WSFrame) {
	return func(f *WSFrame) {
		class := classWSData
		if f.Control() {
			class = classWSControl
		}
		c.out.message(dir, t, c.decrypted, class, f.fill)
		if z := f.Inflated; z != nil && z.Err == "" {
			c.out.count(func(cn *Counters) {
				cn.WSCompressed++
				cn.WSCompressedBytes += uint64(z.Compressed)
				cn.WSInflated += uint64(z.Inflated)
			})
		}
	}
}

func (c *conv) wsData(dir Dir, b []byte, t time.Time) {
	p := c.wsParser(dir)
	c.wsTime = t
	if p.resync != nil {
		rest, dropped, gaveUp := p.resume(b)
		switch {
		case gaveUp:
			c.mode[dir] = modeBroken
			c.out.gap(dir, t, 0, fmt.Sprintf("no WebSocket frame boundary could be proved in the %d bytes after the gap: this direction is not decoded further", dropped))
			return
		case rest == nil:
			return // still looking
		}
		c.out.gap(dir, t, 0, fmt.Sprintf("WebSocket frames resumed at a frame boundary a chain of valid headers proves, after passing over %d bytes", dropped))
		b = rest
	}
	if err := p.feed(b, c.wsEmit(dir, t)); err != nil {
		c.fail(dir, t, err)
	}
}

// end is called when a direction ends (FIN/RST, end of capture): a message
// still in progress is reported as truncated, and a response read until
// close completes.
func (c *conv) end(dir Dir, t time.Time) {
	switch c.mode[dir] {
	case modeHTTP:
		if p := c.http[dir]; p != nil {
			c.httpTime[dir] = t
			p.close(func(m *HTTPMessage) bool {
				c.out.message(dir, t, c.decrypted, httpClass(m), m.fill)
				return false
			})
			if p.abort() {
				break // the stream's end record says it was cut short
			}
			if p.pending() {
				c.fail(dir, t, errors.New("connection ended inside an HTTP message (truncated)"))
			}
		}
	case modeWS:
		if p := c.ws[dir]; p != nil && p.resync != nil {
			c.out.gap(dir, t, 0, fmt.Sprintf("the connection ended before a WebSocket frame boundary was proved after the gap: %d bytes not decoded further", p.resync.dropped+len(p.resync.buf)))
		} else if p != nil && p.pending() {
			c.fail(dir, t, errors.New("connection ended inside a WebSocket frame (truncated)"))
		}
	case modeTLS:
		if c.tls != nil {
			c.tls.end(dir, t)
		}
	case modeH2:
		c.h2.end(dir, t)
	case modeDetect:
		if len(c.pre[dir]) > 0 {
			c.pre[dir] = nil
			c.out.failure(dir, t, errors.New("connection ended inside the HTTP/2 connection preface (truncated)"))
		}
	}
}

// streamFor chooses, from a response's headers, a parser for its body as
// it arrives: an event stream's events are records of their own.
func (c *conv) streamFor(m *HTTPMessage) bodyStream {
	if m.Request || !isEventStream(m) {
		return nil
	}
	return c.newSSEStream(ServerToClient)
}

// sseStream reports the events of an event-stream body as they arrive,
// and the stream's end.
type sseStream struct {
	c   *conv
	dir Dir
	p   *sseParser
}

func (c *conv) newSSEStream(dir Dir) *sseStream {
	s := &sseStream{c: c, dir: dir}
	s.p = newSSEParser(func(ev *SSEEvent) {
		class := classOther
		if ev.Dispatched {
			class = classSSEEvent
		}
		c.out.message(dir, c.httpTime[dir], c.decrypted, class, ev.fill)
	})
	return s
}

func (s *sseStream) body(b []byte) { s.p.feed(b) }

func (s *sseStream) gap(int) { s.p.gap() }

func (s *sseStream) end(m *HTTPMessage, complete bool) {
	c, t := s.c, s.c.httpTime[s.dir]
	cut := s.p.pending()
	if cut {
		c.out.failure(s.dir, t, errors.New("the event stream ended inside an SSE event (truncated: it was never dispatched)"))
	}
	events, body, lost := s.p.events, m.BodyLen, m.Lost
	c.out.message(s.dir, t, c.decrypted, classOther, func(r *Record) {
		r.Layer, r.Len, r.Payload = "sse", m.WireBodyLen, body
		r.lazy = func(r *Record) {
			r.Summary = fmt.Sprintf("SSE stream ended: %d events, %d body bytes", events, body)
			r.add("events", "%d", events)
			r.add("body_bytes", "%d", body)
			r.add("complete", "%v", complete)
			if !complete {
				r.Summary += " (cut short: the body's end never came)"
			}
			switch {
			case lost > 0:
				r.add("lost_bytes", "%d", lost)
			case lost < 0:
				r.add("lost_bytes", "unknown")
			}
		}
	})
}
