package webapp

import (
	"bufio"
	"encoding/binary"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/protocol/rfc6455"
)

// metrics are one server's Prometheus metrics, in a registry of its own:
// the embedded lab runs several apps in one process, and each serves only
// its own numbers at GET /metrics (protocol.Metric* names them).
//
// Every label has a bounded set of values: route is one of the server's
// route patterns (never a raw path), code a status the server sent or a
// close code folded into its range.
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	wsOpen     prometheus.Gauge
	wsAccepted *prometheus.CounterVec
	msgs       *prometheus.CounterVec
	closes     *prometheus.CounterVec
	msgIn      prometheus.Counter
	msgOut     prometheus.Counter

	// An sse app's (kind sse only).
	sseOpen   prometheus.Gauge
	sseEvents *prometheus.CounterVec
	// A grpc app's (kind grpc only; grpc.go's interceptors count).
	grpcCalls  *prometheus.CounterVec
	grpcMsgs   *prometheus.CounterVec
	grpcOpen   prometheus.Gauge
	grpcMsgIn  prometheus.Counter
	grpcMsgOut prometheus.Counter
}

// durationBuckets span a loopback answer (a tenth of a millisecond) to a
// slow upstream (seconds).
var durationBuckets = prometheus.ExponentialBuckets(0.0001, 4, 9)

func newMetrics(cfg Config) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: protocol.MetricRequests,
			Help: "HTTP requests answered, by route pattern and status code (101: a WebSocket upgrade)."}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: protocol.MetricRequestDuration,
			Help:    "Time to answer an HTTP request (to the upgrade for a WebSocket), by route pattern.",
			Buckets: durationBuckets}, []string{"route"}),
		wsOpen: prometheus.NewGauge(prometheus.GaugeOpts{Name: protocol.MetricWSOpen,
			Help: "WebSocket connections open now."}),
		wsAccepted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: protocol.MetricWSConnections,
			Help: "WebSocket connections accepted, by route pattern."}, []string{"route"}),
		msgs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: protocol.MetricWSMessages,
			Help: "WebSocket data messages, from the app's clients (in) and to them (out)."}, []string{"direction"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: protocol.MetricWSCloses,
			Help: "WebSocket Close frames sent and received, by close code."}, []string{"direction", "code"}),
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{Name: protocol.MetricAppInfo,
		Help:        "The app: its name, kind, protocol and version.",
		ConstLabels: prometheus.Labels{"app": cfg.Name, "kind": cfg.Kind, "protocol": string(cfg.Protocol), "version": Version}})
	info.Set(1)
	m.reg.MustRegister(info, m.requests, m.duration, m.wsOpen, m.wsAccepted, m.msgs, m.closes)
	switch cfg.Kind {
	case protocol.KindSSE:
		m.sseOpen = prometheus.NewGauge(prometheus.GaugeOpts{Name: protocol.MetricSSEOpen,
			Help: "Server-sent event streams open now."})
		m.sseEvents = prometheus.NewCounterVec(prometheus.CounterOpts{Name: protocol.MetricSSEEvents,
			Help: "Server-sent events sent, by event type."}, []string{"event"})
		m.reg.MustRegister(m.sseOpen, m.sseEvents)
		for _, e := range []string{protocol.SSEHello, protocol.SSEEcho} {
			m.sseEvents.WithLabelValues(e)
		}
	case protocol.KindGRPC:
		m.grpcCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: protocol.MetricGRPCCalls,
			Help: "gRPC calls finished, by full method and status code."}, []string{"method", "code"})
		m.grpcMsgs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: protocol.MetricGRPCMessages,
			Help: "gRPC messages, from the app's clients (in) and to them (out)."}, []string{"direction"})
		m.grpcOpen = prometheus.NewGauge(prometheus.GaugeOpts{Name: protocol.MetricGRPCStreamsOpen,
			Help: "gRPC streaming calls open now."})
		m.reg.MustRegister(m.grpcCalls, m.grpcMsgs, m.grpcOpen)
		m.grpcMsgIn, m.grpcMsgOut = m.grpcMsgs.WithLabelValues(protocol.MetricIn), m.grpcMsgs.WithLabelValues(protocol.MetricOut)
	}
	m.msgIn, m.msgOut = m.msgs.WithLabelValues(protocol.MetricIn), m.msgs.WithLabelValues(protocol.MetricOut)
	// Both directions show from the start, at zero.
	for _, d := range []string{protocol.MetricSent, protocol.MetricReceived} {
		m.closes.WithLabelValues(d, strconv.Itoa(int(rfc6455.CloseNormal)))
	}
	return m
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler(s *Server) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{s},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg, // promhttp_metric_handler_errors_total
	})
}

type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.log.Warn("serving metrics", "err", v) }

// The message and close counters are nil-safe: a wsConn built without a
// server (the fuzz tests) counts nothing.

func (m *metrics) messageIn() {
	if m != nil {
		m.msgIn.Inc()
	}
}

func (m *metrics) messageOut() {
	if m != nil {
		m.msgOut.Inc()
	}
}

// closeFrame counts a Close frame sent or received with its payload.
func (m *metrics) closeFrame(direction string, payload []byte) {
	if m == nil {
		return
	}
	code := "invalid"
	switch {
	case len(payload) == 0:
		code = "none"
	case len(payload) >= 2:
		code = closeCodeLabel(binary.BigEndian.Uint16(payload))
	}
	m.closes.WithLabelValues(direction, code).Inc()
}

