package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/protolab/protolab-tui/protocol"
)

// frame encodes a WebSocket frame as RFC 6455 lays it out.
func frame(fin bool, op byte, mask *[4]byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	var m byte
	if mask != nil {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		out = append(out, m|byte(n))
	case n <= 0xffff:
		out = append(out, m|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, m|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if mask != nil {
		out = append(out, mask[:]...)
		for i, c := range payload {
			out = append(out, c^mask[i%4])
		}
		return out
	}
	return append(out, payload...)
}

// feedChunks feeds b to a parser in pieces of size n.
func wsFrames(t *testing.T, b []byte, n int) ([]*WSFrame, error) {
	t.Helper()
	var p wsParser
	var got []*WSFrame
	for len(b) > 0 {
		k := min(n, len(b))
		if err := p.feed(b[:k], func(f *WSFrame) { got = append(got, f) }); err != nil {
			return got, err
		}
		b = b[k:]
	}
	return got, nil
}

func TestWSParser(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	big := bytes.Repeat([]byte("y"), 70000)
	mid := bytes.Repeat([]byte("z"), 300)
	var stream []byte
	stream = append(stream, frame(true, wsText, &key, []byte("hello"))...)
	stream = append(stream, frame(true, wsBinary, nil, []byte{0, 1, 2})...)
	stream = append(stream, frame(false, wsText, &key, []byte("frag-"))...)
	stream = append(stream, frame(true, wsContinuation, &key, []byte("ment"))...)
	stream = append(stream, frame(true, wsPing, nil, []byte("p"))...)
	stream = append(stream, frame(true, wsPong, &key, nil)...)
	stream = append(stream, frame(true, wsText, nil, mid)...)
	stream = append(stream, frame(true, wsBinary, &key, big)...)
	stream = append(stream, frame(true, wsClose, nil, append([]byte{0x03, 0xe9}, "going away"...))...)

	for _, chunk := range []int{1, 2, 3, 7, 14, 1000, len(stream)} {
		got, err := wsFrames(t, stream, chunk)
		if err != nil {
			t.Fatalf("chunks of %d: %v", chunk, err)
		}
		want := []struct {
			op     byte
			fin    bool
			masked bool
			length uint64
			data   string
		}{
			{wsText, true, true, 5, "hello"},
			{wsBinary, true, false, 3, "\x00\x01\x02"},
			{wsText, false, true, 5, "frag-"},
			{wsContinuation, true, true, 4, "ment"},
			{wsPing, true, false, 1, "p"},
			{wsPong, true, true, 0, ""},
			{wsText, true, false, 300, string(mid[:PreviewBytes])},
			{wsBinary, true, true, 70000, string(big[:PreviewBytes])},
			{wsClose, true, false, 12, "\x03\xe9going away"},
		}
		if len(got) != len(want) {
			t.Fatalf("chunks of %d: %d frames, want %d", chunk, len(got), len(want))
		}
		for i, w := range want {
			f := got[i]
			if f.Opcode != w.op || f.Fin != w.fin || f.Masked != w.masked || f.Length != w.length || string(f.Data) != w.data {
				t.Errorf("chunks of %d, frame %d: %+v, want %+v", chunk, i, f, w)
			}
		}
		if code, reason, ok := got[8].CloseCode(); !ok || code != 1001 || reason != "going away" {
			t.Errorf("close code %d %q %v", code, reason, ok)
		}
	}
	var r Record
	got, _ := wsFrames(t, frame(true, wsClose, &key, append([]byte{0x03, 0xf1}, "too big"...)), 100)
	got[0].fill(&r)
	if txt := r.Text(); txt != `WS CLOSE [MASKED] len=9 code=1009 "too big"` || r.Field("close_code") != "1009" {
		t.Errorf("close frame text %q, fields %v", txt, r.Details())
	}
}

func TestWSParserErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"reserved opcode", []byte{0x83, 0}, "reserved opcode 0x3"},
		{"long control", append([]byte{0x89, 126, 0, 200}, make([]byte, 200)...), "at most 125"},
		{"fragmented control", []byte{0x08, 0}, "cannot be fragmented"},
		{"length MSB", []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, "most significant bit"},
	} {
		_, err := wsFrames(t, tc.in, 1)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// wsProblems feeds b in pieces of n and returns what the parser flagged.
func wsProblems(t *testing.T, b []byte, n int) ([]string, int) {
	t.Helper()
	var problems []string
	p := wsParser{flag: func(s string) { problems = append(problems, s) }}
	frames := 0
	for len(b) > 0 {
		k := min(n, len(b))
		if err := p.feed(b[:k], func(*WSFrame) { frames++ }); err != nil {
			t.Fatalf("pieces of %d: %v", n, err)
		}
		b = b[k:]
	}
	return problems, frames
}

func TestWSParserFlagsWhatAReceiverMustRefuse(t *testing.T) {
	key := [4]byte{0xa1, 0x5e, 0x03, 0x7f}
	greek := []byte("κόσμε")
	cat := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	long := append(bytes.Repeat([]byte("a"), 1000), 0xff) // past the preview
	for _, tc := range []struct {
		name string
		in   []byte
		want []string // substrings of the problems flagged, in order
	}{
		{"valid text", cat(frame(true, wsText, &key, greek), frame(true, wsText, nil, greek)), nil},
		{"valid text split mid-character", cat(frame(false, wsText, &key, greek[:3]), frame(true, wsContinuation, &key, greek[3:])), nil},
		{"control between fragments", cat(frame(false, wsText, &key, greek[:3]), frame(true, wsPing, &key, nil), frame(true, wsContinuation, &key, greek[3:])), nil},
		{"invalid text", frame(true, wsText, &key, []byte("\xed\xa0\x80")), []string{"not valid UTF-8"}},
		{"invalid past the preview", frame(true, wsText, &key, long), []string{"by byte 1001"}},
		{"invalid across fragments", cat(frame(false, wsText, &key, append(greek[:len(greek):len(greek)], 0xf4)), frame(true, wsContinuation, &key, []byte("\x90\x80\x80"))), []string{"not valid UTF-8"}},
		{"ends inside a character", frame(true, wsText, nil, greek[:3]), []string{"ends inside a UTF-8 sequence"}},
		{"binary is not text", frame(true, wsBinary, &key, []byte{0xff, 0xfe}), nil},
		{"RSV1 with no extension agreed, not checked as text", append([]byte{0xc1, 0x02}, 0xff, 0xfe), []string{"no extension (permessage-deflate) was agreed"}},
		{"RSV3 is a breach", []byte{0x92, 0x00}, []string{"RSV2 or RSV3"}},
		{"flagged once per message", frame(true, wsText, &key, []byte("\xff\xff\xff")), []string{"not valid UTF-8"}},
		{"close reason", frame(true, wsClose, &key, append([]byte{0x03, 0xe8}, 0xc0, 0xaf)), []string{"close reason is not valid UTF-8"}},
		{"close of one byte", frame(true, wsClose, &key, []byte{0x03}), []string{"1-byte payload"}},
		{"close code 1005", frame(true, wsClose, &key, []byte{0x03, 0xed}), []string{"close code 1005"}},
		{"valid close", frame(true, wsClose, &key, append([]byte{0x0f, 0xa1}, greek...)), nil},
		{"continuation of nothing", frame(true, wsContinuation, &key, []byte("x")), []string{"no message to continue"}},
		{"new message inside one", cat(frame(false, wsText, &key, []byte("a")), frame(true, wsText, &key, []byte("b"))), []string{"before the fragmented one ended"}},
	} {
		for _, n := range []int{1, 2, 5, 1 << 20} {
			got, _ := wsProblems(t, tc.in, n)
			if len(got) != len(tc.want) {
				t.Errorf("%s, pieces of %d: flagged %q, want %q", tc.name, n, got, tc.want)
				continue
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("%s, pieces of %d: %q, want %q", tc.name, n, got[i], w)
				}
			}
		}
	}
}

