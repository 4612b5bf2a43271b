package lab

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sys/unix"

	"github.com/protolab/protolab-tui/protocol"
)

// AppMetrics are a few live numbers from an app's GET /metrics
// (protocol.MetricsPath), summed over their labels.
type AppMetrics struct {
	App string `json:"app"`
	// Requests are the HTTP requests the app answered (WebSocket upgrades
	// included), the scrapes of /metrics left out.
	Requests float64 `json:"requests"`
	// WSOpen are the WebSocket connections open now.
	WSOpen float64 `json:"ws_open"`
	// MessagesIn and MessagesOut are WebSocket data messages from and to
	// the app's clients.
	MessagesIn  float64 `json:"messages_in"`
	MessagesOut float64 `json:"messages_out"`
	// ClosesSent and ClosesReceived are WebSocket Close frames, any code.
	ClosesSent     float64 `json:"closes_sent"`
	ClosesReceived float64 `json:"closes_received"`
	// StreamsOpen are the event streams (sse) or gRPC streaming calls
	// open now; Events the server-sent events sent; Calls the gRPC calls
	// finished; GRPCIn and GRPCOut the gRPC messages from and to clients.
	StreamsOpen float64 `json:"streams_open,omitempty"`
	Events      float64 `json:"events,omitempty"`
	Calls       float64 `json:"calls,omitempty"`
	GRPCIn      float64 `json:"grpc_in,omitempty"`
	GRPCOut     float64 `json:"grpc_out,omitempty"`
}

// ErrNoMetrics is Metrics' error for an app whose kind serves no /metrics
// (protocol.Kind.Metrics: a TLS front, which speaks no HTTP of its own).
var ErrNoMetrics = errors.New("this kind of app serves no /metrics")

// maxScrape bounds a scrape's body.
const maxScrape = 4 << 20

// Metrics scrapes the named app's /metrics over its endpoint — HTTPS
// verified with the lab CA for a TLS app, on one kept-alive connection per
// app — and sums the numbers AppMetrics has. A scrape is a real request:
// a live capture shows it in the app's list.
func (l *Lab) Metrics(ctx context.Context, app string) (AppMetrics, error) {
	cfg, st, err := l.reachable(app)
	if err != nil {
		return AppMetrics{}, err
	}
	if k, _ := protocol.LookupKind(cfg.Kind); !k.Metrics {
		return AppMetrics{}, fmt.Errorf("%s (%s): %w", app, cfg.Kind, ErrNoMetrics)
	}
	scheme := "http"
	if cfg.Protocol.Secure() {
		scheme = "https"
	}
	url := scheme + "://" + st.Endpoint + protocol.MetricsPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return AppMetrics{}, fmt.Errorf("%s: scraping %s: %w", app, url, err)
	}
	res, err := l.scraper().Do(req)
	if err != nil {
		return AppMetrics{}, fmt.Errorf("%s: scraping %s: %w", app, url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return AppMetrics{}, fmt.Errorf("%s: scraping %s: answered %s", app, url, res.Status)
	}
	m, err := ParseMetrics(io.LimitReader(res.Body, maxScrape))
	if err != nil {
		return AppMetrics{}, fmt.Errorf("%s: scraping %s: %w", app, url, err)
	}
	m.App = app
	return m, nil
}

// scraper is the lab's client for /metrics: the lab CA's pool, the name
// its certificates carry, TLS secrets to the lab's key log (so a capture
// decrypts the scrapes as it does the probes), HTTP/1.1 as the apps speak.
func (l *Lab) scraper() *http.Client {
	l.scrapeOnce.Do(func() {
		l.scrapeClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DialContext: l.scrapeDial,
			TLSClientConfig: &tls.Config{RootCAs: l.pki.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12,
				NextProtos: []string{"http/1.1"}, KeyLogWriter: l.keys},
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     time.Minute,
		}}
	})
	return l.scrapeClient
}

