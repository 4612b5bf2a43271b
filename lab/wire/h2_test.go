package wire

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/protolab/protolab-tui/protocol"
)

// h2Writer writes one side's HTTP/2 frames with x/net's framer and HPACK
// encoder (its dynamic table kept across blocks, as a peer's is).
type h2Writer struct {
	t      testing.TB
	buf    bytes.Buffer
	fr     *http2.Framer
	hb     bytes.Buffer
	enc    *hpack.Encoder
	frames int
}

func newH2Writer(t testing.TB) *h2Writer {
	w := &h2Writer{t: t}
	w.fr = http2.NewFramer(&w.buf, nil)
	w.fr.AllowIllegalWrites = true
	w.enc = hpack.NewEncoder(&w.hb)
	return w
}

// block encodes a header block from name, value pairs.
func (w *h2Writer) block(kv ...string) []byte {
	w.hb.Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := w.enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]}); err != nil {
			w.t.Fatal(err)
		}
	}
	return append([]byte(nil), w.hb.Bytes()...)
}

func (w *h2Writer) do(err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
	w.frames++
}

func (w *h2Writer) headers(stream uint32, end bool, kv ...string) {
	w.do(w.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: w.block(kv...), EndStream: end, EndHeaders: true}))
}

func (w *h2Writer) data(stream uint32, end bool, b []byte) { w.do(w.fr.WriteData(stream, end, b)) }

// take returns what was written since the last take.
func (w *h2Writer) take() []byte {
	b := append([]byte(nil), w.buf.Bytes()...)
	w.buf.Reset()
	return b
}

// newBigConvo is newConvo with a ring that keeps every record of a test.
func newBigConvo(t *testing.T, p protocol.Protocol) *convo {
	c := newConvo(t, p)
	c.s = NewStore(1 << 14)
	d, err := NewDecoder(0x1, SeedPorts(map[uint16]protocol.Protocol{c.flow.Server.Port(): p}), NewKeyLog(nil), c.s)
	if err != nil {
		t.Fatal(err)
	}
	c.d = d
	return c
}

// sendChunks feeds b to c from dir in pieces of n.
func (c *convo) sendChunks(dir Dir, b []byte, n int) {
	for len(b) > 0 {
		k := min(n, len(b))
		c.send(dir, b[:k])
		b = b[k:]
	}
}

// h2Exchange is an h2c connection: settings both ways, a POST with a body,
// a GET whose header block is split into HEADERS and CONTINUATION and
// reuses the dynamic table, a request reset by its client, pings, a
// window update, padding, and a GOAWAY.
func h2Exchange(t testing.TB) (client, server []byte, frames int) {
	cw, sw := newH2Writer(t), newH2Writer(t)
	cw.buf.WriteString(h2Preface)
	cw.do(cw.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}))
	cw.do(cw.fr.WriteWindowUpdate(0, 1<<20))
	cw.headers(1, false, ":method", "POST", ":scheme", "http", ":authority", "lab", ":path", "/echo", "content-type", "text/plain", "x-custom", "one")
	cw.data(1, true, []byte("hello"))
	blk := cw.block(":method", "GET", ":scheme", "http", ":authority", "lab", ":path", "/", "x-custom", "one")
	cw.do(cw.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: blk[:4], EndStream: true}))
	cw.do(cw.fr.WriteContinuation(3, true, blk[4:]))
	cw.do(cw.fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}))
	cw.headers(5, true, ":method", "GET", ":scheme", "http", ":authority", "lab", ":path", "/slow")
	cw.do(cw.fr.WriteRSTStream(5, http2.ErrCodeCancel))
	cw.do(cw.fr.WriteSettingsAck())

	sw.do(sw.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 15}, http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100}))
	sw.do(sw.fr.WriteSettingsAck())
	sw.headers(1, false, ":status", "200", "content-type", "text/plain")
	sw.do(sw.fr.WriteDataPadded(1, true, []byte("hello"), make([]byte, 4)))
	sw.do(sw.fr.WritePriority(3, http2.PriorityParam{StreamDep: 1, Weight: 15}))
	sw.headers(3, false, ":status", "200", "content-type", "application/json")
	sw.data(3, false, []byte(`{"ok":true}`))
	sw.data(3, true, nil)
	sw.do(sw.fr.WritePing(true, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}))
	sw.do(sw.fr.WriteGoAway(5, http2.ErrCodeNo, []byte("bye")))
	return cw.take(), sw.take(), cw.frames + sw.frames
}

