package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2/hpack"
)

// HTTP/2 (RFC 9113) over the reassembled stream — plain (h2c, gRPC) or the
// plaintext of a decrypted TLS connection (h2, gRPC over TLS): the
// connection preface, every frame each way, header blocks decoded with
// HPACK (RFC 7541: one decoder per direction, its dynamic table kept from
// the connection's start), and each stream's request and response as a
// message when it ends. DATA payloads are never held whole: they go by, a
// preview and each gRPC message's start kept. Everything is bounded: the
// frames held whole (not DATA), the header lists kept, the streams
// followed, the HPACK strings and table.

// h2Preface opens every HTTP/2 connection, from the client (§3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Frame types (§6).
const (
	h2Data         = 0x0
	h2Headers      = 0x1
	h2Priority     = 0x2
	h2RSTStream    = 0x3
	h2Settings     = 0x4
	h2PushPromise  = 0x5
	h2Ping         = 0x6
	h2GoAway       = 0x7
	h2WindowUpdate = 0x8
	h2Continuation = 0x9
)

// Frame flags.
const (
	h2EndStream  = 0x1
	h2Ack        = 0x1
	h2EndHeaders = 0x4
	h2Padded     = 0x8
	h2PriorityF  = 0x20
)

// Bounds.
const (
	// h2DefaultMaxFrame is SETTINGS_MAX_FRAME_SIZE's initial value.
	h2DefaultMaxFrame = 1 << 14
	// maxH2Held bounds the payload of a frame other than DATA held whole
	// to be decoded; a larger one is passed over by its length (and a
	// header block in it is lost).
	maxH2Held = 256 << 10
	// maxH2Streams bounds the streams followed at once per connection.
	maxH2Streams = 256
	// maxH2HeaderList bounds the header fields kept of one header block
	// (name + value + 32 each, as SETTINGS_MAX_HEADER_LIST_SIZE counts);
	// the block is still decoded whole, to keep the HPACK state.
	maxH2HeaderList = 16 << 10
	// maxH2String bounds one HPACK string; maxH2Table the dynamic table
	// a peer may ask for.
	maxH2String = 64 << 10
	maxH2Table  = 1 << 20
	// maxH2Sync bounds the bytes searched for a frame header after a gap
	// or a mid-connection start.
	maxH2Sync = 64 << 10
)

// H2FrameName names a frame type as RFC 9113 does.
func H2FrameName(t byte) string {
	switch t {
	case h2Data:
		return "DATA"
	case h2Headers:
		return "HEADERS"
	case h2Priority:
		return "PRIORITY"
	case h2RSTStream:
		return "RST_STREAM"
	case h2Settings:
		return "SETTINGS"
	case h2PushPromise:
		return "PUSH_PROMISE"
	case h2Ping:
		return "PING"
	case h2GoAway:
		return "GOAWAY"
	case h2WindowUpdate:
		return "WINDOW_UPDATE"
	case h2Continuation:
		return "CONTINUATION"
	case 0xa:
		return "ALTSVC"
	case 0xc:
		return "ORIGIN"
	case 0x10:
		return "PRIORITY_UPDATE"
	}
	return fmt.Sprintf("UNKNOWN(0x%x)", t)
}

// H2ErrorName names an error code (§7).
func H2ErrorName(code uint32) string {
	names := [...]string{"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT",
		"STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR",
		"ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"}
	if int(code) < len(names) {
		return names[code]
	}
	return fmt.Sprintf("0x%x", code)
}

// H2SettingName names a setting (§6.5.2, RFC 8441, RFC 9218).
func H2SettingName(id uint16) string {
	switch id {
	case 1:
		return "HEADER_TABLE_SIZE"
	case 2:
		return "ENABLE_PUSH"
	case 3:
		return "MAX_CONCURRENT_STREAMS"
	case 4:
		return "INITIAL_WINDOW_SIZE"
	case 5:
		return "MAX_FRAME_SIZE"
	case 6:
		return "MAX_HEADER_LIST_SIZE"
	case 8:
		return "ENABLE_CONNECT_PROTOCOL"
	case 9:
		return "NO_RFC7540_PRIORITIES"
	}
	return fmt.Sprintf("0x%x", id)
}

// H2Setting is one setting of a SETTINGS frame.
type H2Setting struct {
	ID    uint16
	Value uint32
}

// H2Frame is one decoded HTTP/2 frame.
type H2Frame struct {
	Type, Flags byte
	Stream      uint32
	Length      int
	// PadLen is the padding of a PADDED frame.
	PadLen int
	// Data is the start of a DATA frame's data (at most PreviewBytes),
	// DataLen its size; a PING's opaque data; a GOAWAY's debug data.
	Data    []byte
	DataLen int
	// Settings are a SETTINGS frame's values.
	Settings []H2Setting
	// Increment is a WINDOW_UPDATE's; Code a RST_STREAM's or GOAWAY's
	// error code; LastStream a GOAWAY's; Promised a PUSH_PROMISE's.
	Increment, Code, LastStream, Promised uint32
	// Priority: a PRIORITY frame's or a HEADERS frame's with the flag.
	HasPriority bool
	Exclusive   bool
	Dependency  uint32
	Weight      int // 1–256
	// Headers are the fields of the header block this frame ends (a
	// HEADERS or PUSH_PROMISE with END_HEADERS, or the CONTINUATION that
	// ends its block): the block's fragments joined. BlockFrames and
	// BlockLen say how many frames and bytes it took.
	Headers     []hpack.HeaderField
	HeadersCut  bool // the block had more fields than kept
	BlockFrames int
	BlockLen    int
	// NoHeaders says why a header block (ended here) is not decoded.
	NoHeaders string
	// Lost counts payload bytes missing from the capture.
	Lost int
	// Note says what the frame meant for its stream, when not the usual
	// (data on a closed stream…).
	Note  string
	noted bool
}

// h2Side is one direction of an HTTP/2 connection.
type h2Side struct {
	preface int  // preface bytes still to read (the client's, at its start)
	broken  bool // not decoded further

	hdr  [9]byte
	nhdr int
	f    *H2Frame // the frame whose payload is being read
	left int      // its payload bytes left
	held []byte   // its payload, for frames other than DATA
	pass bool     // its payload is passed over, not held
	// DATA: padLen < 0 until the pad length byte is read; dataLeft is
	// the data before the padding.
	padLen, dataLeft int

	dec      *hpack.Decoder
	hpack    bool   // header blocks can be decoded
	hpackWhy string // why not
	block    *h2Block
	maxFrame uint32 // SETTINGS_MAX_FRAME_SIZE the receiver announced

	resync  bool // looking for a frame header (a gap, a mid-connection start)
	sync    []byte
	dropped int

	fromStart bool           // the side was seen from its first byte
	pending   []*GRPCMessage // gRPC messages completed in the DATA frame being read
}

