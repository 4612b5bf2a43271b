package wire

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/protolab/protolab-tui/protocol"
)

// tcpConn drives a decoder with the packets of one TCP connection; send can
// leave a segment out of the capture, as a dropped packet would be. The
// receiver acknowledges each segment, so a lost one is acknowledged too.
type tcpConn struct {
	t   *testing.T
	d   *Decoder
	s   *Store
	app string
	seq [2]uint32
}

const healPort = 3002

func newTCPConn(t *testing.T, p protocol.Protocol) *tcpConn {
	t.Helper()
	s := NewStore(10000)
	d, err := NewDecoder(layers.LinkTypeEthernet, SeedPorts(map[uint16]protocol.Protocol{healPort: p}), NewKeyLog(nil), s)
	if err != nil {
		t.Fatal(err)
	}
	c := &tcpConn{t: t, d: d, s: s, app: string(p), seq: [2]uint32{1000, 5000}}
	c.packet(ClientToServer, true, nil)
	c.packet(ServerToClient, true, nil)
	c.seq = [2]uint32{1001, 5001}
	c.packet(ClientToServer, false, nil)
	return c
}

func (c *tcpConn) packet(dir Dir, syn bool, payload []byte) {
	c.t.Helper()
	sp, dp := uint16(40000), uint16(healPort)
	if dir == ServerToClient {
		sp, dp = dp, sp
	}
	b := segment(c.t, sp, dp, c.seq[dir], c.seq[1-dir], syn, false, payload)
	if syn && dir == ClientToServer {
		b = segment(c.t, sp, dp, c.seq[dir], 0, true, false, nil)
	}
	if err := c.d.Packet(b, gopacket.CaptureInfo{Timestamp: time.Now()}); err != nil {
		c.t.Fatal(err)
	}
}

// send sends payload from dir in one segment (left out of the capture when
// drop), and the peer's acknowledgement.
func (c *tcpConn) send(dir Dir, payload []byte, drop bool) {
	c.t.Helper()
	if !drop {
		c.packet(dir, false, payload)
	}
	c.seq[dir] += uint32(len(payload))
	c.packet(1-dir, false, nil)
}

// sendSplit sends payload in segments cut at the given offsets, dropping the
// ones whose index is in drop.
func (c *tcpConn) sendSplit(dir Dir, payload []byte, cuts []int, drop ...int) {
	c.t.Helper()
	prev := 0
	for i, cut := range append(cuts, len(payload)) {
		dropped := false
		for _, d := range drop {
			dropped = dropped || d == i
		}
		c.send(dir, payload[prev:cut], dropped)
		prev = cut
	}
}

// outcome is what a capture decoded: the message summaries and gap texts.
func (c *tcpConn) outcome() (msgs, gaps []string, cn Counters) {
	c.d.Flush(time.Now())
	for _, r := range c.s.All(c.app) {
		switch {
		case r.Kind == KindMessage && r.Layer != "tcp":
			msgs = append(msgs, r.Text())
		case r.Kind == KindError:
			gaps = append(gaps, r.Layer+": "+r.Err)
		}
	}
	return msgs, gaps, c.s.Counters(c.app)
}

const upgradeReq = "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
const upgradeResp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"

