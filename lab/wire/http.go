package wire

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// maxHTTPHeader bounds an HTTP message's header block.
const maxHTTPHeader = 64 << 10

// HTTPMessage is one decoded HTTP/1.x request or response.
type HTTPMessage struct {
	Request bool
	Method  string // request
	Target  string // request
	Version string
	Status  int    // response
	Reason  string // response
	Headers []Field
	// HeaderLen is the size of the start line and headers.
	HeaderLen int
	// BodyLen is the body's size (after de-chunking, for chunked bodies);
	// WireBodyLen is its size on the wire.
	BodyLen, WireBodyLen int
	Body                 []byte // the start of the body (at most PreviewBytes)
	// Lost counts body bytes missing from the capture (-1: an unknown
	// number, the message's end was not seen): the message is partial.
	Lost int
	// Streaming marks a response reported when its headers arrived, its
	// body going on to a parser of its own as it comes (an event stream):
	// the record has no body, what follows is in the stream's records.
	Streaming bool
}

// bodyStream takes a streamed message's body as it arrives (de-chunked),
// instead of the message being reported once it is whole.
type bodyStream interface {
	body(b []byte)
	// gap: n body bytes were lost (n < 0: an unknown number).
	gap(n int)
	// end: the body ended; complete is false when the connection (or a
	// gap no length spans) cut it short.
	end(m *HTTPMessage, complete bool)
}