// h2Block is a header block being read: a HEADERS or PUSH_PROMISE and its
// CONTINUATIONs.
type h2Block struct {
	stream    uint32
	promise   bool
	promised  uint32
	endStream bool
	frames    int
	len       int
	wire      int // the block's frames' bytes, headers included
	fields    []hpack.HeaderField
	size      int
	cut       bool
	unknown   string // why the block is not decoded ("" when it is)
}

// h2Conn follows one HTTP/2 connection.
type h2Conn struct {
	c       *conv
	side    [2]h2Side
	streams map[uint32]*h2Stream
	maxID   [2]uint32 // highest stream ID seen opened, odd (client) and even (pushed)
	// closed are the streams last closed: data after their end is not a
	// stream opened before the capture.
	closed   [32]uint32
	closedAt int
}

// close forgets a stream, remembering it closed.
func (h *h2Conn) close(id uint32) {
	delete(h.streams, id)
	h.closed[h.closedAt] = id
	h.closedAt = (h.closedAt + 1) % len(h.closed)
}

func (h *h2Conn) wasClosed(id uint32) bool {
	for _, c := range h.closed {
		if c == id {
			return true
		}
	}
	return false
}

// h2Stream is one stream: a request and its response.
type h2Stream struct {
	id      uint32
	half    [2]h2Half
	grpc    bool
	path    string
	partial bool // not seen from its start
}

// h2Half is one way of a stream.
type h2Half struct {
	started, ended bool
	headers        []hpack.HeaderField
	trailers       []hpack.HeaderField
	informational  int // 1xx responses before the final one
	noHeaders      string
	cut            bool
	blockLen       int
	body           []byte
	bodyLen        int
	lost           int
	wire           int
	frames         int
	grpc           *grpcReader
	encoding       string // grpc-encoding
}

func newH2Conn(c *conv) *h2Conn {
	h := &h2Conn{c: c, streams: map[uint32]*h2Stream{}}
	for dir := range h.side {
		s := &h.side[dir]
		s.maxFrame = h2DefaultMaxFrame
		s.dec = hpack.NewDecoder(4096, func(f hpack.HeaderField) { s.field(f) })
		s.dec.SetMaxStringLength(maxH2String)
	}
	return h
}

// field keeps a decoded header field in the block being read, within bounds.
func (s *h2Side) field(f hpack.HeaderField) {
	b := s.block
	if b == nil {
		return
	}
	size := len(f.Name) + len(f.Value) + 32
	if b.size+size > maxH2HeaderList {
		b.cut = true
		return
	}
	b.size += size
	b.fields = append(b.fields, f)
}

// start begins a direction: with the preface (the client's, from its
// start), from the first byte (fromStart, no preface), or somewhere in
// the middle (the capture began mid-connection, or a gap hid the start).
func (h *h2Conn) start(dir Dir, t time.Time, preface, fromStart bool) {
	s := &h.side[dir]
	s.fromStart = fromStart
	s.hpack = fromStart
	switch {
	case preface:
		s.preface = len(h2Preface)
	case !fromStart:
		s.resync = true
		s.hpackWhy = "the connection was not captured from its start (no connection preface seen): the HPACK state its header blocks depend on is unknown"
		h.c.out.failure(dir, t, fmt.Errorf("HTTP/2 %s was not captured from its start (the capture began mid-connection): its frames are shown, but header blocks cannot be decoded (HPACK state unknown)", dirName(dir)))
	case dir == ClientToServer:
		h.c.out.failure(dir, t, errors.New("HTTP/2 client did not open with the connection preface (RFC 9113 §3.4): decoding its frames anyway"))
	}
}

func dirName(dir Dir) string {
	if dir == ClientToServer {
		return "client side"
	}
	return "server side"
}

// data feeds one direction's bytes, in order.
func (h *h2Conn) data(dir Dir, b []byte, t time.Time) {
	s := &h.side[dir]
	for len(b) > 0 && !s.broken {
		if s.preface > 0 {
			off := len(h2Preface) - s.preface
			n := min(s.preface, len(b))
			if string(b[:n]) != h2Preface[off:off+n] {
				s.broken = true
				h.c.out.failure(dir, t, fmt.Errorf("HTTP/2 connection preface is wrong: %q", textPreview(b[:n], 24)))
				return
			}
			s.preface -= n
			b = b[n:]
			if s.preface == 0 {
				h.c.out.message(dir, t, h.c.decrypted, classOther, func(r *Record) {
					r.Layer, r.Len = "http2", len(h2Preface)
					r.lazy = func(r *Record) {
						r.Summary = "HTTP/2 connection preface"
						r.add("preface", "%q", h2Preface)
					}
				})
			}
			continue
		}
		if s.resync {
			b = h.resync(dir, b, t)
			continue
		}
		if s.f == nil {
			n := copy(s.hdr[s.nhdr:], b)
			s.nhdr += n
			b = b[n:]
			if s.nhdr < len(s.hdr) {
				return
			}
			s.nhdr = 0
			h.begin(dir, t)
			if s.f != nil && s.left == 0 {
				h.finish(dir, t)
			}
			continue
		}
		n := min(s.left, len(b))
		h.payload(dir, b[:n], t)
		s.left -= n
		b = b[n:]
		if s.left == 0 {
			h.finish(dir, t)
		}
	}
}

// resync looks for the next plausible frame header and returns the bytes
// from it on (nil while none is found).
func (h *h2Conn) resync(dir Dir, b []byte, t time.Time) []byte {
	s := &h.side[dir]
	s.sync = append(s.sync, b...)
	at, drop := h2SyncPoint(s.sync)
	if at < 0 {
		s.dropped += drop
		s.sync = append(s.sync[:0], s.sync[drop:]...)
		if len(s.sync) > maxH2Sync {
			s.dropped += len(s.sync)
			s.sync = s.sync[:0]
		}
		return nil
	}
	s.dropped += at
	rest := append([]byte(nil), s.sync[at:]...)
	s.sync, s.resync = nil, false
	h.c.out.gap(dir, t, 0, fmt.Sprintf("HTTP/2 frames resumed at a frame header after passing over %d bytes", s.dropped))
	s.dropped = 0
	return rest
}