func TestInvalidUTF8IsAnErrorRecordAndDecodingGoesOn(t *testing.T) {
	c := newConvo(t, protocol.WS)
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	mask := [4]byte{9, 8, 7, 6}
	c.send(ClientToServer, []byte("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "+key+"\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	c.send(ServerToClient, []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"))
	c.send(ClientToServer, frame(true, wsText, &mask, []byte("bad \xc0\xaf")))
	c.send(ServerToClient, frame(true, wsClose, nil, append([]byte{0x03, 0xef}, "text message is not valid UTF-8"...)))
	c.send(ClientToServer, frame(true, wsClose, &mask, []byte{0x03, 0xef}))
	c.d.StreamEnd(c.flow, time.Now())
	cn := c.s.Counters(string(protocol.WS))
	if cn.WSFrames != 3 || cn.Errors != 1 {
		t.Errorf("counters %+v: want the 3 frames and 1 error", cn)
	}
	var errs []string
	for _, r := range c.s.All(string(protocol.WS)) {
		if r.Kind == KindError {
			errs = append(errs, r.Dir.String()+" "+r.Text())
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0], "c→s") || !strings.Contains(errs[0], "1007") {
		t.Errorf("error records %q", errs)
	}
}

func httpMessages(t *testing.T, request bool, b []byte, n int) ([]*HTTPMessage, error) {
	t.Helper()
	p := &httpParser{request: request}
	var got []*HTTPMessage
	for len(b) > 0 {
		k := min(n, len(b))
		if _, err := p.feed(b[:k], func(m *HTTPMessage) bool { got = append(got, m); return false }); err != nil {
			return got, err
		}
		b = b[k:]
	}
	p.close(func(m *HTTPMessage) bool { got = append(got, m); return false })
	return got, nil
}

