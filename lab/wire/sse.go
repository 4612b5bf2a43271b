package wire

import (
	"bytes"
	"fmt"
	"mime"
	"strings"
)

// SSE: the body of a text/event-stream response, parsed as the WHATWG
// HTML standard's event-stream format (§9.2.6, "Interpreting an event
// stream") as the bytes arrive: lines end with CR, LF or CRLF; a BOM may
// open the stream; a line starting with a colon is a comment; "field:
// value" (one space after the colon dropped) sets id, event, data (lines
// joined by LF) or retry (ASCII digits only); a blank line dispatches the
// event — when its data is not empty. Nothing is buffered but bounded
// previews: a line is parsed a byte at a time.

// Bounds on what an event keeps.
const (
	maxSSEName  = 16  // field names longer than any known one are unknown
	maxSSEValue = 256 // id and event values kept (longer ones are cut, and say so)
	maxSSENote  = 64  // a comment's preview
)

// SSEEvent is one event of an event stream, or a block of lines the
// standard does not dispatch (comments only, or fields without data).
type SSEEvent struct {
	// Dispatched says the block was an event: it had a data line.
	Dispatched bool
	// Event is the event type ("" for the default, "message").
	Event string
	// ID is the stream's last event ID after this block (the standard
	// carries it over to later events); SetID says this block set it.
	ID    string
	SetID bool
	// Data is the start of the event's data (at most PreviewBytes);
	// DataLen its whole size, lines joined by LF.
	Data    []byte
	DataLen int
	// Retry is the reconnection time the block set, in ms (-1: none).
	Retry int64
	// Lines counts the block's lines; Comments those that are comments,
	// Comment the first one's start; Unknown the fields the standard
	// ignores.
	Lines, Comments, Unknown int
	Comment                  []byte
	// Cut says an id or event value was longer than kept.
	Cut bool
	// Len is the block's size in the body, up to and with the first byte
	// of the blank line that ends it.
	Len int
	// Partial says bytes of the block were lost from the capture.
	Partial bool
	// Seq numbers the stream's events from 1 (0 for a block not
	// dispatched).
	Seq int
}

// sseField is the field a line being read sets.
type sseField uint8

const (
	sseNone sseField = iota
	sseData
	sseEvent
	sseID
	sseRetry
	sseComment
	sseUnknown
)

// sseParser reads one event stream, a piece at a time, and hands each
// block to emit when its blank line arrives.
type sseParser struct {
	emit func(*SSEEvent)

	started bool   // past the BOM check
	bom     int    // BOM bytes matched so far
	lastCR  bool   // the last byte was a CR: an LF now ends no line
	lastID  string // the last event ID, carried across events
	events  int    // events dispatched
	resync  bool   // after a gap: drop bytes until a blank line

	// The line being read.
	name     [maxSSEName]byte
	nameLen  int
	nameLong bool
	colon    bool // the name ended (a colon was read)
	space    bool // the byte after the colon is next (a space there is dropped)
	field    sseField
	value    []byte // id, event or retry value (bounded)
	valueCut bool
	retryOK  bool // the retry value so far is ASCII digits
	lineLen  int  // bytes of the line so far (a blank line has none)

	// The block being read.
	cur *SSEEvent
	// bytes counts every body byte read.
	bytes int64
}

var bom = []byte{0xEF, 0xBB, 0xBF}

func newSSEParser(emit func(*SSEEvent)) *sseParser {
	return &sseParser{emit: emit}
}

func (p *sseParser) block() *SSEEvent {
	if p.cur == nil {
		p.cur = &SSEEvent{Retry: -1}
	}
	return p.cur
}

// feed consumes body bytes.
func (p *sseParser) feed(b []byte) {
	p.bytes += int64(len(b))
	if !p.started {
		for len(b) > 0 && p.bom < len(bom) {
			if b[0] != bom[p.bom] {
				// Not a BOM: what matched so far is text.
				matched := bom[:p.bom]
				p.started, p.bom = true, len(bom)
				for _, c := range matched {
					p.byte(c)
				}
				break
			}
			p.bom++
			p.block().Len++
			b = b[1:]
		}
		if p.bom == len(bom) {
			p.started = true
		}
	}
	for _, c := range b {
		p.byte(c)
	}
}

