package webapp

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/protocol/labtoken"
)

// scraped is one scrape of an app's /metrics, parsed by Prometheus's own
// text parser.
type scraped struct {
	raw  []byte
	fams map[string]*dto.MetricFamily
}

// scrape GETs r's /metrics over its real listener (TLS for https and wss)
// and parses it.
func (r *running) scrape(t *testing.T) scraped {
	t.Helper()
	res, err := r.httpClient().Get(r.url(protocol.MetricsPath))
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s: %s", res.Status, body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET /metrics answered %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the scrape does not parse: %v\n%s", err, body)
	}
	return scraped{raw: body, fams: fams}
}

// value is the sample of name whose labels include want: a counter's or a
// gauge's value, a histogram's count; 0 when there is none.
func (s scraped) value(name string, want ...string) float64 {
	f := s.fams[name]
	if f == nil {
		return 0
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == want[i] && lp.GetValue() == want[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return 0
}

// labelValues lists every label value in the scrape (to check no raw path
// or name became one).
func (s scraped) labelValues() []string {
	var out []string
	for _, f := range s.fams {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				out = append(out, lp.GetValue())
			}
		}
	}
	return out
}

// delta checks name{labels} grew by want between two scrapes.
func delta(t *testing.T, before, after scraped, want float64, name string, labels ...string) {
	t.Helper()
	if got := after.value(name, labels...) - before.value(name, labels...); got != want {
		t.Errorf("%s%v went up by %v, want %v", name, labels, got, want)
	}
}

