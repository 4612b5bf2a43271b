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

	"github.com/protolab/protolab-tui/internal/labapps"
	"github.com/protolab/protolab-tui/lab/pki"
	"github.com/protolab/protolab-tui/protocol"
)

// labApps starts the four apps with a lab CA and returns a target for each.
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
	for _, p := range protocol.Seed() {
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
	for _, p := range protocol.Seed() {
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
	for _, p := range protocol.Seed() {
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
	for _, p := range protocol.Seed() {
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