// byte reads one byte of the stream.
func (p *sseParser) byte(c byte) {
	if p.lastCR {
		p.lastCR = false
		if c == '\n' { // the LF of a CRLF
			if p.cur != nil {
				p.cur.Len++
			}
			return
		}
	}
	if p.resync {
		// After a gap, the next blank line ends the damaged block.
		switch c {
		case '\r', '\n':
			p.lastCR = c == '\r'
			if p.lineLen == 0 {
				p.resync = false
				p.reset()
			}
			p.lineLen = 0
		default:
			p.lineLen++
		}
		return
	}
	p.block().Len++
	if c == '\r' || c == '\n' {
		p.lastCR = c == '\r'
		p.endLine()
		return
	}
	p.lineLen++
	switch {
	case p.lineLen == 1 && c == ':':
		p.field, p.colon = sseComment, true
		p.cur.Comments++
	case p.field == sseComment:
		if p.cur.Comments == 1 && len(p.cur.Comment) < maxSSENote {
			p.cur.Comment = append(p.cur.Comment, c)
		}
	case !p.colon && c == ':':
		p.colon, p.space = true, true
		if p.field = p.nameField(); p.field == sseData {
			p.startData()
		}
	case !p.colon:
		if p.nameLen < maxSSEName {
			p.name[p.nameLen] = c
			p.nameLen++
		} else {
			p.nameLong = true
		}
	default:
		if p.space {
			p.space = false
			if c == ' ' {
				return
			}
		}
		p.valueByte(c)
	}
}

// nameField says which field the name read so far is.
func (p *sseParser) nameField() sseField {
	if p.nameLong {
		return sseUnknown
	}
	switch string(p.name[:p.nameLen]) {
	case "data":
		return sseData
	case "event":
		return sseEvent
	case "id":
		return sseID
	case "retry":
		p.retryOK = true
		return sseRetry
	}
	return sseUnknown
}

func (p *sseParser) valueByte(c byte) {
	ev := p.cur
	switch p.field {
	case sseData:
		if len(ev.Data) < PreviewBytes {
			ev.Data = append(ev.Data, c)
		}
		ev.DataLen++
	case sseEvent, sseID:
		if len(p.value) < maxSSEValue {
			p.value = append(p.value, c)
		} else {
			p.valueCut = true
		}
	case sseRetry:
		if c < '0' || c > '9' || len(p.value) >= 18 { // 18 digits fit an int64
			p.retryOK = false
		} else {
			p.value = append(p.value, c)
		}
	}
}

// startData joins a new data line to the ones before it.
func (p *sseParser) startData() {
	ev := p.cur
	if ev.Dispatched { // a data line before this one: LF between them
		if len(ev.Data) < PreviewBytes {
			ev.Data = append(ev.Data, '\n')
		}
		ev.DataLen++
	}
	ev.Dispatched = true
}

// endLine processes the line just ended.
func (p *sseParser) endLine() {
	ev := p.cur
	if p.lineLen == 0 { // a blank line: the block ends
		p.dispatch()
		return
	}
	ev.Lines++
	field := p.field
	if !p.colon { // the whole line is the name, the value is empty
		field = p.nameField()
	}
	switch field {
	case sseData:
		if !p.colon { // "data" alone: an empty line of data
			p.startData()
		}
	case sseEvent:
		ev.Event = string(p.value)
		ev.Cut = ev.Cut || p.valueCut
	case sseID:
		if bytes.IndexByte(p.value, 0) < 0 { // an id with NUL is ignored
			ev.ID, ev.SetID = string(p.value), true
			ev.Cut = ev.Cut || p.valueCut
		}
	case sseRetry:
		if p.retryOK && len(p.value) > 0 {
			var n int64
			for _, d := range p.value {
				n = n*10 + int64(d-'0')
			}
			ev.Retry = n
		}
	case sseUnknown:
		ev.Unknown++
	}
	p.nameLen, p.nameLong, p.colon, p.space, p.field = 0, false, false, false, sseNone
	p.value, p.valueCut, p.retryOK, p.lineLen = p.value[:0], false, false, 0
}

