// Package webapp is the lab's web application: one server binary that runs
// one app kind (protocol.Kinds: echo-http, chat-ws, sse, grpc, the
// intermediaries, term) speaking one of the kind's protocols. It stands
// alone — it imports nothing of the lab or the UI, only the protocol
// packages — so the same code runs in a container (apps/ main package,
// built FROM scratch) and in-process for the embedded lab. Every kind with
// protocol.Kind.Metrics serves its own Prometheus metrics at GET /metrics
// (metrics.go).
package webapp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/protolab/protolab-tui/protocol"
)

// Version is the application version reported by GET /.
const Version = "1.0.0"

// DefaultReadLimit is the largest WebSocket message a server accepts by default.
const DefaultReadLimit = 64 << 10

// Config configures one server.
type Config struct {
	// Protocol is the protocol to speak.
	Protocol protocol.Protocol
	// Kind is the server to run (default: the protocol's default kind).
	Kind string
	// Shell is what a web terminal (kind term) runs for each session
	// (default DefaultShell).
	Shell []string
	// TermExec, when set, makes a web terminal's shells execs in a
	// container through the Docker Engine API (termexec.go) instead of a
	// pty of the app's own.
	TermExec *TermExec
	// Name is the application name reported by GET / (default
	// "protolab-<protocol>").
	Name string
	// TLS is the server TLS configuration; required for the TLS protocols
	// (https, wss, h2, grpcs). Its NextProtos, when empty, become the
	// protocol's ALPN then http/1.1.
	TLS *tls.Config
	// ReadLimit is the largest WebSocket message accepted (once inflated,
	// for a compressed one); a larger one is refused with close code 1009.
	// It also bounds what an sse app takes in a POST (413) and a gRPC
	// message (RESOURCE_EXHAUSTED). Zero means DefaultReadLimit.
	ReadLimit int64
	// AllowedOrigins lists extra Origin values a browser may connect from
	// (e.g. "http://localhost:8080"); same-origin requests and requests with no
	// Origin header (non-browser clients) are always allowed. "*" allows any.
	AllowedOrigins []string
	// PingInterval is how often the server pings each WebSocket peer; a peer
	// that does not answer within twice the interval is dropped. An sse app
	// sends a keep-alive comment on each stream as often. Zero means 20s.
	PingInterval time.Duration
	// ShutdownGrace bounds how long Shutdown waits for WebSocket peers to
	// acknowledge the 1001 close frame. Zero means 2s.
	ShutdownGrace time.Duration

	// Upstreams are an intermediary's upstream apps (a front's one, a
	// balancer's replicas, a proxy's targets), or an sse app's chat-ws feed;
	// the kind's rule says what they must speak.
	Upstreams []Upstream
	// Affinity is a balancer's: "cookie" pins a client to the replica that
	// first served it; "" or "none" is round robin.
	Affinity string
	// HandshakeTimeout bounds a TLS front's handshake, and a grpc app's
	// look at a new connection (its TLS handshake, or its first bytes in
	// clear text) (zero: 10s).
	HandshakeTimeout time.Duration
	// HealthInterval is how often a balancer checks its replicas (zero: 1s).
	HealthInterval time.Duration
	// RootCAs verifies TLS upstreams (a proxy's wss targets, an sse app's
	// wss chat); required when there is one.
	RootCAs *x509.CertPool
	// UpstreamKeyLog, when set, receives the TLS secrets of connections the
	// app makes to TLS upstreams, so a capture of them can be decrypted.
	UpstreamKeyLog io.Writer
	// TokenSecret is the lab secret a ws-proxy checks tokens with
	// (protocol/labtoken); required for that kind.
	TokenSecret []byte
	// Compression is how a WebSocket app compresses messages:
	// protocol.CompressionNone ("" too) or protocol.CompressionDeflate
	// (permessage-deflate, RFC 7692, for clients that offer it).
	Compression string
}

// Upstream is an app an intermediary forwards to.
type Upstream struct {
	// Name is the upstream app's name: a proxy's clients name it as the
	// target, a balancer names it as the replica.
	Name     string
	Protocol protocol.Protocol
	// Addr is host:port to dial.
	Addr string
	// ServerName is the TLS server name for TLS upstreams (default
	// "localhost", which the lab's certificate carries).
	ServerName string
}

