package lab

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/proto"
)

// Config is everything a Lab needs to know; cmd/protolab-tui fills it from
// flags.
type Config struct {
	// Name names the lab (labels, state); default "protolab".
	Name string
	// Provider names the provider ("local" by default).
	Provider string
	// StateDir holds the lab CA and other state; default
	// $XDG_STATE_HOME/protolab (or ~/.local/state/protolab).
	StateDir string
	// Bind is the address the apps are published on; default 127.0.0.1.
	Bind string
	// Ports maps each protocol to its app's port; 0 picks a free port.
	// Protocols missing from the map use their default port.
	Ports map[proto.Protocol]int
	// Protocols lists the protocols to deploy and probe (default: all four).
	Protocols []proto.Protocol
	// ExtraNames are extra subject alternative names for the leaf certificate.
	ExtraNames []string
	// ReadLimit is the apps' WebSocket read limit (default 64 KiB).
	ReadLimit int64
	// AllowedOrigins are extra browser origins the ws/wss apps accept.
	AllowedOrigins []string
	// Probe tunes the probes.
	Probe probe.Options
	// OpTimeout bounds each lifecycle command (default 5 minutes).
	OpTimeout time.Duration
	// Capture says whether and how to capture the lab's traffic.
	Capture CaptureConfig
}

var labName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)

// DefaultStateDir is $XDG_STATE_HOME/protolab, or ~/.local/state/protolab.
func DefaultStateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "protolab"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state directory: set --state-dir or XDG_STATE_HOME (%w)", err)
	}
	return filepath.Join(home, ".local", "state", "protolab"), nil
}

// WithDefaults fills unset fields and checks the rest.
func (c Config) WithDefaults() (Config, error) {
	if c.Name == "" {
		c.Name = "protolab"
	}
	if !labName.MatchString(c.Name) {
		return c, fmt.Errorf("lab name %q: use letters, digits, '.', '_' and '-' (at most 63)", c.Name)
	}
	if c.Provider == "" {
		c.Provider = "local"
	}
	if c.StateDir == "" {
		d, err := DefaultStateDir()
		if err != nil {
			return c, err
		}
		c.StateDir = d
	}
	if c.Bind == "" {
		c.Bind = "127.0.0.1"
	}
	if net.ParseIP(c.Bind) == nil {
		return c, fmt.Errorf("bind address %q is not an IP address", c.Bind)
	}
	if len(c.Protocols) == 0 {
		c.Protocols = proto.All
	}
	ports := make(map[proto.Protocol]int, len(proto.All))
	for _, p := range proto.All {
		port, ok := c.Ports[p]
		if !ok {
			port = p.DefaultPort()
		}
		if port < 0 || port > 65535 {
			return c, fmt.Errorf("%s %d: a port is 0 (any free port) to 65535", p.PortFlag(), port)
		}
		ports[p] = port
	}
	seen := map[int]proto.Protocol{}
	for _, p := range c.Protocols {
		if port := ports[p]; port != 0 {
			if other, dup := seen[port]; dup {
				return c, fmt.Errorf("%s and %s both ask for port %d: give one another port", other.PortFlag(), p.PortFlag(), port)
			}
			seen[port] = p
		}
	}
	c.Ports = ports
	if c.ReadLimit == 0 {
		c.ReadLimit = 64 << 10
	}
	if c.ReadLimit < 0 {
		return c, errors.New("--read-limit must be positive")
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = 5 * time.Minute
	}
	switch c.Capture.Mode {
	case "":
		c.Capture.Mode = "auto"
	case "auto", "on", "off":
	default:
		return c, fmt.Errorf("--capture %q: want auto, on or off", c.Capture.Mode)
	}
	return c, nil
}

// Apps returns the app specs for the configured protocols.
func (c Config) Apps() []AppSpec {
	out := make([]AppSpec, 0, len(c.Protocols))
	for _, p := range c.Protocols {
		out = append(out, AppSpec{
			Name:           string(p),
			Protocol:       p,
			Port:           c.Ports[p],
			ReadLimit:      c.ReadLimit,
			AllowedOrigins: c.AllowedOrigins,
		})
	}
	return out
}

// PortInUseError says an app's port is taken, and which flag moves it.
type PortInUseError struct {
	Protocol proto.Protocol
	Addr     string
	Err      error
}

func (e *PortInUseError) Error() string {
	return fmt.Sprintf("port for %s (%s) is already in use: choose another with %s (0 picks a free port)", e.Protocol, e.Addr, e.Protocol.PortFlag())
}

func (e *PortInUseError) Unwrap() error { return e.Err }
