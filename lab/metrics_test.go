package lab_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/protocol"
)

// TestMetricsThroughTheLab: the lab scrapes each app's /metrics at its
// endpoint (https and wss verified with the lab CA) and the numbers move
// with real traffic: a send is a message in and one out, a probe's
// requests are counted, the scrapes themselves are not; a TLS front has
// none, and says so.
func TestMetricsThroughTheLab(t *testing.T) {
	apps := append(anyPorts(), lab.App{Name: "edge", Kind: protocol.KindTLSFront, Protocol: protocol.WSS, Upstream: []string{"ws"}})
	l := newLab(t, lab.Config{Apps: apps})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := l.Metrics(ctx, "ws"); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("a scrape of a lab that is down: %v, want it to say the lab is not running", err)
	}
	if err := wait(t, l.Up(ctx)); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, l.Deploy(ctx)); err != nil {
		t.Fatal(err)
	}
	scrape := func(app string) lab.AppMetrics {
		t.Helper()
		m, err := l.Metrics(ctx, app)
		if err != nil {
			t.Fatalf("metrics of %s: %v", app, err)
		}
		if m.App != app {
			t.Errorf("metrics of %s name %q", app, m.App)
		}
		return m
	}
	for _, app := range []string{"ws", "wss"} {
		before := scrape(app)
		if err := wait(t, l.Send(ctx, app, "count me")); err != nil {
			t.Fatal(err)
		}
		var after lab.AppMetrics
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			// The send's connection is counted closed when its handler ends.
			if after = scrape(app); after.WSOpen == before.WSOpen || time.Now().After(deadline) {
				break
			}
		}
		if after.MessagesIn-before.MessagesIn != 1 || after.MessagesOut-before.MessagesOut != 1 {
			t.Errorf("%s: a send moved messages in %v→%v, out %v→%v; want one each", app, before.MessagesIn, after.MessagesIn, before.MessagesOut, after.MessagesOut)
		}
		if after.Requests-before.Requests != 1 {
			t.Errorf("%s: a send's upgrade moved requests %v→%v, want +1 (scrapes not counted)", app, before.Requests, after.Requests)
		}
		if after.WSOpen != before.WSOpen || after.ClosesReceived <= before.ClosesReceived {
			t.Errorf("%s: after the send's close: open %v (was %v), closes received %v (was %v)", app, after.WSOpen, before.WSOpen, after.ClosesReceived, before.ClosesReceived)
		}
	}
	before := scrape("https")
	_ = wait(t, l.Probe(ctx, "https")) // an error: the others were not measured
	if res := l.Snapshot().Results["https"]; !res.OK {
		t.Fatalf("the https probe failed: %s", res.Error)
	}
	if after := scrape("https"); after.Requests-before.Requests < 20 {
		t.Errorf("https: a probe of 20 round trips moved requests %v→%v", before.Requests, after.Requests)
	}
	if _, err := l.Metrics(ctx, "edge"); !errors.Is(err, lab.ErrNoMetrics) {
		t.Errorf("a tls-front's metrics: %v, want ErrNoMetrics", err)
	}
	if _, err := l.Metrics(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "no app named") {
		t.Errorf("an unknown app: %v", err)
	}
}

