package wire

import (
	"bufio"
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/protolab/protolab-tui/protocol"
)

// Fuzz tests: whatever the bytes, the parsers never panic, keep their
// bounds, and report what they cannot decode as an error.

func FuzzWSParser(f *testing.F) {
	key := [4]byte{1, 2, 3, 4}
	f.Add(frame(true, wsText, &key, []byte("hello")), uint8(3))
	f.Add(frame(true, wsClose, nil, []byte{3, 0xe8, 'b', 'y', 'e'}), uint8(1))
	f.Add(frame(false, wsBinary, nil, make([]byte, 300)), uint8(7))
	f.Add([]byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}, uint8(2))
	f.Add(frame(false, wsText, &key, []byte("κό\xcf")), uint8(2))
	f.Add(append(frame(false, wsText, nil, []byte("\xe2\x82")), frame(true, wsContinuation, nil, []byte("\xac!"))...), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8) {
		n := int(chunk%32) + 1
		// Each UTF-8 problem flagged belongs to a frame: the one being read
		// (flagged as its bytes come), or the one just emitted (flagged
		// once it is whole).
		frames := 0
		var p wsParser
		flaggedAt := map[int]int{}
		p.flag = func(s string) {
			if strings.Contains(s, "UTF-8") && !strings.Contains(s, "close") {
				at := frames - 1
				if p.cur != nil {
					at = frames
				}
				flaggedAt[at]++
			}
		}
		// Text messages of short frames are rebuilt from the previews, to
		// check the verdict on each against utf8.Valid.
		type message struct {
			first, last int
			text        []byte
			short       bool
		}
		var done []message
		var cur *message
		for len(b) > 0 {
			k := min(n, len(b))
			err := p.feed(b[:k], func(f *WSFrame) {
				if len(f.Data) > PreviewBytes || (f.Control() && f.Length > 125) {
					t.Fatalf("frame out of bounds: %+v", f)
				}
				var r Record
				f.fill(&r)
				_ = r.Text()
				i := frames
				frames++
				switch {
				case f.Control():
					return
				case f.Opcode == wsText && f.RSV&4 == 0:
					cur = &message{first: i, short: true}
				case f.Opcode == wsContinuation && cur != nil:
				default:
					cur = nil
					return
				}
				cur.text = append(cur.text, f.Data...)
				cur.short = cur.short && f.Length <= PreviewBytes
				if f.Fin {
					cur.last = i
					done = append(done, *cur)
					cur = nil
				}
			})
			if err != nil {
				break
			}
			b = b[k:]
		}
		for _, m := range done {
			flags := 0
			for i := m.first; i <= m.last; i++ {
				flags += flaggedAt[i]
			}
			if flags > 1 || (m.short && utf8.Valid(m.text) != (flags == 0)) {
				t.Fatalf("text %q (frames %d–%d): %d UTF-8 problems flagged", m.text, m.first, m.last, flags)
			}
		}
	})
}