// h2FlagsAllowed are the flags each frame type defines.
var h2FlagsAllowed = [...]byte{
	h2Data:         h2EndStream | h2Padded,
	h2Headers:      h2EndStream | h2EndHeaders | h2Padded | h2PriorityF,
	h2Priority:     0,
	h2RSTStream:    0,
	h2Settings:     h2Ack,
	h2PushPromise:  h2EndHeaders | h2Padded,
	h2Ping:         h2Ack,
	h2GoAway:       0,
	h2WindowUpdate: 0,
}

// plausibleH2Header reports whether b opens with a frame header a peer
// would send as the first after a gap: a known type (not CONTINUATION,
// which needs the block before it), its defined flags only, the stream ID
// and length its type wants.
func plausibleH2Header(b []byte) bool {
	if len(b) < 9 {
		return false
	}
	length := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
	typ, flags := b[3], b[4]
	if b[5]&0x80 != 0 || typ >= h2Continuation || flags&^h2FlagsAllowed[typ] != 0 || length > 1<<20 {
		return false
	}
	stream := binary.BigEndian.Uint32(b[5:]) & 0x7fffffff
	switch typ {
	case h2Settings:
		return stream == 0 && length%6 == 0 && (flags&h2Ack == 0 || length == 0)
	case h2Ping:
		return stream == 0 && length == 8
	case h2GoAway:
		return stream == 0 && length >= 8
	case h2WindowUpdate, h2RSTStream:
		return length == 4 && (typ == h2WindowUpdate || stream != 0)
	case h2Priority:
		return stream != 0 && length == 5
	}
	return stream != 0
}

// h2SyncPoint finds the next plausible frame header in b, followed (when b
// holds that far) by another. With none it returns -1 and how many bytes
// can go.
func h2SyncPoint(b []byte) (at, drop int) {
	for i := 0; i+9 <= len(b); i++ {
		if !plausibleH2Header(b[i:]) {
			continue
		}
		next := i + 9 + (int(b[i])<<16 | int(b[i+1])<<8 | int(b[i+2]))
		switch {
		case next+9 <= len(b) && (plausibleH2Header(b[next:]) || b[next+3] == h2Continuation):
			return i, 0
		case next+9 > len(b):
			return -1, i // wait for the next header to check it
		}
	}
	return -1, max(len(b)-8, 0)
}

// flag reports a breach of the protocol: an error record, and decoding
// goes on.
func (h *h2Conn) flag(dir Dir, t time.Time, format string, args ...any) {
	h.c.out.failure(dir, t, fmt.Errorf("HTTP/2 "+format, args...))
}

// begin reads the frame header in s.hdr.
func (h *h2Conn) begin(dir Dir, t time.Time) {
	s := &h.side[dir]
	b := s.hdr[:]
	f := &H2Frame{Length: int(b[0])<<16 | int(b[1])<<8 | int(b[2]), Type: b[3], Flags: b[4],
		Stream: binary.BigEndian.Uint32(b[5:]) & 0x7fffffff}
	s.f, s.left, s.pass = f, f.Length, false
	s.held = s.held[:0]
	if uint32(f.Length) > s.maxFrame {
		h.flag(dir, t, "%s frame of %d bytes, beyond the %d its receiver allows (SETTINGS_MAX_FRAME_SIZE; FRAME_SIZE_ERROR)", H2FrameName(f.Type), f.Length, s.maxFrame)
	}
	if blk := s.block; blk != nil && (f.Type != h2Continuation || f.Stream != blk.stream) {
		h.flag(dir, t, "%s frame on stream %d while stream %d's header block waits for its CONTINUATION (§6.10: PROTOCOL_ERROR)", H2FrameName(f.Type), f.Stream, blk.stream)
		s.block = nil
		h.loseHPACK(dir, "a header block was left unfinished")
	}
	zero := f.Type == h2Settings || f.Type == h2Ping || f.Type == h2GoAway
	switch {
	case zero && f.Stream != 0:
		h.flag(dir, t, "%s frame on stream %d (it belongs to stream 0: PROTOCOL_ERROR)", H2FrameName(f.Type), f.Stream)
	case !zero && f.Stream == 0 && f.Type <= h2Continuation && f.Type != h2WindowUpdate:
		h.flag(dir, t, "%s frame on stream 0 (PROTOCOL_ERROR)", H2FrameName(f.Type))
	}
	if f.Type == h2Data {
		s.padLen, s.dataLeft = 0, f.Length
		if f.Flags&h2Padded != 0 {
			s.padLen = -1
		}
		return
	}
	if f.Length > maxH2Held {
		s.pass = true
		h.flag(dir, t, "%s frame of %d bytes: more than the %d bytes the decoder holds, passed over by its length", H2FrameName(f.Type), f.Length, maxH2Held)
	}
}

// payload takes bytes of the current frame's payload.
func (h *h2Conn) payload(dir Dir, p []byte, t time.Time) {
	s := &h.side[dir]
	f := s.f
	if f.Type != h2Data {
		if !s.pass {
			s.held = append(s.held, p...)
		}
		return
	}
	for len(p) > 0 {
		if s.padLen < 0 {
			s.padLen = int(p[0])
			f.PadLen = s.padLen
			p = p[1:]
			s.dataLeft = f.Length - 1 - s.padLen
			if s.dataLeft < 0 {
				h.flag(dir, t, "DATA frame on stream %d: %d bytes of padding in a %d-byte payload (PROTOCOL_ERROR)", f.Stream, s.padLen, f.Length)
				s.dataLeft = 0
			}
			continue
		}
		if n := min(s.dataLeft, len(p)); n > 0 {
			h.dataBytes(dir, f, p[:n], t)
			s.dataLeft -= n
		}
		return // what is left of p is padding
	}
}

// dataBytes takes data of a DATA frame: the frame's preview, the stream's
// body, its gRPC messages.
func (h *h2Conn) dataBytes(dir Dir, f *H2Frame, p []byte, t time.Time) {
	f.DataLen += len(p)
	if room := PreviewBytes - len(f.Data); room > 0 {
		f.Data = append(f.Data, p[:min(room, len(p))]...)
	}
	st := h.streamFor(dir, f, t)
	if st == nil {
		return
	}
	hf := &st.half[dir]
	if room := PreviewBytes - len(hf.body); room > 0 && hf.lost == 0 {
		hf.body = append(hf.body, p[:min(room, len(p))]...)
	}
	hf.bodyLen += len(p)
	if hf.grpc != nil {
		hf.grpc.feed(p, h.grpcDone(dir, st, t), func(problem string) {
			h.c.out.failure(dir, t, fmt.Errorf("gRPC on stream %d (%s): %s", st.id, st.path, problem))
		})
	}
}

