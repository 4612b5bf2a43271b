// Package proto is the lab's shared vocabulary for the four protocols it
// compares; the lab, its probes and its decoders all name protocols with it.
package proto

import (
	"fmt"
	"strings"
)

// Protocol is one of the protocols the lab compares.
type Protocol string

// The four protocols, one app each.
const (
	HTTP  Protocol = "http"
	HTTPS Protocol = "https"
	WS    Protocol = "ws"
	WSS   Protocol = "wss"
)

// All lists every protocol in display order.
var All = []Protocol{HTTP, HTTPS, WS, WSS}

// Parse accepts a protocol name, case-insensitively.
func Parse(s string) (Protocol, error) {
	p := Protocol(strings.ToLower(strings.TrimSpace(s)))
	for _, k := range All {
		if p == k {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown protocol %q: want one of http, https, ws, wss", s)
}

// ParseList parses a comma-separated list; an empty string means All.
func ParseList(s string) ([]Protocol, error) {
	if strings.TrimSpace(s) == "" {
		return All, nil
	}
	var out []Protocol
	seen := map[Protocol]bool{}
	for _, part := range strings.Split(s, ",") {
		p, err := Parse(part)
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

// Secure reports whether the protocol runs over TLS.
func (p Protocol) Secure() bool { return p == HTTPS || p == WSS }

// WebSocket reports whether the protocol is a WebSocket protocol.
func (p Protocol) WebSocket() bool { return p == WS || p == WSS }

// DefaultPort is the seed lab's port for the protocol's app.
func (p Protocol) DefaultPort() int {
	switch p {
	case HTTP:
		return 3000
	case HTTPS:
		return 3001
	case WS:
		return 3002
	case WSS:
		return 3003
	}
	return 0
}

// PortFlag is the command-line flag that sets the protocol's port.
func (p Protocol) PortFlag() string { return "--" + string(p) + "-port" }