// dispatch ends the block at a blank line (WHATWG: an event is dispatched
// only when its data buffer is not empty).
func (p *sseParser) dispatch() {
	ev := p.cur
	p.cur = nil
	if ev == nil {
		return
	}
	if ev.SetID {
		p.lastID = ev.ID
	}
	ev.ID = p.lastID
	if ev.Dispatched {
		p.events++
		ev.Seq = p.events
	}
	if ev.Lines == 0 && !ev.Dispatched {
		return // a blank line alone (CRLF's own bytes, stray line ends)
	}
	p.emit(ev)
}

// reset forgets the block in progress (after a gap).
func (p *sseParser) reset() {
	p.cur = nil
	p.nameLen, p.nameLong, p.colon, p.space, p.field = 0, false, false, false, sseNone
	p.value, p.valueCut, p.retryOK, p.lineLen = p.value[:0], false, false, 0
}

// gap: bytes of the body were lost. The block in progress is emitted
// partial when it had data; the parser then skips to the next blank line
// (a block's end is the only marker the format has).
func (p *sseParser) gap() {
	if ev := p.cur; ev != nil && ev.Dispatched {
		ev.Partial = true
		p.cur = nil
		p.events++
		ev.Seq = p.events
		ev.ID = p.lastID
		p.emit(ev)
	}
	p.reset()
	p.resync = true
	p.lineLen = 1 // the gap may have hidden the line's start: not blank
}

// pending reports whether a block is partly read.
func (p *sseParser) pending() bool { return p.cur != nil && (p.cur.Lines > 0 || p.lineLen > 0) }

// isEventStream reports whether a response's body is an event stream.
func isEventStream(m *HTTPMessage) bool {
	ct := m.Header("Content-Type")
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	}
	return mt == "text/event-stream"
}

// fill sets a record from an event; its text is formatted only when shown.
func (ev *SSEEvent) fill(r *Record) {
	r.Layer = "sse"
	r.Len = ev.Len
	r.Payload = ev.DataLen
	r.Data = ev.Data
	r.lazy = ev.format
}

func (ev *SSEEvent) format(r *Record) {
	if !ev.Dispatched {
		s := "SSE"
		switch {
		case ev.Comments > 0 && ev.Lines == ev.Comments:
			note := textPreview(bytes.TrimSpace(ev.Comment), maxSSENote)
			s += fmt.Sprintf(" comment %q", note)
			r.add("comment", "%s", note)
		default:
			s += " block without data (not dispatched)"
		}
		if ev.SetID {
			s += " id=" + ev.ID
			r.add("id", "%s", ev.ID)
		}
		if ev.Retry >= 0 {
			s += fmt.Sprintf(" retry=%dms", ev.Retry)
			r.add("retry_ms", "%d", ev.Retry)
		}
		r.add("lines", "%d", ev.Lines)
		r.Summary = s
		return
	}
	typ := ev.Event
	if typ == "" {
		typ = "message"
	}
	r.add("event", "%s", typ)
	r.add("seq", "%d", ev.Seq)
	if ev.ID != "" {
		r.add("id", "%s", ev.ID)
	}
	r.add("data", "%s", textPreview(ev.Data, PreviewBytes))
	r.add("data_bytes", "%d", ev.DataLen)
	r.add("lines", "%d", ev.Lines)
	if ev.Retry >= 0 {
		r.add("retry_ms", "%d", ev.Retry)
	}
	if ev.Comments > 0 {
		r.add("comments", "%d", ev.Comments)
	}
	if ev.Unknown > 0 {
		r.add("unknown_fields", "%d", ev.Unknown)
	}
	s := fmt.Sprintf("SSE event %q", typ)
	if ev.ID != "" {
		s += " id=" + textPreview([]byte(ev.ID), 32)
	}
	s += fmt.Sprintf(" %q", textPreview(ev.Data, 64))
	if ev.DataLen > 64 {
		s += fmt.Sprintf(" (%d bytes)", ev.DataLen)
	}
	if ev.Retry >= 0 {
		s += fmt.Sprintf(" retry=%dms", ev.Retry)
	}
	if ev.Cut {
		s += " [id or event cut at 256 bytes]"
		r.add("cut", "true")
	}
	if ev.Partial {
		s += " [partial: bytes lost from the capture]"
		r.add("partial", "true")
	}
	r.Summary = s
}
