package wire

import (
	"bytes"
	"compress/gzip"
	"net/netip"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/protocol"
)

// Fuzz tests of the issue-14 parsers: whatever the bytes, no panic, every
// buffer within its bound, and the same events whatever the pieces the
// bytes come in.

func FuzzSSE(f *testing.F) {
	f.Add([]byte("data: YHOO\ndata: +2\ndata: 10\n\n"), uint8(1))
	f.Add([]byte(": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n"), uint8(3))
	f.Add([]byte("\xef\xbb\xbfevent: x\rretry: 100\r\ndata\r\n\r\n"), uint8(2))
	f.Add([]byte("id: a\x00b\ndata: \xff\xfe\n\nretry: 99999999999999999999\ndata: x\n\n"), uint8(7))
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8) {
		whole, _ := sseEvents(string(b), len(b)+1)
		got, p := sseEvents(string(b), int(chunk%16)+1)
		if len(got) != len(whole) {
			t.Fatalf("%d blocks in pieces, %d whole", len(got), len(whole))
		}
		for i, ev := range got {
			w := whole[i]
			if ev.Dispatched != w.Dispatched || ev.Event != w.Event || ev.ID != w.ID || !bytes.Equal(ev.Data, w.Data) ||
				ev.DataLen != w.DataLen || ev.Retry != w.Retry || ev.Len != w.Len {
				t.Fatalf("block %d in pieces %+v, whole %+v", i, ev, w)
			}
			if len(ev.Data) > PreviewBytes || len(ev.ID) > maxSSEValue || len(ev.Event) > maxSSEValue || len(ev.Comment) > maxSSENote {
				t.Fatalf("block out of bounds: %+v", ev)
			}
			var r Record
			ev.fill(&r)
			_ = r.Text()
		}
		if cap(p.value) > 2*maxSSEValue {
			t.Fatalf("value buffer grew to %d", cap(p.value))
		}
	})
}

// FuzzH2 feeds any bytes as an HTTP/2 connection's two sides (the client's
// after the preface, or not), in pieces: the frame and HPACK decoding, the
// streams and gRPC messages all stay within bounds.
func FuzzH2(f *testing.F) {
	client, server, _ := h2Exchange(f)
	f.Add(append(client, server...), true, uint16(len(client)), uint8(7))
	f.Add(append(client[len(h2Preface):], server...), true, uint16(len(client)-len(h2Preface)), uint8(200))
	f.Add(server, false, uint16(0), uint8(1))
	g := newH2Writer(f)
	grpcRequest(g, 1, "/protolab.Echo/Say")
	g.data(1, true, grpcFrame(false, []byte{0x0a, 0x02, 'h', 'i', 0x10, 0x03}))
	g.headers(1, true, "grpc-status", "0")
	f.Add(g.take(), true, uint16(1000), uint8(5))
	f.Fuzz(func(t *testing.T, b []byte, preface bool, split uint16, chunk uint8) {
		at := min(int(split), len(b))
		cside, sside := b[:at], b[at:]
		if preface {
			cside = append([]byte(h2Preface), cside...)
		}
		for _, p := range []protocol.Protocol{protocol.H2C, protocol.GRPC} {
			s := NewStore(64)
			d, err := NewDecoder(0x1, SeedPorts(map[uint16]protocol.Protocol{3006: p}), nil, s)
			if err != nil {
				t.Fatal(err)
			}
			fl := Flow{Client: netip.MustParseAddrPort("127.0.0.1:5000"), Server: netip.MustParseAddrPort("127.0.0.1:3006")}
			app := AppRef{Name: string(p), Protocol: p}
			n := int(chunk%64) + 1
			for i := 0; i < max(len(cside), len(sside)); i += n {
				if i < len(cside) {
					d.Stream(fl, app, ClientToServer, cside[i:min(i+n, len(cside))], time.Now())
				}
				if i < len(sside) {
					d.Stream(fl, app, ServerToClient, sside[i:min(i+n, len(sside))], time.Now())
				}
				if fs := d.flows[flowKey{fl.Client, fl.Server}]; fs != nil && fs.conv != nil && fs.conv.h2 != nil {
					checkH2Bounds(t, fs.conv.h2)
				}
			}
			d.StreamEnd(fl, time.Now())
			for _, r := range s.All(string(p)) {
				_ = r.Text()
				_ = r.Details()
				if len(r.Data) > PreviewBytes && r.Layer != "grpc" {
					t.Fatalf("%s record keeps %d bytes", r.Layer, len(r.Data))
				}
			}
		}
	})
}

