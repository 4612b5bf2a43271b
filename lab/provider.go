package lab

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"time"

	"github.com/protolab/protolab-tui/lab/pki"
	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/protocol/labtoken"
)

// Provider is where the lab host comes from and how the apps run on it: the
// embedded in-process lab ("local"), a Docker engine, an SSH host or a Vagrant
// VM. The Lab drives a Provider through its state machine and never calls two
// of these methods at once.
type Provider interface {
	// Name is the provider's name as the user types it ("local", "docker", …).
	Name() string
	// Up brings the lab host up (provisions it when needed) and describes it.
	Up(ctx context.Context) (HostInfo, error)
	// Deploy starts every app in apps and returns their status (by app
	// name); each status's Endpoint is where this machine reaches the app.
	Deploy(ctx context.Context, apps []App) ([]AppStatus, error)
	// Redeploy replaces the running apps one by one with fresh ones.
	Redeploy(ctx context.Context, apps []App) ([]AppStatus, error)
	// Status reports the apps as they are now.
	Status(ctx context.Context) ([]AppStatus, error)
	// Runner runs commands on the lab host (valid after Up).
	Runner() Runner
	// Teardown stops and removes everything the lab started on the host.
	Teardown(ctx context.Context) error
}

// Env is what the Lab hands a provider when it creates it.
type Env struct {
	Config Config
	PKI    *pki.Authority
	// Emit publishes an event on the Lab's stream (progress, logs, app status
	// changes the provider notices on its own).
	Emit func(Event)
	// Ask puts a question to the person at the front end (an unknown host
	// key, a key's passphrase) and waits for the answer; it fails at once
	// when no front end can answer (headless).
	Ask func(ctx context.Context, question string, secret bool) (string, error)
	// KeyLog receives the TLS secrets of connections the lab makes, so a
	// capture of them decrypts; in-process apps that dial TLS upstreams
	// (a ws-proxy's wss targets) write theirs here too.
	KeyLog io.Writer
}

// SecretPath is the lab secret's file (protocol/labtoken): a ws-proxy checks
// tokens with it, the lab and `protolab-tui token` mint them with it.
func (e Env) SecretPath() string { return SecretPath(e.Config.StateDir) }

// SecretPath is the lab secret's file in stateDir.
func SecretPath(stateDir string) string { return filepath.Join(stateDir, labtoken.SecretFile) }

// Secret is the lab secret, made (0600) on first use.
func (e Env) Secret() ([]byte, error) { return labtoken.LoadSecret(e.SecretPath()) }

// Progress publishes a progress event for op.
func (e Env) Progress(op, step string, done, total int) {
	if e.Emit != nil {
		e.Emit(ProgressEvent{At: now(), Op: op, Step: step, Done: done, Total: total})
	}
}

// Log publishes a log line from source.
func (e Env) Log(level, source, msg string) {
	if e.Emit != nil {
		e.Emit(LogEvent{At: now(), Level: level, Source: source, Message: msg})
	}
}

// AppChanged publishes an app's new status.
func (e Env) AppChanged(s AppStatus) {
	if e.Emit != nil {
		e.Emit(AppEvent{At: now(), App: s})
	}
}

// HostInfo describes the lab host. Details carries provider-specific facts
// (a VM's box and CPUs, an engine's version…) that front ends show as they
// are, so a new provider needs no UI change.
type HostInfo struct {
	Provider string   `json:"provider"`
	Name     string   `json:"name"`
	Address  string   `json:"address"`
	OS       string   `json:"os"`
	Ports    []string `json:"ports,omitempty"`
	Details  []KV     `json:"details,omitempty"`
}

// KV is one labelled fact.
type KV struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// App states as providers report them.
const (
	AppCreated = "created"
	AppRunning = "running"
	AppExited  = "exited"
	AppStopped = "stopped"
	AppMissing = "missing"
)

// AppStatus is one app's state on the lab host, known by the app's name.
type AppStatus struct {
	Name     string            `json:"name"`
	Kind     string            `json:"kind,omitempty"`
	Protocol protocol.Protocol `json:"protocol"`
	Image    string            `json:"image"`
	State    string            `json:"state"`
	Health   string            `json:"health,omitempty"`
	// Endpoint is the host:port this machine dials to reach the app.
	Endpoint string    `json:"endpoint,omitempty"`
	Ports    []string  `json:"ports,omitempty"`
	Restarts int       `json:"restarts"`
	Started  time.Time `json:"started,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

// Cmd is a command for a Runner. Argv is passed as is: no shell ever parses
// it, so user input cannot turn into shell syntax.
type Cmd struct {
	Argv   []string
	Env    []string // extra KEY=VALUE pairs
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Runner executes commands and opens connections on the lab host: os/exec
// for local labs, SSH for remote ones. Docker, remote capture and the
// debugging pane all sit on it.
type Runner interface {
	// Run runs cmd to completion; a non-zero exit is an *ExitError.
	Run(ctx context.Context, cmd Cmd) error
	// Dial opens a connection from the lab host ("tcp" or "unix").
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
	// OpenShell starts an interactive shell on a pseudo-terminal of the
	// lab host (the debugging pane).
	OpenShell(ctx context.Context, cols, rows int) (Shell, error)
}