func TestWebSocketHealsAGapInsideAPayload(t *testing.T) {
	mask := [4]byte{1, 2, 3, 4}
	big := bytes.Repeat([]byte("x"), 3000)
	cases := []struct {
		name       string
		cuts       []int // where the frames' bytes are cut into segments
		drop       []int
		wantFrames int // frames decoded (partial ones included)
		partial    int
		wantGap    string
		broken     bool
		resumed    bool
	}{
		{name: "no loss", cuts: []int{1000, 2000}, wantFrames: 3},
		// The big frame's header is at 0, its payload runs to 3008: a
		// segment lost inside it is skipped by the frame's length.
		{name: "inside the payload", cuts: []int{1000, 2000}, drop: []int{1}, wantFrames: 3, partial: 1, wantGap: "1000 bytes missing from the stream (not captured): skipped inside the WebSocket frame's payload"},
		// The gap runs up to the next header exactly.
		{name: "to the end of the payload", cuts: []int{1000, 3008}, drop: []int{1}, wantFrames: 3, partial: 1, wantGap: "2008 bytes missing"},
		// The gap hides the second frame's header, and no segment after it
		// starts a frame: nothing more can be proved of this direction.
		{name: "hides a header", cuts: []int{1000, 3010}, drop: []int{1}, wantFrames: 0, wantGap: "hides a WebSocket frame header", broken: true},
		// The gap hides the second frame's header, and the next segment
		// starts the third frame: a chain of headers ending where the
		// segment ends proves it, and decoding resumes there.
		{name: "hides a header, the next segment starts a frame", cuts: []int{1000, 3019}, drop: []int{1}, wantFrames: 1, wantGap: "hides a WebSocket frame header", resumed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTCPConn(t, protocol.WS)
			c.send(ClientToServer, []byte(upgradeReq), false)
			c.send(ServerToClient, []byte(upgradeResp), false)
			stream := frame(true, wsBinary, &mask, big)
			stream = append(stream, frame(true, wsText, &mask, []byte("after"))...)
			stream = append(stream, frame(true, wsText, &mask, []byte("and again"))...)
			c.sendSplit(ClientToServer, stream, tc.cuts, tc.drop...)
			c.send(ServerToClient, frame(true, wsText, nil, []byte("reply")), false)
			msgs, gaps, cn := c.outcome()
			frames, partial := 0, 0
			for _, m := range msgs {
				if strings.HasPrefix(m, "WS ") && strings.Contains(m, "[MASKED]") {
					frames++
				}
				if strings.Contains(m, "[partial:") {
					partial++
				}
			}
			if frames != tc.wantFrames || partial != tc.partial {
				t.Errorf("client frames %d (%d partial), want %d (%d): %q", frames, partial, tc.wantFrames, tc.partial, msgs)
			}
			if cn.WSFrames != uint64(frames+1) {
				t.Errorf("counters count %d frames, decoded %d client + 1 server", cn.WSFrames, frames)
			}
			switch {
			case tc.wantGap == "" && (len(gaps) != 0 || cn.Gaps != 0):
				t.Errorf("gaps %q with nothing lost", gaps)
			case tc.wantGap != "" && (len(gaps) < 1 || !strings.Contains(gaps[0], tc.wantGap) || !strings.HasPrefix(gaps[0], "gap: ")):
				t.Errorf("gap records %q, want one saying %q", gaps, tc.wantGap)
			case (tc.broken || tc.resumed) != (len(gaps) == 2) || !tc.broken && !tc.resumed && len(gaps) > 1:
				t.Errorf("gap records %q: want the gap, and a note when it was resumed or given up", gaps)
			case tc.wantGap != "" && (cn.Gaps != 1 || cn.Lost == 0):
				t.Errorf("counters %+v: want one gap and its bytes", cn)
			}
			if tc.broken && !strings.Contains(strings.Join(gaps, ""), "not decoded further") {
				t.Errorf("gap %q does not say decoding stopped", gaps)
			}
			if tc.resumed && !strings.Contains(strings.Join(gaps, ""), "resumed at a frame boundary") {
				t.Errorf("gap %q does not say decoding resumed", gaps)
			}
		})
	}
}

func TestHTTPHealsAGap(t *testing.T) {
	body := bytes.Repeat([]byte("b"), 2000)
	post := append([]byte("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n"), body...)
	chunked := []byte("POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n")
	chunked = append(chunked, body...)
	chunked = append(chunked, "\r\n0\r\n\r\n"...)
	next := []byte("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	cases := []struct {
		name     string
		stream   []byte
		cuts     []int
		drop     []int
		want     []string // request summaries, in order
		wantGap  string
		wantGaps int
	}{
		{name: "content-length body", stream: append(append([]byte(nil), post...), next...), cuts: []int{100, 1000},
			drop: []int{1}, want: []string{"POST /echo HTTP/1.1 (, 2000 bytes) [partial: 900 body bytes not captured]", "GET /next HTTP/1.1"},
			wantGap: "900 bytes missing from the stream (not captured): skipped inside the message's body by its length", wantGaps: 1},
		{name: "chunk data", stream: append(append([]byte(nil), chunked...), next...), cuts: []int{100, 1000},
			drop: []int{1}, want: []string{"POST /up HTTP/1.1 (, 2000 bytes) [partial: 900 body bytes not captured]", "GET /next HTTP/1.1"},
			wantGap: "skipped inside the message's body by its length", wantGaps: 1},
		// The gap takes the start of a request: the next request line is
		// found by its form.
		{name: "a request's start", stream: append(append(append([]byte(nil), next...), post...), next...),
			cuts: []int{len(next), len(next) + 10, len(next) + len(post)}, drop: []int{1},
			want: []string{"GET /next HTTP/1.1", "GET /next HTTP/1.1"}, wantGap: "resuming at the next request line", wantGaps: 1},
		// The gap spans a chunk size line: resync, the message is partial.
		{name: "a chunk size line", stream: append(append([]byte(nil), chunked...), next...),
			cuts: []int{len(chunked) - 7, len(chunked) - 3}, drop: []int{1},
			want: []string{"POST /up HTTP/1.1 (, 2000 bytes) [partial: its end was not captured]", "GET /next HTTP/1.1"}, wantGap: "resuming at the next request line", wantGaps: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTCPConn(t, protocol.HTTP)
			c.sendSplit(ClientToServer, tc.stream, tc.cuts, tc.drop...)
			msgs, gaps, cn := c.outcome()
			if strings.Join(msgs, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("messages\n%s\nwant\n%s", strings.Join(msgs, "\n"), strings.Join(tc.want, "\n"))
			}
			if len(gaps) != tc.wantGaps || !strings.Contains(gaps[0], tc.wantGap) {
				t.Errorf("gap records %q, want %d saying %q", gaps, tc.wantGaps, tc.wantGap)
			}
			if cn.Gaps != 1 || cn.HTTPReqs != uint64(len(tc.want)) {
				t.Errorf("counters %+v", cn)
			}
		})
	}
}