func checkH2Bounds(t *testing.T, h *h2Conn) {
	t.Helper()
	if len(h.streams) > maxH2Streams {
		t.Fatalf("%d streams followed", len(h.streams))
	}
	for dir := range h.side {
		s := &h.side[dir]
		if cap(s.held) > 2*maxH2Held || len(s.sync) > maxH2Sync+64+9 || len(s.pending) > 64 {
			t.Fatalf("side %d holds %d, syncs over %d, %d gRPC messages pending", dir, cap(s.held), len(s.sync), len(s.pending))
		}
		if b := s.block; b != nil && b.size > maxH2HeaderList {
			t.Fatalf("header block keeps %d bytes", b.size)
		}
	}
	for _, st := range h.streams {
		for d := range st.half {
			hf := &st.half[d]
			if len(hf.body) > PreviewBytes || hf.grpc != nil && len(hf.grpc.kept) > grpcKeep {
				t.Fatalf("stream %d keeps %d body bytes", st.id, len(hf.body))
			}
		}
	}
}

// FuzzGRPC reassembles any DATA bytes into gRPC messages in pieces, and
// decodes each with and without a schema.
func FuzzGRPC(f *testing.F) {
	f.Add(grpcFrame(false, []byte{0x0a, 0x02, 'h', 'i', 0x10, 0x03}), uint8(1), uint8(0))
	f.Add(append(grpcFrame(false, []byte{0x08, 0x03, 0x22, 0x03, 'a', 'n', 'n'}), grpcFrame(false, nil)...), uint8(3), uint8(2))
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff, 0}, uint8(5), uint8(1))
	f.Add(grpcFrame(false, []byte{0x0b, 0x08, 0x01, 0x0c, 0x1a, 0x03, 0x0a, 0x01, 0x00}), uint8(2), uint8(3))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(bytes.Repeat([]byte{0x08, 0x01}, 100))
	zw.Close()
	f.Add(grpcFrame(true, gz.Bytes()), uint8(9), uint8(4))
	methods := []string{"/protolab.Echo/Say", "/protolab.Chat/Join", "/other.Svc/Do", ""}
	f.Fuzz(func(t *testing.T, b []byte, chunk, method uint8) {
		var g grpcReader
		var got []*GRPCMessage
		n := int(chunk%32) + 1
		for i := 0; i < len(b); i += n {
			g.feed(b[i:min(i+n, len(b))], func(m *GRPCMessage) { got = append(got, m) }, func(string) {})
			if len(g.kept) > grpcKeep {
				t.Fatalf("reader keeps %d bytes", len(g.kept))
			}
		}
		for i, m := range got {
			if len(m.Data) > grpcKeep || len(m.Data) > m.Length || m.Length > maxGRPCLength {
				t.Fatalf("message out of bounds: %d kept of %d", len(m.Data), m.Length)
			}
			m.Method, m.Request, m.Encoding = methods[int(method)%len(methods)], (i+int(method))%2 == 0, "gzip"
			var r Record
			m.fill(&r)
			if txt := r.Text(); len(txt) > 4*grpcText+256 {
				t.Fatalf("text of %d bytes", len(txt))
			}
		}
		if raw, _ := protowireText(b); len(raw) > 2*grpcText+256 {
			t.Fatalf("schema-less text of %d bytes", len(raw))
		}
	})
}

// FuzzWSDeflate inflates any bytes as a compressed message, with and
// without context takeover, and parses any extension answer.
func FuzzWSDeflate(f *testing.F) {
	d := newDeflater(f, false)
	f.Add(d.compress([]byte("hello")), d.compress([]byte("hello hello")), true, "permessage-deflate; client_no_context_takeover")
	f.Add(newDeflater(f, true).compress(make([]byte, 1<<16)), []byte{0xff}, false, "permessage-deflate; server_max_window_bits=9")
	f.Add([]byte{0x00, 0x00, 0xff, 0xff}, []byte{0x01, 0x00}, true, `x, permessage-deflate; a="b"`)
	f.Fuzz(func(t *testing.T, first, second []byte, noContext bool, answer string) {
		_, _ = parseDeflate("", answer)
		z := &wsInflater{noContext: noContext}
		for i, msg := range [][]byte{first, second, first} {
			fr := &WSFrame{Masked: i == 1, Key: [4]byte{1, 2, 3, 4}}
			z.take(msg, fr, 0)
			res := z.inflate(i != 1, func(string) {})
			if res.Inflated > maxWSInflated || len(res.Preview) > PreviewBytes || len(z.window) > 2*wsWindow || cap(z.comp) > maxWSCompressed+len(msg) {
				t.Fatalf("out of bounds: inflated %d, preview %d, window %d, gathered %d", res.Inflated, len(res.Preview), len(z.window), cap(z.comp))
			}
			if res.Err == "" && res.Bomb {
				t.Fatal("a bomb without an error")
			}
		}
	})
}
