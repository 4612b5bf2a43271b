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

// Recognition says how a connection of a protocol is recognised on the wire,
// once TLS (when the protocol has it) is taken off.
type Recognition uint8

const (
	// RecogniseHTTP: an HTTP/1.x request line, then HTTP messages.
	RecogniseHTTP Recognition = iota + 1
	// RecogniseWebSocket: an HTTP/1.1 Upgrade request answered 101, then
	// WebSocket frames.
	RecogniseWebSocket
)

func (r Recognition) String() string {
	switch r {
	case RecogniseHTTP:
		return "HTTP/1.1 request line"
	case RecogniseWebSocket:
		return "HTTP/1.1 upgrade answered 101, then WebSocket frames"
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
)

func (u Unit) String() string {
	switch u {
	case UnitHTTPMessage:
		return "HTTP request or response"
	case UnitWSFrame:
		return "WebSocket frame"
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
}

// table lists every protocol, in display order.
var table = []Descriptor{
	{Name: HTTP, Title: "HTTP/1.1", DefaultPort: 3000, Recognise: RecogniseHTTP, Message: UnitHTTPMessage, DefaultKind: KindEchoHTTP},
	{Name: HTTPS, Title: "HTTP/1.1 over TLS", DefaultPort: 3001, TLS: true, Plain: HTTP, Recognise: RecogniseHTTP, Message: UnitHTTPMessage, DefaultKind: KindEchoHTTP},
	{Name: WS, Title: "WebSocket", DefaultPort: 3002, Recognise: RecogniseWebSocket, Message: UnitWSFrame, DefaultKind: KindChatWS},
	{Name: WSS, Title: "WebSocket over TLS", DefaultPort: 3003, TLS: true, Plain: WS, Recognise: RecogniseWebSocket, Message: UnitWSFrame, DefaultKind: KindChatWS},
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
}

var kinds = []Kind{
	{Name: KindEchoHTTP, Protocols: []Protocol{HTTP, HTTPS}, About: "a JSON API: GET / (app, protocol, version), POST /echo, GET /health, GET /metrics", Echo: "/echo", Metrics: true},
	{Name: KindChatWS, Protocols: []Protocol{WS, WSS}, About: "WebSocket /echo and the chat room /chat/{name}?age=N, a browser chat page at /, GET /health, GET /metrics", Echo: "/echo", Chat: "/chat/", Metrics: true},
	{Name: KindTLSFront, Protocols: []Protocol{HTTPS, WSS}, About: "terminates TLS with the lab's certificate and passes the plain bytes to its upstream (like stunnel)",
		Upstreams: UpstreamPlain, MinUpstreams: 1, MaxUpstreams: 1, HandshakeTimeout: true},
	{Name: KindBalancer, Protocols: []Protocol{HTTP, WS}, About: "forwards requests and WebSocket upgrades to its replicas (round robin, or affinity: cookie), names the replica in " + ReplicaHeader + ", health-checks them; GET /health and GET /metrics are its own",
		Upstreams: UpstreamSame, MinUpstreams: 1, Affinity: true, HealthChecks: true, Metrics: true},
	{Name: KindWSProxy, Protocols: []Protocol{WS, WSS}, About: "relays WebSocket /<token>/<target>/<path> to the target app when the signed token allows it (401/403/502 before the upgrade otherwise); GET /health, GET /metrics",
		Upstreams: UpstreamWebSocket, MinUpstreams: 1, Token: true, Metrics: true},
	{Name: KindTerm, Protocols: []Protocol{WS, WSS}, About: "a web terminal: a page with xterm.js at /, WebSocket /term carrying a shell's pty (binary stdin/stdout, a JSON text message to resize), WebSocket /echo, GET /health, GET /metrics",
		Echo: "/echo", Shell: true, Metrics: true},
}

// Intermediary reports whether the kind forwards to upstream apps.
func (k Kind) Intermediary() bool { return k.Upstreams != UpstreamNone }

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