// closeInvalid counts a Close frame received that broke the framing rules.
func (m *metrics) closeInvalid() {
	if m != nil {
		m.closes.WithLabelValues(protocol.MetricReceived, "invalid").Inc()
	}
}

// closeCode counts a Close frame of a known code (gorilla hands the proxy
// codes, not payloads); 1005 is a Close frame without one.
func (m *metrics) closeCode(direction string, code int) {
	if m == nil {
		return
	}
	label := "invalid"
	switch {
	case code == int(rfc6455.CloseNoStatus):
		label = "none"
	case code >= 0 && code <= 0xffff:
		label = closeCodeLabel(uint16(code))
	}
	m.closes.WithLabelValues(direction, label).Inc()
}

// closeCodeLabel is a close code as a label: the codes RFC 6455 defines as
// themselves, the registered (3000–3999) and private (4000–4999) ranges
// folded, so a peer cannot grow the label set; anything else is invalid.
func closeCodeLabel(code uint16) string {
	switch {
	case code >= 3000 && code <= 3999:
		return "3xxx"
	case code >= 4000 && code <= 4999:
		return "4xxx"
	case rfc6455.ValidCloseCode(code):
		return strconv.Itoa(int(code))
	}
	return "invalid"
}

// instrument wraps the server's mux: every request is counted and timed
// under the route pattern that served it (r.Pattern, one of the patterns
// the server registered; RouteNone when none matched — a 404 or 405 the
// mux answered). A request whose connection is hijacked (a WebSocket
// upgrade) counts as 101 at the upgrade and holds the open-connections
// gauge until its handler returns.
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &recorder{ResponseWriter: w, m: m, r: r, start: time.Now()}
		defer rw.finish()
		next.ServeHTTP(rw, r)
	})
}

func route(r *http.Request) string {
	if r.Pattern == "" {
		return protocol.RouteNone
	}
	return r.Pattern
}

// recorder notes a response's status and whether its connection was taken
// over; it unwraps for http.ResponseController (flushes, deadlines).
type recorder struct {
	http.ResponseWriter
	m     *metrics
	r     *http.Request
	start time.Time

	mu       sync.Mutex
	status   int
	hijacked bool
	streamed bool // counted when its stream began (streamStarted)
	done     bool
}

func (rw *recorder) WriteHeader(code int) {
	rw.mu.Lock()
	if rw.status == 0 && code >= 200 { // not an informational 1xx
		rw.status = code
	}
	rw.mu.Unlock()
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(b []byte) (int, error) {
	rw.mu.Lock()
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	rw.mu.Unlock()
	return rw.ResponseWriter.Write(b)
}

func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// Flush passes a flush on (the balancer streams answers).
func (rw *recorder) Flush() {
	_ = http.NewResponseController(rw.ResponseWriter).Flush()
}

// Hijack takes the connection over (a WebSocket upgrade): the request is
// counted now, as 101, and the connection is open until the handler ends.
func (rw *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(rw.ResponseWriter).Hijack()
	if err != nil {
		return c, brw, err
	}
	rw.mu.Lock()
	rw.hijacked = true
	rw.mu.Unlock()
	rt := route(rw.r)
	rw.m.requests.WithLabelValues(rt, strconv.Itoa(http.StatusSwitchingProtocols)).Inc()
	rw.m.duration.WithLabelValues(rt).Observe(time.Since(rw.start).Seconds())
	rw.m.wsAccepted.WithLabelValues(rt).Inc()
	rw.m.wsOpen.Inc()
	return c, brw, nil
}

// streamStarted counts a response that streams (server-sent events) when
// its stream begins: its status, and the time to its first event — the
// stream's lifetime is no request's latency.
func (rw *recorder) streamStarted() {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.done || rw.hijacked || rw.streamed {
		return
	}
	rw.streamed = true
	status := rw.status
	if status == 0 {
		status = http.StatusOK
	}
	rt := route(rw.r)
	rw.m.requests.WithLabelValues(rt, strconv.Itoa(status)).Inc()
	rw.m.duration.WithLabelValues(rt).Observe(time.Since(rw.start).Seconds())
}

// streamStarted tells the metrics middleware under w, if any, that the
// response streams from now on (recorder.streamStarted).
func streamStarted(w http.ResponseWriter) {
	for {
		switch x := w.(type) {
		case *recorder:
			x.streamStarted()
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return
		}
	}
}

// finish counts the request when its handler returns (an HTTP answer), or
// lets its WebSocket connection go (a hijacked one).
func (rw *recorder) finish() {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.done {
		return
	}
	rw.done = true
	if rw.hijacked {
		rw.m.wsOpen.Dec()
		return
	}
	if rw.streamed {
		return // counted when it began
	}
	status := rw.status
	if status == 0 {
		status = http.StatusOK // a handler that wrote nothing: net/http sends 200
	}
	rt := route(rw.r)
	rw.m.requests.WithLabelValues(rt, strconv.Itoa(status)).Inc()
	rw.m.duration.WithLabelValues(rt).Observe(time.Since(rw.start).Seconds())
}
