// Package probe holds the lab's clients: one per protocol, each verifying TLS
// against the lab CA. Run measures a protocol — connection setup cost (TCP
// connect, TLS handshake, first HTTP request or WebSocket upgrade), then N echo
// round trips for latency percentiles and throughput, and the bytes that went
// through the socket. Send delivers a single message and returns the echo.
package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/protolab/protolab-tui/protocol"
)

// Target says where an app is, which protocol it speaks and how to reach it.
type Target struct {
	// App names the app (in messages and results; default: the protocol).
	App      string
	Protocol protocol.Protocol
	// Addr is the host:port to dial from this machine.
	Addr string
	// ServerName is the TLS server name and HTTP Host (default: Addr's host).
	ServerName string
	// RootCAs verifies the server; required for https and wss.
	RootCAs *x509.CertPool
	// Roots are the certificates RootCAs holds, so a probe worker (another
	// process) can build the same pool; required for https and wss there.
	Roots []*x509.Certificate
	// KeyLog, when set, receives the TLS key log (NSS format) so a capture of
	// this connection can be decrypted.
	KeyLog io.Writer
	// Dial replaces the default TCP dialer (e.g. an SSH port forward).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Connected, when set, is called once Run's connection is set up,
	// before the round trips (from the worker too).
	Connected func()
	// Path is where the app echoes (a POST body, or WebSocket messages);
	// default "/echo". A ws-proxy's is /<token>/<target>/echo.
	Path string
	// Compression asks a WebSocket client to offer permessage-deflate
	// (protocol.CompressionDeflate): the app's compression is on.
	Compression string
}

func (t Target) echoPath() string {
	if t.Path == "" {
		return "/echo"
	}
	return t.Path
}

// Options tunes Run.
type Options struct {
	// Count is the number of echo round trips (default 200).
	Count int `yaml:"count,omitempty" json:"count,omitempty"`
	// Payload is the size of each echo message in bytes (default 32).
	Payload int `yaml:"payload,omitempty" json:"payload,omitempty"`
	// Timeout bounds the whole run (default 30s).
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Warmup is the number of echo round trips made and not measured before
	// the Count measured ones (default 0), so connection-level warm-up (TLS
	// session, Go runtime, the app's buffers) stays out of the figures.
	Warmup int `yaml:"warmup,omitempty" json:"warmup,omitempty"`
	// Client is where the client runs: "worker" (default: a separate
	// protolab process, when this binary can be one) or "in-process".
	Client string `yaml:"client,omitempty" json:"client,omitempty"`
	// Mode is how the measured echoes go: ModeClosed (default: one in
	// flight) or ModeOpen (sent at Rate without waiting for the echoes;
	// openloop.go says what that is for each protocol). CheckMode checks
	// Mode and Rate.
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty"`
	// Rate is the messages per second an open-loop probe offers (0: as
	// fast as the connection takes them).
	Rate float64 `yaml:"rate,omitempty" json:"rate,omitempty"`
}

// DefaultCount is the default number of echo round trips.
const DefaultCount = 200

// WithDefaults fills the options left unset.
func (o Options) WithDefaults() Options { return o.withDefaults() }

