package probe

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/apps/webapp"
	"github.com/protolab/protolab-tui/lab/pki"
	"github.com/protolab/protolab-tui/protocol"
)

// serve starts an echo server of protocol p on a free loopback port and
// returns its target: the lab's app for the seed protocols, a plain
// net/http server speaking HTTP/2 (TLS or prior knowledge) for h2 and h2c.
func serve(t *testing.T, p protocol.Protocol) Target {
	t.Helper()
	auth, err := pki.Load(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := Target{Protocol: p, Addr: l.Addr().String(), ServerName: "localhost", RootCAs: auth.Pool()}
	if p.HTTP2() {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, `{"protocol":%q}`, p) })
		mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(w, r.Body) })
		srv := &http.Server{Handler: mux, Protocols: new(http.Protocols)}
		if p.Secure() {
			srv.TLSConfig = auth.ServerTLS()
			srv.TLSConfig.NextProtos = []string{"h2"}
			srv.Protocols.SetHTTP2(true)
			go func() { _ = srv.ServeTLS(l, "", "") }()
		} else {
			srv.Protocols.SetUnencryptedHTTP2(true)
			go func() { _ = srv.Serve(l) }()
		}
		t.Cleanup(func() { _ = srv.Close() })
		return target
	}
	cfg := webapp.Config{Protocol: p, Kind: p.Desc().DefaultKind}
	if p.Secure() {
		cfg.TLS = auth.ServerTLS()
	}
	srv, err := webapp.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return target
}

// Open-loop: every message goes out without waiting for its echo, every
// echo comes back and is checked, on the one connection; at a rate, never
// faster than it.
func TestOpenLoop(t *testing.T) {
	const n = 400
	for _, p := range []protocol.Protocol{protocol.HTTP, protocol.HTTPS, protocol.WS, protocol.WSS, protocol.H2, protocol.H2C} {
		t.Run(string(p), func(t *testing.T) {
			target := serve(t, p)
			for _, rate := range []float64{0, 4000} {
				res, err := Run(context.Background(), target, Options{Count: n, Payload: 40, Warmup: 10, Mode: ModeOpen, Rate: rate})
				if err != nil {
					t.Fatal(err)
				}
				if !res.OK || res.Mode != ModeOpen || res.ModeNote != "" || res.Messages != n || len(res.Conns) != 1 {
					t.Fatalf("rate %v: %+v", rate, res)
				}
				if res.MsgsPerS <= 0 || res.OfferedPerS <= 0 || res.RTTP50Ms <= 0 || res.RTTP99Ms < res.RTTP50Ms {
					t.Errorf("rate %v: msgs/s %v offered %v p50 %v p99 %v", rate, res.MsgsPerS, res.OfferedPerS, res.RTTP50Ms, res.RTTP99Ms)
				}
				// Message i goes no earlier than i/rate after the first.
				if rate > 0 && res.OfferedPerS > rate*n/(n-1) {
					t.Errorf("offered %.0f msgs/s, more than the rate %.0f", res.OfferedPerS, rate)
				}
				// Every message and its echo crossed the socket: at
				// least the payloads, both ways.
				if res.SentB < n*40 || res.RecvB < n*40 {
					t.Errorf("rate %v: %d bytes sent, %d received for %d messages of 40", rate, res.SentB, res.RecvB, n)
				}
			}
		})
	}
}

// closedOnly is a session with no open-loop way.
type closedOnly struct{ c *conn }

func (s closedOnly) conn() *conn                                      { return s.c }
func (closedOnly) handshake() time.Duration                           { return 0 }
func (closedOnly) echo(_ context.Context, msg string) (string, error) { return msg, nil }
func (closedOnly) close()                                             {}

// A session with no open-loop way is measured closed-loop, and the result
// says so.
func TestOpenLoopFallsBackToClosed(t *testing.T) {
	s := closedOnly{&conn{raw: &countingConn{}}}
	r := Result{Protocol: protocol.SSE}
	f, err := measureAs(context.Background(), &r, s, []*conn{s.c}, Options{Count: 20, Payload: 8, Mode: ModeOpen})
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode != ModeClosed || !strings.Contains(r.ModeNote, "closed-loop") || f.Messages != 20 {
		t.Errorf("mode %q (%q), %d messages", r.Mode, r.ModeNote, f.Messages)
	}
}

func TestCheckMode(t *testing.T) {
	for _, c := range []struct {
		o     Options
		field string
	}{
		{Options{}, ""},
		{Options{Mode: ModeClosed}, ""},
		{Options{Mode: ModeOpen}, ""},
		{Options{Mode: ModeOpen, Rate: 1000}, ""},
		{Options{Mode: "pipelined"}, "mode"},
		{Options{Mode: ModeOpen, Rate: -1}, "rate"},
		{Options{Rate: 10}, "rate"},
	} {
		if field, problem := c.o.CheckMode(); field != c.field || (field != "") != (problem != "") {
			t.Errorf("%+v: %q %q, want field %q", c.o, field, problem, c.field)
		}
	}
}

// When net/http gives up the probe's connection while it is still up (it
// does when it has not seen the request's write complete within 50 ms of
// the answer, on a loaded machine), it gets the same connection back, and
// the session goes on on it.
func TestHTTPSessionKeepsItsConnectionWhenTheTransportDropsIt(t *testing.T) {
	for _, p := range []protocol.Protocol{protocol.HTTP, protocol.HTTPS} {
		t.Run(string(p), func(t *testing.T) {
			ctx := context.Background()
			s, err := newHTTPSession(ctx, serve(t, p))
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			local := s.c.raw.LocalAddr().String()
			for i := range 3 {
				s.client.CloseIdleConnections() // the transport lets the connection go
				if got, err := s.echo(ctx, "again"); err != nil || got != "again" {
					t.Fatalf("echo %d after the transport dropped the connection: %q, %v", i, got, err)
				}
			}
			if s.c.raw.LocalAddr().String() != local {
				t.Errorf("another connection")
			}
		})
	}
}