// grpcDone takes a gRPC message of a stream's way, completed: it is
// reported after the DATA frame that completes it.
func (h *h2Conn) grpcDone(dir Dir, st *h2Stream, t time.Time) func(*GRPCMessage) {
	return func(m *GRPCMessage) {
		s := &h.side[dir]
		m.Stream, m.Method, m.Request, m.Encoding = st.id, st.path, dir == ClientToServer, st.half[dir].encoding
		s.pending = append(s.pending, m)
		if len(s.pending) >= 64 { // many small messages in one frame: not held back
			h.flushGRPC(dir, t)
		}
	}
}

// streamFor finds the stream a DATA frame belongs to, opening one the
// capture did not see open (mid-connection); data on a stream closed, or
// never opened on a side seen from its start, belongs to none (and the
// latter is flagged).
func (h *h2Conn) streamFor(dir Dir, f *H2Frame, t time.Time) *h2Stream {
	if st := h.streams[f.Stream]; st != nil {
		hf := &st.half[dir]
		if hf.ended {
			if !f.noted {
				f.noted = true
				f.Note = "the stream's " + strings.ToLower(h2Way(dir)) + " had ended (STREAM_CLOSED)"
			}
			return nil
		}
		if !hf.started {
			hf.started = true
			hf.noHeaders = "DATA came before any HEADERS"
		}
		return st
	}
	if f.Stream == 0 || f.noted {
		return nil
	}
	if f.Stream <= h.maxID[f.Stream%2] && (h.side[dir].fromStart || h.wasClosed(f.Stream)) {
		f.noted = true
		f.Note = "the stream is closed (or no longer followed)"
		return nil
	}
	if h.side[dir].fromStart {
		f.noted = true
		f.Note = "the stream was never opened"
		h.flag(dir, t, "DATA frame on stream %d, which was never opened (PROTOCOL_ERROR)", f.Stream)
		return nil
	}
	st := h.open(dir, f.Stream, t)
	st.partial = true
	st.half[dir].started = true
	st.half[dir].noHeaders = "the stream opened before the capture began"
	return st
}

// open starts following a new stream, within bounds.
func (h *h2Conn) open(dir Dir, id uint32, t time.Time) *h2Stream {
	if len(h.streams) >= maxH2Streams {
		oldest := uint32(0)
		for sid := range h.streams {
			if oldest == 0 || sid < oldest {
				oldest = sid
			}
		}
		delete(h.streams, oldest)
		h.flag(dir, t, "more than %d streams open at once: stream %d is no longer followed (its messages are not reported)", maxH2Streams, oldest)
	}
	if id > h.maxID[id%2] {
		h.maxID[id%2] = id
	}
	st := &h2Stream{id: id}
	h.streams[id] = st
	return st
}

// flushGRPC reports the gRPC messages the frame being read completed.
func (h *h2Conn) flushGRPC(dir Dir, t time.Time) {
	s := &h.side[dir]
	for _, m := range s.pending {
		h.c.out.message(dir, t, h.c.decrypted, classGRPCMessage, m.fill)
	}
	clear(s.pending)
	s.pending = s.pending[:0]
}

// finish handles a frame once its payload is in, and reports it.
func (h *h2Conn) finish(dir Dir, t time.Time) {
	s := &h.side[dir]
	f := s.f
	s.f = nil
	p := s.held
	if s.pass || f.Lost > 0 {
		p = nil
	}
	var ended *h2Stream // a stream way this frame ended
	switch f.Type {
	case h2Data:
		if st := h.streamFor(dir, f, t); st != nil {
			hf := &st.half[dir]
			hf.frames++
			hf.wire += 9 + f.Length
			if f.Flags&h2EndStream != 0 {
				ended = st
			}
		}
	case h2Headers, h2PushPromise:
		ended = h.headersFrame(dir, f, p, t)
	case h2Continuation:
		ended = h.continuation(dir, f, p, t)
	case h2Settings:
		h.settings(dir, f, p, t)
	case h2Ping:
		if f.Length != 8 && f.Lost == 0 {
			h.flag(dir, t, "PING frame of %d bytes (it carries 8: FRAME_SIZE_ERROR)", f.Length)
		}
		f.Data = append([]byte(nil), p[:min(len(p), 8)]...)
	case h2GoAway:
		if len(p) >= 8 {
			f.LastStream = binary.BigEndian.Uint32(p) & 0x7fffffff
			f.Code = binary.BigEndian.Uint32(p[4:])
			f.Data = preview(p[8:])
			f.DataLen = len(p) - 8
		} else if f.Lost == 0 && !s.pass {
			h.flag(dir, t, "GOAWAY frame of %d bytes (at least 8: FRAME_SIZE_ERROR)", f.Length)
		}
	case h2RSTStream:
		if len(p) == 4 {
			f.Code = binary.BigEndian.Uint32(p)
		} else if f.Lost == 0 {
			h.flag(dir, t, "RST_STREAM frame of %d bytes (it carries 4: FRAME_SIZE_ERROR)", f.Length)
		}
	case h2WindowUpdate:
		if len(p) == 4 {
			f.Increment = binary.BigEndian.Uint32(p) & 0x7fffffff
			if f.Increment == 0 {
				h.flag(dir, t, "WINDOW_UPDATE with an increment of 0 (PROTOCOL_ERROR)")
			}
		} else if f.Lost == 0 {
			h.flag(dir, t, "WINDOW_UPDATE frame of %d bytes (it carries 4: FRAME_SIZE_ERROR)", f.Length)
		}
	case h2Priority:
		if len(p) == 5 {
			f.priority(p)
		} else if f.Lost == 0 {
			h.flag(dir, t, "PRIORITY frame of %d bytes (it carries 5: FRAME_SIZE_ERROR)", f.Length)
		}
	}
	if cap(s.held) > 64<<10 {
		s.held = nil // let a large buffer go
	}
	h.c.out.message(dir, t, h.c.decrypted, classH2Frame, f.fill)
	if len(s.pending) > 0 {
		h.flushGRPC(dir, t)
	}
	if f.Type == h2RSTStream && f.Stream != 0 {
		h.reset(dir, f, t)
	}
	if ended != nil {
		h.endHalf(ended, dir, t, false, 0)
	}
}

func (f *H2Frame) priority(p []byte) {
	dep := binary.BigEndian.Uint32(p)
	f.HasPriority, f.Exclusive, f.Dependency, f.Weight = true, dep>>31 != 0, dep&0x7fffffff, int(p[4])+1
}