func TestH2FramesAndMessages(t *testing.T) {
	client, server, frames := h2Exchange(t)
	for _, n := range []int{1, 3, 9, 100, 1 << 20} {
		c := newBigConvo(t, protocol.H2C)
		c.sendChunks(ClientToServer, client, n)
		c.sendChunks(ServerToClient, server, n)
		c.d.StreamEnd(c.flow, time.Now())
		cn := c.s.Counters(string(protocol.H2C))
		// Messages: POST /echo and its answer, GET / and its answer, GET
		// /slow (ended by its HEADERS; its reset leaves no answer).
		if cn.H2Frames != uint64(frames) || cn.H2Messages != 5 || cn.Messages != 5 || cn.Errors != 0 {
			for _, r := range c.s.All("h2c") {
				if r.Kind != KindPacket {
					t.Logf("%s %s", r.Dir, r.Text())
				}
			}
			t.Fatalf("pieces of %d: counters %+v, want %d frames and 5 messages", n, cn, frames)
		}
		var msgs []string
		var joined, settings, padded *Record
		for _, r := range c.s.All("h2c") {
			switch {
			case r.Layer == "http2" && r.Field("message") != "":
				msgs = append(msgs, r.Text()+" x-custom="+r.Field("header.x-custom"))
			case r.Field("header_block_frames") == "2":
				joined = &r
			case r.Field("setting.MAX_FRAME_SIZE") != "":
				settings = &r
			case r.Field("pad_length") == "4":
				padded = &r
			}
		}
		want := []string{
			"HTTP/2 request stream=1 POST /echo (text/plain, 5 bytes) x-custom=one",
			"HTTP/2 request stream=3 GET / x-custom=one", // from the dynamic table
			"HTTP/2 request stream=5 GET /slow x-custom=",
			"HTTP/2 response stream=1 200 (/echo) (text/plain, 5 bytes) x-custom=",
			"HTTP/2 response stream=3 200 (/) (application/json, 11 bytes) x-custom=",
		}
		if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
			t.Errorf("pieces of %d: messages\n%s\nwant\n%s", n, strings.Join(msgs, "\n"), strings.Join(want, "\n"))
		}
		if joined == nil || joined.Field("header.:path") != "/" || !strings.Contains(joined.Text(), "CONTINUATION") {
			t.Errorf("pieces of %d: no CONTINUATION record with the joined block's headers", n)
		}
		if settings == nil || settings.Field("setting.MAX_FRAME_SIZE") != "32768" || settings.Dir != ServerToClient {
			t.Errorf("pieces of %d: server SETTINGS %v", n, settings)
		}
		if padded == nil || padded.Field("data") != "hello" || padded.Payload != 5 {
			t.Errorf("pieces of %d: padded DATA %v", n, padded)
		}
	}
	// The frames' own texts.
	c := newBigConvo(t, protocol.H2C)
	c.send(ClientToServer, client)
	c.send(ServerToClient, server)
	var texts []string
	for _, r := range c.s.All("h2c") {
		if r.Layer == "http2" && r.Field("type") != "" {
			texts = append(texts, r.Text())
		}
	}
	for _, w := range []string{
		"HTTP/2 SETTINGS stream=0 len=12 ENABLE_PUSH=0 INITIAL_WINDOW_SIZE=1048576",
		"HTTP/2 WINDOW_UPDATE stream=0 len=4 increment=1048576",
		"HTTP/2 HEADERS stream=3 len=4 END_STREAM (header block continues)",
		"HTTP/2 RST_STREAM stream=5 len=4 CANCEL",
		"HTTP/2 PING stream=0 len=8 ACK 0102030405060708",
		"HTTP/2 PRIORITY stream=3 len=5 depends on 1 weight 16",
		`HTTP/2 GOAWAY stream=0 len=11 last_stream=5 NO_ERROR "bye"`,
	} {
		found := false
		for _, s := range texts {
			found = found || s == w
		}
		if !found {
			t.Errorf("no frame record %q in\n%s", w, strings.Join(texts, "\n"))
		}
	}
}