// waitFor scrapes until name{labels} is want (a connection's end is
// counted when its handler returns, just after the client sees it).
func (r *running) waitFor(t *testing.T, want float64, name string, labels ...string) scraped {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := r.scrape(t)
		if s.value(name, labels...) == want || time.Now().After(deadline) {
			if got := s.value(name, labels...); got != want {
				t.Fatalf("%s%v is %v, want %v", name, labels, got, want)
			}
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMetricsHTTP: echo-http's requests are counted and timed per route
// pattern, over http and https; a path no route has counts as "none", never
// as itself.
func TestMetricsHTTP(t *testing.T) {
	for _, p := range []protocol.Protocol{protocol.HTTP, protocol.HTTPS} {
		t.Run(string(p), func(t *testing.T) {
			r := start(t, Config{Protocol: p, Name: "api"})
			before := r.scrape(t)
			if before.value(protocol.MetricAppInfo, "app", "api", "kind", protocol.KindEchoHTTP, "protocol", string(p)) != 1 {
				t.Errorf("no app info for api:\n%s", before.raw)
			}
			c := r.httpClient()
			for range 3 {
				res, err := c.Post(r.url("/echo"), "text/plain", strings.NewReader("hello"))
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
			for _, path := range []string{"/secret-path-42", "/health"} {
				res, err := c.Get(r.url(path))
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
			}
			after := r.scrape(t)
			delta(t, before, after, 3, protocol.MetricRequests, "route", "POST /echo", "code", "200")
			delta(t, before, after, 3, protocol.MetricRequestDuration, "route", "POST /echo")
			delta(t, before, after, 1, protocol.MetricRequests, "route", protocol.RouteNone, "code", "404")
			delta(t, before, after, 1, protocol.MetricRequests, "route", "GET /health", "code", "200")
			// The first scrape is counted by the second.
			delta(t, before, after, 1, protocol.MetricRequests, "route", "GET /metrics", "code", "200")
			for _, v := range after.labelValues() {
				if strings.Contains(v, "secret-path") {
					t.Errorf("a raw path became a label value: %q", v)
				}
			}
			// A histogram of a route has its buckets and a sum.
			h := after.fams[protocol.MetricRequestDuration].GetMetric()[0].GetHistogram()
			if len(h.GetBucket()) != len(durationBuckets)+1 || h.GetSampleSum() <= 0 { // and +Inf
				t.Errorf("histogram %v: want %d buckets and a positive sum", h, len(durationBuckets)+1)
			}
		})
	}
}

// TestMetricsWebSocket: chat-ws counts its upgrades (101, per route), the
// connections open, the messages each way and the close codes each way,
// over ws and wss.
func TestMetricsWebSocket(t *testing.T) {
	for _, p := range []protocol.Protocol{protocol.WS, protocol.WSS} {
		t.Run(string(p), func(t *testing.T) {
			r := start(t, Config{Protocol: p, ReadLimit: 1024})
			before := r.scrape(t)
			c := r.dial(t, "/echo", nil)
			for _, msg := range []string{"one", "two"} {
				if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
					t.Fatal(err)
				}
				if got := read(t, c); got != msg {
					t.Fatalf("echo %q, want %q", got, msg)
				}
			}
			// A message is counted once written, so the echo can reach the
			// client before its count is up: wait for the count.
			open := r.waitFor(t, before.value(protocol.MetricWSMessages, "direction", protocol.MetricOut)+2,
				protocol.MetricWSMessages, "direction", protocol.MetricOut)
			delta(t, before, open, 1, protocol.MetricWSOpen)
			delta(t, before, open, 1, protocol.MetricRequests, "route", "GET /echo", "code", "101")
			delta(t, before, open, 1, protocol.MetricWSConnections, "route", "GET /echo")
			delta(t, before, open, 2, protocol.MetricWSMessages, "direction", protocol.MetricIn)
			delta(t, before, open, 2, protocol.MetricWSMessages, "direction", protocol.MetricOut)

			// A private close code: received, and answered with the same.
			_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"))
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, 4001) {
				t.Fatalf("close answered %v, want 4001", err)
			}
			closed := r.waitFor(t, 0, protocol.MetricWSOpen)
			delta(t, before, closed, 1, protocol.MetricWSCloses, "direction", protocol.MetricReceived, "code", "4xxx")
			delta(t, before, closed, 1, protocol.MetricWSCloses, "direction", protocol.MetricSent, "code", "4xxx")

			// Too big a message: the server fails the connection with 1009.
			big := r.dial(t, "/echo", nil)
			_ = big.WriteMessage(websocket.BinaryMessage, make([]byte, 2048))
			_ = big.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := big.ReadMessage(); !websocket.IsCloseError(err, 1009) {
				t.Fatalf("too big a message: %v, want close 1009", err)
			}
			big.Close()
			after := r.waitFor(t, 0, protocol.MetricWSOpen)
			delta(t, closed, after, 1, protocol.MetricWSCloses, "direction", protocol.MetricSent, "code", "1009")
			delta(t, closed, after, 0, protocol.MetricWSMessages, "direction", protocol.MetricIn)

			// The chat: a taken name is refused (409) under the route's
			// pattern, and no member's name becomes a label.
			alice := r.dial(t, "/chat/alice-7f3?age=30", nil)
			read(t, alice) // the greeting
			_, res, err := r.dialer().Dial(r.wsURL("/chat/alice-7f3"), nil)
			if err == nil || res == nil || res.StatusCode != http.StatusConflict {
				t.Fatalf("duplicate name: %v %v, want 409", err, res)
			}
			chat := r.waitFor(t, after.value(protocol.MetricWSMessages, "direction", protocol.MetricOut)+1,
				protocol.MetricWSMessages, "direction", protocol.MetricOut)
			delta(t, after, chat, 1, protocol.MetricRequests, "route", "GET /chat/{name}", "code", "409")
			delta(t, after, chat, 1, protocol.MetricRequests, "route", "GET /chat/{name}", "code", "101")
			delta(t, after, chat, 1, protocol.MetricWSMessages, "direction", protocol.MetricOut) // the greeting
			for _, v := range chat.labelValues() {
				if strings.Contains(v, "alice") {
					t.Errorf("a chat name became a label value: %q", v)
				}
			}
		})
	}
}

// TestMetricsShutdownCloses: Shutdown's 1001 to every peer is counted.
func TestMetricsShutdownCloses(t *testing.T) {
	r := start(t, Config{Protocol: protocol.WS})
	c := r.dial(t, "/echo", nil)
	r.waitFor(t, 1, protocol.MetricWSOpen)
	// The gauge is up at the hijack, a moment before the peer is tracked
	// (one upgraded during Shutdown gets its 1001 from its own handler,
	// after Shutdown returns): wait until Shutdown will see it.
	for deadline := time.Now().Add(5 * time.Second); r.srv.conns.len() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the WebSocket peer was never tracked")
		}
	}
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := expfmt.NewEncoder(&out, expfmt.NewFormat(expfmt.TypeTextPlain)).Encode(gather(t, r.srv, protocol.MetricWSCloses)); err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(&out)
	if err != nil {
		t.Fatal(err)
	}
	if got := (scraped{fams: fams}).value(protocol.MetricWSCloses, "direction", protocol.MetricSent, "code", "1001"); got != 1 {
		t.Errorf("1001 sent at shutdown counted %v times, want 1", got)
	}
}

// gather is one family from the server's registry (after Shutdown, when
// GET /metrics no longer answers).
func gather(t *testing.T, s *Server, name string) *dto.MetricFamily {
	t.Helper()
	fams, err := s.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f
		}
	}
	t.Fatalf("no %s in the registry", name)
	return nil
}