// headersFrame starts a header block (HEADERS, PUSH_PROMISE); it returns
// the stream whose way the block ends, when it ends here with END_STREAM.
func (h *h2Conn) headersFrame(dir Dir, f *H2Frame, p []byte, t time.Time) *h2Stream {
	s := &h.side[dir]
	blk := &h2Block{stream: f.Stream, endStream: f.Type == h2Headers && f.Flags&h2EndStream != 0}
	s.block = blk
	if p == nil { // passed over, or lost
		blk.unknown = "the frame was not decoded"
		h.loseHPACK(dir, "a header block was not decoded whole")
	} else {
		if f.Flags&h2Padded != 0 {
			if len(p) < 1 {
				p = h.badPadding(dir, f, t)
			} else {
				f.PadLen = int(p[0])
				p = p[1:]
			}
		}
		if f.Type == h2PushPromise && p != nil {
			if len(p) < 4 {
				p = h.badPadding(dir, f, t)
			} else {
				f.Promised = binary.BigEndian.Uint32(p) & 0x7fffffff
				blk.promise, blk.promised = true, f.Promised
				p = p[4:]
			}
		}
		if f.Type == h2Headers && f.Flags&h2PriorityF != 0 && p != nil {
			if len(p) < 5 {
				p = h.badPadding(dir, f, t)
			} else {
				f.priority(p)
				p = p[5:]
			}
		}
		if p != nil && f.PadLen > len(p) {
			p = h.badPadding(dir, f, t)
		}
		if p != nil {
			p = p[:len(p)-f.PadLen]
		}
	}
	h.fragment(dir, f, p, t)
	if f.Flags&h2EndHeaders != 0 {
		return h.endBlock(dir, f, t)
	}
	return nil
}

// badPadding flags a frame whose padding or fixed fields overrun it; its
// header block is then lost.
func (h *h2Conn) badPadding(dir Dir, f *H2Frame, t time.Time) []byte {
	h.flag(dir, t, "%s frame on stream %d: its padding or fields overrun its %d-byte payload (PROTOCOL_ERROR)", H2FrameName(f.Type), f.Stream, f.Length)
	s := &h.side[dir]
	if s.block != nil {
		s.block.unknown = "the frame's fields overrun it"
	}
	h.loseHPACK(dir, "a header block could not be read")
	return nil
}

// continuation goes on with the open header block.
func (h *h2Conn) continuation(dir Dir, f *H2Frame, p []byte, t time.Time) *h2Stream {
	s := &h.side[dir]
	if s.block == nil {
		h.flag(dir, t, "CONTINUATION frame on stream %d with no header block open (PROTOCOL_ERROR)", f.Stream)
		return nil
	}
	if p == nil {
		s.block.unknown = "a CONTINUATION was not decoded"
		h.loseHPACK(dir, "a header block was not decoded whole")
	}
	h.fragment(dir, f, p, t)
	if f.Flags&h2EndHeaders != 0 {
		return h.endBlock(dir, f, t)
	}
	return nil
}

// fragment feeds a header block fragment to the direction's HPACK decoder.
func (h *h2Conn) fragment(dir Dir, f *H2Frame, p []byte, t time.Time) {
	s := &h.side[dir]
	blk := s.block
	blk.frames++
	blk.len += len(p)
	blk.wire += 9 + f.Length
	if !s.hpack {
		if blk.unknown == "" {
			blk.unknown = s.hpackWhy
		}
		return
	}
	if blk.unknown != "" || len(p) == 0 {
		return
	}
	if _, err := s.dec.Write(p); err != nil {
		blk.unknown = "HPACK decoding failed: " + err.Error()
		h.flag(dir, t, "header block on stream %d: HPACK decoding failed (%w): header blocks of this side are not decoded further", f.Stream, err)
		h.loseHPACK(dir, "an earlier header block failed to decode ("+err.Error()+")")
	}
}

// loseHPACK says the direction's HPACK state is no longer known.
func (h *h2Conn) loseHPACK(dir Dir, why string) {
	s := &h.side[dir]
	if s.hpack {
		s.hpack = false
		s.hpackWhy = why + ": the HPACK state later header blocks depend on is unknown"
	}
}

// endBlock completes the open header block on the frame f that ends it.
func (h *h2Conn) endBlock(dir Dir, f *H2Frame, t time.Time) *h2Stream {
	s := &h.side[dir]
	blk := s.block
	s.block = nil
	if blk.unknown == "" && s.hpack {
		if err := s.dec.Close(); err != nil {
			blk.unknown = "HPACK: " + err.Error()
			h.flag(dir, t, "header block on stream %d ends inside a field (%w)", blk.stream, err)
			h.loseHPACK(dir, "a header block ended inside a field")
		}
	}
	f.BlockFrames, f.BlockLen = blk.frames, blk.len
	if blk.unknown != "" {
		f.NoHeaders = blk.unknown
	} else {
		f.Headers, f.HeadersCut = blk.fields, blk.cut
	}
	if blk.promise {
		// The promised stream's request: the server's response follows on it.
		if st := h.open(dir, blk.promised, t); st != nil {
			st.half[ClientToServer].started, st.half[ClientToServer].ended = true, true
			st.path = headerValue(blk.fields, ":path")
		}
		return nil
	}
	st := h.streams[blk.stream]
	if st == nil {
		if blk.stream <= h.maxID[blk.stream%2] {
			h.flag(dir, t, "HEADERS on stream %d, which is closed (STREAM_CLOSED)", blk.stream)
			return nil
		}
		st = h.open(dir, blk.stream, t)
	}
	hf := &st.half[dir]
	if hf.ended {
		h.flag(dir, t, "HEADERS on stream %d after its %s ended (STREAM_CLOSED)", blk.stream, strings.ToLower(h2Way(dir)))
		return nil
	}
	hf.frames += blk.frames
	hf.wire += blk.wire
	hf.blockLen += blk.len
	switch {
	case !hf.started:
		hf.started = true
		if blk.unknown != "" {
			hf.noHeaders = blk.unknown
		}
		hf.headers, hf.cut = blk.fields, blk.cut
		h.headersIn(st, dir, blk)
	case dir == ServerToClient && informational(hf.headers) && hf.bodyLen == 0:
		hf.informational++
		hf.headers, hf.cut = blk.fields, blk.cut
		if blk.unknown != "" {
			hf.noHeaders = blk.unknown
		}
		h.headersIn(st, dir, blk)
	default:
		hf.trailers = blk.fields
		if blk.unknown != "" && hf.noHeaders == "" {
			hf.noHeaders = "trailers: " + blk.unknown
		}
	}
	if blk.endStream {
		return st
	}
	return nil
}

