package probe

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/protolab/protolab-tui/apps/webapp"
	"github.com/protolab/protolab-tui/internal/labapps"
	"github.com/protolab/protolab-tui/lab/pki"
	"github.com/protolab/protolab-tui/protocol"
)

// labApps starts an app per protocol with a lab CA and returns a target for each.
func labApps(tb testing.TB) map[protocol.Protocol]Target {
	tb.Helper()
	auth, err := pki.Load(tb.TempDir(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	a, err := labapps.Start(auth)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(a.Stop)
	out := map[protocol.Protocol]Target{}
	for p, addr := range a.Addrs {
		out[p] = Target{Protocol: p, Addr: addr, ServerName: "localhost", RootCAs: auth.Pool()}
	}
	return out
}

func TestRunAllProtocols(t *testing.T) {
	targets := labApps(t)
	results := map[protocol.Protocol]Result{}
	for _, p := range protocol.All() {
		t.Run(string(p), func(t *testing.T) {
			res, err := Run(context.Background(), targets[p], Options{Count: 50, Payload: 40})
			if err != nil {
				t.Fatal(err)
			}
			results[p] = res
			if !res.OK || res.Error != "" || res.Messages != 50 || res.PayloadB != 40 {
				t.Errorf("result %+v: want ok with 50 round trips of 40 bytes", res)
			}
			if res.RTTP50Ms <= 0 || res.RTTP99Ms < res.RTTP50Ms || res.RTTMinMs > res.RTTP50Ms || res.RTTMaxMs < res.RTTP99Ms {
				t.Errorf("implausible RTTs: min %v p50 %v p99 %v max %v", res.RTTMinMs, res.RTTP50Ms, res.RTTP99Ms, res.RTTMaxMs)
			}
			if res.ConnectMs <= 0 || res.HandshakeMs <= 0 || res.SetupMs < res.ConnectMs+res.HandshakeMs {
				t.Errorf("implausible setup: %+v", res)
			}
			if p.Secure() != (res.TLSMs > 0) || p.Secure() != (res.TLSVersion == "TLS 1.3") {
				t.Errorf("TLS %v ms, version %q for %s", res.TLSMs, res.TLSVersion, p)
			}
			if res.MsgsPerS <= 0 {
				t.Errorf("msgs/s = %v", res.MsgsPerS)
			}
			// Each echo message is at least its payload on the socket, both ways.
			if res.SentB < 50*40 || res.RecvB < 50*40 || res.BytesPerM <= 40 {
				t.Errorf("socket bytes sent %d recv %d per message %.1f: less than the payload", res.SentB, res.RecvB, res.BytesPerM)
			}
			if res.SetupB <= 0 {
				t.Errorf("setup bytes = %d", res.SetupB)
			}
		})
	}
	// What the lab exists to show: WebSocket frames cost far fewer bytes per
	// message than HTTP requests, and TLS adds a record header and tag.
	if ws, http := results[protocol.WS].BytesPerM, results[protocol.HTTP].BytesPerM; ws >= http {
		t.Errorf("ws bytes/message %.1f not below http's %.1f", ws, http)
	}
	if ws, wss := results[protocol.WS].BytesPerM, results[protocol.WSS].BytesPerM; wss <= ws {
		t.Errorf("wss bytes/message %.1f not above ws's %.1f", wss, ws)
	}
	// WebSocket: client frames carry 2+4 bytes of header (masked), server
	// frames 2: (40+6 + 40+2)/2 = 44 bytes per message exactly.
	if got := results[protocol.WS].BytesPerM; got != 44 {
		t.Errorf("ws bytes/message = %v, want exactly 44 for 40-byte payloads", got)
	}
}

func TestRunDeadServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for _, p := range protocol.All() {
		res, err := Run(context.Background(), Target{Protocol: p, Addr: addr}, Options{Count: 5, Timeout: 3 * time.Second})
		if err == nil || res.OK {
			t.Fatalf("%s: probe of a dead server succeeded", p)
		}
		if !strings.Contains(res.Error, "connecting to "+addr) || !strings.Contains(res.Error, "refused") {
			t.Errorf("%s: error %q does not say the connection to %s was refused", p, res.Error, addr)
		}
	}
}

func TestRunWrongCAOrProtocol(t *testing.T) {
	targets := labApps(t)
	other, err := pki.Load(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	wss := targets[protocol.WSS]
	wss.RootCAs = other.Pool()
	if _, err := Run(context.Background(), wss, Options{Count: 1}); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("wss with another CA: %v", err)
	}
	noCA := targets[protocol.HTTPS]
	noCA.RootCAs = nil
	if _, err := Run(context.Background(), noCA, Options{Count: 1}); err == nil || !strings.Contains(err.Error(), "no lab CA") {
		t.Errorf("https without a CA: %v", err)
	}
	// An http probe pointed at the ws app finds out.
	wrong := targets[protocol.WS]
	wrong.Protocol = protocol.HTTP
	if _, err := Run(context.Background(), wrong, Options{Count: 1}); err == nil || !strings.Contains(err.Error(), "GET /") {
		t.Errorf("http probe at the ws app: %v", err)
	}
}

func TestSendAndKeyLog(t *testing.T) {
	targets := labApps(t)
	for _, p := range protocol.All() {
		var keys syncBuffer
		tg := targets[p]
		tg.KeyLog = &keys
		res, err := Send(context.Background(), tg, "hello over "+string(p))
		if err != nil {
			t.Fatal(err)
		}
		if res.Reply != "hello over "+string(p) || res.RTTMs <= 0 || res.SetupMs <= 0 {
			t.Errorf("%s: send = %+v", p, res)
		}
		if p.Secure() != strings.Contains(keys.String(), "CLIENT_TRAFFIC_SECRET_0 ") {
			t.Errorf("%s: key log %q", p, keys.String())
		}
	}
}

func TestHealth(t *testing.T) {
	targets := labApps(t)
	for _, p := range protocol.All() {
		if err := Health(context.Background(), targets[p]); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	dead := targets[protocol.HTTPS]
	dead.Addr = "127.0.0.1:1"
	if err := Health(context.Background(), dead); err == nil || !strings.Contains(err.Error(), "health check at 127.0.0.1:1") {
		t.Errorf("dead health = %v", err)
	}
}

func TestPercentile(t *testing.T) {
	ds := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n)
		}
		return out
	}
	for _, tc := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ds(7), 99, 7},
		{ds(1, 2, 3, 4), 50, 2},
		{ds(1, 2, 3, 4), 99, 4},
		{ds(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9},
		{ds(1, 2, 3), 0, 1},
	} {
		if got := Percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", tc.in, tc.p, got, tc.want)
		}
	}
}