func FuzzHTTPParser(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), true, uint8(5))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\n\r\n"), false, uint8(3))
	f.Add([]byte("POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), true, uint8(1))
	f.Add([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00"), false, uint8(64))
	f.Fuzz(func(t *testing.T, b []byte, request bool, chunk uint8) {
		n := int(chunk) + 1
		p := &httpParser{request: request}
		emit := func(m *HTTPMessage) bool {
			if len(m.Body) > PreviewBytes || m.BodyLen < 0 {
				t.Fatalf("message out of bounds: %+v", m)
			}
			var r Record
			m.fill(&r)
			_ = r.Text()
			return m.Status == 101
		}
		for len(b) > 0 {
			k := min(n, len(b))
			rest, err := p.feed(b[:k], emit)
			if err != nil || rest != nil {
				return
			}
			b = b[k:]
		}
		p.close(emit)
	})
}

func FuzzTLSRecords(f *testing.F) {
	hello := []byte{0x16, 0x03, 0x01, 0x00, 0x2f, 0x01, 0x00, 0x00, 0x2b, 0x03, 0x03}
	hello = append(hello, make([]byte, 32)...)
	hello = append(hello, 0x00, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00, 0x00, 0x00)
	f.Add(hello)
	f.Add([]byte{0x17, 0x03, 0x03, 0x00, 0x02, 0xaa, 0xbb})
	f.Add([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28})
	f.Add([]byte{0x16, 0x03, 0x03, 0x40, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, n, err := parseTLSRecord(b); err == nil && n > len(b) {
			t.Fatalf("record length %d beyond %d bytes", n, len(b))
		}
		if len(b) > 0 {
			_, _ = parseHello(b[0]%2+1, b[1:])
		}
		// The whole TLS path, both directions, as a conversation.
		s := NewStore(16)
		d, _ := NewDecoder(layers.LinkTypeEthernet, SeedPorts(map[uint16]protocol.Protocol{3001: protocol.HTTPS}), NewKeyLog(nil), s)
		fl := Flow{Client: netip.MustParseAddrPort("127.0.0.1:5000"), Server: netip.MustParseAddrPort("127.0.0.1:3001")}
		half := len(b) / 2
		d.Stream(fl, AppRef{Name: "https", Protocol: protocol.HTTPS}, ClientToServer, b[:half], time.Now())
		d.Stream(fl, AppRef{Name: "https", Protocol: protocol.HTTPS}, ServerToClient, b[half:], time.Now())
		d.StreamEnd(fl, time.Now())
		for _, r := range s.All(string(protocol.HTTPS)) {
			_ = r.Text()
			_ = r.Details()
		}
	})
}

func FuzzDecoderPacket(f *testing.F) {
	f.Add(segment(f, 40000, 3002, 1, 0, true, false, nil), uint8(0))
	f.Add(segment(f, 3002, 40000, 1, 2, false, false, []byte("HTTP/1.1 101 Switching Protocols\r\n\r\n")), uint8(0))
	f.Add([]byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1}, uint8(2))
	f.Add([]byte{2, 0, 0, 0, 0x60, 0, 0, 0}, uint8(1))
	links := []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeNull, layers.LinkTypeRaw, layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2}
	f.Fuzz(func(t *testing.T, b []byte, link uint8) {
		s := NewStore(16)
		d, err := NewDecoder(links[int(link)%len(links)], SeedPorts(map[uint16]protocol.Protocol{3002: protocol.WS, 3001: protocol.HTTPS}), NewKeyLog(nil), s)
		if err != nil {
			t.Fatal(err)
		}
		ci := gopacket.CaptureInfo{Timestamp: time.Now(), Length: len(b), CaptureLength: len(b)}
		_ = d.Packet(b, ci)
		_ = d.Packet(b, ci) // the same again: a retransmission, or a second error
		d.Flush(time.Now())
		for _, a := range s.Apps() {
			for _, r := range s.All(a.Name) {
				_ = r.Text()
			}
		}
	})
}

// FuzzKeyLog: any bytes as a key log (a file, a pcapng secrets block, a
// client's Write in pieces): never a panic, and every secret it keeps is
// one a well-formed line gave.
func FuzzKeyLog(f *testing.F) {
	cr := strings.Repeat("ab", 32)
	f.Add([]byte("CLIENT_TRAFFIC_SECRET_0 "+cr+" "+strings.Repeat("cd", 32)+"\n"), uint8(5))
	f.Add([]byte("# comment\nSERVER_HANDSHAKE_TRAFFIC_SECRET "+cr+" 00\nbroken line\n"), uint8(1))
	f.Add([]byte("CLIENT_RANDOM "+cr), uint8(64))
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8) {
		k := NewKeyLog(nil)
		if err := k.Load(bytes.NewReader(b)); err != nil && !errors.Is(err, bufio.ErrTooLong) {
			t.Fatalf("Load: %v", err)
		}
		w := NewKeyLog(nil)
		n := int(chunk%64) + 1
		for i := 0; i < len(b); i += n {
			if _, err := w.Write(b[i:min(i+n, len(b))]); err != nil {
				t.Fatal(err)
			}
		}
		if k.Len() > bytes.Count(b, []byte("\n"))+1 || w.Len() > bytes.Count(b, []byte("\n"))+1 {
			t.Fatalf("%d and %d secrets from %d lines", k.Len(), w.Len(), bytes.Count(b, []byte("\n"))+1)
		}
	})
}