// ParseUpstreams reads upstreams written name=protocol://host:port,
// comma-separated (how the app command and containers get them).
func ParseUpstreams(s string) ([]Upstream, error) {
	var out []Upstream
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, rest, ok := strings.Cut(part, "=")
		scheme, addr, ok2 := strings.Cut(rest, "://")
		if !ok || !ok2 || name == "" || addr == "" {
			return nil, fmt.Errorf("upstream %q: want name=protocol://host:port", part)
		}
		p, err := protocol.Parse(scheme)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: %w", part, err)
		}
		out = append(out, Upstream{Name: name, Protocol: p, Addr: addr})
	}
	return out, nil
}

// FormatUpstreams writes upstreams as ParseUpstreams reads them.
func FormatUpstreams(ups []Upstream) string {
	parts := make([]string, len(ups))
	for i, u := range ups {
		parts[i] = u.Name + "=" + string(u.Protocol) + "://" + u.Addr
	}
	return strings.Join(parts, ",")
}

func (c Config) withDefaults() (Config, error) {
	k, err := protocol.CheckApp(c.Kind, c.Protocol)
	if err != nil {
		return c, err
	}
	c.Kind = k.Name
	if c.Name == "" {
		c.Name = "protolab-" + string(c.Protocol)
	}
	if c.ReadLimit == 0 {
		c.ReadLimit = DefaultReadLimit
	}
	if c.ReadLimit < 0 {
		return c, fmt.Errorf("read limit %d: must be positive", c.ReadLimit)
	}
	if c.PingInterval == 0 {
		c.PingInterval = 20 * time.Second
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 2 * time.Second
	}
	if c.Protocol.Secure() && c.TLS == nil {
		return c, errors.New(string(c.Protocol) + " needs a TLS certificate and key")
	}
	if err := c.checkUpstreams(k); err != nil {
		return c, err
	}
	if err := k.CheckCompression(c.Compression); err != nil {
		return c, err
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.HealthInterval == 0 {
		c.HealthInterval = time.Second
	}
	switch c.Affinity {
	case "", "none", "cookie":
	default:
		return c, fmt.Errorf("affinity %q: want none or cookie", c.Affinity)
	}
	if k.Token && len(c.TokenSecret) < 16 {
		return c, fmt.Errorf("a %s needs the lab secret to check tokens (--secret-file)", k.Name)
	}
	return c, nil
}

// checkUpstreams checks the upstreams against the kind's rule (the lab
// checks the lab file the same way; the app stands alone, so it checks too).
func (c Config) checkUpstreams(k protocol.Kind) error {
	n := len(c.Upstreams)
	switch {
	case !k.TakesUpstreams() && n > 0:
		return fmt.Errorf("kind %s takes no upstreams", k.Name)
	case n < k.MinUpstreams:
		return fmt.Errorf("a %s needs at least %d upstream(s) (--upstream name=protocol://host:port)", k.Name, k.MinUpstreams)
	case k.MaxUpstreams > 0 && n > k.MaxUpstreams:
		return fmt.Errorf("a %s takes at most %d upstream(s), not %d", k.Name, k.MaxUpstreams, n)
	}
	seen := map[string]bool{}
	for _, u := range c.Upstreams {
		if u.Name == "" || u.Addr == "" || seen[u.Name] {
			return fmt.Errorf("upstream %+v: each needs its own name and an address", u)
		}
		seen[u.Name] = true
		if ok, want := k.Upstreams.Allows(c.Protocol, u.Protocol); !ok {
			return fmt.Errorf("a %s over %s wants %s; upstream %s speaks %s", k.Name, c.Protocol, want, u.Name, u.Protocol)
		}
		if u.Protocol.Secure() && c.RootCAs == nil {
			return fmt.Errorf("upstream %s speaks %s: the app needs the lab CA to verify it (--ca)", u.Name, u.Protocol)
		}
	}
	return nil
}
