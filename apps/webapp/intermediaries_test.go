package webapp

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/protocol/labtoken"
)

func up(name string, r *running) Upstream {
	return Upstream{Name: name, Protocol: r.srv.cfg.Protocol, Addr: r.addr}
}

// logBuf collects a server's log, safe for its goroutines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// startLogged is start with the server's log kept.
func startLogged(t *testing.T, cfg Config) (*running, *logBuf) {
	t.Helper()
	var lb logBuf
	return startWith(t, cfg, slog.New(slog.NewTextHandler(&lb, &slog.HandlerOptions{Level: slog.LevelDebug}))), &lb
}

// TestTLSFront: wss outside, ws inside — an echo and a chat through it, and
// a client that never starts TLS is dropped at the timeout, logged.
func TestTLSFront(t *testing.T) {
	hub := start(t, Config{Protocol: protocol.WS, Kind: protocol.KindChatWS})
	front, log := startLogged(t, Config{Protocol: protocol.WSS, Kind: protocol.KindTLSFront,
		Upstreams: []Upstream{up("hub", hub)}, HandshakeTimeout: 300 * time.Millisecond})
	c := front.dial(t, "/echo", nil)
	if err := c.WriteMessage(websocket.TextMessage, []byte("through the front")); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c); got != "through the front" {
		t.Fatalf("echo = %q", got)
	}
	// HTTPS health passes through to the hub.
	res, err := front.httpClient().Get(front.url("/health"))
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /health through the front: %v %v", res, err)
	}
	res.Body.Close()

	raw, err := net.Dial("tcp", front.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := raw.Read(make([]byte, 1)); err == nil {
		t.Fatalf("a silent client got %d bytes instead of being dropped", n)
	}
	// The front logs once its handshake returns, which may be just after
	// the client saw the connection end.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(log.String(), "TLS handshake not completed in time"); {
		if time.Now().After(deadline) {
			t.Fatalf("the timeout was not logged:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func replicasOf(t *testing.T, n int) ([]*running, []Upstream) {
	var rs []*running
	var ups []Upstream
	for i := range n {
		r := start(t, Config{Protocol: protocol.HTTP, Kind: protocol.KindEchoHTTP})
		rs = append(rs, r)
		ups = append(ups, up("r"+string(rune('1'+i)), r))
	}
	return rs, ups
}

// TestBalancerAffinity: without affinity a client's requests spread over
// the replicas; with it, every request lands on one.
func TestBalancerAffinity(t *testing.T) {
	for _, tc := range []struct {
		affinity string
		want     int // replicas seen
	}{{"none", 2}, {"cookie", 1}} {
		t.Run(tc.affinity, func(t *testing.T) {
			_, ups := replicasOf(t, 2)
			b := start(t, Config{Protocol: protocol.HTTP, Kind: protocol.KindBalancer, Upstreams: ups, Affinity: tc.affinity})
			jar, _ := cookiejar.New(nil)
			cl := &http.Client{Jar: jar, Timeout: 5 * time.Second}
			seen := map[string]int{}
			for i := range 10 {
				res, err := cl.Post(b.url("/echo"), "text/plain", strings.NewReader("hello"))
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || string(body) != "hello" {
					t.Fatalf("request %d: %s %q", i, res.Status, body)
				}
				seen[res.Header.Get(protocol.ReplicaHeader)]++
			}
			if len(seen) != tc.want || seen[""] != 0 {
				t.Errorf("replicas seen %v, want %d", seen, tc.want)
			}
		})
	}
}

// TestBalancerMovesPinnedClient: a WebSocket client pinned to a replica that
// is killed mid-stream loses its connection, reconnects with its cookie and
// lands on the other replica; the balancer logs the move and its health
// check takes the dead one out.
func TestBalancerMovesPinnedClient(t *testing.T) {
	a := start(t, Config{Protocol: protocol.WS, Kind: protocol.KindChatWS})
	b := start(t, Config{Protocol: protocol.WS, Kind: protocol.KindChatWS})
	lb, log := startLogged(t, Config{Protocol: protocol.WS, Kind: protocol.KindBalancer,
		Upstreams: []Upstream{up("a", a), up("b", b)}, Affinity: "cookie", HealthInterval: 100 * time.Millisecond})
	jar, _ := cookiejar.New(nil)
	d := &websocket.Dialer{Jar: jar, HandshakeTimeout: 5 * time.Second}
	c, res, err := d.Dial(lb.wsURL("/echo"), nil)
	if err != nil {
		t.Fatal(err)
	}
	first := res.Header.Get(protocol.ReplicaHeader)
	victim := map[string]*running{"a": a, "b": b}[first]
	if victim == nil {
		t.Fatalf("the upgrade named replica %q", first)
	}
	// Pinned: a second connection goes to the same replica.
	c2, res2, err := d.Dial(lb.wsURL("/echo"), nil)
	if err != nil || res2.Header.Get(protocol.ReplicaHeader) != first {
		t.Fatalf("second connection: %v, replica %q, want %q", err, res2.Header.Get(protocol.ReplicaHeader), first)
	}
	c2.Close()
	c.WriteMessage(websocket.TextMessage, []byte("before"))
	if got := read(t, c); got != "before" {
		t.Fatal(got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	victim.srv.Shutdown(ctx) // killed mid-stream
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Fatal("the connection to the killed replica went on")
	}
	c.Close()
	c3, res3, err := d.Dial(lb.wsURL("/echo"), nil)
	if err != nil {
		t.Fatalf("reconnecting: %v", err)
	}
	defer c3.Close()
	if got := res3.Header.Get(protocol.ReplicaHeader); got == first || got == "" {
		t.Fatalf("reconnected to %q, want the other replica", got)
	}
	c3.WriteMessage(websocket.TextMessage, []byte("after"))
	if got := read(t, c3); got != "after" {
		t.Fatal(got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(log.String(), "replica="+first) || !strings.Contains(log.String(), "taken out") {
		if time.Now().After(deadline) {
			t.Fatalf("the balancer did not log taking %s out:\n%s", first, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(log.String(), "client moved") {
		t.Errorf("the move was not logged:\n%s", log.String())
	}
}

// TestWSProxyTokens: the proxy refuses bad tokens before the upgrade with
// the right status and logs why, and relays for a minted one.
func TestWSProxyTokens(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	ws := start(t, Config{Protocol: protocol.WS, Kind: protocol.KindChatWS})
	wss := start(t, Config{Protocol: protocol.WSS, Kind: protocol.KindChatWS})
	// A target that is down: a port that nothing listens on.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := l.Addr().String()
	l.Close()
	proxy, log := startLogged(t, Config{Protocol: protocol.WS, Kind: protocol.KindWSProxy, TokenSecret: secret, RootCAs: wss.pool,
		Upstreams: []Upstream{up("ws", ws), {Name: "wss", Protocol: protocol.WSS, Addr: wss.addr}, {Name: "gone", Protocol: protocol.WS, Addr: deadAddr}}})
	now := time.Now()
	mint := func(secret []byte, ttl time.Duration, targets ...string) string {
		tok, err := labtoken.Mint(secret, targets, ttl, now)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := mint(secret, time.Minute, "ws", "wss", "gone", "nosuch")
	for _, tc := range []struct {
		name, path string
		status     int
		why        string
	}{
		{"forged", "/" + mint([]byte("fedcba9876543210fedcba9876543210"), time.Minute, "ws") + "/ws/echo", 401, "signature"},
		{"expired", "/" + mint(secret, time.Millisecond, "ws") + "/ws/echo", 401, "expired"},
		{"wrong target", "/" + mint(secret, time.Minute, "ws") + "/wss/echo", 403, "does not allow"},
		{"malformed", "/not-a-token/ws/echo", 401, "malformed"},
		{"unknown target", "/" + good + "/nosuch/echo", 404, "no target nosuch"},
		{"target down", "/" + good + "/gone/echo", 502, "target gone is down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			time.Sleep(2 * time.Millisecond) // the 1 ms token is past
			_, res, err := proxy.dialer().Dial(proxy.wsURL(tc.path), nil)
			if err == nil || res == nil || res.StatusCode != tc.status {
				t.Fatalf("dial: %v, response %v, want %d", err, res, tc.status)
			}
			body, _ := io.ReadAll(res.Body)
			if !strings.Contains(string(body), tc.why) || !strings.Contains(log.String(), tc.why) {
				t.Errorf("refusal %q (log %q) does not say %q", body, log.String(), tc.why)
			}
		})
	}
	for _, target := range []string{"ws", "wss"} {
		c := proxy.dial(t, "/"+good+"/"+target+"/echo", nil)
		msg := "via the proxy to " + target
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if got := read(t, c); got != msg {
			t.Fatalf("%s: echo %q", target, got)
		}
		// The close code passes through both legs.
		c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := c.ReadMessage()
		if !websocket.IsCloseError(err, 4001) {
			t.Errorf("%s: close answered %v, want 4001 back", target, err)
		}
	}
	// The chat room, by its own path, through the proxy.
	alice := proxy.dial(t, "/"+good+"/ws/chat/alice?age=30", nil)
	if got := read(t, alice); !strings.Contains(got, "alice") {
		t.Errorf("greeting %q", got)
	}
}

func TestIntermediaryConfigErrors(t *testing.T) {
	ws := Upstream{Name: "hub", Protocol: protocol.WS, Addr: "127.0.0.1:1"}
	wss := Upstream{Name: "hub", Protocol: protocol.WSS, Addr: "127.0.0.1:1"}
	cert, _ := selfSigned(t)
	tlsc := &tls.Config{Certificates: []tls.Certificate{cert}}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Protocol: protocol.WSS, Kind: protocol.KindTLSFront, TLS: tlsc}, "needs at least 1 upstream"},
		{Config{Protocol: protocol.WSS, Kind: protocol.KindTLSFront, TLS: tlsc, Upstreams: []Upstream{wss}}, "wants an upstream speaking ws"},
		{Config{Protocol: protocol.WS, Kind: protocol.KindChatWS, Upstreams: []Upstream{ws}}, "takes no upstreams"},
		{Config{Protocol: protocol.WS, Kind: protocol.KindWSProxy, Upstreams: []Upstream{ws}}, "needs the lab secret"},
		{Config{Protocol: protocol.WS, Kind: protocol.KindWSProxy, TokenSecret: make([]byte, 32), Upstreams: []Upstream{wss}}, "needs the lab CA"},
		{Config{Protocol: protocol.WS, Kind: protocol.KindBalancer, Upstreams: []Upstream{ws}, Affinity: "sticky"}, `affinity "sticky"`},
	} {
		if _, err := New(tc.cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.cfg.Kind, err, tc.want)
		}
	}
	if _, err := ParseUpstreams("a=ws://127.0.0.1:1,b"); err == nil {
		t.Error("a malformed upstream list was accepted")
	}
	if ups, err := ParseUpstreams(FormatUpstreams([]Upstream{ws, {Name: "x", Protocol: protocol.WSS, Addr: "h:2"}})); err != nil || len(ups) != 2 || ups[1].Protocol != protocol.WSS {
		t.Errorf("round trip: %v %v", ups, err)
	}
}
