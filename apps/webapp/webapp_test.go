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
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/protolab/protolab-tui/internal/wsraw"
	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/protocol/rfc6455"
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
func start(t *testing.T, cfg Config) *running { t.Helper(); return startWith(t, cfg, nil) }

// startWith is start with the server logging to log (nil: nowhere).
func startWith(t *testing.T, cfg Config, log *slog.Logger) *running {
	t.Helper()
	pool := cfg.RootCAs
	if cfg.Protocol.Secure() {
		var cert tls.Certificate
		cert, pool = selfSigned(t)
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	srv, err := New(cfg, log)
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
		if r.srv.conns.len() == 0 {
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

// rawDial opens a raw-socket client to path on r (wsraw: frames exactly as
// written, protocol breaches included).
func (r *running) rawDial(t *testing.T, path string) *wsraw.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := wsraw.Dial(ctx, r.rawTarget(), path)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (r *running) rawTarget() wsraw.Target {
	t := wsraw.Target{Addr: r.addr}
	if r.pool != nil {
		t.TLS = &tls.Config{RootCAs: r.pool, ServerName: "localhost"}
	}
	return t
}

// closedWith reads until the server closes and returns its close code (0
// without a close frame) and the frames before it.
func closedWith(t *testing.T, c *wsraw.Conn) (uint16, []wsraw.Frame) {
	t.Helper()
	frames, err := c.Closed(time.Now().Add(5 * time.Second))
	if err != nil {
		t.Fatalf("waiting for the server to close: %v", err)
	}
	for i, f := range frames {
		if f.Op == rfc6455.OpClose {
			code, _ := f.CloseCode()
			return code, frames[:i]
		}
	}
	return 0, frames
}

func TestWebSocketRefusesWhatRFC6455Forbids(t *testing.T) {
	greek := []byte("κόσμε")
	for _, tc := range []struct {
		name   string
		frames []wsraw.Frame
		want   uint16
		echoes int // messages echoed before the close
	}{
		{"invalid UTF-8 text", []wsraw.Frame{wsraw.Text("ok"), wsraw.Text("κόσμε\xed\xa0\x80edited")}, rfc6455.CloseInvalidPayload, 1},
		{"invalid UTF-8 split across fragments", []wsraw.Frame{
			wsraw.Fragment(rfc6455.OpText, false, append(greek[:len(greek):len(greek)], 0xf4)),
			wsraw.Fragment(rfc6455.OpContinuation, true, []byte("\x90\x80\x80")),
		}, rfc6455.CloseInvalidPayload, 0},
		{"text ending inside a character", []wsraw.Frame{wsraw.Text("\xce")}, rfc6455.CloseInvalidPayload, 0},
		{"close reason not UTF-8", []wsraw.Frame{wsraw.Close(1000, "bye\xff")}, rfc6455.CloseInvalidPayload, 0},
		{"close with a 1-byte payload", []wsraw.Frame{wsraw.CloseRaw([]byte{3})}, rfc6455.CloseProtocolError, 0},
		{"close code 1005", []wsraw.Frame{wsraw.Close(1005, "")}, rfc6455.CloseProtocolError, 0},
		{"close code 2999", []wsraw.Frame{wsraw.Close(2999, "")}, rfc6455.CloseProtocolError, 0},
		{"reserved bit", []wsraw.Frame{{Fin: true, RSV: 1, Op: rfc6455.OpText, Payload: []byte("x")}}, rfc6455.CloseProtocolError, 0},
		{"unmasked", []wsraw.Frame{{Fin: true, Op: rfc6455.OpText, Payload: []byte("x"), Unmasked: true}}, rfc6455.CloseProtocolError, 0},
		{"continuation of nothing", []wsraw.Frame{wsraw.Fragment(rfc6455.OpContinuation, true, []byte("x"))}, rfc6455.CloseProtocolError, 0},
		{"valid text split mid-character", append(wsraw.Fragments(rfc6455.OpText, greek, 3), wsraw.Close(1000, "")), rfc6455.CloseNormal, 1},
		{"valid close with a reason", []wsraw.Frame{wsraw.Close(4001, "καλό")}, 4001, 0},
	} {
		for _, mode := range []protocol.Protocol{protocol.WS, protocol.WSS} {
			t.Run(tc.name+"/"+string(mode), func(t *testing.T) {
				r := start(t, Config{Protocol: mode})
				c := r.rawDial(t, "/echo")
				if err := c.SendFramewise(tc.frames...); err != nil {
					t.Fatal(err)
				}
				code, before := closedWith(t, c)
				if code != tc.want || len(before) != tc.echoes {
					t.Errorf("closed with %d after %v, want %d after %d echoes", code, before, tc.want, tc.echoes)
				}
			})
		}
	}
}

func TestInvalidUTF8FailsFast(t *testing.T) {
	// The first fragment is already invalid: the server closes before the
	// second one is sent (RFC 6455 §8.1 "as soon as").
	r := start(t, Config{Protocol: protocol.WS})
	c := r.rawDial(t, "/echo")
	if err := c.Send(wsraw.Fragment(rfc6455.OpText, false, []byte("κόσμε\xf4\x90"))); err != nil {
		t.Fatal(err)
	}
	f, err := c.ReadFrame(time.Now().Add(5 * time.Second))
	if err != nil {
		t.Fatalf("no close while the message was unfinished: %v", err)
	}
	if code, _ := f.CloseCode(); f.Op != rfc6455.OpClose || code != rfc6455.CloseInvalidPayload {
		t.Fatalf("got %v, want close 1007", f)
	}
}

func TestChatNeverRelaysInvalidText(t *testing.T) {
	for _, tc := range []struct {
		name   string
		frames []wsraw.Frame
	}{
		{"one frame", []wsraw.Frame{wsraw.Text("hi \xc0\xaf all")}},
		{"across fragments", []wsraw.Frame{
			wsraw.Fragment(rfc6455.OpText, false, []byte("hi \xe2\x82")),
			wsraw.Fragment(rfc6455.OpContinuation, true, []byte("\x28 all")),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := start(t, Config{Protocol: protocol.WS})
			alice := r.dial(t, "/chat/alice", nil)
			read(t, alice) // greeting
			mallory := r.rawDial(t, "/chat/mallory")
			if f, err := mallory.ReadFrame(time.Now().Add(5 * time.Second)); err != nil || f.Op != rfc6455.OpText {
				t.Fatalf("mallory's greeting: %v %v", f, err)
			}
			if got := read(t, alice); got != "mallory joined" {
				t.Fatalf("alice saw %q", got)
			}
			if err := mallory.SendFramewise(tc.frames...); err != nil {
				t.Fatal(err)
			}
			if code, _ := closedWith(t, mallory); code != rfc6455.CloseInvalidPayload {
				t.Errorf("mallory closed with %d, want 1007", code)
			}
			// The next thing alice hears is that mallory left: her message
			// never reached the room, and alice's connection is fine.
			if got := read(t, alice); got != "mallory left" {
				t.Errorf("alice saw %q, want only that mallory left", got)
			}
			if err := alice.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestHandshakeAnswers(t *testing.T) {
	r := start(t, Config{Protocol: protocol.WS})
	for _, tc := range []struct {
		name    string
		request string
		status  int
		header  string // a header the answer must have, "Name: value"
	}{
		{"version 8", strings.Replace(wsraw.Request(r.addr, "/echo"), "Version: 13", "Version: 8", 1), http.StatusUpgradeRequired, "Sec-Websocket-Version: 13"},
		{"POST", strings.Replace(wsraw.Request(r.addr, "/echo"), "GET", "POST", 1), http.StatusMethodNotAllowed, ""},
		{"no key", strings.Replace(wsraw.Request(r.addr, "/echo"), "Sec-WebSocket-Key", "X-Key", 1), http.StatusBadRequest, ""},
		{"short key", strings.Replace(wsraw.Request(r.addr, "/echo"), "Sec-WebSocket-Key: ", "Sec-WebSocket-Key: a2V5", 1), http.StatusBadRequest, ""},
		{"no upgrade", "GET /echo HTTP/1.1\r\nHost: " + r.addr + "\r\n\r\n", http.StatusBadRequest, ""},
		{"foreign origin", wsraw.Request(r.addr, "/echo", "Origin: http://evil.example"), http.StatusForbidden, ""},
		{"chat name not UTF-8", wsraw.Request(r.addr, "/chat/%FF"), http.StatusBadRequest, ""},
		{"ok", wsraw.Request(r.addr, "/echo"), http.StatusSwitchingProtocols, "Upgrade: websocket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := wsraw.Handshake(ctx, r.rawTarget(), tc.request)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Response.StatusCode != tc.status {
				t.Errorf("status %d, want %d", c.Response.StatusCode, tc.status)
			}
			if name, value, ok := strings.Cut(tc.header, ": "); ok && c.Response.Header.Get(name) != value {
				t.Errorf("%s: %q, want %q", name, c.Response.Header.Get(name), value)
			}
		})
	}
}

func TestFramesSentWithTheHandshake(t *testing.T) {
	// A client that does not wait for the 101 before its first frame
	// loses nothing: the frames wait in the handshake's buffer.
	r := start(t, Config{Protocol: protocol.WS})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := wsraw.Request(r.addr, "/echo") + string(wsraw.Text("early").Encode())
	c, err := wsraw.Handshake(ctx, r.rawTarget(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := c.ReadFrame(time.Now().Add(5 * time.Second))
	if err != nil || string(f.Payload) != "early" {
		t.Fatalf("echo of the early frame: %v %v", f, err)
	}
}