// informational reports whether a response's headers are a 1xx answer.
func informational(fields []hpack.HeaderField) bool {
	s := headerValue(fields, ":status")
	return len(s) == 3 && s[0] == '1'
}

// headersIn learns what a stream's first header block says: its path, and
// whether it carries gRPC.
func (h *h2Conn) headersIn(st *h2Stream, dir Dir, blk *h2Block) {
	if dir == ClientToServer {
		st.path = headerValue(blk.fields, ":path")
		st.grpc = isGRPC(headerValue(blk.fields, "content-type"))
	}
	hf := &st.half[dir]
	hf.encoding = headerValue(blk.fields, "grpc-encoding")
	if st.grpc && hf.grpc == nil {
		hf.grpc = &grpcReader{}
		if dir == ClientToServer && st.half[ServerToClient].grpc == nil && !st.half[ServerToClient].started {
			st.half[ServerToClient].grpc = &grpcReader{}
		}
	}
}

// isGRPC reports whether a content type is gRPC's (application/grpc,
// application/grpc+proto, …).
func isGRPC(ct string) bool {
	ct = strings.ToLower(strings.TrimSpace(ct))
	if !strings.HasPrefix(ct, "application/grpc") {
		return false
	}
	rest := ct[len("application/grpc"):]
	return rest == "" || rest[0] == '+' || rest[0] == ';'
}

