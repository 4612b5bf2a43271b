// Package protocol is the lab's table of protocols and app kinds: what each
// protocol is called, its default port, whether it runs over TLS, how one of
// its connections is recognised on the wire and what counts as one of its
// messages; and which server (kind) speaks which protocols. The lab, its
// decoders, its probes and the apps all read this one table, so adding a
// protocol is one entry here plus its parser (lab/wire), handler (apps) and
// probe (lab/probe). It imports nothing of the project: the apps stand alone.
package protocol

import (
	"fmt"
	"sort"
	"strings"
)

// Protocol is a protocol's name as the lab file and the command line spell
// it ("http", "wss", …).
type Protocol string

// The protocols of the seed lab.
const (
	HTTP  Protocol = "http"
	HTTPS Protocol = "https"
	WS    Protocol = "ws"
	WSS   Protocol = "wss"
)

// The protocols beyond the seed's four: a lab file (or --protocols) names
// them.
const (
	// SSE is server-sent events: an HTTP/1.1 response of type
	// text/event-stream that stays open and carries one event after another.
	SSE Protocol = "sse"
	// H2 is HTTP/2 over TLS, chosen by ALPN.
	H2 Protocol = "h2"
	// H2C is HTTP/2 in clear text with prior knowledge: the client starts
	// with the connection preface, no upgrade.
	H2C Protocol = "h2c"
	// GRPC is gRPC over HTTP/2 in clear text (prior knowledge).
	GRPC Protocol = "grpc"
	// GRPCS is gRPC over HTTP/2 over TLS (ALPN h2).
	GRPCS Protocol = "grpcs"
)

// Recognition says how a connection of a protocol is recognised on the wire,
// once TLS (when the protocol has it) is taken off.
type Recognition uint8

const (
	// RecogniseHTTP: an HTTP/1.x request line, then HTTP messages.
	RecogniseHTTP Recognition = iota + 1
	// RecogniseWebSocket: an HTTP/1.1 Upgrade request answered 101, then
	// WebSocket frames.
	RecogniseWebSocket
	// RecogniseSSE: an HTTP/1.1 GET answered 200 text/event-stream, whose
	// body is a stream of events.
	RecogniseSSE
	// RecogniseHTTP2: the HTTP/2 connection preface, then HTTP/2 frames.
	RecogniseHTTP2
	// RecogniseGRPC: HTTP/2 whose requests are application/grpc: each
	// stream's DATA carries length-prefixed messages, its trailers the
	// grpc-status.
	RecogniseGRPC
)

func (r Recognition) String() string {
	switch r {
	case RecogniseHTTP:
		return "HTTP/1.1 request line"
	case RecogniseWebSocket:
		return "HTTP/1.1 upgrade answered 101, then WebSocket frames"
	case RecogniseSSE:
		return "HTTP/1.1 GET answered text/event-stream, then events"
	case RecogniseHTTP2:
		return "the HTTP/2 connection preface, then HTTP/2 frames"
	case RecogniseGRPC:
		return "HTTP/2 with application/grpc streams carrying length-prefixed messages"
	}
	return fmt.Sprintf("recognition(%d)", uint8(r))
}

// Unit says what counts as one message of a protocol (in the counters, the
// report's messages and bytes per message).
type Unit uint8

const (
	// UnitHTTPMessage: each HTTP request and each response.
	UnitHTTPMessage Unit = iota + 1
	// UnitWSFrame: each WebSocket frame, data and control.
	UnitWSFrame
	// UnitSSEEvent: each server-sent event, and each HTTP request (the
	// client's way to talk back: an echo is a POST and the event it causes).
	UnitSSEEvent
	// UnitHTTP2Message: each HTTP/2 request and response (one stream's
	// headers and data one way).
	UnitHTTP2Message
	// UnitGRPCMessage: each gRPC message (one length-prefixed message in a
	// stream's DATA), either way.
	UnitGRPCMessage
)

func (u Unit) String() string {
	switch u {
	case UnitHTTPMessage:
		return "HTTP request or response"
	case UnitWSFrame:
		return "WebSocket frame"
	case UnitSSEEvent:
		return "server-sent event or HTTP request"
	case UnitHTTP2Message:
		return "HTTP/2 request or response"
	case UnitGRPCMessage:
		return "gRPC message"
	}
	return fmt.Sprintf("unit(%d)", uint8(u))
}

