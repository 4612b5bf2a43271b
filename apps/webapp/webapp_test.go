package webapp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/protolab/protolab-tui/protocol"
)

// selfSigned makes a certificate for localhost/127.0.0.1 and a pool that
// trusts it. (The apps stand alone, so their tests do not use the lab CA.)
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

type running struct {
	srv  *Server
	addr string
	pool *x509.CertPool
}

// start runs a server of the given mode on a free loopback port.
func start(t *testing.T, cfg Config) *running {
	t.Helper()
	var pool *x509.CertPool
	if cfg.Protocol.Secure() {
		var cert tls.Certificate
		cert, pool = selfSigned(t)
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	srv, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &running{srv: srv, addr: l.Addr().String(), pool: pool}
}

func (r *running) httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.pool}}, Timeout: 5 * time.Second}
}

func (r *running) url(path string) string {
	scheme := "http"
	if r.srv.cfg.Protocol.Secure() {
		scheme = "https"
	}
	return scheme + "://" + r.addr + path
}

func (r *running) wsURL(path string) string {
	scheme := "ws"
	if r.srv.cfg.Protocol.Secure() {
		scheme = "wss"
	}
	return scheme + "://" + r.addr + path
}

func (r *running) dial(t *testing.T, path string, hdr http.Header) *websocket.Conn {
	t.Helper()
	c, resp, err := r.dialer().Dial(r.wsURL(path), hdr)
	if err != nil {
		status := ""
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("dial %s: %v %s", path, err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (r *running) dialer() *websocket.Dialer {
	return &websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: r.pool}, HandshakeTimeout: 5 * time.Second}
}

func TestHTTPEndpoints(t *testing.T) {
	for _, mode := range []protocol.Protocol{protocol.HTTP, protocol.HTTPS} {
		t.Run(string(mode), func(t *testing.T) {
			r := start(t, Config{Protocol: mode})
			c := r.httpClient()

			resp, err := c.Get(r.url("/"))
			if err != nil {
				t.Fatal(err)
			}
			var info Info
			if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := Info{App: "protolab-" + string(mode), Protocol: string(mode), Version: Version}
			if info != want || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("GET / = %+v (%s), want %+v as JSON", info, resp.Header.Get("Content-Type"), want)
			}

			resp, err = c.Post(r.url("/echo"), "text/plain", strings.NewReader("hello lab"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "hello lab" || resp.Header.Get("Content-Type") != "text/plain" {
				t.Errorf("POST /echo = %d %q (%s)", resp.StatusCode, body, resp.Header.Get("Content-Type"))
			}

			resp, err = c.Get(r.url("/health"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), `"status":"ok"`) {
				t.Errorf("GET /health = %d %s", resp.StatusCode, body)
			}

			resp, err = c.Get(r.url("/echo"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("GET /echo = %d, want 405", resp.StatusCode)
			}

			big := strings.Repeat("x", maxHTTPBody+1)
			resp, err = c.Post(r.url("/echo"), "text/plain", strings.NewReader(big))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("POST /echo of %d bytes = %d, want 413", len(big), resp.StatusCode)
			}
		})
	}
}

func TestHTTPSRefusesUntrustingClient(t *testing.T) {
	r := start(t, Config{Protocol: protocol.HTTPS})
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}, Timeout: 5 * time.Second}
	_, err := c.Get(r.url("/"))
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("client without the CA: err = %v, want unknown authority", err)
	}
}

func TestWebSocketEcho(t *testing.T) {
	for _, mode := range []protocol.Protocol{protocol.WS, protocol.WSS} {
		t.Run(string(mode), func(t *testing.T) {
			r := start(t, Config{Protocol: mode})
			c := r.dial(t, "/echo", nil)
			for _, m := range []struct {
				typ  int
				data []byte
			}{
				{websocket.TextMessage, []byte("hello")},
				{websocket.BinaryMessage, []byte{0, 1, 2, 0xff}},
				{websocket.TextMessage, []byte("")},
			} {
				if err := c.WriteMessage(m.typ, m.data); err != nil {
					t.Fatal(err)
				}
				typ, data, err := c.ReadMessage()
				if err != nil {
					t.Fatal(err)
				}
				if typ != m.typ || string(data) != string(m.data) {
					t.Errorf("echo of %d %q = %d %q", m.typ, m.data, typ, data)
				}
			}
			// The ws apps serve the browser page at / and health over plain HTTP(S).
			resp, err := r.httpClient().Get(r.url("/"))
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(page), "new WebSocket(") {
				t.Errorf("GET / on %s is not the chat page", mode)
			}
		})
	}
}

