// Package webapp is the lab's web application: one server that speaks one of
// four protocols (http, https, ws, wss). It stands alone — it imports nothing
// of the lab or the UI — so the same code runs in a container (apps/ main
// package, built FROM scratch) and in-process for the embedded lab.
package webapp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Mode is the protocol a server speaks.
type Mode string

// The four modes, one per protocol the lab compares.
const (
	ModeHTTP  Mode = "http"
	ModeHTTPS Mode = "https"
	ModeWS    Mode = "ws"
	ModeWSS   Mode = "wss"
)

// Modes lists every mode in the lab's display order.
var Modes = []Mode{ModeHTTP, ModeHTTPS, ModeWS, ModeWSS}

// DefaultPort is the seed lab's port for each mode.
func DefaultPort(m Mode) int {
	switch m {
	case ModeHTTP:
		return 3000
	case ModeHTTPS:
		return 3001
	case ModeWS:
		return 3002
	case ModeWSS:
		return 3003
	}
	return 0
}

// ParseMode accepts a mode name, case-insensitively.
func ParseMode(s string) (Mode, error) {
	m := Mode(strings.ToLower(strings.TrimSpace(s)))
	for _, k := range Modes {
		if m == k {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown mode %q: want one of http, https, ws, wss", s)
}

// Secure reports whether the mode runs over TLS.
func (m Mode) Secure() bool { return m == ModeHTTPS || m == ModeWSS }

// WebSocket reports whether the mode is a WebSocket mode.
func (m Mode) WebSocket() bool { return m == ModeWS || m == ModeWSS }

// Version is the application version reported by GET /.
const Version = "1.0.0"

// DefaultReadLimit is the largest WebSocket message a server accepts by default.
const DefaultReadLimit = 64 << 10

// Config configures one server.
type Config struct {
	// Mode is the protocol to speak.
	Mode Mode
	// Name is the application name reported by GET / (default "protolab-<mode>").
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
	if _, err := ParseMode(string(c.Mode)); err != nil {
		return c, err
	}
	if c.Name == "" {
		c.Name = "protolab-" + string(c.Mode)
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
	if c.Mode.Secure() && c.TLS == nil {
		return c, errors.New(string(c.Mode) + " mode needs a TLS certificate and key")
	}
	return c, nil
}