func TestHTTPParser(t *testing.T) {
	reqs := "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" +
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n" +
		"PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"
	resps := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" +
		"HTTP/1.1 204 No Content\r\n\r\n" +
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\n\r\n" +
		"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"
	for _, chunk := range []int{1, 5, 17, 1 << 20} {
		got, err := httpMessages(t, true, []byte(reqs), chunk)
		if err != nil || len(got) != 3 {
			t.Fatalf("requests in chunks of %d: %d messages, %v", chunk, len(got), err)
		}
		if got[0].Method != "POST" || string(got[0].Body) != "hello" || got[1].Target != "/" || got[1].BodyLen != 0 ||
			string(got[2].Body) != "abcde" || got[2].BodyLen != 5 {
			t.Errorf("requests: %+v %+v %+v", got[0], got[1], got[2])
		}
		got, err = httpMessages(t, false, []byte(resps), chunk)
		if err != nil || len(got) != 4 {
			t.Fatalf("responses in chunks of %d: %d messages, %v", chunk, len(got), err)
		}
		if got[1].Status != 204 || string(got[2].Body) != "wiki" || string(got[3].Body) != "until the end" {
			t.Errorf("responses: %+v %+v %+v", got[1], got[2], got[3])
		}
		if got[2].WireBodyLen != len("4\r\nwiki\r\n0\r\n\r\n") {
			t.Errorf("chunked wire body %d", got[2].WireBodyLen)
		}
	}
	// A request line is HTTP only when it looks like one.
	for _, bad := range []string{"\x16\x03\x01\x02\x00", "get / HTTP/1.1\r\n\r\n", "GET /\r\n\r\n", "GET / HTTP/1.1\r\nbad header\r\n\r\n"} {
		if _, err := httpMessages(t, true, []byte(bad), 1<<20); err == nil {
			t.Errorf("%q parsed as an HTTP request", bad)
		}
	}
	if _, err := httpMessages(t, false, []byte("HTTP/1.1 abc OK\r\n\r\n"), 100); err == nil {
		t.Error("a bad status code parsed")
	}
}

func TestAcceptFor(t *testing.T) {
	// The example handshake of RFC 6455 §1.3.
	if got := AcceptFor("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("AcceptFor = %q", got)
	}
}

// stream feeds a conversation through a decoder at socket level.
type convo struct {
	d    *Decoder
	s    *Store
	p    protocol.Protocol
	flow Flow
}

func newConvo(t *testing.T, p protocol.Protocol) *convo {
	s := NewStore(100)
	d, err := NewDecoder(layers.LinkTypeEthernet, SeedPorts(map[uint16]protocol.Protocol{3002: p}), NewKeyLog(nil), s)
	if err != nil {
		t.Fatal(err)
	}
	return &convo{d: d, s: s, p: p, flow: Flow{Client: netip.MustParseAddrPort("127.0.0.1:50000"), Server: netip.MustParseAddrPort("127.0.0.1:3002")}}
}

func (c *convo) send(dir Dir, b []byte) {
	c.d.Stream(c.flow, AppRef{Name: string(c.p), Protocol: c.p}, dir, b, time.Now())
}