// read reads one text message within a deadline.
func read(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Fatalf("read: message type %d, want text", typ)
	}
	return string(b)
}

func TestChatRoom(t *testing.T) {
	r := start(t, Config{Protocol: protocol.WS})
	alice := r.dial(t, "/chat/alice", nil)
	if got := read(t, alice); got != "Hi alice! You have successfully connected to the chat." {
		t.Errorf("alice's greeting = %q", got)
	}
	bob := r.dial(t, "/chat/bob?age=30", nil)
	if got := read(t, bob); !strings.HasPrefix(got, "Hi bob!") {
		t.Errorf("bob's greeting = %q", got)
	}
	if got := read(t, alice); got != "bob joined (age 30)" {
		t.Errorf("alice saw %q, want bob's join with his age", got)
	}
	carol := r.dial(t, "/chat/carol", nil)
	read(t, carol) // greeting
	if got := read(t, alice); got != "carol joined" {
		t.Errorf("alice saw %q, want carol's join", got)
	}
	if got := read(t, bob); got != "carol joined" {
		t.Errorf("bob saw %q, want carol's join", got)
	}

	if err := bob.WriteMessage(websocket.TextMessage, []byte("hi all")); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*websocket.Conn{"alice": alice, "carol": carol} {
		if got := read(t, c); got != "bob: hi all" {
			t.Errorf("%s saw %q, want bob's message", name, got)
		}
	}
	// The sender does not get its own message back: the next thing bob
	// reads is carol's message.
	if err := carol.WriteMessage(websocket.TextMessage, []byte("hello bob")); err != nil {
		t.Fatal(err)
	}
	if got := read(t, bob); got != "carol: hello bob" {
		t.Errorf("bob read %q, want carol's message (not his own)", got)
	}
	read(t, alice) // carol's message

	// A name already in the room is refused at the handshake, with no upgrade.
	_, resp, err := r.dialer().Dial(r.wsURL("/chat/alice"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusConflict {
		t.Fatalf("second alice: err=%v resp=%v, want 409", err, resp)
	}
	reason, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(reason), `"alice" is already taken`) {
		t.Errorf("409 reason = %q", reason)
	}

	// Leaving is announced to everyone else.
	if err := bob.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*websocket.Conn{"alice": alice, "carol": carol} {
		if got := read(t, c); got != "bob left" {
			t.Errorf("%s saw %q, want bob left", name, got)
		}
	}
	// bob's name is free again.
	bob2 := r.dial(t, "/chat/bob", nil)
	if got := read(t, bob2); !strings.HasPrefix(got, "Hi bob!") {
		t.Errorf("returning bob's greeting = %q", got)
	}
}

func TestChatBadRequests(t *testing.T) {
	r := start(t, Config{Protocol: protocol.WSS})
	for _, tc := range []struct {
		path string
		want int
		why  string
	}{
		{"/chat/bob?age=old", http.StatusBadRequest, "want a whole number"},
		{"/chat/bob?age=-1", http.StatusBadRequest, "want a whole number"},
		{"/chat/" + strings.Repeat("n", maxNameLen+1), http.StatusBadRequest, "longer than"},
		{"/chat/a%3Ab", http.StatusBadRequest, "not allowed"},
		{"/nowhere", http.StatusNotFound, ""},
	} {
		_, resp, err := r.dialer().Dial(r.wsURL(tc.path), nil)
		if err == nil || resp == nil || resp.StatusCode != tc.want {
			t.Errorf("%s: err=%v resp=%v, want %d", tc.path, err, resp, tc.want)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), tc.why) {
			t.Errorf("%s: body %q does not say %q", tc.path, body, tc.why)
		}
	}
}