func headerValue(fields []hpack.HeaderField, name string) string {
	for _, f := range fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// settings applies a SETTINGS frame: the header table size its sender's
// decoder allows bounds the other direction's table, its maximum frame
// size the other direction's frames.
func (h *h2Conn) settings(dir Dir, f *H2Frame, p []byte, t time.Time) {
	if f.Flags&h2Ack != 0 {
		if f.Length != 0 {
			h.flag(dir, t, "SETTINGS ACK with a %d-byte payload (FRAME_SIZE_ERROR)", f.Length)
		}
		return
	}
	if f.Length%6 != 0 {
		h.flag(dir, t, "SETTINGS frame of %d bytes (a multiple of 6: FRAME_SIZE_ERROR)", f.Length)
	}
	other := &h.side[1-dir]
	for len(p) >= 6 {
		st := H2Setting{ID: binary.BigEndian.Uint16(p), Value: binary.BigEndian.Uint32(p[2:])}
		p = p[6:]
		if len(f.Settings) < 32 {
			f.Settings = append(f.Settings, st)
		}
		switch st.ID {
		case 1: // HEADER_TABLE_SIZE: what the sender's decoder allows
			v := st.Value
			if v > maxH2Table {
				h.flag(dir, t, "SETTINGS_HEADER_TABLE_SIZE %d: the decoder follows at most %d bytes of HPACK table; header blocks that use more will fail to decode", v, maxH2Table)
				v = maxH2Table
			}
			other.dec.SetAllowedMaxDynamicTableSize(v)
		case 5: // MAX_FRAME_SIZE
			if st.Value < 1<<14 || st.Value > 1<<24-1 {
				h.flag(dir, t, "SETTINGS_MAX_FRAME_SIZE %d out of range (16384–16777215: PROTOCOL_ERROR)", st.Value)
			} else {
				other.maxFrame = st.Value
			}
		case 2:
			if st.Value > 1 {
				h.flag(dir, t, "SETTINGS_ENABLE_PUSH %d (0 or 1: PROTOCOL_ERROR)", st.Value)
			}
		case 4:
			if st.Value > 1<<31-1 {
				h.flag(dir, t, "SETTINGS_INITIAL_WINDOW_SIZE %d beyond 2^31-1 (FLOW_CONTROL_ERROR)", st.Value)
			}
		}
	}
}

// reset ends a stream both ways on RST_STREAM.
func (h *h2Conn) reset(dir Dir, f *H2Frame, t time.Time) {
	st := h.streams[f.Stream]
	if st == nil {
		return
	}
	for d := range Dir(2) {
		if hf := &st.half[d]; hf.started && !hf.ended {
			h.endHalf(st, d, t, true, f.Code)
		}
	}
	h.close(f.Stream)
}

// endHalf reports one way of a stream, ended (END_STREAM, or reset).
func (h *h2Conn) endHalf(st *h2Stream, dir Dir, t time.Time, reset bool, code uint32) {
	hf := &st.half[dir]
	hf.ended = true
	if g := hf.grpc; g != nil && g.pending() {
		h.c.out.failure(dir, t, fmt.Errorf("gRPC on stream %d (%s): the stream's %s ended inside a gRPC message (truncated)", st.id, st.path, strings.ToLower(h2Way(dir))))
	}
	m := &H2Message{Stream: st.id, Request: dir == ClientToServer, Headers: hf.headers, Trailers: hf.trailers,
		NoHeaders: hf.noHeaders, HeadersCut: hf.cut, Partial: st.partial, Body: hf.body, BodyLen: hf.bodyLen, Lost: hf.lost,
		BlockLen: hf.blockLen, Frames: hf.frames, WireLen: hf.wire, Reset: reset, ResetCode: code, GRPC: st.grpc, Path: st.path,
		Informational: hf.informational}
	if m.GRPC && !m.Request {
		m.GRPCStatus, m.GRPCMessage = grpcStatus(hf)
		if m.GRPCStatus != "" {
			gs := &GRPCStatus{Stream: st.id, Method: st.path, Code: m.GRPCStatus, Message: m.GRPCMessage, TrailersOnly: hf.trailers == nil}
			h.c.out.message(dir, t, h.c.decrypted, classOther, gs.fill)
		}
	}
	h.c.out.message(dir, t, h.c.decrypted, classH2Message, m.fill)
	hf.body, hf.grpc = nil, nil
	if st.half[0].ended && st.half[1].ended {
		h.close(st.id)
	}
}

// grpcStatus reads grpc-status and grpc-message from a response's
// trailers (or its headers: a trailers-only response).
func grpcStatus(hf *h2Half) (code, msg string) {
	for _, fields := range [][]hpack.HeaderField{hf.trailers, hf.headers} {
		if c := headerValue(fields, "grpc-status"); c != "" {
			return c, headerValue(fields, "grpc-message")
		}
	}
	return "", ""
}

func h2Way(dir Dir) string {
	if dir == ClientToServer {
		return "Request"
	}
	return "Response"
}

// gap is told that n bytes of dir are missing. Inside a frame's payload
// the frame is passed over by its length (DATA: the stream's body is
// partial, a gRPC message skipped by its own length when it can be; a
// header block: the HPACK state is lost). A gap that hides a frame header
// sends the direction looking for the next one, its HPACK state lost.
func (h *h2Conn) gap(dir Dir, n int, t time.Time) string {
	s := &h.side[dir]
	if s.broken {
		return "the direction was not being decoded"
	}
	if s.resync {
		s.sync = s.sync[:0]
		return "still looking for an HTTP/2 frame header"
	}
	if f := s.f; f != nil && s.nhdr == 0 && n >= 0 && n <= s.left && s.preface == 0 {
		f.Lost += n
		s.left -= n
		what := fmt.Sprintf("skipped inside the HTTP/2 %s frame's payload by its length: the frame is partial, decoding goes on at the next", H2FrameName(f.Type))
		if f.Type == h2Data {
			k := n
			if s.padLen < 0 {
				s.padLen, s.dataLeft = 0, 0 // the pad length was lost: the rest is taken as padding
			}
			take := min(k, s.dataLeft)
			s.dataLeft -= take
			f.DataLen += take
			if st := h.streams[f.Stream]; st != nil && !st.half[dir].ended {
				hf := &st.half[dir]
				hf.bodyLen += take
				hf.lost += take
				if g := hf.grpc; g != nil && !g.skip(take, h.grpcDone(dir, st, t)) {
					h.c.out.failure(dir, t, fmt.Errorf("gRPC on stream %d (%s): a gap hid a message's length prefix: its messages are not followed further", st.id, st.path))
				}
			}
		} else if f.Type == h2Headers || f.Type == h2PushPromise || f.Type == h2Continuation {
			h.loseHPACK(dir, "bytes of a header block were lost from the capture")
			what += "; a header block was hit: later header blocks of this side cannot be decoded (HPACK state unknown)"
		}
		if s.left == 0 {
			h.finish(dir, t)
		}
		return what
	}
	s.f, s.nhdr, s.preface = nil, 0, 0
	s.block = nil
	s.resync, s.dropped = true, 0
	clear(s.pending)
	s.pending = s.pending[:0]
	h.loseHPACK(dir, "a gap may have hidden a header block")
	return "no frame length spans it: resuming at the next plausible HTTP/2 frame header; later header blocks of this side cannot be decoded (HPACK state unknown)"
}

// end is called when a direction ends: a frame cut short is an error, and
// so is each stream way left open.
func (h *h2Conn) end(dir Dir, t time.Time) {
	s := &h.side[dir]
	if s.broken {
		return
	}
	if s.f != nil || s.nhdr > 0 || s.preface > 0 && s.preface < len(h2Preface) {
		h.c.out.failure(dir, t, errors.New("connection ended inside an HTTP/2 frame (truncated)"))
		s.f, s.nhdr = nil, 0
	}
	if len(s.pending) > 0 {
		h.flushGRPC(dir, t)
	}
	open := 0
	for _, st := range h.streams {
		if hf := &st.half[dir]; hf.started && !hf.ended {
			open++
		}
	}
	if open > 0 {
		h.c.out.failure(dir, t, fmt.Errorf("connection ended with %d HTTP/2 stream(s) open this way (no END_STREAM or RST_STREAM)", open))
	}
	s.broken = true
}

// fill sets a record from a frame; its text is formatted only when shown.
func (f *H2Frame) fill(r *Record) {
	r.Layer = "http2"
	r.Len = 9 + f.Length
	r.Payload = f.Length
	if f.Type == h2Data {
		r.Payload = f.DataLen
	}
	r.Data = f.Data
	r.lazy = f.format
}

func (f *H2Frame) flagText() string {
	var out []string
	add := func(bit byte, name string) {
		if f.Flags&bit != 0 {
			out = append(out, name)
		}
	}
	switch f.Type {
	case h2Data:
		add(h2EndStream, "END_STREAM")
		add(h2Padded, "PADDED")
	case h2Headers:
		add(h2EndStream, "END_STREAM")
		add(h2EndHeaders, "END_HEADERS")
		add(h2Padded, "PADDED")
		add(h2PriorityF, "PRIORITY")
	case h2PushPromise:
		add(h2EndHeaders, "END_HEADERS")
		add(h2Padded, "PADDED")
	case h2Continuation:
		add(h2EndHeaders, "END_HEADERS")
	case h2Settings, h2Ping:
		add(h2Ack, "ACK")
	}
	if len(out) == 0 && f.Flags != 0 {
		return fmt.Sprintf("0x%02x", f.Flags)
	}
	return strings.Join(out, "|")
}

func (f *H2Frame) format(r *Record) {
	name := H2FrameName(f.Type)
	r.add("type", "%s (0x%x)", name, f.Type)
	r.add("flags", "%s", f.flagText())
	r.add("stream_id", "%d", f.Stream)
	r.add("length", "%d", f.Length)
	s := fmt.Sprintf("HTTP/2 %s stream=%d len=%d", name, f.Stream, f.Length)
	if fl := f.flagText(); fl != "" {
		s += " " + fl
	}
	if f.PadLen > 0 {
		r.add("pad_length", "%d", f.PadLen)
	}
	if f.HasPriority {
		r.add("exclusive", "%v", f.Exclusive)
		r.add("stream_dependency", "%d", f.Dependency)
		r.add("weight", "%d", f.Weight)
		if f.Type == h2Priority {
			s += fmt.Sprintf(" depends on %d weight %d", f.Dependency, f.Weight)
		}
	}
	switch f.Type {
	case h2Data:
		r.add("data_bytes", "%d", f.DataLen)
		if f.DataLen > 0 {
			r.add("data", "%s", textPreview(f.Data, PreviewBytes))
		}
	case h2Settings:
		var parts []string
		for _, st := range f.Settings {
			r.add("setting."+H2SettingName(st.ID), "%d", st.Value)
			parts = append(parts, H2SettingName(st.ID)+"="+strconv.FormatUint(uint64(st.Value), 10))
		}
		if len(parts) > 0 {
			s += " " + strings.Join(parts, " ")
		}
	case h2WindowUpdate:
		r.add("window_increment", "%d", f.Increment)
		s += fmt.Sprintf(" increment=%d", f.Increment)
	case h2RSTStream:
		r.add("error_code", "%s (%d)", H2ErrorName(f.Code), f.Code)
		s += " " + H2ErrorName(f.Code)
	case h2GoAway:
		r.add("last_stream_id", "%d", f.LastStream)
		r.add("error_code", "%s (%d)", H2ErrorName(f.Code), f.Code)
		s += fmt.Sprintf(" last_stream=%d %s", f.LastStream, H2ErrorName(f.Code))
		if f.DataLen > 0 {
			r.add("debug_data", "%s", textPreview(f.Data, PreviewBytes))
			s += fmt.Sprintf(" %q", textPreview(f.Data, 64))
		}
	case h2Ping:
		r.add("opaque_data", "%x", f.Data)
		s += fmt.Sprintf(" %x", f.Data)
	case h2PushPromise:
		r.add("promised_stream_id", "%d", f.Promised)
		s += fmt.Sprintf(" promised=%d", f.Promised)
	}
	if f.BlockFrames > 0 { // this frame ends a header block
		r.add("header_block_bytes", "%d", f.BlockLen)
		if f.BlockFrames > 1 {
			r.add("header_block_frames", "%d", f.BlockFrames)
			s += fmt.Sprintf(" (header block of %d frames joined)", f.BlockFrames)
		}
		if f.NoHeaders != "" {
			r.add("headers", "not decoded: %s", f.NoHeaders)
			s += " [headers not decoded: HPACK state unknown]"
		} else {
			for _, hf := range f.Headers {
				r.add("header."+hf.Name, "%s", hf.Value)
			}
			if f.HeadersCut {
				r.add("headers_cut", "more fields than the %d bytes kept", maxH2HeaderList)
			}
			if m, p := headerValue(f.Headers, ":method"), headerValue(f.Headers, ":path"); m != "" {
				s += " " + m + " " + p
			} else if st := headerValue(f.Headers, ":status"); st != "" {
				s += " :status " + st
			} else if gs := headerValue(f.Headers, "grpc-status"); gs != "" {
				s += " grpc-status " + gs
			}
		}
	} else if f.Type == h2Headers || f.Type == h2PushPromise || f.Type == h2Continuation {
		s += " (header block continues)"
	}
	if f.Lost > 0 {
		r.add("lost_bytes", "%d", f.Lost)
		s += fmt.Sprintf(" [partial: %d bytes not captured]", f.Lost)
	}
	if f.Note != "" {
		r.add("note", "%s", f.Note)
		s += " [" + f.Note + "]"
	}
	r.Summary = s
}

// H2Message is one way of an HTTP/2 stream: a request or a response, with
// its headers, body and trailers, reported when it ends.
type H2Message struct {
	Stream  uint32
	Request bool
	// Headers and Trailers are the fields of the first and last header
	// blocks; NoHeaders says why they are not known.
	Headers, Trailers []hpack.HeaderField
	NoHeaders         string
	HeadersCut        bool
	// Informational counts 1xx responses before the final one.
	Informational int
	// Partial says the stream was not seen from its start.
	Partial bool
	// Body is the start of the body (at most PreviewBytes), BodyLen its
	// size, Lost the bytes of it missing from the capture.
	Body          []byte
	BodyLen, Lost int
	// BlockLen sums the header blocks' bytes; Frames counts the frames,
	// WireLen their bytes (frame headers included).
	BlockLen, Frames, WireLen int
	// Reset says a RST_STREAM ended it, with ResetCode.
	Reset     bool
	ResetCode uint32
	// GRPC says the stream carries gRPC; Path is the request's :path;
	// GRPCStatus and GRPCMessage are a response's grpc-status and
	// grpc-message.
	GRPC                    bool
	Path                    string
	GRPCStatus, GRPCMessage string
}

func (m *H2Message) fill(r *Record) {
	r.Layer = "http2"
	r.Len = m.WireLen
	r.Payload = m.BodyLen
	r.Data = m.Body
	r.lazy = m.format
}

func (m *H2Message) format(r *Record) {
	way := "request"
	if !m.Request {
		way = "response"
	}
	r.add("stream_id", "%d", m.Stream)
	r.add("message", "%s", way)
	s := fmt.Sprintf("HTTP/2 %s stream=%d", way, m.Stream)
	switch {
	case m.NoHeaders != "" && m.Headers == nil:
		r.add("headers", "not decoded: %s", m.NoHeaders)
		s += " [headers not decoded: HPACK state unknown]"
		if m.Path != "" {
			s += " " + m.Path
		}
	case m.Request:
		method, path := headerValue(m.Headers, ":method"), headerValue(m.Headers, ":path")
		r.add("method", "%s", method)
		r.add("path", "%s", path)
		r.add("authority", "%s", headerValue(m.Headers, ":authority"))
		r.add("scheme", "%s", headerValue(m.Headers, ":scheme"))
		s += " " + method + " " + path
	default:
		st := headerValue(m.Headers, ":status")
		r.add("status", "%s", st)
		s += " " + st
		if m.Path != "" {
			s += " (" + m.Path + ")"
		}
		if m.Informational > 0 {
			r.add("informational_responses", "%d", m.Informational)
		}
	}
	for _, f := range m.Headers {
		if !f.IsPseudo() {
			r.add("header."+f.Name, "%s", f.Value)
		}
	}
	for _, f := range m.Trailers {
		r.add("trailer."+f.Name, "%s", f.Value)
	}
	if m.HeadersCut {
		r.add("headers_cut", "more fields than the %d bytes kept", maxH2HeaderList)
	}
	r.add("header_block_bytes", "%d", m.BlockLen)
	r.add("body_bytes", "%d", m.BodyLen)
	r.add("frames", "%d", m.Frames)
	if m.BodyLen > 0 {
		r.add("body", "%s", textPreview(m.Body, PreviewBytes))
		ct := headerValue(m.Headers, "content-type")
		s += fmt.Sprintf(" (%s, %d bytes)", ct, m.BodyLen)
	}
	if m.GRPC {
		r.add("grpc", "true")
	}
	if m.GRPCStatus != "" {
		r.add("grpc_status", "%s", m.GRPCStatus)
		r.add("grpc_message", "%s", grpcUnescape(m.GRPCMessage))
		s += " grpc-status " + m.GRPCStatus
	}
	if m.Reset {
		r.add("reset", "%s (%d)", H2ErrorName(m.ResetCode), m.ResetCode)
		s += " [reset: " + H2ErrorName(m.ResetCode) + "]"
	}
	if m.Partial {
		r.add("partial", "the stream opened before the capture began")
		s += " [partial: opened before the capture]"
	}
	if m.Lost > 0 {
		r.add("lost_bytes", "%d", m.Lost)
		s += fmt.Sprintf(" [partial: %d body bytes not captured]", m.Lost)
	}
	r.Summary = s
}
