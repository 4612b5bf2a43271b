package wire

import (
	"bytes"
	"compress/flate"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/protocol"
)

// deflater compresses messages as a permessage-deflate sender does: with
// context takeover one deflate stream runs across messages, each ended by
// a sync flush whose 00 00 ff ff is taken off.
type deflater struct {
	t         testing.TB
	buf       bytes.Buffer
	w         *flate.Writer
	noContext bool
}

func newDeflater(t testing.TB, noContext bool) *deflater {
	d := &deflater{t: t, noContext: noContext}
	d.w, _ = flate.NewWriter(&d.buf, flate.BestSpeed)
	return d
}

func (d *deflater) compress(msg []byte) []byte {
	if d.noContext {
		d.w.Reset(&d.buf)
	}
	d.w.Write(msg)
	if err := d.w.Flush(); err != nil {
		d.t.Fatal(err)
	}
	out := bytes.TrimSuffix(d.buf.Bytes(), []byte{0, 0, 0xff, 0xff})
	out = append([]byte(nil), out...)
	d.buf.Reset()
	return out
}

// rsv1 sets RSV1 on an encoded frame.
func rsv1(b []byte) []byte { b[0] |= 0x40; return b }

func deflateConvo(t *testing.T, agreed string) *convo {
	c := newBigConvo(t, protocol.WS)
	c.send(ClientToServer, []byte("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	if agreed != "" {
		resp += "Sec-WebSocket-Extensions: " + agreed + "\r\n"
	}
	c.send(ServerToClient, []byte(resp+"\r\n"))
	return c
}

func TestWSDeflate(t *testing.T) {
	c := deflateConvo(t, "permessage-deflate; client_no_context_takeover")
	server, client := newDeflater(t, false), newDeflater(t, true)
	key := [4]byte{7, 1, 9, 3}
	greek := strings.Repeat("κόσμε, hello world! ", 20)
	// Server: context takeover. A fragmented message (RSV1 on its first
	// frame only), then the same text again (back-references into the
	// previous message), then binary.
	m1 := server.compress([]byte(greek))
	c.send(ServerToClient, rsv1(frame(false, wsText, nil, m1[:len(m1)/2])))
	c.send(ServerToClient, frame(true, wsContinuation, nil, m1[len(m1)/2:]))
	m2 := server.compress([]byte(greek))
	c.send(ServerToClient, rsv1(frame(true, wsText, nil, m2)))
	c.send(ServerToClient, rsv1(frame(true, wsBinary, nil, server.compress([]byte{0, 1, 2, 0xff}))))
	// Client: no context takeover, masked.
	c.send(ClientToServer, rsv1(frame(true, wsText, &key, client.compress([]byte("hi there")))))
	c.send(ClientToServer, rsv1(frame(true, wsText, &key, client.compress([]byte("hi there")))))
	// An uncompressed message is fine too.
	c.send(ClientToServer, frame(true, wsText, &key, []byte("plain")))
	c.d.StreamEnd(c.flow, time.Now())

	cn := c.s.Counters("ws")
	if cn.Errors != 0 || cn.WSCompressed != 5 || cn.WSFrames != 7 {
		t.Errorf("counters %+v", cn)
	}
	wantInflated := uint64(2*len(greek) + 4 + 2*len("hi there"))
	if cn.WSInflated != wantInflated {
		t.Errorf("inflated %d bytes, want %d", cn.WSInflated, wantInflated)
	}
	if len(m2) >= len(m1) {
		t.Errorf("the second message (%d bytes) did not use the first as its context (%d)", len(m2), len(m1))
	}
	sum := cn.Summarize()
	if sum.InflatedPerMessage != float64(wantInflated)/5 || sum.CompressedPerMessage != float64(cn.WSCompressedBytes)/5 || sum.CompressedPerMessage >= sum.InflatedPerMessage {
		t.Errorf("summary %+v", sum)
	}
	var texts []string
	for _, r := range c.s.All("ws") {
		if r.Layer == "ws" && r.Field("opcode") != "" {
			texts = append(texts, r.Text())
		}
	}
	if len(texts) != 7 || !strings.Contains(texts[0], "[compressed: inflated with the message's last frame]") ||
		!strings.Contains(texts[1], `"κόσμε, hello world! κόσμε`) || !strings.Contains(texts[2], "(deflate: ") ||
		!strings.Contains(texts[4], `"hi there"`) || !strings.Contains(texts[5], `"hi there"`) {
		t.Errorf("frames:\n%s", strings.Join(texts, "\n"))
	}
	var accept string
	for _, r := range c.s.All("ws") {
		if r.Field("extensions_agreed") != "" {
			accept = r.Text() + " | " + r.Field("extensions_offered")
		}
	}
	if !strings.Contains(accept, "permessage-deflate agreed: permessage-deflate; client_no_context_takeover | permessage-deflate; client_max_window_bits") {
		t.Errorf("upgrade record %q", accept)
	}
}

// TestWSDeflateUTF8: text is checked once inflated — compressed bytes
// that are not UTF-8 are fine, inflated bytes that are not are a breach.
func TestWSDeflateUTF8(t *testing.T) {
	c := deflateConvo(t, "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
	d := newDeflater(t, true)
	key := [4]byte{1, 2, 3, 4}
	good := d.compress([]byte("κόσμε κόσμε κόσμε"))
	c.send(ClientToServer, rsv1(frame(true, wsText, &key, good)))
	c.send(ClientToServer, rsv1(frame(true, wsText, &key, d.compress([]byte("bad \xc0\xaf text")))))
	c.send(ClientToServer, rsv1(frame(true, wsText, &key, d.compress([]byte("cut \xce")))))
	c.send(ClientToServer, rsv1(frame(true, wsPing, &key, nil)))
	c.send(ClientToServer, rsv1(frame(false, wsText, &key, d.compress([]byte("a")))))
	c.send(ClientToServer, rsv1(frame(true, wsContinuation, &key, nil)))
	c.d.StreamEnd(c.flow, time.Now())
	var errs []string
	for _, r := range c.s.All("ws") {
		if r.Kind == KindError {
			errs = append(errs, r.Err)
		}
	}
	want := []string{"(inflated) is not valid UTF-8", "(inflated) ends inside a UTF-8 sequence", "PING frame with RSV1 set", "continuation frame with RSV1 set"}
	if len(errs) != len(want) {
		t.Fatalf("errors %q, want %q", errs, want)
	}
	for i, w := range want {
		if !strings.Contains(errs[i], w) {
			t.Errorf("error %d %q, want %q", i, errs[i], w)
		}
	}
	// Without the extension agreed, RSV1 is a breach and nothing inflates.
	c2 := deflateConvo(t, "")
	c2.send(ServerToClient, rsv1(frame(true, wsText, nil, good)))
	if cn := c2.s.Counters("ws"); cn.Errors != 1 || cn.WSCompressed != 0 {
		t.Errorf("RSV1 with no extension: %+v", cn)
	}
}

// TestWSDeflateBomb: a message that inflates past the bound is refused and
// flagged, and nothing of its inflated size is ever allocated; with
// context takeover the side's later messages cannot be inflated (said
// once), with no context takeover they can.
func TestWSDeflateBomb(t *testing.T) {
	for _, noContext := range []bool{false, true} {
		agreed := "permessage-deflate"
		if noContext {
			agreed += "; server_no_context_takeover"
		}
		c := deflateConvo(t, agreed)
		d := newDeflater(t, noContext)
		bomb := d.compress(make([]byte, maxWSInflated+(1<<20)))
		if len(bomb) > maxWSCompressed {
			t.Fatalf("the bomb compresses to %d bytes", len(bomb))
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c.send(ServerToClient, rsv1(frame(true, wsBinary, nil, bomb)))
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
			t.Errorf("inflating the bomb allocated %d bytes", grew)
		}
		c.send(ServerToClient, rsv1(frame(true, wsText, nil, d.compress([]byte("after")))))
		c.d.StreamEnd(c.flow, time.Now())
		cn := c.s.Counters("ws")
		var errs, texts []string
		for _, r := range c.s.All("ws") {
			if r.Kind == KindError {
				errs = append(errs, r.Err)
			} else if r.Field("opcode") != "" {
				texts = append(texts, r.Text())
			}
		}
		if len(errs) != 1 || !strings.Contains(errs[0], "decompression bomb") {
			t.Errorf("no context %v: errors %q", noContext, errs)
		}
		if noContext && (cn.WSCompressed != 1 || !strings.Contains(texts[1], `"after"`)) ||
			!noContext && (cn.WSCompressed != 0 || !strings.Contains(texts[1], "not inflated")) {
			t.Errorf("no context %v: %+v\n%s", noContext, cn, strings.Join(texts, "\n"))
		}
	}
}

func TestParseDeflate(t *testing.T) {
	for _, tc := range []struct {
		answer string
		want   *WSDeflate
		err    string
	}{
		{"", nil, ""},
		{"x-other", nil, ""},
		{"permessage-deflate", &WSDeflate{ServerBits: 15, ClientBits: 15}, ""},
		{"x-other, permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
			&WSDeflate{ServerNoContext: true, ServerBits: 15, ClientBits: 10}, ""},
		{`permessage-deflate; server_max_window_bits="9"; client_no_context_takeover`, &WSDeflate{ClientNoContext: true, ServerBits: 9, ClientBits: 15}, ""},
		{"permessage-deflate; server_max_window_bits=16", nil, "want 8 to 15"},
		{"permessage-deflate; client_no_context_takeover=1", nil, "takes no value"},
		{"permessage-deflate; mystery", nil, "not one RFC 7692 defines"},
		{"permessage-deflate; server_no_context_takeover; server_no_context_takeover", nil, "given twice"},
	} {
		got, err := parseDeflate("", tc.answer)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want %q", tc.answer, err, tc.err)
			}
			continue
		}
		if err != nil || (got == nil) != (tc.want == nil) {
			t.Errorf("%q: %+v %v", tc.answer, got, err)
			continue
		}
		if got != nil && (got.ServerNoContext != tc.want.ServerNoContext || got.ClientNoContext != tc.want.ClientNoContext ||
			got.ServerBits != tc.want.ServerBits || got.ClientBits != tc.want.ClientBits) {
			t.Errorf("%q: %+v, want %+v", tc.answer, got, tc.want)
		}
	}
}
