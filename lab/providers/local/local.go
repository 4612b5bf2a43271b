// Package local is the embedded provider: the lab host is this process, and
// the lab's apps run in it as goroutines listening on loopback. It needs
// nothing installed and no privileges.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/protolab/protolab-tui/apps/webapp"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/protocol"
)

// Name is the provider's name.
const Name = "local"

// Provider runs the apps in-process.
type Provider struct {
	env lab.Env

	mu   sync.Mutex
	apps map[string]*app
}

type app struct {
	spec     lab.App
	srv      *webapp.Server
	addr     string // actual listen address
	served   chan struct{}
	err      error // Serve's result, valid after served is closed
	started  time.Time
	restarts int
}

// New creates the embedded provider.
func New(env lab.Env) (lab.Provider, error) {
	return &Provider{env: env, apps: make(map[string]*app)}, nil
}

// Name implements lab.Provider.
func (p *Provider) Name() string { return Name }

// InProcess tells the Lab that the apps end with this process.
func (p *Provider) InProcess() bool { return true }

// Runner implements lab.Provider: commands run on this machine.
func (p *Provider) Runner() lab.Runner { return lab.LocalRunner{} }

// Up implements lab.Provider: this machine is already up.
func (p *Provider) Up(context.Context) (lab.HostInfo, error) {
	host, _ := os.Hostname()
	cfg := p.env.Config
	info := lab.HostInfo{
		Provider: Name,
		Name:     host,
		Address:  cfg.Bind,
		OS:       runtime.GOOS + "/" + runtime.GOARCH,
		Details: []lab.KV{
			{Key: "process", Value: "pid " + strconv.Itoa(os.Getpid())},
			{Key: "runtime", Value: runtime.Version()},
		},
	}
	for _, a := range cfg.Apps {
		port := "any free port"
		if a.Port != 0 {
			port = strconv.Itoa(a.Port)
		}
		info.Ports = append(info.Ports, fmt.Sprintf("%s %s", a.Name, port))
	}
	return info, nil
}

// Deploy implements lab.Provider. When one app cannot start, those already
// started are stopped again and the error names the port.
func (p *Provider) Deploy(ctx context.Context, specs []lab.App) ([]lab.AppStatus, error) {
	for i, s := range specs {
		p.env.Progress("deploy", "starting "+s.Name, i, len(specs))
		a, err := p.start(s, s.Port, 0)
		if err != nil {
			_ = p.Teardown(ctx)
			return nil, err
		}
		p.mu.Lock()
		p.apps[s.Name] = a
		p.mu.Unlock()
	}
	return p.Status(ctx)
}

// Redeploy implements lab.Provider: each app is stopped and started again on
// the same port, one at a time.
func (p *Provider) Redeploy(ctx context.Context, specs []lab.App) ([]lab.AppStatus, error) {
	for i, s := range specs {
		p.env.Progress("redeploy", "restarting "+s.Name, i, len(specs))
		p.mu.Lock()
		old := p.apps[s.Name]
		p.mu.Unlock()
		port, restarts := s.Port, 0
		if old != nil {
			if err := p.stop(ctx, old); err != nil {
				return nil, err
			}
			_, ps, _ := net.SplitHostPort(old.addr)
			port, _ = strconv.Atoi(ps) // keep the endpoint stable, even for "any free port"
			restarts = old.restarts + 1
		}
		a, err := p.start(s, port, restarts)
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		p.apps[s.Name] = a
		p.mu.Unlock()
	}
	return p.Status(ctx)
}

func (p *Provider) start(s lab.App, port, restarts int) (*app, error) {
	cfg := webapp.Config{
		Protocol:       s.Protocol,
		Kind:           s.Kind,
		Name:           "protolab-" + s.Name,
		ReadLimit:      s.ReadLimit,
		AllowedOrigins: s.AllowedOrigins,
		Compression:    s.Compression,
	}
	if s.Protocol.Secure() {
		cfg.TLS = p.env.PKI.ServerTLS()
	}
	if err := p.intermediary(&cfg, s); err != nil {
		return nil, err
	}
	srv, err := webapp.New(cfg, p.env.Logger(s.Name, slog.LevelInfo))
	if err != nil {
		return nil, fmt.Errorf("%s app: %w", s.Name, err)
	}
	addr := net.JoinHostPort(p.env.Config.Bind, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, &lab.PortInUseError{App: s.Name, Addr: addr, Err: err}
		}
		return nil, fmt.Errorf("%s app: listening on %s: %w", s.Name, addr, err)
	}
	a := &app{spec: s, srv: srv, addr: l.Addr().String(), served: make(chan struct{}), started: time.Now(), restarts: restarts}
	go func() {
		a.err = srv.Serve(l)
		close(a.served)
		if a.err != nil {
			st := p.status(context.Background(), a)
			p.env.AppChanged(st)
		}
	}()
	return a, nil
}