func TestWebSocketUpgradeThenFrames(t *testing.T) {
	c := newConvo(t, protocol.WS)
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	mask := [4]byte{9, 8, 7, 6}
	c.send(ClientToServer, []byte("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "+key+"\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	// The client's first frame may come before the server's answer is decoded.
	c.send(ClientToServer, frame(true, wsText, &mask, []byte("early")))
	c.send(ServerToClient, append([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"), frame(true, wsText, nil, []byte("early"))...))
	c.send(ClientToServer, frame(true, wsClose, &mask, []byte{0x03, 0xe8}))
	c.send(ServerToClient, frame(true, wsClose, nil, []byte{0x03, 0xe8}))
	c.d.StreamEnd(c.flow, time.Now())

	cn := c.s.Counters(string(protocol.WS))
	if cn.HTTPReqs != 1 || cn.HTTPResps != 1 || cn.WSFrames != 4 || cn.WSControl != 2 || cn.Messages != 4 || cn.Errors != 0 {
		t.Errorf("counters %+v", cn)
	}
	var accept string
	for _, r := range c.s.All(string(protocol.WS)) {
		if r.Field("accept_valid") != "" {
			accept = r.Field("accept_valid")
		}
	}
	if accept != "true" {
		t.Errorf("Sec-WebSocket-Accept check = %q, want true", accept)
	}
}

func TestRefusedUpgradeStaysHTTP(t *testing.T) {
	c := newConvo(t, protocol.WS)
	c.send(ClientToServer, []byte("GET /chat/bob HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: a2V5\r\n\r\n"))
	c.send(ServerToClient, []byte("HTTP/1.1 409 Conflict\r\nContent-Length: 5\r\n\r\ntaken"))
	c.send(ClientToServer, []byte("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
	c.d.StreamEnd(c.flow, time.Now())
	cn := c.s.Counters(string(protocol.WS))
	if cn.HTTPReqs != 2 || cn.HTTPResps != 1 || cn.WSFrames != 0 || cn.Errors != 0 {
		t.Errorf("counters %+v", cn)
	}
}

func TestGarbageKeepsEarlierRecords(t *testing.T) {
	c := newConvo(t, protocol.HTTP)
	c.send(ClientToServer, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	c.send(ClientToServer, []byte("\x00\x01garbage that is no request\r\n\r\n"))
	c.send(ClientToServer, []byte("GET /after HTTP/1.1\r\n\r\n")) // ignored: the direction is broken
	recs := c.s.All(string(protocol.HTTP))
	var kinds []string
	for _, r := range recs {
		if r.Kind != KindPacket {
			kinds = append(kinds, r.Kind.String()+":"+r.Text())
		}
	}
	if len(kinds) != 2 || !strings.HasPrefix(kinds[0], "message:GET / HTTP/1.1") || !strings.HasPrefix(kinds[1], "error:decode error: not HTTP") {
		t.Errorf("records %q: want the request, then one error", kinds)
	}
	// A frame cut short by the end of the connection is reported.
	c2 := newConvo(t, protocol.HTTP)
	c2.send(ClientToServer, []byte("POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort"))
	c2.d.StreamEnd(c2.flow, time.Now())
	if cn := c2.s.Counters(string(protocol.HTTP)); cn.Errors != 1 {
		t.Errorf("truncated request: %+v", cn)
	}
}

func TestKeyLog(t *testing.T) {
	k := NewKeyLog(nil)
	cr := strings.Repeat("ab", 32)
	line := "CLIENT_TRAFFIC_SECRET_0 " + cr + " " + strings.Repeat("cd", 32) + "\n"
	// Written in two pieces, with junk around it.
	k.Write([]byte("# comment\nnot a key line\n" + line[:20]))
	k.Write([]byte(line[20:] + "CLIENT_RANDOM zz yy\n"))
	if k.Len() != 1 {
		t.Fatalf("%d secrets, want 1", k.Len())
	}
	crb, _ := hexBytes(cr)
	if s := k.Secret("CLIENT_TRAFFIC_SECRET_0", crb); len(s) != 32 {
		t.Errorf("secret %x", s)
	}
	if string(k.Bytes()) != line {
		t.Errorf("Bytes() = %q", k.Bytes())
	}
	var sink bytes.Buffer
	if err := k.SetSink(&sink); err != nil || sink.String() != line {
		t.Errorf("sink got %q (%v)", sink.String(), err)
	}
}

func hexBytes(s string) ([]byte, error) {
	out := make([]byte, len(s)/2)
	for i := range out {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			default:
				v |= byte(c-'a') + 10
			}
		}
		out[i] = v
	}
	return out, nil
}

// segment builds an Ethernet/IPv4/TCP packet.
func segment(t testing.TB, sport, dport uint16, seq, ack uint32, syn, fin bool, payload []byte) []byte {
	buf := gopacket.NewSerializeBuffer()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IPv4(127, 0, 0, 1), DstIP: net.IPv4(127, 0, 0, 1)}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: seq, Ack: ack, SYN: syn, FIN: fin, ACK: !syn, Window: 100}
	tcp.SetNetworkLayerForChecksum(ip)
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: net.HardwareAddr{0, 0, 0, 0, 0, 0}, DstMAC: net.HardwareAddr{0, 0, 0, 0, 0, 0}, EthernetType: layers.EthernetTypeIPv4},
		ip, tcp, gopacket.Payload(payload))
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReassemblyOutOfOrderAndRetransmits(t *testing.T) {
	s := NewStore(1000)
	d, err := NewDecoder(layers.LinkTypeEthernet, SeedPorts(map[uint16]protocol.Protocol{3000: protocol.HTTP}), nil, s)
	if err != nil {
		t.Fatal(err)
	}
	req := []byte("POST /echo HTTP/1.1\r\nContent-Length: 12\r\n\r\nhello world!")
	a, b, c := req[:10], req[10:30], req[30:]
	ci := func() gopacket.CaptureInfo { return gopacket.CaptureInfo{Timestamp: time.Now()} }
	pkts := [][]byte{
		segment(t, 40000, 3000, 100, 0, true, false, nil),
		segment(t, 3000, 40000, 900, 101, true, false, nil),
		segment(t, 40000, 3000, 101, 901, false, false, nil),
		segment(t, 40000, 3000, 101, 901, false, false, a),
		segment(t, 40000, 3000, 131, 901, false, false, c), // out of order
		segment(t, 40000, 3000, 101, 901, false, false, a), // retransmission
		segment(t, 40000, 3000, 111, 901, false, false, b), // fills the gap
		segment(t, 3000, 40000, 901, 143, false, false, []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")),
	}
	for _, p := range pkts {
		if err := d.Packet(p, ci()); err != nil {
			t.Fatal(err)
		}
	}
	cn := s.Counters(string(protocol.HTTP))
	if cn.HTTPReqs != 1 || cn.HTTPResps != 1 || cn.Retransmits != 1 || cn.Packets != 8 || cn.Errors != 0 {
		t.Errorf("counters %+v", cn)
	}
	for _, r := range s.All(string(protocol.HTTP)) {
		if r.Kind == KindMessage && r.Layer == "http" && r.Payload == 12 && string(r.Data) != "hello world!" {
			t.Errorf("reassembled body %q", r.Data)
		}
	}
	// Garbage and truncated packets are errors, counted, and harmless.
	for _, bad := range [][]byte{nil, {1, 2, 3}, pkts[3][:30], bytes.Repeat([]byte{0xff}, 80)} {
		_ = d.Packet(bad, ci())
	}
	if d.Undecodable == 0 {
		t.Error("garbage packets were not counted as undecodable")
	}
	if got := s.Counters(string(protocol.HTTP)); got.HTTPReqs != 1 {
		t.Errorf("earlier records lost: %+v", got)
	}
}

func TestRingKeepsNewestAndCounts(t *testing.T) {
	s := NewStore(3, AppRef{Name: "ws", Protocol: protocol.WS})
	for i := range 5 {
		r, _ := s.slot(0, false)
		r.Payload = i
		s.mu.Unlock()
	}
	recs := s.All(string(protocol.WS))
	if len(recs) != 3 || recs[0].Payload != 2 || recs[2].Payload != 4 || s.Counters(string(protocol.WS)).Evicted != 2 {
		t.Errorf("ring %v, evicted %d", recs, s.Counters(string(protocol.WS)).Evicted)
	}
	if got := s.Records(string(protocol.WS), 1, 10); len(got) != 2 || got[0].Payload != 3 {
		t.Errorf("window %v", got)
	}
	if s.Records(string(protocol.WS), 5, 1) != nil {
		t.Error("a window past the end is not empty")
	}
}

// TestTwoAppsOfOneProtocol: two ws apps on two ports each get their own
// ring and counters, found by the port; a port of no app is ignored.
func TestTwoAppsOfOneProtocol(t *testing.T) {
	s := NewStore(100)
	ports := PortMap{3002: {Name: "ws-a", Protocol: protocol.WS}, 3012: {Name: "ws-b", Protocol: protocol.WS}}
	d, err := NewDecoder(layers.LinkTypeEthernet, ports, nil, s)
	if err != nil {
		t.Fatal(err)
	}
	upgrade := func(server string, app AppRef, frames int) {
		flow := Flow{Client: netip.MustParseAddrPort("127.0.0.1:50000"), Server: netip.MustParseAddrPort(server)}
		d.Stream(flow, app, ClientToServer, []byte("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"), time.Now())
		d.Stream(flow, app, ServerToClient, []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"), time.Now())
		for i := range frames {
			d.Stream(flow, app, ServerToClient, frame(true, wsText, nil, []byte(fmt.Sprint("m", i))), time.Now())
		}
		d.StreamEnd(flow, time.Now())
	}
	upgrade("127.0.0.1:3002", ports[3002], 2)
	upgrade("127.0.0.1:3012", ports[3012], 5)
	a, b := s.Counters("ws-a"), s.Counters("ws-b")
	if a.WSFrames != 2 || b.WSFrames != 5 || a.Flows != 1 || b.Flows != 1 {
		t.Errorf("ws-a %+v\nws-b %+v", a, b)
	}
	for _, r := range s.All("ws-b") {
		if r.App != "ws-b" || r.Protocol != protocol.WS {
			t.Fatalf("a ws-b record says app %q protocol %q", r.App, r.Protocol)
		}
	}
	if got := s.Apps(); len(got) != 2 {
		t.Errorf("store apps %v", got)
	}
	if s.Counters("ws") != (Counters{}) {
		t.Error("an app nobody configured has counters")
	}
}

// TestContentConfirmsTheProtocol: plain HTTP sent to a TLS app's port is
// flagged (the descriptor says TLS) and still decoded as what it is.
func TestContentConfirmsTheProtocol(t *testing.T) {
	c := newConvo(t, protocol.HTTPS)
	c.send(ClientToServer, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	cn := c.s.Counters("https")
	if cn.Errors != 1 || cn.HTTPReqs != 1 {
		t.Fatalf("counters %+v: want the mismatch flagged once and the request decoded", cn)
	}
	var flagged bool
	for _, r := range c.s.All("https") {
		if r.Kind == KindError && strings.Contains(r.Err, "starts with plain bytes (no TLS record)") {
			flagged = true
		}
	}
	if !flagged {
		t.Error("no error record says the connection is not TLS")
	}
	// A TLS app's ClientHello is what it should be: nothing flagged.
	ok := newConvo(t, protocol.HTTP)
	ok.send(ClientToServer, []byte("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"))
	if n := ok.s.Counters("http").Errors; n != 0 {
		t.Errorf("plain HTTP to an http app flagged %d errors", n)
	}
}

// TestSetAsideKeepsButDoesNotCount: a connection set aside (the lab's own
// scrape of /metrics) is in the ring but not in the app's figures; the
// same exchange on another client port counts in full.
func TestSetAsideKeepsButDoesNotCount(t *testing.T) {
	s := NewStore(1000)
	d, err := NewDecoder(layers.LinkTypeEthernet, SeedPorts(map[uint16]protocol.Protocol{3002: protocol.WS}), nil, s)
	if err != nil {
		t.Fatal(err)
	}
	s.SetAside(netip.MustParseAddrPort("127.0.0.1:3002"), 40001)
	req := []byte("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
	res := []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
	exchange := func(port uint16) {
		t.Helper()
		for _, p := range [][]byte{
			segment(t, port, 3002, 100, 0, true, false, nil),
			segment(t, 3002, port, 900, 101, true, false, nil),
			segment(t, port, 3002, 101, 901, false, false, req),
			segment(t, 3002, port, 901, 101+uint32(len(req)), false, false, res),
		} {
			if err := d.Packet(p, gopacket.CaptureInfo{Timestamp: time.Now()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	exchange(40001)
	app := string(protocol.WS)
	aside := s.Counters(app)
	if aside.Packets != 0 || aside.Bytes != 0 || aside.Messages != 0 || aside.HTTPReqs != 0 || aside.Flows != 0 {
		t.Errorf("a connection set aside counted: %+v", aside)
	}
	held := s.All(app)
	if len(held) == 0 || aside.Aside != uint64(len(held)) {
		t.Errorf("the ring holds %d records of the scrape, Aside says %d", len(held), aside.Aside)
	}
	exchange(40002)
	c := s.Counters(app)
	if c.Packets != 4 || c.HTTPReqs != 1 || c.HTTPResps != 1 || c.Flows != 1 || c.Aside != aside.Aside {
		t.Errorf("the same exchange from another port: %+v", c)
	}
}