// TestH2HeaderTableSize: a client's SETTINGS_HEADER_TABLE_SIZE lets the
// server's encoder grow its table; the decoder follows, or fails (and
// says so) when the setting is not seen.
func TestH2HeaderTableSize(t *testing.T) {
	big := strings.Repeat("v", 3000)
	run := func(announce bool) Counters {
		cw, sw := newH2Writer(t), newH2Writer(t)
		cw.buf.WriteString(h2Preface)
		if announce {
			cw.do(cw.fr.WriteSettings(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 1 << 16}))
		} else {
			cw.do(cw.fr.WriteSettings())
		}
		cw.headers(1, true, ":method", "GET", ":scheme", "http", ":authority", "lab", ":path", "/")
		cw.headers(3, true, ":method", "GET", ":scheme", "http", ":authority", "lab", ":path", "/")
		sw.do(sw.fr.WriteSettings())
		sw.enc.SetMaxDynamicTableSizeLimit(1 << 16)
		sw.enc.SetMaxDynamicTableSize(1 << 16)
		sw.headers(1, true, ":status", "200", "x-a", big, "x-b", big, "x-c", big)
		sw.headers(3, true, ":status", "200", "x-a", big, "x-b", big, "x-c", big) // all three from the table
		c := newBigConvo(t, protocol.H2C)
		c.send(ClientToServer, cw.take())
		c.send(ServerToClient, sw.take())
		var got []string
		for _, r := range c.s.All("h2c") {
			if r.Field("message") == "response" {
				got = append(got, r.Field("header.x-c"))
			}
		}
		if announce && (len(got) != 2 || got[0] != big || got[1] != big) {
			t.Errorf("with the setting: x-c decoded %d times", len(got))
		}
		return c.s.Counters("h2c")
	}
	if cn := run(true); cn.Errors != 0 || cn.H2Messages != 4 {
		t.Errorf("with SETTINGS_HEADER_TABLE_SIZE: %+v", cn)
	}
	if cn := run(false); cn.Errors == 0 {
		t.Errorf("a table grown past what the decoder allows was not flagged: %+v", cn)
	}
}

// TestH2NotCapturedFromItsStart: a connection picked up mid-way (no SYN,
// no preface; the first segment starts inside a frame) shows its frames
// but never decodes a header block, and says so.
func TestH2NotCapturedFromItsStart(t *testing.T) {
	cw, sw := newH2Writer(t), newH2Writer(t)
	cw.data(7, false, bytes.Repeat([]byte("z"), 50)) // the tail of an earlier stream's data
	tail := cw.take()[20:]
	cw.frames = 0
	cw.headers(9, false, ":method", "POST", ":scheme", "http", ":authority", "lab", ":path", "/echo")
	cw.data(9, true, []byte("hi"))
	cw.do(cw.fr.WritePing(false, [8]byte{}))
	sw.data(7, true, []byte("late"))
	sw.headers(9, false, ":status", "200")
	sw.data(9, true, []byte("hi"))
	client, server := cw.take(), sw.take()

	s := NewStore(1000)
	d, err := NewDecoder(0x1, SeedPorts(map[uint16]protocol.Protocol{healPort: protocol.H2C}), nil, s)
	if err != nil {
		t.Fatal(err)
	}
	c := &tcpConn{t: t, d: d, s: s, app: "h2c", seq: [2]uint32{1000, 5000}}
	c.send(ClientToServer, tail, false)
	c.send(ClientToServer, client, false)
	c.send(ServerToClient, server, false)
	msgs, errs, cn := c.outcome()
	if cn.H2Frames != uint64(cw.frames+sw.frames) {
		t.Errorf("%d frames, want %d\n%s", cn.H2Frames, cw.frames+sw.frames, strings.Join(msgs, "\n"))
	}
	said := 0
	for _, e := range errs {
		if strings.Contains(e, "not captured from its start") && strings.Contains(e, "HPACK state unknown") {
			said++
		}
	}
	if said != 2 {
		t.Errorf("errors %q: want each side to say it was not captured from its start", errs)
	}
	for _, r := range s.All("h2c") {
		for _, f := range r.Details() {
			if strings.HasPrefix(f.Name, "header.") {
				t.Errorf("a header decoded without the HPACK state: %s %s=%s", r.Text(), f.Name, f.Value)
			}
		}
	}
	// Stream 9's request and response are messages, headers unknown; stream
	// 7's response (opened before the capture) too, partial.
	if cn.H2Messages != 3 {
		t.Errorf("%d messages\n%s", cn.H2Messages, strings.Join(msgs, "\n"))
	}
}