// Descriptor describes one protocol.
type Descriptor struct {
	Name Protocol
	// Title is the protocol's name for people.
	Title string
	// DefaultPort is the seed lab's port for an app of this protocol.
	DefaultPort int
	// TLS says the protocol runs over TLS.
	TLS bool
	// Recognise says how a connection is recognised (inside TLS for TLS
	// protocols).
	Recognise Recognition
	// Message says what counts as one message.
	Message Unit
	// DefaultKind is the app kind that serves the protocol when a lab file
	// names none.
	DefaultKind string
	// Plain is, for a TLS protocol, the protocol its connections carry once
	// TLS is taken off ("wss" carries "ws"); "" for plain protocols.
	Plain Protocol
	// ALPN lists the application protocols a TLS client offers and a TLS
	// server accepts, in preference order (empty: plain, or http/1.1).
	ALPN []string
	// Seed marks the seed lab's four protocols: the apps a lab without a
	// lab file runs.
	Seed bool
}

// table lists every protocol, in display order.
var table = []Descriptor{
	{Name: HTTP, Title: "HTTP/1.1", DefaultPort: 3000, Recognise: RecogniseHTTP, Message: UnitHTTPMessage, DefaultKind: KindEchoHTTP, Seed: true},
	{Name: HTTPS, Title: "HTTP/1.1 over TLS", DefaultPort: 3001, TLS: true, Plain: HTTP, ALPN: []string{"http/1.1"}, Recognise: RecogniseHTTP, Message: UnitHTTPMessage, DefaultKind: KindEchoHTTP, Seed: true},
	{Name: WS, Title: "WebSocket", DefaultPort: 3002, Recognise: RecogniseWebSocket, Message: UnitWSFrame, DefaultKind: KindChatWS, Seed: true},
	{Name: WSS, Title: "WebSocket over TLS", DefaultPort: 3003, TLS: true, Plain: WS, ALPN: []string{"http/1.1"}, Recognise: RecogniseWebSocket, Message: UnitWSFrame, DefaultKind: KindChatWS, Seed: true},
	{Name: SSE, Title: "Server-sent events", DefaultPort: 3004, Recognise: RecogniseSSE, Message: UnitSSEEvent, DefaultKind: KindSSE},
	{Name: H2, Title: "HTTP/2 over TLS", DefaultPort: 3005, TLS: true, Plain: H2C, ALPN: []string{"h2"}, Recognise: RecogniseHTTP2, Message: UnitHTTP2Message, DefaultKind: KindEchoHTTP},
	{Name: H2C, Title: "HTTP/2 cleartext", DefaultPort: 3006, Recognise: RecogniseHTTP2, Message: UnitHTTP2Message, DefaultKind: KindEchoHTTP},
	{Name: GRPC, Title: "gRPC", DefaultPort: 3007, Recognise: RecogniseGRPC, Message: UnitGRPCMessage, DefaultKind: KindGRPC},
	{Name: GRPCS, Title: "gRPC over TLS", DefaultPort: 3008, TLS: true, Plain: GRPC, ALPN: []string{"h2"}, Recognise: RecogniseGRPC, Message: UnitGRPCMessage, DefaultKind: KindGRPC},
}

var byName = func() map[Protocol]int {
	m := make(map[Protocol]int, len(table))
	for i, d := range table {
		m[d.Name] = i
	}
	return m
}()

// All lists every protocol in display order.
func All() []Protocol {
	out := make([]Protocol, len(table))
	for i, d := range table {
		out[i] = d.Name
	}
	return out
}

// Seed lists the seed lab's protocols (http, https, ws, wss), in display
// order.
func Seed() []Protocol {
	var out []Protocol
	for _, d := range table {
		if d.Seed {
			out = append(out, d.Name)
		}
	}
	return out
}

// Names lists the protocols' names, for messages.
func Names() string {
	names := make([]string, len(table))
	for i, d := range table {
		names[i] = string(d.Name)
	}
	return strings.Join(names, ", ")
}

// Lookup returns the protocol's descriptor.
func Lookup(p Protocol) (Descriptor, bool) {
	i, ok := byName[p]
	if !ok {
		return Descriptor{}, false
	}
	return table[i], true
}