// intermediary gives an intermediary app what it needs: its upstreams'
// addresses (the Lab deploys them first), the CA that verifies TLS ones and
// the lab's key log for those connections, and the lab secret for a kind
// that checks tokens.
func (p *Provider) intermediary(cfg *webapp.Config, s lab.App) error {
	k, _ := protocol.LookupKind(s.Kind)
	if !k.TakesUpstreams() {
		return nil
	}
	p.mu.Lock()
	for _, name := range s.Upstream {
		up := p.apps[name]
		if up == nil {
			p.mu.Unlock()
			return fmt.Errorf("%s app: its upstream %s is not running", s.Name, name)
		}
		cfg.Upstreams = append(cfg.Upstreams, webapp.Upstream{Name: name, Protocol: up.spec.Protocol, Addr: up.addr})
	}
	p.mu.Unlock()
	cfg.Affinity, cfg.HandshakeTimeout, cfg.HealthInterval = s.Affinity, s.HandshakeTimeout, s.HealthInterval
	cfg.RootCAs, cfg.UpstreamKeyLog = p.env.PKI.Pool(), p.env.KeyLog
	if k.Token {
		secret, err := p.env.Secret()
		if err != nil {
			return fmt.Errorf("%s app: %w", s.Name, err)
		}
		cfg.TokenSecret = secret
	}
	return nil
}

func (p *Provider) stop(ctx context.Context, a *app) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := a.srv.Shutdown(ctx)
	<-a.served
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stopping %s app: %w", a.spec.Name, err)
	}
	return nil
}

// Status implements lab.Provider; health comes from each app's GET /health
// over a real connection.
func (p *Provider) Status(ctx context.Context) ([]lab.AppStatus, error) {
	p.mu.Lock()
	apps := make([]*app, 0, len(p.apps))
	for _, a := range p.apps {
		apps = append(apps, a)
	}
	p.mu.Unlock()
	out := make([]lab.AppStatus, 0, len(apps))
	for _, a := range apps {
		out = append(out, p.status(ctx, a))
	}
	return out, nil
}

func (p *Provider) status(ctx context.Context, a *app) lab.AppStatus {
	st := lab.AppStatus{
		Name:     a.spec.Name,
		Kind:     a.spec.Kind,
		Protocol: a.spec.Protocol,
		Image:    "in-process (goroutine)",
		State:    lab.AppRunning,
		Endpoint: a.addr,
		Ports:    []string{a.addr + "/tcp"},
		Restarts: a.restarts,
		Started:  a.started,
	}
	select {
	case <-a.served:
		st.State, st.Endpoint = lab.AppExited, ""
		if a.err != nil {
			st.Detail = a.err.Error()
		}
		return st
	default:
	}
	t := probe.Target{App: a.spec.Name, Protocol: a.spec.Protocol, Addr: a.addr, ServerName: "localhost", RootCAs: p.env.PKI.Pool()}
	if err := probe.Health(ctx, t); err != nil {
		st.Health, st.Detail = "unhealthy", err.Error()
	} else {
		st.Health = "healthy"
	}
	return st
}

// ShellActions implements lab.ShellActioner: the apps are goroutines of
// this process, so there is no container to list or follow; the process
// and the selected app's connections are what a shell here can show.
func (p *Provider) ShellActions(selected string, apps []lab.AppStatus) []lab.ShellAction {
	out := []lab.ShellAction{{Key: "f2", Label: "this process", Command: fmt.Sprintf("ps -o pid,ppid,etime,rss,nlwp,args -p %d", os.Getpid())}}
	for _, a := range apps {
		if a.Name == selected {
			out = append(out, lab.ShellAction{Key: "f3", Label: "connections of " + a.Name, Command: lab.SSForPorts([]lab.AppStatus{a})})
		}
	}
	return out
}

// Teardown implements lab.Provider: every app is shut down (WebSocket peers
// get close 1001) and its listener closed.
func (p *Provider) Teardown(ctx context.Context) error {
	p.mu.Lock()
	apps := p.apps
	p.apps = make(map[string]*app)
	p.mu.Unlock()
	var errs []error
	for _, a := range apps {
		if err := p.stop(ctx, a); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