// FuzzWSGap: a stream with lost bytes cut out of it. When the parser skips
// the gap exactly, every frame is the frame the whole stream holds, the one
// hit by the gap partial by just the bytes lost; otherwise it says so.
func FuzzWSGap(f *testing.F) {
	key := [4]byte{1, 2, 3, 4}
	two := append(frame(true, wsBinary, &key, make([]byte, 300)), frame(true, wsText, nil, []byte("next"))...)
	f.Add(two, uint16(20), uint16(100))
	f.Add(two, uint16(1), uint16(3))
	f.Add(two, uint16(8), uint16(298))
	f.Fuzz(func(t *testing.T, b []byte, cut, lost uint16) {
		at, n := int(cut), int(lost)
		if at > len(b) || at+n > len(b) {
			return
		}
		var whole []WSFrame
		var p wsParser
		if p.feed(b, func(f *WSFrame) { whole = append(whole, *f) }) != nil {
			return // the stream itself is not frames
		}
		var got []WSFrame
		emit := func(f *WSFrame) { got = append(got, *f) }
		var q wsParser
		if err := q.feed(b[:at], emit); err != nil {
			t.Fatalf("a prefix of good frames fails: %v", err)
		}
		if !q.skip(n, emit) {
			return
		}
		if err := q.feed(b[at+n:], emit); err != nil {
			t.Fatalf("after an exact skip: %v", err)
		}
		if len(got) != len(whole) {
			t.Fatalf("%d frames after the skip, the stream holds %d", len(got), len(whole))
		}
		var lostSeen uint64
		for i := range got {
			g, w := got[i], whole[i]
			if g.Opcode != w.Opcode || g.Length != w.Length || g.Fin != w.Fin || g.Key != w.Key {
				t.Fatalf("frame %d: %+v, the stream's is %+v", i, g, w)
			}
			if !bytes.HasPrefix(w.Data, g.Data) {
				t.Fatalf("frame %d preview %q is not the start of %q", i, g.Data, w.Data)
			}
			lostSeen += g.Lost
		}
		if q.cur != nil {
			lostSeen += q.cur.Lost
		}
		if lostSeen != uint64(n) || q.remaining != p.remaining {
			t.Fatalf("frames lost %d bytes (%d to come), %d were cut (%d to come)", lostSeen, q.remaining, n, p.remaining)
		}
	})
}

// FuzzHTTPGap: as FuzzWSGap for HTTP: an exact skip leaves the same
// messages with the same sizes; a resync finds only start lines.
func FuzzHTTPGap(f *testing.F) {
	body := strings.Repeat("b", 200)
	f.Add([]byte("POST /a HTTP/1.1\r\nContent-Length: 200\r\n\r\n"+body+"GET /b HTTP/1.1\r\n\r\n"), true, uint16(60), uint16(50))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nc8\r\n"+body+"\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"), false, uint16(70), uint16(100))
	f.Add([]byte("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n"), true, uint16(3), uint16(5))
	f.Fuzz(func(t *testing.T, b []byte, request bool, cut, lost uint16) {
		at, n := int(cut), int(lost)
		if at > len(b) || at+n > len(b) {
			return
		}
		never := func(*HTTPMessage) bool { return false }
		var whole []HTTPMessage
		p := &httpParser{request: request}
		if _, err := p.feed(b, func(m *HTTPMessage) bool { whole = append(whole, *m); return false }); err != nil {
			return
		}
		var got []HTTPMessage
		emit := func(m *HTTPMessage) bool { got = append(got, *m); return false }
		q := &httpParser{request: request}
		if _, err := q.feed(b[:at], emit); err != nil {
			t.Fatalf("a prefix of good messages fails: %v", err)
		}
		exact := q.skip(n, emit)
		before := len(got)
		_, err := q.feed(b[at+n:], emit)
		if !exact {
			// After a resync, each message read begins with a start line.
			for _, m := range got[before:] {
				if m.Request != request || (request && m.Method == "") || (!request && m.Status == 0) {
					t.Fatalf("resynchronised on %+v", m)
				}
			}
			q.close(never)
			return
		}
		if err != nil {
			t.Fatalf("after an exact skip: %v", err)
		}
		if len(got) != len(whole) {
			t.Fatalf("%d messages after the skip, the stream holds %d", len(got), len(whole))
		}
		for i := range got {
			g, w := got[i], whole[i]
			if g.Method != w.Method || g.Status != w.Status || g.BodyLen != w.BodyLen || g.WireBodyLen != w.WireBodyLen {
				t.Fatalf("message %d: %+v, the stream's is %+v", i, g, w)
			}
		}
	})
}

// tallySink counts what a conversation reports.
type tallySink struct{ messages, failures, gaps int }

func (s *tallySink) message(Dir, time.Time, bool, msgClass, func(*Record)) { s.messages++ }
func (s *tallySink) failure(Dir, time.Time, error)                         { s.failures++ }
func (s *tallySink) count(func(*Counters))                                 {}
func (s *tallySink) gap(_ Dir, _ time.Time, _ int, what string) {
	if what == "" {
		panic("a gap record that says nothing")
	}
	s.gaps++
}