// TestParseMetrics: what the summary takes from a scrape, and the errors
// for what is not one.
func TestParseMetrics(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     lab.AppMetrics
		err      string
	}{
		{"empty", "", lab.AppMetrics{}, ""},
		{"sums", `# TYPE protolab_http_requests_total counter
protolab_http_requests_total{route="GET /echo",code="101"} 2
protolab_http_requests_total{route="POST /echo",code="200"} 5
protolab_http_requests_total{route="GET /metrics",code="200"} 9
# TYPE protolab_websocket_connections_open gauge
protolab_websocket_connections_open 1
# TYPE protolab_websocket_messages_total counter
protolab_websocket_messages_total{direction="in"} 3
protolab_websocket_messages_total{direction="out"} 4
# TYPE protolab_websocket_close_codes_total counter
protolab_websocket_close_codes_total{direction="sent",code="1000"} 1
protolab_websocket_close_codes_total{direction="sent",code="4xxx"} 2
protolab_websocket_close_codes_total{direction="received",code="1000"} 1
# TYPE something_else_total counter
something_else_total 7
`, lab.AppMetrics{Requests: 7, WSOpen: 1, MessagesIn: 3, MessagesOut: 4, ClosesSent: 3, ClosesReceived: 1}, ""},
		{"sse and grpc", `# TYPE protolab_sse_streams_open gauge
protolab_sse_streams_open 2
# TYPE protolab_sse_events_total counter
protolab_sse_events_total{event="hello"} 2
protolab_sse_events_total{event="echo"} 40
# TYPE protolab_grpc_calls_total counter
protolab_grpc_calls_total{method="/protolab.Echo/Say",code="OK"} 30
protolab_grpc_calls_total{method="/protolab.Chat/Join",code="AlreadyExists"} 1
# TYPE protolab_grpc_streams_open gauge
protolab_grpc_streams_open 1
# TYPE protolab_grpc_messages_total counter
protolab_grpc_messages_total{direction="in"} 35
protolab_grpc_messages_total{direction="out"} 33
`, lab.AppMetrics{StreamsOpen: 3, Events: 42, Calls: 31, GRPCIn: 35, GRPCOut: 33}, ""},
		{"wrong type", "# TYPE protolab_websocket_connections_open counter\nprotolab_websocket_connections_open 1\n", lab.AppMetrics{}, "is a counter, want a gauge"},
		{"not the format", "<html>hello</html>\n", lab.AppMetrics{}, "not the Prometheus text format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := lab.ParseMetrics(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// FuzzParseMetrics: any bytes give a summary or an error, never a panic.
func FuzzParseMetrics(f *testing.F) {
	f.Add([]byte("# TYPE protolab_websocket_connections_open gauge\nprotolab_websocket_connections_open 1\n"))
	f.Add([]byte("protolab_http_requests_total{route=\"GET /\",code=\"200\"} 1e3\n"))
	f.Add([]byte("# TYPE x histogram\nx_bucket{le=\"+Inf\"} 1\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = lab.ParseMetrics(strings.NewReader(string(in)))
	})
}

// TestScrapesDoNotSkewTheWire: with live capture on, the lab's scrapes of
// every app's /metrics are on the wire (in each app's list) but not in its
// figures: the report after a probe counts exactly the probe's messages,
// as with no scrape at all.
func TestScrapesDoNotSkewTheWire(t *testing.T) {
	testenv.NeedRoot(t)
	l := newLab(t, lab.Config{Capture: lab.CaptureConfig{Mode: "on"}})
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, j := range []func(context.Context) *lab.Job{l.Up, l.Deploy, l.StartCapture} {
		if err := wait(t, j(ctx)); err != nil {
			t.Fatal(err)
		}
	}
	names := l.Config().AppNames()
	scrapeAll := func() {
		t.Helper()
		for _, app := range names {
			if _, err := l.Metrics(ctx, app); err != nil {
				t.Fatalf("metrics of %s: %v", app, err)
			}
		}
	}
	scrapeAll()
	if err := wait(t, l.Probe(ctx)); err != nil {
		t.Fatal(err)
	}
	scrapeAll()
	if err := l.SyncCapture(ctx); err != nil {
		t.Fatal(err)
	}
	scrapeAll()
	// The last scrapes' records arrive a moment after their answers.
	deadline := time.Now().Add(5 * time.Second)
	for _, app := range names {
		for l.Wire().Counters(app).Aside < 3*2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	rep := l.Report()
	for _, app := range names {
		w := rep.Apps[app].Wire
		if w == nil || w.Messages != 2*20+2 || w.Flows != 1 {
			t.Errorf("%s: the wire figures count more than the probe's one connection and 42 messages: %+v", app, w)
		}
		if c := l.Wire().Counters(app); c.Aside < 3*2 {
			t.Errorf("%s: %d records set aside, want the three scrapes' (a request and an answer each, at least)", app, c.Aside)
		}
	}
}