// Parse accepts a protocol name, case-insensitively.
func Parse(s string) (Protocol, error) {
	p := Protocol(strings.ToLower(strings.TrimSpace(s)))
	if _, ok := byName[p]; ok {
		return p, nil
	}
	return "", fmt.Errorf("unknown protocol %q: want one of %s", s, Names())
}

// ParseList parses a comma-separated list of protocols (duplicates dropped).
// An empty list is an error: the caller decides what "not given" means.
func ParseList(s string) ([]Protocol, error) {
	var out []Protocol
	seen := map[Protocol]bool{}
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		p, err := Parse(part)
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no protocol named: want one or more of %s", Names())
	}
	return out, nil
}

// Desc returns p's descriptor (the zero Descriptor for an unknown name).
func (p Protocol) Desc() Descriptor { d, _ := Lookup(p); return d }

// Known reports whether p is in the table.
func (p Protocol) Known() bool { _, ok := byName[p]; return ok }

// Secure reports whether the protocol runs over TLS.
func (p Protocol) Secure() bool { return p.Desc().TLS }

// WebSocket reports whether the protocol's connections upgrade to WebSocket.
func (p Protocol) WebSocket() bool { return p.Desc().Recognise == RecogniseWebSocket }

// HTTP2 reports whether the protocol's connections speak HTTP/2 (h2, h2c,
// and gRPC over either).
func (p Protocol) HTTP2() bool {
	r := p.Desc().Recognise
	return r == RecogniseHTTP2 || r == RecogniseGRPC
}

// DefaultPort is the seed lab's port for the protocol's app.
func (p Protocol) DefaultPort() int { return p.Desc().DefaultPort }

// Order is p's place in the table (for sorting); unknown names sort last.
func (p Protocol) Order() int {
	if i, ok := byName[p]; ok {
		return i
	}
	return len(table)
}

// The app kinds: the servers the lab can run. The first two serve their
// protocols themselves; the others are intermediaries that sit between a
// client and their upstream apps.
const (
	KindEchoHTTP = "echo-http"
	KindChatWS   = "chat-ws"
	// KindTLSFront terminates TLS with the lab CA's certificate and hands
	// the plain bytes to its one upstream (TCP-level, like stunnel).
	KindTLSFront = "tls-front"
	// KindBalancer forwards HTTP requests and WebSocket upgrades to its
	// upstream replicas, round robin or pinned by a cookie.
	KindBalancer = "balancer"
	// KindWSProxy relays WebSocket connections to /<token>/<target>/… when
	// the token (signed with the lab's secret) allows the target.
	KindWSProxy = "ws-proxy"
	// KindTerm is a web terminal: a page with a terminal (xterm.js) whose
	// WebSocket carries a shell's pty.
	KindTerm = "term"
	// KindSSE streams server-sent events: an echo stream (POST a message,
	// it comes back as an event) and, with a chat-ws upstream, that chat
	// room's messages as events.
	KindSSE = "sse"
	// KindGRPC is a gRPC server: the unary echo protolab.Echo/Say and the
	// bidirectional chat protolab.Chat/Join (protocol/labrpc).
	KindGRPC = "grpc"
)

// Compression values an app may ask for (lab file: compression).
const (
	// CompressionNone: no compression (the default).
	CompressionNone = "none"
	// CompressionDeflate: WebSocket permessage-deflate (RFC 7692).
	CompressionDeflate = "deflate"
)

// ReplicaHeader is the response header an intermediary that picks among
// replicas (a balancer) names the replica in.
const ReplicaHeader = "X-Protolab-Replica"

// KeyLogPrefix starts the lines an app in a container writes on its
// standard error for each TLS connection it makes to an upstream: the rest
// is one line of the NSS key log format. The provider that follows the
// container's logs takes them out of the log and into the lab's key log, so
// the capture decrypts that inside leg as it does the lab's own.
const KeyLogPrefix = "protolab-keylog "

// AffinityCookie is the cookie a balancer with affinity pins a client to a
// replica with.
const AffinityCookie = "protolab-replica"

// UpstreamRule says which protocol an intermediary's upstreams must speak.
type UpstreamRule uint8