// FuzzTLSGap: records with bytes cut out of them: never a panic, a gap is
// always reported, and the point resynchronised at is a plausible header.
func FuzzTLSGap(f *testing.F) {
	var stream []byte
	for i := range 4 {
		stream = append(stream, tlsRecord(tlsApplicationData, bytes.Repeat([]byte{byte(i)}, 100))...)
	}
	hs := tlsRecord(tlsHandshake, []byte{hsFinished, 0, 0, 1, 0})
	f.Add(append(append([]byte(nil), hs...), stream...), uint16(40), uint16(30))
	f.Add(append(append([]byte(nil), hs...), stream...), uint16(100), uint16(120))
	f.Fuzz(func(t *testing.T, b []byte, cut, lost uint16) {
		at, n := int(cut), int(lost)
		if at > len(b) || at+n > len(b) {
			return
		}
		if i, _ := tlsSyncPoint(b); i >= 0 && !plausibleHeader(b[i:]) {
			t.Fatalf("resynchronised at %d: % x", i, b[i:min(i+5, len(b))])
		}
		s := &tallySink{}
		c := newConv(s, NewKeyLog(nil), false)
		c.data(ServerToClient, b[:at], time.Now())
		c.gap(ServerToClient, n, time.Now())
		c.data(ServerToClient, b[at+n:], time.Now())
		c.end(ServerToClient, time.Now())
		if s.gaps == 0 {
			t.Fatal("the gap was not reported")
		}
	})
}

// FuzzWSResync: after a gap that hid a header, the parser looks for a
// frame start in the pieces that follow. Whatever the bytes, it never
// panics and holds at most its bound; when the pieces after the gap are
// the stream's own frames, each piece starting a frame, it resumes at the
// first and decodes the rest as the stream has them.
func FuzzWSResync(f *testing.F) {
	key := [4]byte{9, 8, 7, 6}
	var frames []byte
	for _, s := range []string{"one", "two", strings.Repeat("x", 200), "four"} {
		frames = append(frames, frame(true, wsText, &key, []byte(s))...)
	}
	f.Add(frames, true, uint16(9))
	f.Add([]byte("\x81\x05hello\x81\x03abc"), false, uint16(7))
	f.Add([]byte{0x81, 0xfe, 0x00, 0x7e}, true, uint16(2))
	f.Fuzz(func(t *testing.T, b []byte, client bool, piece uint16) {
		p := &wsParser{client: client}
		p.lose()
		var got []*WSFrame
		size := max(1, int(piece))
		resumedAt := -1
		for off := 0; off < len(b); off += size {
			end := min(off+size, len(b))
			if p.resync != nil {
				rest, _, gaveUp := p.resume(b[off:end])
				if p.resync != nil && len(p.resync.buf) > maxWSResync+size {
					t.Fatalf("holds %d bytes looking for a frame", len(p.resync.buf))
				}
				if gaveUp || rest == nil {
					continue
				}
				resumedAt = end - len(rest)
				if err := p.feed(rest, func(f *WSFrame) { got = append(got, f) }); err != nil {
					return
				}
				continue
			}
			if err := p.feed(b[off:end], func(f *WSFrame) { got = append(got, f) }); err != nil {
				return
			}
		}
		// The stream's own frames, cut where frames start: resumed at 0.
		var whole []*WSFrame
		var q wsParser
		if q.feed(b, func(f *WSFrame) { whole = append(whole, f) }) != nil || q.pending() || len(whole) == 0 {
			return
		}
		starts, at := map[int]bool{}, 0
		for _, f := range whole {
			minimal := 2
			switch {
			case f.Length > 0xffff:
				minimal = 10
			case f.Length >= 126:
				minimal = 4
			}
			if f.Masked {
				minimal += 4
			}
			if f.Masked != client || f.RSV != 0 || f.HeaderLen != minimal {
				return // not what this side sends (RFC 6455 §5.2's minimal length): not provable
			}
			starts[at] = true
			at += f.HeaderLen + int(f.Length)
		}
		for off := 0; off < len(b); off += size {
			if !starts[off] {
				return
			}
		}
		if resumedAt != 0 || len(got) != len(whole) {
			t.Fatalf("resumed at %d with %d frames; the stream's %d frames each start a piece", resumedAt, len(got), len(whole))
		}
	})
}