// Header returns the first value of a header (case-insensitive).
func (m *HTTPMessage) Header(name string) string {
	for _, h := range m.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

func (m *HTTPMessage) hasToken(name, token string) bool {
	for _, h := range m.Headers {
		if strings.EqualFold(h.Name, name) {
			for _, t := range strings.Split(h.Value, ",") {
				if strings.EqualFold(strings.TrimSpace(t), token) {
					return true
				}
			}
		}
	}
	return false
}

// WebSocketUpgrade reports whether a request asks for a WebSocket upgrade.
func (m *HTTPMessage) WebSocketUpgrade() bool {
	return m.Request && m.hasToken("Upgrade", "websocket") && m.hasToken("Connection", "upgrade")
}

// wsGUID is the RFC 6455 handshake constant.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptFor computes Sec-WebSocket-Accept for a Sec-WebSocket-Key.
func AcceptFor(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

type bodyMode uint8

const (
	bodyNone bodyMode = iota
	bodyLength
	bodyChunked
	bodyUntilClose
)

// httpParser reads HTTP/1.x messages from one direction, a chunk at a time.
type httpParser struct {
	request bool // direction: requests (client) or responses (server)
	buf     []byte
	msg     *HTTPMessage // message whose body is being read
	mode    bodyMode
	left    int // body bytes left (bodyLength), or of the current chunk
	chunk   chunkState
	// methods of requests awaiting responses, so a response to HEAD or a
	// 1xx/204/304 is known to have no body.
	noBody func() bool
	// resync: bytes were lost where no length says where the next message
	// starts; the parser looks for the next start line. dropped counts
	// what it passed over.
	resync  bool
	dropped int
	// streamFor, when set, is asked about each message once its headers
	// are read: a bodyStream it returns gets the body as it comes, and
	// the message is reported at once, before its body (Streaming).
	streamFor func(*HTTPMessage) bodyStream
	stream    bodyStream // the current message's, while its body is read
}

type chunkState uint8

const (
	chunkSize chunkState = iota
	chunkData
	chunkDataCRLF
	chunkTrailer
)

var errHTTP = errors.New("not HTTP")

// feed consumes b, calling emit for each complete message. When a message
// makes the connection switch protocols (a 101 response, or a request asking
// for one), feed returns the bytes after it and stops: the caller decides
// what they are.
func (p *httpParser) feed(b []byte, emit func(*HTTPMessage) (stop bool)) (rest []byte, err error) {
	p.buf = append(p.buf, b...)
	for len(p.buf) > 0 || p.msg != nil {
		if p.msg == nil && p.resync {
			at, drop := syncPoint(p.buf, p.request)
			if at < 0 {
				p.dropped += drop
				p.buf = p.buf[drop:]
				return nil, nil
			}
			p.dropped += at
			p.buf = p.buf[at:]
			p.resync = false
		}
		if p.msg == nil {
			end := bytes.Index(p.buf, []byte("\r\n\r\n"))
			if end < 0 {
				if len(p.buf) > maxHTTPHeader {
					return nil, fmt.Errorf("HTTP header longer than %d bytes", maxHTTPHeader)
				}
				if err := p.checkStart(); err != nil {
					return nil, err
				}
				return nil, nil
			}
			m, err := parseHTTPHeader(p.buf[:end], p.request)
			if err != nil {
				return nil, err
			}
			m.HeaderLen = end + 4
			p.buf = p.buf[end+4:]
			if err := p.startBody(m); err != nil {
				return nil, err
			}
			p.msg = m
			if p.streamFor != nil && p.mode != bodyNone {
				if st := p.streamFor(m); st != nil {
					p.stream = st
					head := *m
					head.Streaming = true
					emit(&head) // a response with a body switches nothing
				}
			}
		}
		done, err := p.readBody()
		if err != nil {
			return nil, err
		}
		if !done {
			return nil, nil
		}
		m := p.msg
		p.msg = nil
		if st := p.stream; st != nil {
			p.stream = nil
			st.end(m, true)
			continue
		}
		if emit(m) {
			rest := p.buf
			p.buf = nil
			return rest, nil
		}
	}
	if cap(p.buf) > 64<<10 {
		p.buf = nil // let a large buffer go once it is drained
	}
	return nil, nil
}

// skip passes over n bytes lost from the stream (n < 0: an unknown number).
// Inside a body whose length is known (Content-Length, the current chunk's
// size, or a body read until close) the skip is exact: the message is
// partial and the next one starts where it was expected. Anywhere else the
// message in progress is emitted partial and the parser looks for the next
// start line (resync); exact reports which.
func (p *httpParser) skip(n int, emit func(*HTTPMessage) bool) (exact bool) {
	if m := p.msg; m != nil && len(p.buf) == 0 && n >= 0 {
		switch {
		case p.mode == bodyUntilClose,
			p.mode == bodyLength && n <= p.left,
			p.mode == bodyChunked && p.chunk == chunkData && n <= p.left:
			m.Lost += n
			m.BodyLen += n
			m.WireBodyLen += n
			if p.stream != nil {
				p.stream.gap(n)
			}
			if p.mode != bodyUntilClose {
				p.left -= n
				if p.left == 0 && p.mode == bodyChunked {
					p.chunk = chunkDataCRLF
				}
			}
			return true
		}
	}
	if m := p.msg; m != nil && p.mode == bodyUntilClose {
		m.Lost = -1 // read until close: it goes on, size unknown
		p.buf = p.buf[:0]
		if p.stream != nil {
			p.stream.gap(-1)
		}
		return true
	}
	if m := p.msg; m != nil {
		m.Lost = -1
		p.msg = nil
		if st := p.stream; st != nil {
			p.stream = nil
			st.end(m, false)
		} else {
			emit(m)
		}
	}
	p.buf = p.buf[:0]
	p.resync, p.dropped = true, 0
	return false
}

// syncPoint finds where the next start line begins in b. A status line is
// HTTP/1.x and a three-digit code; a request line is a method (one of the
// usual, or upper-case letters at a line's start), a target and HTTP/1.x
// ending its line. Either may follow a body of unknown length with no line
// break, so they are looked for anywhere. With none yet it returns -1 and how
// many bytes can go (a line that may still be coming is kept).
func syncPoint(b []byte, request bool) (at, drop int) {
	if !request {
		for from := 0; ; {
			j := bytes.Index(b[from:], []byte("HTTP/1."))
			if j < 0 {
				return -1, max(from, len(b)-6)
			}
			i := from + j
			if len(b) < i+13 {
				return -1, i
			}
			if statusLine(b[i:i+12]) && (b[i+12] == ' ' || b[i+12] == '\r') {
				return i, 0
			}
			from = i + 1
		}
	}
	for from := 0; ; {
		j := bytes.Index(b[from:], []byte(" HTTP/1."))
		if j < 0 {
			return -1, max(0, len(b)-maxSyncLine)
		}
		sp := from + j
		if len(b) < sp+11 {
			return -1, max(0, sp-maxSyncLine)
		}
		from = sp + 1
		if !isDigit(b[sp+8]) || b[sp+9] != '\r' || b[sp+10] != '\n' {
			continue
		}
		lo := max(0, sp-maxSyncLine)
		line := b[lo:sp]
		k := bytes.LastIndexByte(line, ' ') // between the method and the target
		if k < 1 || k == len(line)-1 || bytes.ContainsAny(line[k+1:], "\r\n") {
			continue
		}
		s := k
		for s > 0 && line[s-1] >= 'A' && line[s-1] <= 'Z' {
			s--
		}
		method := line[s:k]
		for _, m := range httpMethods {
			if bytes.HasSuffix(method, []byte(m)) {
				return lo + k - len(m), 0
			}
		}
		if lineStart := s > 0 && line[s-1] == '\n' || s == 0 && lo == 0; lineStart && len(method) > 0 && len(method) <= 20 {
			return lo + s, 0
		}
	}
}

// maxSyncLine bounds the method and target looked back for.
const maxSyncLine = 8 << 10

// httpMethods are the methods a request line is recognised by after a gap
// wherever it is (other methods only at a line's start).
var httpMethods = []string{"OPTIONS", "CONNECT", "DELETE", "PATCH", "TRACE", "POST", "HEAD", "GET", "PUT"}

// statusLine reports whether line opens as an HTTP/1.x status line.
func statusLine(line []byte) bool {
	return len(line) >= 12 && bytes.HasPrefix(line, []byte("HTTP/1.")) && line[8] == ' ' &&
		isDigit(line[9]) && isDigit(line[10]) && isDigit(line[11]) && (len(line) == 12 || line[12] == ' ')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// checkStart fails early on bytes that cannot begin an HTTP message.
func (p *httpParser) checkStart() error {
	b := p.buf
	if len(b) > 16 {
		b = b[:16]
	}
	if p.request {
		for _, c := range b {
			if c == ' ' {
				return nil
			}
			if c < 'A' || c > 'Z' {
				return fmt.Errorf("%w: request does not start with a method: %q", errHTTP, textPreview(b, 16))
			}
		}
		return nil
	}
	if !bytes.HasPrefix([]byte("HTTP/"), b[:min(len(b), 5)]) {
		return fmt.Errorf("%w: response does not start with HTTP/: %q", errHTTP, textPreview(b, 16))
	}
	return nil
}

func parseHTTPHeader(raw []byte, request bool) (*HTTPMessage, error) {
	m := &HTTPMessage{Request: request}
	// One string for the whole header: the start line's parts and every
	// header's name and value are slices of it (one allocation, not two
	// per header).
	block := string(raw)
	start, rest, _ := strings.Cut(block, "\r\n")
	if request {
		method, r, ok1 := strings.Cut(start, " ")
		target, version, ok2 := strings.Cut(r, " ")
		if !ok1 || !ok2 || !strings.HasPrefix(version, "HTTP/1.") || method == "" {
			return nil, fmt.Errorf("%w: bad request line %q", errHTTP, textPreview([]byte(start), 80))
		}
		for i := 0; i < len(method); i++ {
			if c := method[i]; c < 'A' || c > 'Z' {
				return nil, fmt.Errorf("%w: bad method %q", errHTTP, textPreview([]byte(method), 20))
			}
		}
		m.Method, m.Target, m.Version = method, target, version
	} else {
		version, r, ok := strings.Cut(start, " ")
		code, reason, _ := strings.Cut(r, " ")
		if !ok || !strings.HasPrefix(version, "HTTP/1.") {
			return nil, fmt.Errorf("%w: bad status line %q", errHTTP, textPreview([]byte(start), 80))
		}
		n, err := strconv.Atoi(code)
		if err != nil || n < 100 || n > 999 {
			return nil, fmt.Errorf("%w: bad status code %q", errHTTP, textPreview([]byte(code), 10))
		}
		m.Version, m.Status, m.Reason = version, n, reason
	}
	m.Headers = make([]Field, 0, strings.Count(rest, "\n")+1)
	for len(rest) > 0 {
		var hl string
		hl, rest, _ = strings.Cut(rest, "\r\n")
		name, value, ok := strings.Cut(hl, ":")
		if !ok || len(name) == 0 || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("%w: bad header line %q", errHTTP, textPreview([]byte(hl), 80))
		}
		m.Headers = append(m.Headers, Field{Name: name, Value: strings.TrimSpace(value)})
	}
	return m, nil
}

func (p *httpParser) startBody(m *HTTPMessage) error {
	p.mode, p.left, p.chunk = bodyNone, 0, chunkSize
	if !m.Request && (m.Status < 200 || m.Status == 204 || m.Status == 304 || (p.noBody != nil && p.noBody())) {
		return nil
	}
	if m.hasToken("Transfer-Encoding", "chunked") {
		p.mode = bodyChunked
		return nil
	}
	if cl := m.Header("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 {
			return fmt.Errorf("bad Content-Length %q", cl)
		}
		if n > 0 {
			p.mode, p.left = bodyLength, n
		}
		return nil
	}
	if !m.Request {
		p.mode = bodyUntilClose
	}
	return nil
}

func (p *httpParser) keepBody(b []byte) {
	m := p.msg
	// The preview is the body's start; bytes after a gap are not in it.
	if room := PreviewBytes - len(m.Body); room > 0 && m.Lost == 0 {
		m.Body = append(m.Body, b[:min(room, len(b))]...)
	}
	m.BodyLen += len(b)
	if p.stream != nil && len(b) > 0 {
		p.stream.body(b)
	}
}

// readBody consumes body bytes from p.buf; done is true when the message is
// complete.
func (p *httpParser) readBody() (done bool, err error) {
	m := p.msg
	switch p.mode {
	case bodyNone:
		return true, nil
	case bodyLength:
		take := min(p.left, len(p.buf))
		p.keepBody(p.buf[:take])
		m.WireBodyLen += take
		p.buf, p.left = p.buf[take:], p.left-take
		return p.left == 0, nil
	case bodyUntilClose:
		p.keepBody(p.buf)
		m.WireBodyLen += len(p.buf)
		p.buf = p.buf[:0]
		return false, nil
	}
	for len(p.buf) > 0 { // chunked
		switch p.chunk {
		case chunkSize:
			i := bytes.Index(p.buf, []byte("\r\n"))
			if i < 0 {
				if len(p.buf) > 1024 {
					return false, errors.New("chunk size line longer than 1024 bytes")
				}
				return false, nil
			}
			sz, _, _ := strings.Cut(string(p.buf[:i]), ";")
			n, err := strconv.ParseInt(strings.TrimSpace(sz), 16, 32)
			if err != nil || n < 0 {
				return false, fmt.Errorf("bad chunk size %q", textPreview(p.buf[:i], 20))
			}
			m.WireBodyLen += i + 2
			p.buf = p.buf[i+2:]
			p.left = int(n)
			if n == 0 {
				p.chunk = chunkTrailer
			} else {
				p.chunk = chunkData
			}
		case chunkData:
			take := min(p.left, len(p.buf))
			p.keepBody(p.buf[:take])
			m.WireBodyLen += take
			p.buf, p.left = p.buf[take:], p.left-take
			if p.left == 0 {
				p.chunk = chunkDataCRLF
			}
		case chunkDataCRLF:
			if len(p.buf) < 2 {
				return false, nil
			}
			if p.buf[0] != '\r' || p.buf[1] != '\n' {
				return false, errors.New("chunk not followed by CRLF")
			}
			m.WireBodyLen += 2
			p.buf = p.buf[2:]
			p.chunk = chunkSize
		case chunkTrailer:
			i := bytes.Index(p.buf, []byte("\r\n"))
			if i < 0 {
				return false, nil
			}
			m.WireBodyLen += i + 2
			p.buf = p.buf[i+2:]
			if i == 0 {
				return true, nil
			}
		}
	}
	return false, nil
}

// close ends the direction: a body read until close is complete now.
func (p *httpParser) close(emit func(*HTTPMessage) bool) {
	if p.msg != nil && p.mode == bodyUntilClose {
		m := p.msg
		p.msg = nil
		if st := p.stream; st != nil {
			p.stream = nil
			st.end(m, true)
			return
		}
		emit(m)
	}
}

// abort ends a streamed body the connection cut short (its length, or its
// last chunk, never came) and reports whether there was one: its stream
// says what was lost.
func (p *httpParser) abort() bool {
	st, m := p.stream, p.msg
	if st == nil || m == nil {
		return false
	}
	p.stream, p.msg = nil, nil
	p.buf = p.buf[:0]
	st.end(m, false)
	return true
}

// pending reports whether a message is partly read.
func (p *httpParser) pending() bool { return !p.resync && (p.msg != nil || len(p.buf) > 0) }

// fill sets a record's sizes from a message; its text is formatted only when
// shown (format).
func (m *HTTPMessage) fill(r *Record) {
	r.Layer = "http"
	r.Len = m.HeaderLen + m.WireBodyLen
	r.Payload = m.BodyLen
	r.Data = m.Body
	r.lazyOf = m
}

// format writes a record's summary and fields.
func (m *HTTPMessage) format(r *Record) {
	var s string
	if m.Request {
		s = fmt.Sprintf("%s %s %s", m.Method, m.Target, m.Version)
		r.add("method", "%s", m.Method)
		r.add("target", "%s", m.Target)
	} else {
		s = fmt.Sprintf("%s %d %s", m.Version, m.Status, m.Reason)
		r.add("status", "%d", m.Status)
		r.add("reason", "%s", m.Reason)
	}
	r.add("version", "%s", m.Version)
	for _, h := range m.Headers {
		r.add("header."+strings.ToLower(h.Name), "%s", h.Value)
	}
	r.add("header_bytes", "%d", m.HeaderLen)
	r.add("body_bytes", "%d", m.BodyLen)
	switch {
	case m.Lost > 0:
		r.add("lost_bytes", "%d", m.Lost)
	case m.Lost < 0:
		r.add("lost_bytes", "unknown")
	}
	if m.BodyLen > 0 {
		if ct := m.Header("Content-Type"); ct != "" {
			s += " (" + ct
		} else {
			s += " ("
		}
		s += fmt.Sprintf(", %d bytes)", m.BodyLen)
		r.add("body", "%s", textPreview(m.Body, PreviewBytes))
	}
	if m.WebSocketUpgrade() {
		s += " [WebSocket upgrade]"
	}
	if m.Streaming {
		ct := m.Header("Content-Type")
		s += " (" + ct + ": streaming, its events follow)"
		r.add("streaming", "true")
	}
	switch {
	case m.Lost > 0:
		s += fmt.Sprintf(" [partial: %d body bytes not captured]", m.Lost)
	case m.Lost < 0:
		s += " [partial: its end was not captured]"
	}
	r.Summary = s
}