const (
	// UpstreamNone: the kind has no upstreams.
	UpstreamNone UpstreamRule = iota
	// UpstreamPlain: the upstream speaks the app's protocol without TLS
	// (a TLS front for wss hands ws on).
	UpstreamPlain
	// UpstreamSame: the upstreams speak the app's own protocol.
	UpstreamSame
	// UpstreamWebSocket: the upstreams speak any WebSocket protocol.
	UpstreamWebSocket
	// UpstreamFeed: the upstream is no hop on a client's way but a source
	// the kind reads from (an sse app relays a chat-ws app's room as
	// events); it speaks any WebSocket protocol.
	UpstreamFeed
)

// Allows reports whether an app speaking own may have an upstream speaking
// up, and what the rule wants when it may not.
func (r UpstreamRule) Allows(own, up Protocol) (bool, string) {
	switch r {
	case UpstreamPlain:
		plain := own.Desc().Plain
		return up == plain, "an upstream speaking " + string(plain)
	case UpstreamSame:
		return up == own, "upstreams speaking " + string(own)
	case UpstreamWebSocket:
		return up.WebSocket(), "WebSocket upstreams (ws or wss)"
	case UpstreamFeed:
		return up.WebSocket(), "a WebSocket chat app (ws or wss) to feed it"
	}
	return false, "no upstream"
}

// Kind describes a server the lab can run.
type Kind struct {
	Name string
	// Protocols are those the kind can speak.
	Protocols []Protocol
	// About says what it serves, for people.
	About string
	// Echo is the path where the kind echoes what it gets (a POST body,
	// or every WebSocket message); "" when it has none. The WebSocket
	// conformance suite plays its cases against it.
	Echo string
	// Chat is the prefix of the kind's chat room (/chat/{name}); "" when
	// it has none.
	Chat string
	// Upstreams is the rule for the kind's upstreams (UpstreamNone for a
	// server that answers by itself); MinUpstreams and MaxUpstreams bound
	// how many it takes (MaxUpstreams 0: no bound).
	Upstreams                  UpstreamRule
	MinUpstreams, MaxUpstreams int
	// Affinity says the kind can pin a client to one upstream by a cookie.
	Affinity bool
	// HealthChecks says the kind checks its upstreams' GET /health and
	// stops sending to those that fail (lab file: health_interval).
	HealthChecks bool
	// Token says the kind's first path segment is a token (signed with the
	// lab's secret, see protocol/labtoken) naming the targets a client may
	// reach, and the second the target: /<token>/<target>/<path>.
	Token bool
	// HandshakeTimeout says the kind ends connections whose TLS handshake
	// does not complete in time (lab file: handshake_timeout).
	HandshakeTimeout bool
	// Shell says the kind runs a shell for each client (a web terminal):
	// it needs one where it runs, which the lab's FROM scratch images
	// have not.
	Shell bool
	// Metrics says the kind serves GET MetricsPath (Prometheus text
	// format). A TLS front does not: it speaks no HTTP of its own, and what
	// it carries is counted by its upstream.
	Metrics bool
	// Compression lists the compression values (besides CompressionNone)
	// the kind can use on its messages (lab file: compression).
	Compression []string
}

