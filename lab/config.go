package lab

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
)

// Config is everything a Lab needs to know. It is also the schema of the lab
// file (YAML, see LoadLabFile); the command line's flags overlay it.
type Config struct {
	// Name names the lab (labels, state); default "protolab".
	Name string `yaml:"name" json:"name"`
	// Provider names the provider ("local" by default); the sections below
	// are the options of the providers that take any.
	Provider string         `yaml:"provider" json:"provider"`
	Docker   DockerOptions  `yaml:"docker,omitempty" json:"docker,omitempty"`
	SSH      SSHOptions     `yaml:"ssh,omitempty" json:"ssh,omitempty"`
	Vagrant  VagrantOptions `yaml:"vagrant,omitempty" json:"vagrant,omitempty"`
	// StateDir holds the lab CA and other state; default
	// $XDG_STATE_HOME/protolab (or ~/.local/state/protolab).
	StateDir string `yaml:"state_dir,omitempty" json:"state_dir,omitempty"`
	// Bind is the address the apps are published on; default 127.0.0.1.
	Bind string `yaml:"bind,omitempty" json:"bind,omitempty"`
	// ExtraNames are extra subject alternative names for the leaf certificate.
	ExtraNames []string `yaml:"san,omitempty" json:"san,omitempty"`
	// Apps are the lab's apps, in display order (default: the seed's four,
	// one per protocol, named after it).
	Apps []App `yaml:"apps" json:"apps"`
	// Probe tunes the probes.
	Probe probe.Options `yaml:"probe,omitempty" json:"probe,omitempty"`
	// Capture says whether and how to capture the lab's traffic.
	Capture CaptureConfig `yaml:"capture,omitempty" json:"capture,omitempty"`
	// OpTimeout bounds each lifecycle command (default 5 minutes).
	OpTimeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Steps are a script that --headless runs instead of its own flow,
	// one step a line (ParseStep): up, deploy, send APP "text", wait 2s,
	// capture on|off, export FILE, compare, down.
	Steps []string `yaml:"steps,omitempty" json:"steps,omitempty"`
	// Attach makes a provider that finds a lab of this name already on it
	// adopt that lab — serve its apps as they run, create nothing, and
	// leave it running at teardown — instead of refusing to come up
	// (protolab-tui serve sets it; no lab file does).
	Attach bool `yaml:"-" json:"-"`
}

// App is one app of the lab: a named instance of a kind (the server it runs)
// speaking one protocol on one port. Everything in the lab — providers,
// snapshots, events, the wire store, the report, the explorer — knows an app
// by its Name.
type App struct {
	Name string `yaml:"name" json:"name"`
	// Kind is the server the app runs (default: the protocol's default kind).
	Kind     string            `yaml:"kind,omitempty" json:"kind"`
	Protocol protocol.Protocol `yaml:"protocol" json:"protocol"`
	// Port is the port the app is published on (0: any free port).
	Port int `yaml:"port" json:"port"`
	// ReadLimit is the largest WebSocket message the app accepts (default
	// 64 KiB).
	ReadLimit int64 `yaml:"read_limit,omitempty" json:"read_limit,omitempty"`
	// AllowedOrigins are extra browser origins a WebSocket app accepts.
	AllowedOrigins []string `yaml:"allowed_origins,omitempty" json:"allowed_origins,omitempty"`
	// Upstream names the apps an intermediary (tls-front, balancer,
	// ws-proxy) hands its clients to: a front's one upstream, a balancer's
	// replicas, a proxy's targets.
	Upstream []string `yaml:"upstream,omitempty" json:"upstream,omitempty"`
	// Affinity is a balancer's session affinity: "none" (round robin, the
	// default) or "cookie" (a client stays with the replica that first
	// served it).
	Affinity string `yaml:"affinity,omitempty" json:"affinity,omitempty"`
	// HandshakeTimeout bounds a TLS front's handshake with a client
	// (default 10s).
	HandshakeTimeout time.Duration `yaml:"handshake_timeout,omitempty" json:"handshake_timeout,omitempty"`
	// HealthInterval is how often a balancer checks its replicas (default
	// 1s).
	HealthInterval time.Duration `yaml:"health_interval,omitempty" json:"health_interval,omitempty"`
	// Compression is how a WebSocket app compresses its messages: "none"
	// (the default) or "deflate" (permessage-deflate, RFC 7692, offered to
	// clients that ask for it).
	Compression string `yaml:"compression,omitempty" json:"compression,omitempty"`
}