// tlsRecord builds a record header and body.
func tlsRecord(typ byte, body []byte) []byte {
	out := []byte{typ, 3, 3, 0, 0}
	binary.BigEndian.PutUint16(out[3:], uint16(len(body)))
	return append(out, body...)
}

func TestTLSHealsAGap(t *testing.T) {
	// Encrypted records, no keys: each shows as a record; a gap inside one
	// loses that one and is skipped by its length, a gap that hides a
	// header is found past by the next two headers that check out.
	var stream []byte
	var starts []int
	for i := range 6 {
		starts = append(starts, len(stream))
		stream = append(stream, tlsRecord(tlsApplicationData, bytes.Repeat([]byte{byte(0x80 + i)}, 1000))...)
	}
	cases := []struct {
		name    string
		cuts    []int
		drop    []int
		records int
		gap     string
		resumed bool
	}{
		{name: "inside a record", cuts: []int{starts[1] + 100, starts[1] + 600}, drop: []int{1}, records: 5, gap: "skipped the rest of a 1000-byte TLS Application Data record by its length"},
		{name: "over a header", cuts: []int{starts[1] + 100, starts[2] + 3}, drop: []int{1}, records: 4, gap: "resuming at the next TLS record header", resumed: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTCPConn(t, protocol.HTTPS)
			c.send(ClientToServer, tlsRecord(tlsHandshake, []byte{hsFinished, 0, 0, 1, 0}), false)
			c.send(ServerToClient, tlsRecord(tlsHandshake, []byte{hsFinished, 0, 0, 1, 0}), false)
			c.sendSplit(ServerToClient, stream, tc.cuts, tc.drop...)
			msgs, gaps, cn := c.outcome()
			records := 0
			for _, m := range msgs {
				if strings.HasPrefix(m, "TLS Application Data len=1000") {
					records++
				}
			}
			if records != tc.records {
				t.Errorf("%d records decoded, want %d: %q", records, tc.records, msgs)
			}
			if len(gaps) == 0 || !strings.Contains(gaps[0], tc.gap) || cn.Gaps != 1 {
				t.Errorf("gaps %q (counters %+v), want one saying %q", gaps, cn, tc.gap)
			}
			if tc.resumed && (len(gaps) != 2 || !strings.Contains(gaps[1], "TLS resumed at a record header after passing over")) {
				t.Errorf("gap records %q: want where it resumed", gaps)
			}
		})
	}
}

func TestSyncPoints(t *testing.T) {
	for _, tc := range []struct {
		in      string
		request bool
		at      int
	}{
		{"GET / HTTP/1.1\r\n", true, 0},
		{"ody tail\r\nGET /x HTTP/1.1\r\n", true, 10},
		{"ody\nPOST /a b HTTP/1.1\r\n", true, -1}, // a target with a space is not a request line
		{"get / HTTP/1.1\r\n", true, -1},
		{"bodybytesGET /x HTTP/1.1\r\n", true, 9},  // after a body, no line break
		{"BODYBYTESPOST /x HTTP/1.1\r\n", true, 9}, // a known method's suffix
		{"x\nMKCOL /x HTTP/1.1\r\n", true, 2},      // others at a line's start
		{"GET /x HTTP/1.", true, -1},               // not whole yet
		{"xx\r\nHTTP/1.1 200 OK\r\n", false, 4},
		{"xx\r\nHTTP/1.1 200\r\n", false, 4},
		{"xx\r\nHTTP/1.1 2000 OK\r\n", false, -1},
		{"HTTP/1.1 20", false, -1}, // not enough of it yet
	} {
		if at, _ := syncPoint([]byte(tc.in), tc.request); at != tc.at {
			t.Errorf("syncPoint(%q, %v) = %d, want %d", tc.in, tc.request, at, tc.at)
		}
	}
	rec := tlsRecord(tlsApplicationData, make([]byte, 10))
	for _, tc := range []struct {
		name string
		in   []byte
		at   int
	}{
		{"two headers", append(append([]byte(nil), rec...), rec...), 0},
		{"junk first", append(append([]byte{0x17, 0x03, 0x03, 0xff, 0xff, 1, 2}, rec...), rec...), 7},
		{"a lone header waits", rec, -1},
		{"a header whose successor fails", append(append([]byte(nil), rec...), 0x40, 3, 3, 0, 1, 0), -1},
	} {
		if at, _ := tlsSyncPoint(tc.in); at != tc.at {
			t.Errorf("%s: tlsSyncPoint = %d, want %d", tc.name, at, tc.at)
		}
	}
}
