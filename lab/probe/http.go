package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/protolab/protolab-tui/protocol"
)

// httpSession speaks HTTP over exactly one connection, so the socket byte
// counts and timings belong to that connection alone: HTTP/1.1, or HTTP/2
// for a protocol that speaks it (over TLS with ALPN h2, or in clear text
// with prior knowledge).
type httpSession struct {
	c      *conn
	client *http.Client
	base   string
	path   string // where it echoes
	hs     time.Duration
	h2     bool // every answer must come over HTTP/2

	// lent is the connection as the transport has it (openloop.go).
	lent *lentConn
}

func newHTTPSession(ctx context.Context, t Target) (*httpSession, error) {
	c, err := t.dial(ctx, t.alpn()...)
	if err != nil {
		return nil, err
	}
	if want := t.alpn(); c.state != nil && len(want) > 0 && c.state.NegotiatedProtocol != want[0] {
		c.Close()
		return nil, fmt.Errorf("%s: the app at %s chose ALPN %q, not %q: it does not speak %s", t.name(), t.Addr, c.state.NegotiatedProtocol, want[0], t.Protocol)
	}
	var once sync.Once
	var lent *lentConn
	lend := c.Conn // HTTP/2 as it is: the transport looks for a *tls.Conn's ALPN
	if !t.Protocol.HTTP2() {
		lent = &lentConn{Conn: c.Conn}
		lend = lent
	}
	give := func(context.Context, string, string) (net.Conn, error) {
		var out net.Conn
		once.Do(func() { out = lend })
		if out == nil && lent.dropped() {
			out = lent // the transport gave up a connection that is still up: the same again
		}
		if out == nil {
			return nil, fmt.Errorf("%w: the probe keeps one connection and will not open another", errClosedByPeer)
		}
		return out, nil
	}
	tr := &http.Transport{
		DialContext:         give,
		DialTLSContext:      give,
		MaxConnsPerHost:     1,
		MaxIdleConnsPerHost: 1,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	if t.Protocol.HTTP2() {
		tr.Protocols = new(http.Protocols)
		if t.Protocol.Secure() {
			tr.Protocols.SetHTTP2(true)
		} else {
			tr.Protocols.SetUnencryptedHTTP2(true) // prior knowledge: the preface first
		}
	}
	scheme := "http"
	if t.Protocol.Secure() {
		scheme = "https"
	}
	s := &httpSession{c: c, client: &http.Client{Transport: tr}, base: scheme + "://" + t.hostPort(), path: t.echoPath(), h2: t.Protocol.HTTP2(), lent: lent}

	start := time.Now()
	var info struct {
		Protocol string `json:"protocol"`
	}
	body, err := s.do(ctx, http.MethodGet, "/", "")
	if err == nil {
		err = json.Unmarshal([]byte(body), &info)
		// Behind a TLS front the app itself speaks the plain protocol.
		if err == nil && info.Protocol != string(t.Protocol) && info.Protocol != string(t.Protocol.Desc().Plain) {
			err = fmt.Errorf("the app at %s says it speaks %q, not %q", t.Addr, info.Protocol, t.Protocol)
		}
	}
	if err != nil {
		s.close()
		return nil, fmt.Errorf("%s: GET / on %s: %w", t.name(), t.Addr, err)
	}
	s.hs = time.Since(start)
	return s, nil
}

func (s *httpSession) do(ctx context.Context, method, path, body string) (string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if s.h2 && resp.ProtoMajor != 2 {
		return "", fmt.Errorf("%s %s was answered over %s, not HTTP/2", method, path, resp.Proto)
	}
	s.c.saw(resp.Header)
	b, err := io.ReadAll(io.LimitReader(resp.Body, 2<<20))
	if err != nil {
		return "", fmt.Errorf("reading the response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s %s answered %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

// Get opens a connection to an HTTP app, asks it for path with GET and
// closes the connection: the explorer's u and U, beside Send's POST. The
// reply is the body.
func Get(ctx context.Context, t Target, path string) (SendResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res := SendResult{App: t.name(), Protocol: t.Protocol, Sent: http.MethodGet + " " + path}
	if d, ok := protocol.Lookup(t.Protocol); !ok || d.Recognise != protocol.RecogniseHTTP && d.Recognise != protocol.RecogniseHTTP2 {
		return res, fmt.Errorf("%s: GET asks an HTTP app; this one speaks %s", t.name(), t.Protocol)
	}
	s, err := newHTTPSession(ctx, t)
	if err != nil {
		return res, err
	}
	defer s.close()
	res.SetupMs = ms(s.c.connect + s.c.tlsDur + s.handshake())
	start := time.Now()
	res.Reply, err = s.do(ctx, http.MethodGet, path, "")
	res.RTTMs = ms(time.Since(start))
	if err != nil {
		return res, fmt.Errorf("%s: GET %s: %w", t.name(), path, err)
	}
	return res, nil
}

func (s *httpSession) conn() *conn              { return s.c }
func (s *httpSession) handshake() time.Duration { return s.hs }

func (s *httpSession) echo(ctx context.Context, msg string) (string, error) {
	return s.do(ctx, http.MethodPost, s.path, msg)
}

func (s *httpSession) close() {
	s.client.CloseIdleConnections()
	s.c.Close()
}

// Health asks the app's GET /health (over https for the secure protocols,
// verified against the lab CA) and reports an error unless it answers 200.
func Health(ctx context.Context, t Target) error {
	scheme := "http"
	tr := &http.Transport{DisableKeepAlives: true}
	if t.Protocol.Secure() {
		scheme = "https"
		cfg, err := t.tlsConfig("http/1.1")
		if err != nil {
			return err
		}
		tr.TLSClientConfig = cfg
	}
	addr := t.Addr
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		if t.Dial != nil {
			return t.Dial(ctx, network, addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+t.hostPort()+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("%s health check at %s: %w", t.name(), t.Addr, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s health check at %s answered %s", t.name(), t.Addr, resp.Status)
	}
	return nil
}