var kinds = []Kind{
	{Name: KindEchoHTTP, Protocols: []Protocol{HTTP, HTTPS, H2, H2C}, About: "a JSON API: GET / (app, protocol, version), POST /echo, GET /health, GET /metrics (over HTTP/2 for h2 and h2c, and HTTP/1.1 on the same port)", Echo: "/echo", Metrics: true},
	{Name: KindChatWS, Protocols: []Protocol{WS, WSS}, About: "WebSocket /echo and the chat room /chat/{name}?age=N, a browser chat page at /, GET /health, GET /metrics",
		Echo: "/echo", Chat: "/chat/", Metrics: true, Compression: []string{CompressionDeflate}},
	{Name: KindTLSFront, Protocols: []Protocol{HTTPS, WSS}, About: "terminates TLS with the lab's certificate and passes the plain bytes to its upstream (like stunnel)",
		Upstreams: UpstreamPlain, MinUpstreams: 1, MaxUpstreams: 1, HandshakeTimeout: true},
	{Name: KindBalancer, Protocols: []Protocol{HTTP, WS}, About: "forwards requests and WebSocket upgrades to its replicas (round robin, or affinity: cookie), names the replica in " + ReplicaHeader + ", health-checks them; GET /health and GET /metrics are its own",
		Upstreams: UpstreamSame, MinUpstreams: 1, Affinity: true, HealthChecks: true, Metrics: true},
	{Name: KindWSProxy, Protocols: []Protocol{WS, WSS}, About: "relays WebSocket /<token>/<target>/<path> to the target app when the signed token allows it (401/403/502 before the upgrade otherwise); GET /health, GET /metrics",
		Upstreams: UpstreamWebSocket, MinUpstreams: 1, Token: true, Metrics: true},
	{Name: KindTerm, Protocols: []Protocol{WS, WSS}, About: "a web terminal: a page with xterm.js at /, WebSocket /term carrying a shell's pty (binary stdin/stdout, a JSON text message to resize), WebSocket /echo, GET /health, GET /metrics",
		Echo: "/echo", Shell: true, Metrics: true},
	{Name: KindSSE, Protocols: []Protocol{SSE}, About: "server-sent events: GET /events streams events (a hello first, its id in " + StreamHeader + "), POST /events/{stream} sends the body back as an echo event on that stream; with a chat-ws upstream, GET /chat/events?name=N&age=A joins its room and streams it as chat events, POST /chat/events/{stream} says the body in it; GET / (app, protocol, version), GET /health, GET /metrics",
		Echo: "/events", Chat: "/chat/events", Upstreams: UpstreamFeed, MinUpstreams: 0, MaxUpstreams: 1, Metrics: true},
	{Name: KindGRPC, Protocols: []Protocol{GRPC, GRPCS}, About: "gRPC: the unary echo protolab.Echo/Say and the bidirectional chat room protolab.Chat/Join (protocol/labrpc/protolab.proto), the standard health service; GET /, GET /health and GET /metrics over HTTP/1.1 on the same port",
		Echo: "/protolab.Echo/Say", Chat: "/protolab.Chat/Join", Metrics: true},
}

// Intermediary reports whether the kind forwards its clients to upstream
// apps (a hop on their way).
func (k Kind) Intermediary() bool { return k.Upstreams != UpstreamNone && k.Upstreams != UpstreamFeed }

// TakesUpstreams reports whether the kind takes upstream apps at all: an
// intermediary's, or a feed (UpstreamFeed).
func (k Kind) TakesUpstreams() bool { return k.Upstreams != UpstreamNone }

// Kinds lists every kind.
func Kinds() []Kind { return append([]Kind(nil), kinds...) }

// KindNames lists the kinds' names, for messages.
func KindNames() string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.Name
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// LookupKind returns the named kind.
func LookupKind(name string) (Kind, bool) {
	for _, k := range kinds {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}

// CheckCompression says whether the kind can compress its messages as c
// asks ("" and CompressionNone always can).
func (k Kind) CheckCompression(c string) error {
	if c == "" || c == CompressionNone {
		return nil
	}
	for _, ok := range k.Compression {
		if c == ok {
			return nil
		}
	}
	if len(k.Compression) == 0 {
		return fmt.Errorf("kind %s compresses nothing: compression %q is for %s", k.Name, c, compressingKinds())
	}
	return fmt.Errorf("kind %s: compression %q: want %s or %s", k.Name, c, CompressionNone, strings.Join(k.Compression, ", "))
}

func compressingKinds() string {
	var names []string
	for _, k := range kinds {
		if len(k.Compression) > 0 {
			names = append(names, k.Name)
		}
	}
	return strings.Join(names, ", ")
}

// Speaks reports whether the kind can serve protocol p.
func (k Kind) Speaks(p Protocol) bool {
	for _, q := range k.Protocols {
		if q == p {
			return true
		}
	}
	return false
}

// CheckApp says whether an app of kind serving protocol p is possible, and
// what to change when it is not. An empty kind means p's default kind.
func CheckApp(kind string, p Protocol) (Kind, error) {
	d, ok := Lookup(p)
	if !ok {
		return Kind{}, fmt.Errorf("unknown protocol %q: want one of %s", p, Names())
	}
	if kind == "" {
		kind = d.DefaultKind
	}
	k, ok := LookupKind(kind)
	if !ok {
		return Kind{}, fmt.Errorf("unknown kind %q: want one of %s", kind, KindNames())
	}
	if !k.Speaks(p) {
		ps := make([]string, len(k.Protocols))
		for i, q := range k.Protocols {
			ps[i] = string(q)
		}
		return Kind{}, fmt.Errorf("kind %s does not speak %s (it speaks %s)", k.Name, p, strings.Join(ps, ", "))
	}
	return k, nil
}