// TestH2Bounds: a header frame too large to hold is passed over by its
// length (later blocks of that side then cannot be decoded), streams
// beyond the bound are let go, a DATA frame of any size is never held.
func TestH2Bounds(t *testing.T) {
	cw := newH2Writer(t)
	cw.buf.WriteString(h2Preface)
	cw.do(cw.fr.WriteSettings())
	huge := make([]byte, maxH2Held+100)
	cw.do(cw.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: huge, EndHeaders: true}))
	cw.headers(3, true, ":method", "GET", ":path", "/after")
	for id := uint32(5); id < 5+2*(maxH2Streams+10); id += 2 {
		cw.headers(id, false, ":method", "POST", ":path", "/open")
	}
	cw.data(5, false, make([]byte, 1<<20))
	c := newBigConvo(t, protocol.H2C)
	c.sendChunks(ClientToServer, cw.take(), 1<<14)
	h := c.d.flows[flowKey{c.flow.Client, c.flow.Server}].conv.h2
	if len(h.streams) > maxH2Streams || cap(h.side[0].held) > maxH2Held {
		t.Errorf("%d streams followed, %d bytes held", len(h.streams), cap(h.side[0].held))
	}
	cn := c.s.Counters("h2c")
	if cn.H2Frames != uint64(cw.frames) {
		t.Errorf("%d frames, want %d", cn.H2Frames, cw.frames)
	}
	var passed, unknown, letGo bool
	for _, r := range c.s.All("h2c") {
		passed = passed || strings.Contains(r.Err, "passed over by its length")
		unknown = unknown || strings.Contains(r.Text(), "stream=3 [headers not decoded")
		letGo = letGo || strings.Contains(r.Err, "is no longer followed")
	}
	if !passed || !unknown || !letGo {
		t.Errorf("passed over %v, later block not decoded %v, streams let go %v", passed, unknown, letGo)
	}
}

// TestH2Gap: bytes lost inside a DATA frame are skipped by its length (the
// message partial, HPACK intact); lost inside a header block, the side's
// later blocks are not decoded.
func TestH2Gap(t *testing.T) {
	cw := newH2Writer(t)
	cw.buf.WriteString(h2Preface)
	cw.do(cw.fr.WriteSettings())
	cw.headers(1, false, ":method", "POST", ":path", "/a")
	head := cw.take()
	cw.data(1, true, bytes.Repeat([]byte("d"), 300))
	data := cw.take()
	cw.headers(3, true, ":method", "GET", ":path", "/b")
	after := cw.take()

	c := newTCPConn(t, protocol.H2C)
	c.send(ClientToServer, head, false)
	c.sendSplit(ClientToServer, data, []int{50, 100}, 1)
	c.send(ClientToServer, after, false)
	msgs, _, cn := c.outcome()
	if cn.H2Messages != 2 || !strings.Contains(strings.Join(msgs, "\n"), "HTTP/2 request stream=3 GET /b") ||
		!strings.Contains(strings.Join(msgs, "\n"), "stream=1 POST /a (, 300 bytes) [partial: 50 body bytes not captured]") {
		t.Errorf("after a gap in DATA: %+v\n%s", cn, strings.Join(msgs, "\n"))
	}
	c2 := newTCPConn(t, protocol.H2C)
	c2.sendSplit(ClientToServer, head, []int{40, 45}, 1)
	c2.send(ClientToServer, data, false)
	c2.send(ClientToServer, after, false)
	msgs, _, _ = c2.outcome()
	if !strings.Contains(strings.Join(msgs, "\n"), "stream=3 [headers not decoded") {
		t.Errorf("after a gap in a header block:\n%s", strings.Join(msgs, "\n"))
	}
}