// Hops are the upstreams a's clients are handed on to: an intermediary's
// upstreams, and none for a kind whose upstream only feeds it (an sse
// app's chat).
func (a App) Hops() []string {
	if k, ok := protocol.LookupKind(a.Kind); ok && k.Upstreams == protocol.UpstreamFeed {
		return nil
	}
	return a.Upstream
}

// The balancer's affinities.
const (
	AffinityNone   = "none"
	AffinityCookie = "cookie"
)

// DockerOptions are the docker provider's options.
type DockerOptions struct {
	// Purge removes the lab's images at teardown (kept as a cache otherwise).
	Purge bool `yaml:"purge,omitempty" json:"purge,omitempty"`
}

// SSHOptions are the ssh provider's options.
type SSHOptions struct {
	// Host is user@host[:port] or an alias from ~/.ssh/config.
	Host string `yaml:"host,omitempty" json:"host,omitempty"`
	// Identity lists private key files to offer (ssh-agent keys are offered
	// too).
	Identity []string `yaml:"identity,omitempty" json:"identity,omitempty"`
	// AcceptNewHostKey trusts an unknown host key once and records it.
	AcceptNewHostKey bool `yaml:"accept_new_host_key,omitempty" json:"accept_new_host_key,omitempty"`
	// RemotePriv is how root-only commands get root: auto, sudo or none.
	RemotePriv string `yaml:"remote_priv,omitempty" json:"remote_priv,omitempty"`
}

// VagrantOptions are the vagrant provider's options.
type VagrantOptions struct {
	// Dir is the folder of the Vagrantfile (default ".").
	Dir string `yaml:"dir,omitempty" json:"dir,omitempty"`
	// Provider is Vagrant's provider (virtualbox, libvirt, docker; default:
	// Vagrant's choice).
	Provider string `yaml:"provider,omitempty" json:"provider,omitempty"`
	// Halt tears down by halting the VM instead of destroying it.
	Halt bool `yaml:"halt,omitempty" json:"halt,omitempty"`
}

// DefaultReadLimit is the apps' WebSocket read limit unless one is set.
const DefaultReadLimit = 64 << 10

// MaxPayload is the largest probe payload: the apps take at most 1 MiB per
// HTTP body.
const MaxPayload = 1 << 20

// MaxRingSize bounds the records kept per app (each ring is allocated
// whole: about 300 bytes a record).
const MaxRingSize = 1_000_000

// SeedApps returns the seed lab's apps: one per protocol, named after it, on
// its default port.
func SeedApps() []App { return ProtocolApps(protocol.Seed()) }

// ProtocolApps is one app for each protocol, named after it, of its
// default kind on its default port.
func ProtocolApps(ps []protocol.Protocol) []App {
	var out []App
	for _, p := range ps {
		d := p.Desc()
		out = append(out, App{Name: string(p), Kind: d.DefaultKind, Protocol: p, Port: d.DefaultPort})
	}
	return out
}