func TestReadLimitCloses1009(t *testing.T) {
	for _, path := range []string{"/echo", "/chat/big"} {
		t.Run(path, func(t *testing.T) {
			r := start(t, Config{Protocol: protocol.WS, ReadLimit: 1024})
			c := r.dial(t, path, nil)
			if path != "/echo" {
				read(t, c) // greeting
			}
			if err := c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("a", 1024))); err != nil {
				t.Fatal(err)
			}
			if path == "/echo" {
				if got := read(t, c); len(got) != 1024 {
					t.Fatalf("a message at the limit came back as %d bytes", len(got))
				}
			}
			if err := c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("a", 1025))); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _, err := c.ReadMessage()
			if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
				t.Fatalf("after an oversize message: %v, want close 1009", err)
			}
		})
	}
}

func TestOriginCheck(t *testing.T) {
	r := start(t, Config{Protocol: protocol.WS, AllowedOrigins: []string{"http://lab.example:8080"}})
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + "HOST", true}, // same origin (HOST replaced below)
		{"http://lab.example:8080", true},
		{"http://evil.example", false},
		{"null", false}, // what a browser sends from a file: page
	} {
		origin := strings.Replace(tc.origin, "HOST", r.addr, 1)
		hdr := http.Header{}
		if origin != "" {
			hdr.Set("Origin", origin)
		}
		c, resp, err := r.dialer().Dial(r.wsURL("/echo"), hdr)
		if tc.ok {
			if err != nil {
				t.Errorf("origin %q refused: %v", origin, err)
				continue
			}
			c.Close()
			continue
		}
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q: err=%v resp=%v, want 403", origin, err, resp)
		}
	}
}

func TestShutdownSendsGoingAway(t *testing.T) {
	cert, pool := selfSigned(t)
	srv, err := New(Config{Protocol: protocol.WSS, TLS: &tls.Config{Certificates: []tls.Certificate{cert}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}}
	echo, _, err := d.Dial("wss://"+l.Addr().String()+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	chat, _, err := d.Dial("wss://"+l.Addr().String()+"/chat/zed", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer chat.Close()
	read(t, chat)

	closed := make(chan error, 2)
	for _, c := range []*websocket.Conn{echo, chat} {
		go func() {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					closed <- err
					return
				}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-closed; !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Errorf("peer saw %v, want close 1001", err)
		}
	}
	if err := <-done; err != nil {
		t.Errorf("serve after shutdown: %v", err)
	}
}

func TestServerPingsPeers(t *testing.T) {
	r := start(t, Config{Protocol: protocol.WS, PingInterval: 20 * time.Millisecond})
	c := r.dial(t, "/echo", nil)
	var pings atomic.Int32
	c.SetPingHandler(func(data string) error {
		pings.Add(1)
		return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for pings.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := pings.Load(); n < 3 {
		t.Fatalf("saw %d pings in 5s with a 20ms interval", n)
	}
	// The peer answered every ping, so it is still connected.
	if err := c.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
		t.Fatal(err)
	}
}

func TestSilentPeerIsDropped(t *testing.T) {
	r := start(t, Config{Protocol: protocol.WS, PingInterval: 20 * time.Millisecond})
	c := r.dial(t, "/echo", nil)
	// Never read: no pong goes back, so the server times the peer out.
	c.SetPingHandler(func(string) error { return nil })
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r.srv.mu.Lock()
		n := len(r.srv.conns)
		r.srv.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("a peer that never answers pings is still connected after 5s")
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Protocol: "gopher"}, "unknown protocol"},
		{Config{Protocol: protocol.WS, Kind: protocol.KindEchoHTTP}, "does not speak ws"},
		{Config{Protocol: protocol.HTTPS}, "needs a TLS certificate"},
		{Config{Protocol: protocol.WS, ReadLimit: -1}, "must be positive"},
	} {
		if _, err := New(tc.cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