func (o Options) withDefaults() Options {
	if o.Count <= 0 {
		o.Count = DefaultCount
	}
	if o.Payload <= 0 {
		o.Payload = 32
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return o
}

// Result is one app's measurement. Times are in milliseconds.
type Result struct {
	App      string            `json:"app"`
	Protocol protocol.Protocol `json:"protocol"`
	OK       bool              `json:"ok"`
	Error    string            `json:"error,omitempty"`
	Addr     string            `json:"addr"`

	ConnectMs   float64 `json:"connect_ms"`   // TCP three-way handshake
	TLSMs       float64 `json:"tls_ms"`       // TLS handshake (0 for plain protocols)
	HandshakeMs float64 `json:"handshake_ms"` // first HTTP request, or WebSocket upgrade
	SetupMs     float64 `json:"setup_ms"`     // the three together
	TLSVersion  string  `json:"tls_version,omitempty"`
	TLSCipher   string  `json:"tls_cipher,omitempty"`
	// TookMs is how long the whole probe took (setup, warm-up and echo
	// phase), as the lab waited for it.
	TookMs float64 `json:"took_ms,omitempty"`

	Messages  int     `json:"messages"` // echo round trips completed
	RTTP50Ms  float64 `json:"rtt_p50_ms"`
	RTTP99Ms  float64 `json:"rtt_p99_ms"`
	RTTMinMs  float64 `json:"rtt_min_ms"`
	RTTMaxMs  float64 `json:"rtt_max_ms"`
	MsgsPerS  float64 `json:"msgs_per_s"`
	PayloadB  int     `json:"payload_bytes"` // bytes of each echo message
	SetupB    int64   `json:"setup_bytes"`   // socket bytes (both ways) during setup
	SentB     int64   `json:"sent_bytes"`    // socket bytes sent during the echo phase
	RecvB     int64   `json:"recv_bytes"`    // socket bytes received during the echo phase
	BytesPerM float64 `json:"bytes_per_message"`

	// Client says where the client ran: ClientWorker, ClientWorkerRelay or
	// ClientInProcess.
	Client string `json:"client,omitempty"`
	// ClientCPUs is the CPU the worker was pinned to, or why it was not
	// (empty: not asked, on a machine with too few CPUs to give it one).
	ClientCPUs string `json:"client_cpus,omitempty"`
	// Warmup is the number of unmeasured round trips before the measured ones.
	Warmup int `json:"warmup,omitempty"`
	// Conns are the measured connections as the wire sees them, closed,
	// so a capture can be waited for until it has taken in exactly these
	// bytes (one for most protocols; SSE posts its echoes on a second).
	Conns []ConnBytes `json:"conns,omitempty"`
	// Compression is the compression the connection negotiated
	// (protocol.CompressionDeflate), "" for none.
	Compression string `json:"compression,omitempty"`
	// Variants are other ways the same app was measured on the same
	// connection (gRPC: its chat stream beside the unary echo).
	Variants []Variant `json:"variants,omitempty"`
	// Replicas counts the responses each replica served, when a balancer
	// on the path names them (the WebSocket upgrade's, or each HTTP one's).
	Replicas map[string]int `json:"replicas,omitempty"`
	// Mode is how the echoes were measured: ModeClosed or ModeOpen
	// (Options.Mode); ModeNote says why an open-loop probe was measured
	// closed-loop. OfferedPerS, open-loop, is the rate the messages went
	// out at; MsgsPerS is the rate their echoes came back at.
	Mode        string  `json:"mode,omitempty"`
	ModeNote    string  `json:"mode_note,omitempty"`
	OfferedPerS float64 `json:"offered_per_s,omitempty"`
}

// Variant is a second way an app's echo was measured: its round trips
// and what they cost on the socket.
type Variant struct {
	// Name says how ("stream": gRPC's bidirectional chat, one member's
	// message to another on the same connection).
	Name      string  `json:"name"`
	Messages  int     `json:"messages"`
	RTTP50Ms  float64 `json:"rtt_p50_ms"`
	RTTP99Ms  float64 `json:"rtt_p99_ms"`
	MsgsPerS  float64 `json:"msgs_per_s"`
	SentB     int64   `json:"sent_bytes"`
	RecvB     int64   `json:"recv_bytes"`
	BytesPerM float64 `json:"bytes_per_message"`
}

// ConnBytes is one TCP connection of a probe: its ends and the socket bytes
// (below TLS) that crossed it each way, from connect to close.
type ConnBytes struct {
	Client string `json:"client"`
	Server string `json:"server"`
	Sent   int64  `json:"sent"`
	Recv   int64  `json:"recv"`
}

// fail records err in r and returns both.
func (r Result) fail(err error) (Result, error) {
	r.OK = false
	r.Error = err.Error()
	return r, err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// countingConn counts the bytes that cross the socket (below TLS).
type countingConn struct {
	net.Conn
	sent, recv atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.recv.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.sent.Add(int64(n))
	return n, err
}

func (c *countingConn) total() int64 { return c.sent.Load() + c.recv.Load() }

// name is the app's name, or the protocol's when the target names no app.
func (t Target) name() string {
	if t.App != "" {
		return t.App
	}
	return string(t.Protocol)
}

func (t Target) serverName() string {
	if t.ServerName != "" {
		return t.ServerName
	}
	host, _, err := net.SplitHostPort(t.Addr)
	if err != nil {
		return t.Addr
	}
	return host
}

// hostPort is the authority used in URLs: the server name with Addr's port.
func (t Target) hostPort() string {
	_, port, err := net.SplitHostPort(t.Addr)
	if err != nil {
		return t.Addr
	}
	return net.JoinHostPort(t.serverName(), port)
}

// alpn is what the protocol offers in its TLS handshake: its descriptor's
// ALPN list (HTTP/1.1 for a protocol that names none).
func (t Target) alpn() []string {
	if a := t.Protocol.Desc().ALPN; len(a) > 0 {
		return a
	}
	return []string{"http/1.1"}
}

func (t Target) tlsConfig(nextProtos ...string) (*tls.Config, error) {
	if t.RootCAs == nil {
		return nil, fmt.Errorf("%s probe: no lab CA to verify the server against", t.name())
	}
	return &tls.Config{
		RootCAs:      t.RootCAs,
		ServerName:   t.serverName(),
		NextProtos:   nextProtos,
		KeyLogWriter: t.KeyLog,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// conn is an established (and, for secure protocols, TLS-wrapped) connection
// with its setup timings.
type conn struct {
	net.Conn               // what the protocol layer talks to
	raw      *countingConn // the TCP socket
	connect  time.Duration // TCP connect
	tlsDur   time.Duration // TLS handshake
	state    *tls.ConnectionState
	replicas map[string]int // responses per replica, as a balancer names them
}

// saw counts the replica a response names (protocol.ReplicaHeader), if any.
func (c *conn) saw(h http.Header) {
	if name := h.Get(protocol.ReplicaHeader); name != "" {
		if c.replicas == nil {
			c.replicas = map[string]int{}
		}
		c.replicas[name]++
	}
}

// dial connects to the target and runs the TLS handshake for secure protocols.
func (t Target) dial(ctx context.Context, nextProtos ...string) (*conn, error) {
	dial := t.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	start := time.Now()
	nc, err := dial(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, fmt.Errorf("%s: connecting to %s: %w", t.name(), t.Addr, err)
	}
	c := &conn{raw: &countingConn{Conn: nc}, connect: time.Since(start)}
	c.Conn = c.raw
	if !t.Protocol.Secure() {
		return c, nil
	}
	cfg, err := t.tlsConfig(nextProtos...)
	if err != nil {
		nc.Close()
		return nil, err
	}
	start = time.Now()
	tc := tls.Client(c.raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("%s: TLS handshake with %s: %w", t.name(), t.Addr, err)
	}
	c.tlsDur = time.Since(start)
	st := tc.ConnectionState()
	c.state = &st
	c.Conn = tc
	return c, nil
}

// Run measures one protocol. The error is also recorded in Result.Error.
func Run(ctx context.Context, t Target, o Options) (Result, error) {
	o = o.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	r := Result{App: t.name(), Protocol: t.Protocol, Addr: t.Addr, PayloadB: o.Payload}
	s, err := open(ctx, t)
	if err != nil {
		return r.fail(err)
	}
	closed := false
	closeNow := func() {
		if !closed {
			closed = true
			s.close()
		}
	}
	defer closeNow()
	conns := connsOf(s)
	for _, c := range conns {
		r.ConnectMs += ms(c.connect)
		r.TLSMs += ms(c.tlsDur)
		r.SetupB += c.raw.total()
	}
	r.HandshakeMs = ms(s.handshake())
	r.SetupMs = r.ConnectMs + r.TLSMs + r.HandshakeMs
	if c := s.conn(); c.state != nil {
		r.TLSVersion = tls.VersionName(c.state.Version)
		r.TLSCipher = tls.CipherSuiteName(c.state.CipherSuite)
	}
	if cs, ok := s.(compressing); ok {
		r.Compression = cs.compression()
	}

	if t.Connected != nil {
		t.Connected()
	}
	for i := range o.Warmup {
		msg := Payload(i, o.Payload)
		if got, err := s.echo(ctx, msg); err != nil || got != msg {
			if err == nil {
				err = fmt.Errorf("came back different: sent %q, got %q", msg, got)
			}
			return r.fail(fmt.Errorf("%s: warm-up echo %d of %d: %w", t.name(), i+1, o.Warmup, err))
		}
	}
	r.Warmup = o.Warmup
	fig, err := measureAs(ctx, &r, s, conns, o)
	r.Messages = fig.Messages
	if err != nil {
		return r.fail(fmt.Errorf("%s: %w", t.name(), err))
	}
	r.RTTP50Ms, r.RTTP99Ms, r.RTTMinMs, r.RTTMaxMs = fig.RTTP50Ms, fig.RTTP99Ms, fig.rttMin, fig.rttMax
	r.MsgsPerS, r.SentB, r.RecvB, r.BytesPerM = fig.MsgsPerS, fig.SentB, fig.RecvB, fig.BytesPerM
	if vs, ok := s.(varianter); ok {
		for _, v := range vs.variants() {
			fig, err := measure(ctx, conns, o, v.echo)
			fig.Name = v.name
			if err != nil {
				return r.fail(fmt.Errorf("%s (%s): %w", t.name(), v.name, err))
			}
			r.Variants = append(r.Variants, fig.Variant)
		}
	}
	closeNow()
	for _, c := range conns {
		r.Conns = append(r.Conns, ConnBytes{Client: c.raw.LocalAddr().String(), Server: c.raw.RemoteAddr().String(),
			Sent: c.raw.sent.Load(), Recv: c.raw.recv.Load()})
	}
	r.Replicas = s.conn().replicas
	r.OK = true
	return r, nil
}

// figures are one series of round trips measured.
type figures struct {
	Variant
	rttMin, rttMax float64
}

// measure makes o.Count round trips with echo and measures them: the
// latencies, the rate, and the socket bytes they cost on conns.
func measure(ctx context.Context, conns []*conn, o Options, echo func(context.Context, string) (string, error)) (figures, error) {
	var f figures
	bytes := func() (int64, int64) { return socketBytes(conns) }
	sent0, recv0 := bytes()
	rtts := make([]time.Duration, 0, o.Count)
	begin := time.Now()
	for i := range o.Count {
		msg := Payload(i, o.Payload)
		start := time.Now()
		got, err := echo(ctx, msg)
		if err != nil {
			f.Messages = len(rtts)
			return f, fmt.Errorf("echo %d of %d: %w", i+1, o.Count, err)
		}
		rtts = append(rtts, time.Since(start))
		if got != msg {
			f.Messages = len(rtts)
			return f, fmt.Errorf("echo %d of %d came back different: sent %q, got %q", i+1, o.Count, msg, got)
		}
	}
	elapsed := time.Since(begin)
	f.Messages = len(rtts)
	sent, recv := bytes()
	f.SentB, f.RecvB = sent-sent0, recv-recv0
	f.BytesPerM = float64(f.SentB+f.RecvB) / float64(2*f.Messages)
	f.MsgsPerS = float64(f.Messages) / elapsed.Seconds()
	slices.Sort(rtts)
	f.RTTP50Ms, f.RTTP99Ms = ms(Percentile(rtts, 50)), ms(Percentile(rtts, 99))
	f.rttMin, f.rttMax = ms(rtts[0]), ms(rtts[len(rtts)-1])
	return f, nil
}

// socketBytes sums the bytes sent and received on conns' sockets so far.
func socketBytes(conns []*conn) (sent, recv int64) {
	for _, c := range conns {
		sent += c.raw.sent.Load()
		recv += c.raw.recv.Load()
	}
	return sent, recv
}

// Percentile returns the p-th percentile (nearest rank) of sorted durations.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// Payload returns the i-th echo message of n bytes: readable text, so packet
// previews show it.
func Payload(i, n int) string {
	head := fmt.Sprintf("protolab-%06d ", i)
	if n <= len(head) {
		return head[:n]
	}
	return head + strings.Repeat("x", n-len(head))
}

// SendResult is the outcome of Send.
type SendResult struct {
	App      string            `json:"app"`
	Protocol protocol.Protocol `json:"protocol"`
	Sent     string            `json:"sent"`
	Reply    string            `json:"reply"`
	SetupMs  float64           `json:"setup_ms"`
	RTTMs    float64           `json:"rtt_ms"`
}

// Send opens a connection, sends text once (POST /echo, or a WebSocket text
// message on /echo), reads the echo and closes the connection cleanly.
func Send(ctx context.Context, t Target, text string) (SendResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res := SendResult{App: t.name(), Protocol: t.Protocol, Sent: text}
	s, err := open(ctx, t)
	if err != nil {
		return res, err
	}
	defer s.close()
	c := s.conn()
	res.SetupMs = ms(c.connect + c.tlsDur + s.handshake())
	start := time.Now()
	res.Reply, err = s.echo(ctx, text)
	res.RTTMs = ms(time.Since(start))
	if err != nil {
		return res, fmt.Errorf("%s: sending %q: %w", t.name(), text, err)
	}
	return res, nil
}

// sessions opens, for each way a protocol's connection goes (its
// descriptor's Recognise), the conversation the probe holds with its app.
var sessions = map[protocol.Recognition]func(context.Context, Target) (session, error){
	protocol.RecogniseHTTP:      func(ctx context.Context, t Target) (session, error) { return newHTTPSession(ctx, t) },
	protocol.RecogniseHTTP2:     func(ctx context.Context, t Target) (session, error) { return newHTTPSession(ctx, t) },
	protocol.RecogniseWebSocket: func(ctx context.Context, t Target) (session, error) { return newWSSession(ctx, t) },
	protocol.RecogniseSSE:       func(ctx context.Context, t Target) (session, error) { return newSSESession(ctx, t) },
	protocol.RecogniseGRPC:      func(ctx context.Context, t Target) (session, error) { return newGRPCSession(ctx, t) },
}

// open starts the conversation t's protocol speaks.
func open(ctx context.Context, t Target) (session, error) {
	d, ok := protocol.Lookup(t.Protocol)
	if !ok {
		return nil, fmt.Errorf("%s: unknown protocol %q", t.name(), t.Protocol)
	}
	newSession, ok := sessions[d.Recognise]
	if !ok {
		return nil, fmt.Errorf("%s: no probe speaks %s yet", t.name(), t.Protocol)
	}
	return newSession(ctx, t)
}

// session is one protocol conversation on one connection.
type session interface {
	// conn is the connection the conversation is measured on.
	conn() *conn
	handshake() time.Duration
	echo(ctx context.Context, msg string) (string, error)
	close()
}

// multiConn is a session on more than one connection (SSE posts its
// echoes on a second); conns lists them all, conn() first.
type multiConn interface{ conns() []*conn }

func connsOf(s session) []*conn {
	if m, ok := s.(multiConn); ok {
		return m.conns()
	}
	return []*conn{s.conn()}
}

// compressing is a session that may have negotiated compression.
type compressing interface{ compression() string }

// varianter is a session with other ways to echo besides echo, each
// measured after it on the same connection(s).
type varianter interface{ variants() []variant }

type variant struct {
	name string
	echo func(ctx context.Context, msg string) (string, error)
}

// errClosedByPeer explains a connection that ended under a probe.
var errClosedByPeer = errors.New("connection closed by the server")