// ConfigError is a configuration mistake at a place in the lab file's schema
// (Path is a YAML path such as "apps[1].port"); the lab file loader turns the
// path into a line number.
type ConfigError struct {
	Path string
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

func configErr(path, format string, args ...any) error {
	return &ConfigError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

var (
	labName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)
	appName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
)

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

// WithDefaults fills unset fields and checks the rest. Its errors are
// *ConfigError where a place in the lab file is at fault.
func (c Config) WithDefaults() (Config, error) {
	if c.Name == "" {
		c.Name = "protolab"
	}
	if !labName.MatchString(c.Name) {
		return c, configErr("name", "lab name %q: use letters, digits, '.', '_' and '-' (at most 63)", c.Name)
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
	if rest, ok := strings.CutPrefix(c.StateDir, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return c, configErr("state_dir", "%s: no home directory to expand ~ in (%v)", c.StateDir, err)
		}
		c.StateDir = filepath.Join(home, rest)
	}
	if c.Bind == "" {
		c.Bind = "127.0.0.1"
	}
	if net.ParseIP(c.Bind) == nil {
		return c, configErr("bind", "bind address %q is not an IP address", c.Bind)
	}
	if c.Apps == nil {
		c.Apps = SeedApps()
	}
	if len(c.Apps) == 0 {
		return c, configErr("apps", "the lab has no apps: list at least one")
	}
	apps := make([]App, len(c.Apps))
	names := map[string]int{}
	ports := map[int]int{}
	for i, a := range c.Apps {
		at := "apps[" + strconv.Itoa(i) + "]"
		if a.Name == "" {
			return c, configErr(at+".name", "every app needs a name (lower-case letters, digits, '-' and '_')")
		}
		if !appName.MatchString(a.Name) {
			return c, configErr(at+".name", "app name %q: use lower-case letters, digits, '-' and '_' (at most 32)", a.Name)
		}
		if j, dup := names[a.Name]; dup {
			return c, configErr(at+".name", "app name %q is already used by apps[%d]: give each app its own name", a.Name, j)
		}
		names[a.Name] = i
		if a.Protocol == "" {
			return c, configErr(at+".protocol", "app %s has no protocol: want one of %s", a.Name, protocol.Names())
		}
		if !a.Protocol.Known() {
			return c, configErr(at+".protocol", "app %s: unknown protocol %q: want one of %s", a.Name, a.Protocol, protocol.Names())
		}
		k, err := protocol.CheckApp(a.Kind, a.Protocol)
		if err != nil {
			return c, configErr(at+".kind", "app %s: %v", a.Name, err)
		}
		a.Kind = k.Name
		if a.Port < 0 || a.Port > 65535 {
			return c, configErr(at+".port", "app %s: port %d: a port is 0 (any free port) to 65535", a.Name, a.Port)
		}
		if a.Port != 0 {
			if j, dup := ports[a.Port]; dup {
				return c, configErr(at+".port", "app %s asks for port %d, which apps[%d] (%s) has: give it another port, or 0 for any free port", a.Name, a.Port, j, c.Apps[j].Name)
			}
			ports[a.Port] = i
		}
		if a.ReadLimit == 0 {
			a.ReadLimit = DefaultReadLimit
		}
		if a.ReadLimit < 0 {
			return c, configErr(at+".read_limit", "app %s: the read limit must be positive", a.Name)
		}
		if err := checkIntermediary(at, a, k); err != nil {
			return c, err
		}
		if err := k.CheckCompression(a.Compression); err != nil {
			return c, configErr(at+".compression", "app %s: %v", a.Name, err)
		}
		if a.Affinity == "" && k.Affinity {
			a.Affinity = AffinityNone
		}
		if a.HandshakeTimeout == 0 && k.HandshakeTimeout {
			a.HandshakeTimeout = 10 * time.Second
		}
		if a.HealthInterval == 0 && k.HealthChecks {
			a.HealthInterval = time.Second
		}
		apps[i] = a
	}
	c.Apps = apps
	if err := checkUpstreams(apps); err != nil {
		return c, err
	}
	if c.Probe.Count < 0 {
		return c, configErr("probe.count", "the probe's count must be at least 1")
	}
	if c.Probe.Warmup < 0 {
		return c, configErr("probe.warmup", "the probe's warm-up %d is negative: give 0 or more round trips", c.Probe.Warmup)
	}
	if cl := c.Probe.Client; cl != "" && cl != probe.ClientWorker && cl != probe.ClientInProcess {
		return c, configErr("probe.client", "client %q: want %q (a separate process, the default) or %q", cl, probe.ClientWorker, probe.ClientInProcess)
	}
	if field, problem := c.Probe.CheckMode(); field != "" {
		return c, configErr("probe."+field, "%s", problem)
	}
	if c.Probe.Payload < 0 {
		return c, configErr("probe.payload", "the probe's payload must be at least 1 byte")
	}
	if c.Probe.Timeout < 0 {
		return c, configErr("probe.timeout", "the probe's timeout must be positive")
	}
	c.Probe = c.Probe.WithDefaults()
	for i, a := range c.Apps {
		if a.Protocol.WebSocket() && int64(c.Probe.Payload) > a.ReadLimit {
			return c, configErr("probe.payload", "payload %d is more than app %s accepts (apps[%d].read_limit %d bytes per WebSocket message)", c.Probe.Payload, a.Name, i, a.ReadLimit)
		}
	}
	if c.Probe.Payload > MaxPayload {
		return c, configErr("probe.payload", "payload %d: the apps take at most 1 MiB (%d bytes) per HTTP body", c.Probe.Payload, MaxPayload)
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = 5 * time.Minute
	}
	if c.OpTimeout < 0 {
		return c, configErr("timeout", "the lifecycle timeout must be positive")
	}
	switch c.Capture.Mode {
	case "":
		c.Capture.Mode = "auto"
	case "auto", "on", "off":
	default:
		return c, configErr("capture.mode", "capture mode %q: want auto, on or off", c.Capture.Mode)
	}
	if c.Capture.RingSize < 0 || c.Capture.RingSize > MaxRingSize {
		return c, configErr("capture.ring", "ring %d: the records kept per app are 1 to %d (0: the default, %d)", c.Capture.RingSize, MaxRingSize, wire.DefaultRingSize)
	}
	if c.Capture.RingSize == 0 {
		c.Capture.RingSize = wire.DefaultRingSize
	}
	if c.Vagrant.Dir == "" {
		c.Vagrant.Dir = "."
	}
	switch c.SSH.RemotePriv {
	case "":
		c.SSH.RemotePriv = "auto"
	case "auto", "sudo", "none":
	default:
		return c, configErr("ssh.remote_priv", "remote_priv %q: want auto, sudo or none", c.SSH.RemotePriv)
	}
	if err := c.checkSteps(); err != nil {
		return c, err
	}
	return c, nil
}

// App returns the named app's configuration.
func (c Config) App(name string) (App, bool) {
	for _, a := range c.Apps {
		if a.Name == name {
			return a, true
		}
	}
	return App{}, false
}

// AppNames lists the apps' names in display order.
func (c Config) AppNames() []string {
	out := make([]string, len(c.Apps))
	for i, a := range c.Apps {
		out[i] = a.Name
	}
	return out
}

// PortInUseError says an app's port is taken.
type PortInUseError struct {
	App  string
	Addr string
	Err  error
}

func (e *PortInUseError) Error() string {
	return fmt.Sprintf("port for app %s (%s) is already in use: give the app another port (--port %s=N, or the lab file's port; 0 picks a free port)", e.App, e.Addr, e.App)
}

func (e *PortInUseError) Unwrap() error { return e.Err }

// OnFreePorts returns apps with every port set to 0 (any free port), so
// that labs can run side by side (tests, benchmarks).
func OnFreePorts(apps []App) []App {
	out := make([]App, len(apps))
	for i, a := range apps {
		a.Port = 0
		out[i] = a
	}
	return out
}

// checkIntermediary checks what an app's kind says of upstreams, affinity
// and timeouts, before the upstreams' names are looked up.
func checkIntermediary(at string, a App, k protocol.Kind) error {
	if !k.TakesUpstreams() {
		if len(a.Upstream) > 0 {
			return configErr(at+".upstream", "app %s: kind %s answers by itself and takes no upstream (intermediaries: tls-front, balancer, ws-proxy; an sse app takes a chat to relay)", a.Name, k.Name)
		}
	} else {
		n := len(a.Upstream)
		if n < k.MinUpstreams {
			return configErr(at+".upstream", "app %s: a %s needs at least %d upstream app(s): list their names under upstream", a.Name, k.Name, k.MinUpstreams)
		}
		if k.MaxUpstreams > 0 && n > k.MaxUpstreams {
			return configErr(at+".upstream", "app %s: a %s takes at most %d upstream app(s), not %d (put a balancer in between for more)", a.Name, k.Name, k.MaxUpstreams, n)
		}
	}
	switch {
	case a.Affinity != "" && !k.Affinity:
		return configErr(at+".affinity", "app %s: affinity is a balancer's option, not a %s's", a.Name, k.Name)
	case a.Affinity != "" && a.Affinity != AffinityNone && a.Affinity != AffinityCookie:
		return configErr(at+".affinity", "app %s: affinity %q: want %s or %s", a.Name, a.Affinity, AffinityNone, AffinityCookie)
	case a.HandshakeTimeout != 0 && !k.HandshakeTimeout:
		return configErr(at+".handshake_timeout", "app %s: handshake_timeout is a tls-front's option, not a %s's", a.Name, k.Name)
	case a.HandshakeTimeout < 0:
		return configErr(at+".handshake_timeout", "app %s: the handshake timeout must be positive", a.Name)
	case a.HealthInterval != 0 && !k.HealthChecks:
		return configErr(at+".health_interval", "app %s: health_interval is a balancer's option, not a %s's", a.Name, k.Name)
	case a.HealthInterval < 0:
		return configErr(at+".health_interval", "app %s: the health-check interval must be positive", a.Name)
	}
	return nil
}

// checkUpstreams checks that every upstream names another app of the lab
// speaking what the kind wants, once, and that no chain loops.
func checkUpstreams(apps []App) error {
	index := make(map[string]int, len(apps))
	for i, a := range apps {
		index[a.Name] = i
	}
	for i, a := range apps {
		k, _ := protocol.LookupKind(a.Kind)
		seen := map[string]bool{}
		for j, up := range a.Upstream {
			at := fmt.Sprintf("apps[%d].upstream[%d]", i, j)
			u, ok := index[up]
			switch {
			case !ok:
				return configErr(at, "app %s: upstream %q is not an app of this lab (it has %s)", a.Name, up, strings.Join(names(apps), ", "))
			case up == a.Name:
				return configErr(at, "app %s cannot be its own upstream", a.Name)
			case seen[up]:
				return configErr(at, "app %s lists upstream %s twice", a.Name, up)
			}
			seen[up] = true
			if ok, want := k.Upstreams.Allows(a.Protocol, apps[u].Protocol); !ok {
				return configErr(at, "app %s (%s over %s) wants %s, and %s speaks %s", a.Name, a.Kind, a.Protocol, want, up, apps[u].Protocol)
			}
		}
	}
	if _, err := DeployOrder(apps); err != nil {
		return configErr("apps", "%v", err)
	}
	return nil
}

func names(apps []App) []string {
	out := make([]string, len(apps))
	for i, a := range apps {
		out[i] = a.Name
	}
	return out
}

// DeployOrder is apps with every app after its upstreams (so an
// intermediary starts once what it forwards to is up), otherwise in the
// given order. A loop of upstreams is an error naming it.
func DeployOrder(apps []App) ([]App, error) {
	index := make(map[string]int, len(apps))
	for i, a := range apps {
		index[a.Name] = i
	}
	const (
		unseen = iota
		visiting
		done
	)
	state := make([]int, len(apps))
	out := make([]App, 0, len(apps))
	var path []string
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("the upstreams loop: %s → %s", strings.Join(path, " → "), apps[i].Name)
		}
		state[i] = visiting
		path = append(path, apps[i].Name)
		for _, up := range apps[i].Upstream {
			if j, ok := index[up]; ok {
				if err := visit(j); err != nil {
					return err
				}
			}
		}
		path = path[:len(path)-1]
		state[i] = done
		out = append(out, apps[i])
		return nil
	}
	for i := range apps {
		if err := visit(i); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Chain is the app and the apps behind it, hop by hop: the app first,
// then its upstreams, then theirs (each app once).
func (c Config) Chain(name string) []App {
	var out []App
	seen := map[string]bool{}
	next := []string{name}
	for len(next) > 0 {
		var after []string
		for _, n := range next {
			a, ok := c.App(n)
			if !ok || seen[n] {
				continue
			}
			seen[n] = true
			out = append(out, a)
			after = append(after, a.Hops()...)
		}
		next = after
	}
	return out
}

// Legs lists the apps a message to or from name may cross, in the lab's
// order: name's chain of upstreams, and every app whose chain reaches name
// with the rest of that chain (a front, its balancer, the replicas). An app
// with nothing before or after it has no legs but itself.
func (c Config) Legs(name string) []App {
	in := map[string]bool{}
	for _, a := range c.Apps {
		chain := c.Chain(a.Name)
		if slices.ContainsFunc(chain, func(h App) bool { return h.Name == name }) {
			for _, h := range chain {
				in[h.Name] = true
			}
		}
	}
	var out []App
	for _, a := range c.Apps {
		if in[a.Name] {
			out = append(out, a)
		}
	}
	return out
}
