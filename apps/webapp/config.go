// Package webapp is the lab's web application: one server binary that runs
// one app kind (protocol.Kinds: echo-http, chat-ws) speaking one of the
// kind's protocols (http, https, ws, wss). It stands alone — it imports
// nothing of the lab or the UI, only the protocol table — so the same code
// runs in a container (apps/ main package, built FROM scratch) and
// in-process for the embedded lab.
package webapp

import (
	"crypto/tls"
	"errors"
	"fmt"
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
	// Name is the application name reported by GET / (default
	// "protolab-<protocol>").
	Name string
	// TLS is the server TLS configuration; required for https and wss.
	TLS *tls.Config
	// ReadLimit is the largest WebSocket message accepted; a larger one is
	// refused with close code 1009. Zero means DefaultReadLimit.
	ReadLimit int64
	// AllowedOrigins lists extra Origin values a browser may connect from
	// (e.g. "http://localhost:8080"); same-origin requests and requests with no
	// Origin header (non-browser clients) are always allowed. "*" allows any.
	AllowedOrigins []string
	// PingInterval is how often the server pings each WebSocket peer; a peer
	// that does not answer within twice the interval is dropped. Zero means 20s.
	PingInterval time.Duration
	// ShutdownGrace bounds how long Shutdown waits for WebSocket peers to
	// acknowledge the 1001 close frame. Zero means 2s.
	ShutdownGrace time.Duration
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
	return c, nil
}
