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
}

// table lists every protocol, in display order.
var table = []Descriptor{
	{Name: HTTP, Title: "HTTP/1.1", DefaultPort: 3000, Recognise: RecogniseHTTP, Message: UnitHTTPMessage, DefaultKind: KindEchoHTTP},
	{Name: HTTPS, Title: "HTTP/1.1 over TLS", DefaultPort: 3001, TLS: true, Recognise: RecogniseHTTP, Message: UnitHTTPMessage, DefaultKind: KindEchoHTTP},
	{Name: WS, Title: "WebSocket", DefaultPort: 3002, Recognise: RecogniseWebSocket, Message: UnitWSFrame, DefaultKind: KindChatWS},
	{Name: WSS, Title: "WebSocket over TLS", DefaultPort: 3003, TLS: true, Recognise: RecogniseWebSocket, Message: UnitWSFrame, DefaultKind: KindChatWS},
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

// The app kinds: the servers the lab can run.
const (
	KindEchoHTTP = "echo-http"
	KindChatWS   = "chat-ws"
)

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
}

var kinds = []Kind{
	{Name: KindEchoHTTP, Protocols: []Protocol{HTTP, HTTPS}, About: "a JSON API: GET / (app, protocol, version), POST /echo, GET /health", Echo: "/echo"},
	{Name: KindChatWS, Protocols: []Protocol{WS, WSS}, About: "WebSocket /echo and the chat room /chat/{name}?age=N, a browser chat page at /, GET /health", Echo: "/echo", Chat: "/chat/"},
}

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