func TestPayload(t *testing.T) {
	for _, n := range []int{1, 10, 16, 32, 1000} {
		if got := Payload(3, n); len(got) != n {
			t.Errorf("Payload(3, %d) has %d bytes", n, len(got))
		}
	}
	if Payload(1, 32) == Payload(2, 32) {
		t.Error("payloads of different round trips are equal")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// BenchmarkWSRoundTrip compares one echo round trip through the probe's
// WebSocket session with a minimal gorilla write/read loop against the same
// server, in the same run. bench/run.sh prints the ratio (target ≤ 1.1).
func BenchmarkWSRoundTrip(b *testing.B) {
	tg := labApps(b)[protocol.WS]
	b.Run("probe", func(b *testing.B) {
		s, err := newWSSession(context.Background(), tg)
		if err != nil {
			b.Fatal(err)
		}
		defer s.close()
		msg := Payload(0, 32)
		ctx := context.Background()
		b.ResetTimer()
		for range b.N {
			if _, err := s.echo(ctx, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("gorilla", func(b *testing.B) {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+tg.Addr+"/echo", nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		msg := []byte(Payload(0, 32))
		b.ResetTimer()
		for range b.N {
			if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
				b.Fatal(err)
			}
			if _, _, err := c.ReadMessage(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestNewProtocolsShape: what the probes of the protocols beyond the seed's
// four say of how they went — SSE on two connections (the stream, and the
// one its echoes are posted on), gRPC's chat stream as a variant measured
// on the same connection, HTTP/2 on one connection over TLS 1.3 for h2.
func TestNewProtocolsShape(t *testing.T) {
	targets := labApps(t)
	for _, tc := range []struct {
		p        protocol.Protocol
		conns    int
		variants []string
	}{
		{protocol.SSE, 2, nil},
		{protocol.H2, 1, nil},
		{protocol.H2C, 1, nil},
		{protocol.GRPC, 1, []string{"stream"}},
		{protocol.GRPCS, 1, []string{"stream"}},
	} {
		res, err := Run(context.Background(), targets[tc.p], Options{Count: 20, Payload: 48})
		if err != nil {
			t.Fatalf("%s: %v", tc.p, err)
		}
		if len(res.Conns) != tc.conns {
			t.Errorf("%s: %d connections %+v, want %d", tc.p, len(res.Conns), res.Conns, tc.conns)
		}
		var names []string
		for _, v := range res.Variants {
			names = append(names, v.Name)
			if v.Messages != 20 || v.RTTP50Ms <= 0 || v.RTTP99Ms < v.RTTP50Ms || v.MsgsPerS <= 0 || v.BytesPerM <= 48/2 {
				t.Errorf("%s variant %s: %+v", tc.p, v.Name, v)
			}
		}
		if strings.Join(names, ",") != strings.Join(tc.variants, ",") {
			t.Errorf("%s: variants %v, want %v", tc.p, names, tc.variants)
		}
		var sent, recv int64
		for _, c := range res.Conns {
			sent, recv = sent+c.Sent, recv+c.Recv
		}
		if sent < res.SentB || recv < res.RecvB || res.SetupB <= 0 {
			t.Errorf("%s: connections carried %d/%d bytes, fewer than the echoes' %d/%d", tc.p, sent, recv, res.SentB, res.RecvB)
		}
	}
}

// TestCompressedWebSocket: a chat-ws app that compresses, probed with
// compression, negotiates permessage-deflate and carries the same echoes in
// fewer socket bytes than the same app without it.
func TestCompressedWebSocket(t *testing.T) {
	auth, err := pki.Load(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	start := func(compression string) Target {
		srv, err := webapp.New(webapp.Config{Protocol: protocol.WSS, TLS: auth.ServerTLS(), Compression: compression}, nil)
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
		return Target{Protocol: protocol.WSS, Addr: l.Addr().String(), ServerName: "localhost", RootCAs: auth.Pool(), Compression: compression}
	}
	plain, err := Run(context.Background(), start(""), Options{Count: 30, Payload: 400})
	if err != nil {
		t.Fatal(err)
	}
	deflated, err := Run(context.Background(), start(protocol.CompressionDeflate), Options{Count: 30, Payload: 400})
	if err != nil {
		t.Fatal(err)
	}
	if plain.Compression != "" || deflated.Compression != protocol.CompressionDeflate {
		t.Fatalf("compression: plain %q, deflated %q", plain.Compression, deflated.Compression)
	}
	// 400 bytes of "protolab-000001 xxx…" shrink to a few dozen.
	if deflated.BytesPerM*3 > plain.BytesPerM {
		t.Errorf("%.1f socket bytes per message compressed, %.1f plain: want a third or less", deflated.BytesPerM, plain.BytesPerM)
	}
	// Asking a plain app for compression is an error that says so.
	asked := start("")
	asked.Compression = protocol.CompressionDeflate
	if _, err := Run(context.Background(), asked, Options{Count: 1}); err == nil || !strings.Contains(err.Error(), "negotiated none") {
		t.Errorf("compression asked of an app without it: %v", err)
	}
}