// scrapeDial connects a scrape, first telling the wire store to set its
// connection aside (wire.Store.SetAside), so that the explorer's scrapes
// show in a capture but do not count in the app's wire figures (the
// comparison's bytes per message). The store classes a flow at its first
// packet, so the port is bound here, before the SYN, and registered then.
// Where the capture sees another client port (a lab host's own tcpdump
// behind an SSH tunnel), the scrapes count as any client's would.
func (l *Lab) scrapeDial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if server, err := netip.ParseAddrPort(addr); err == nil {
		d.Control = func(network, _ string, rc syscall.RawConn) error {
			var port int
			var berr error
			err := rc.Control(func(fd uintptr) {
				var sa unix.Sockaddr = &unix.SockaddrInet4{}
				if network == "tcp6" {
					sa = &unix.SockaddrInet6{}
				}
				if berr = unix.Bind(int(fd), sa); berr != nil {
					return
				}
				got, err := unix.Getsockname(int(fd))
				switch a := got.(type) {
				case *unix.SockaddrInet4:
					port = a.Port
				case *unix.SockaddrInet6:
					port = a.Port
				default:
					berr = fmt.Errorf("the socket's own address: %v", err)
				}
			})
			if err == nil {
				err = berr
			}
			if err != nil {
				return fmt.Errorf("binding the scrape's port: %w", err)
			}
			l.store.SetAside(server, uint16(port))
			return nil
		}
	}
	return d.DialContext(ctx, network, addr)
}

// ParseMetrics reads a scrape in the Prometheus text format and sums the
// numbers AppMetrics has. Families it does not know are ignored; a scrape
// that does not parse, or one that has a known family of the wrong type,
// is an error that says where.
func ParseMetrics(r io.Reader) (AppMetrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return AppMetrics{}, fmt.Errorf("not the Prometheus text format: %w", err)
	}
	var m AppMetrics
	for _, f := range []struct {
		name string
		typ  dto.MetricType
		add  func(mt *dto.Metric, v float64)
	}{
		{protocol.MetricRequests, dto.MetricType_COUNTER, func(mt *dto.Metric, v float64) {
			if label(mt, "route") != "GET "+protocol.MetricsPath {
				m.Requests += v
			}
		}},
		{protocol.MetricWSOpen, dto.MetricType_GAUGE, func(_ *dto.Metric, v float64) { m.WSOpen += v }},
		{protocol.MetricWSMessages, dto.MetricType_COUNTER, func(mt *dto.Metric, v float64) {
			switch label(mt, "direction") {
			case protocol.MetricIn:
				m.MessagesIn += v
			case protocol.MetricOut:
				m.MessagesOut += v
			}
		}},
		{protocol.MetricWSCloses, dto.MetricType_COUNTER, func(mt *dto.Metric, v float64) {
			switch label(mt, "direction") {
			case protocol.MetricSent:
				m.ClosesSent += v
			case protocol.MetricReceived:
				m.ClosesReceived += v
			}
		}},
		{protocol.MetricSSEOpen, dto.MetricType_GAUGE, func(_ *dto.Metric, v float64) { m.StreamsOpen += v }},
		{protocol.MetricSSEEvents, dto.MetricType_COUNTER, func(_ *dto.Metric, v float64) { m.Events += v }},
		{protocol.MetricGRPCStreamsOpen, dto.MetricType_GAUGE, func(_ *dto.Metric, v float64) { m.StreamsOpen += v }},
		{protocol.MetricGRPCCalls, dto.MetricType_COUNTER, func(_ *dto.Metric, v float64) { m.Calls += v }},
		{protocol.MetricGRPCMessages, dto.MetricType_COUNTER, func(mt *dto.Metric, v float64) {
			switch label(mt, "direction") {
			case protocol.MetricIn:
				m.GRPCIn += v
			case protocol.MetricOut:
				m.GRPCOut += v
			}
		}},
	} {
		fam := fams[f.name]
		if fam == nil {
			continue
		}
		if fam.GetType() != f.typ {
			return AppMetrics{}, fmt.Errorf("%s is a %s, want a %s", f.name, strings.ToLower(fam.GetType().String()), strings.ToLower(f.typ.String()))
		}
		for _, mt := range fam.GetMetric() {
			v := mt.GetCounter().GetValue()
			if f.typ == dto.MetricType_GAUGE {
				v = mt.GetGauge().GetValue()
			}
			f.add(mt, v)
		}
	}
	return m, nil
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}