// TestMetricsIntermediaries: a balancer's /metrics is its own (it forwards
// everything else) and counts the upgrades it passes on; a ws-proxy counts
// the messages and close codes it relays on its clients' side; a TLS front
// has no /metrics of its own, so GET /metrics through it is its upstream's.
func TestMetricsIntermediaries(t *testing.T) {
	t.Run("balancer", func(t *testing.T) {
		a := start(t, Config{Protocol: protocol.WS, Name: "a"})
		b := start(t, Config{Protocol: protocol.WS, Name: "b"})
		lb := start(t, Config{Protocol: protocol.WS, Kind: protocol.KindBalancer, Name: "lb", Upstreams: []Upstream{up("a", a), up("b", b)}})
		before := lb.scrape(t)
		if before.value(protocol.MetricAppInfo, "app", "lb", "kind", protocol.KindBalancer) != 1 {
			t.Fatalf("the balancer's /metrics is not its own:\n%s", before.raw)
		}
		c := lb.dial(t, "/echo", nil)
		if err := c.WriteMessage(websocket.TextMessage, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		read(t, c)
		res, err := lb.httpClient().Get(lb.url("/chat"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		open := lb.scrape(t)
		delta(t, before, open, 1, protocol.MetricWSOpen)
		delta(t, before, open, 1, protocol.MetricRequests, "route", "/", "code", "101")
		delta(t, before, open, 1, protocol.MetricRequests, "route", "/", "code", "200")
		c.Close()
		lb.waitFor(t, 0, protocol.MetricWSOpen)
		// The replica that served it counted the message.
		if n := a.scrape(t).value(protocol.MetricWSMessages, "direction", protocol.MetricIn) + b.scrape(t).value(protocol.MetricWSMessages, "direction", protocol.MetricIn); n != 1 {
			t.Errorf("the replicas counted %v messages in, want 1", n)
		}
	})
	t.Run("ws-proxy", func(t *testing.T) {
		secret := []byte("0123456789abcdef0123456789abcdef")
		ws := start(t, Config{Protocol: protocol.WS})
		proxy := start(t, Config{Protocol: protocol.WS, Kind: protocol.KindWSProxy, TokenSecret: secret, Upstreams: []Upstream{up("ws", ws)}})
		tok, err := labtoken.Mint(secret, []string{"ws"}, time.Minute, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		before := proxy.scrape(t)
		c := proxy.dial(t, "/"+tok+"/ws/echo", nil)
		for _, msg := range []string{"a", "b", "c"} {
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			read(t, c)
		}
		_ = c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "done"))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, 1000) {
			t.Fatalf("close answered %v, want 1000", err)
		}
		after := proxy.waitFor(t, 0, protocol.MetricWSOpen)
		delta(t, before, after, 1, protocol.MetricRequests, "route", "GET /{token}/{target}/{path...}", "code", "101")
		delta(t, before, after, 3, protocol.MetricWSMessages, "direction", protocol.MetricIn)
		delta(t, before, after, 3, protocol.MetricWSMessages, "direction", protocol.MetricOut)
		delta(t, before, after, 1, protocol.MetricWSCloses, "direction", protocol.MetricReceived, "code", "1000")
		delta(t, before, after, 1, protocol.MetricWSCloses, "direction", protocol.MetricSent, "code", "1000")
		for _, v := range after.labelValues() {
			if strings.Contains(v, tok) {
				t.Error("a token became a label value")
			}
		}
	})
	t.Run("tls-front", func(t *testing.T) {
		inside := start(t, Config{Protocol: protocol.WS, Name: "inside"})
		front := start(t, Config{Protocol: protocol.WSS, Kind: protocol.KindTLSFront, Upstreams: []Upstream{up("inside", inside)}})
		s := front.scrape(t)
		if s.value(protocol.MetricAppInfo, "app", "inside", "kind", protocol.KindChatWS) != 1 {
			t.Errorf("GET /metrics through the front is not its upstream's:\n%s", s.raw)
		}
		if k, _ := protocol.LookupKind(protocol.KindTLSFront); k.Metrics {
			t.Error("the kind table says a tls-front serves /metrics")
		}
	})
}

// TestMetricsPromtool: Prometheus's own checker passes a scrape taken after
// traffic of every kind of metric.
func TestMetricsPromtool(t *testing.T) {
	promtool := testenv.NeedCommand(t, "promtool")
	r := start(t, Config{Protocol: protocol.WSS})
	c := r.dial(t, "/echo", nil)
	if err := c.WriteMessage(websocket.TextMessage, []byte("x")); err != nil {
		t.Fatal(err)
	}
	read(t, c)
	res, err := r.httpClient().Get(r.url("/nowhere"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	s := r.scrape(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(s.raw)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s\n--- the scrape:\n%s", err, out, s.raw)
	}
}
