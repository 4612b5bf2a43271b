// Package lab is protolab's domain: the Lab — a state machine over a Provider
// that brings a lab host up, deploys the protocol apps, probes and compares
// them and tears everything down — and the one typed event stream through
// which both front ends (the TUI and the headless runner) watch it.
//
// Commands (Up, Deploy, Redeploy, Probe, Send, Teardown) return at once with
// a Job; their progress and results arrive as events.
package lab

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/pki"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/protocol/labtoken"
)

// State is the Lab's lifecycle state.
type State string

// The Lab's states. down → provisioning → ready → deploying → running →
// tearing_down → down; any step may end in failed (with a reason), from which
// Up or Teardown start again.
const (
	Down         State = "down"
	Provisioning State = "provisioning"
	Ready        State = "ready"
	Deploying    State = "deploying"
	Running      State = "running"
	TearingDown  State = "tearing_down"
	Failed       State = "failed"
)

// Busy reports whether the state is a transition in progress.
func (s State) Busy() bool { return s == Provisioning || s == Deploying || s == TearingDown }

// ErrBusy is returned by a command given while another is in progress.
var ErrBusy = errors.New("the lab is busy")

// Job is a command in progress.
type Job struct {
	done chan struct{}
	err  error
}

func newJob() *Job { return &Job{done: make(chan struct{})} }

func failedJob(err error) *Job {
	j := newJob()
	j.finish(err)
	return j
}

func (j *Job) finish(err error) { j.err = err; close(j.done) }

// Done is closed when the command has finished.
func (j *Job) Done() <-chan struct{} { return j.done }

// Err is the command's error, valid after Done.
func (j *Job) Err() error { <-j.done; return j.err }

// Wait waits for the command or ctx, whichever ends first.
func (j *Job) Wait(ctx context.Context) error {
	select {
	case <-j.done:
		return j.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Snapshot is the Lab's state at one moment.
type Snapshot struct {
	Name     string
	Provider string
	State    State
	Reason   string
	Since    time.Time
	Host     HostInfo
	// Apps are the apps' status in the configuration's order.
	Apps []AppStatus
	// Results are the latest measurements, by app name.
	Results map[string]probe.Result
}

// Lab is one lab: a provider, its apps and their measurements.
type Lab struct {
	cfg  Config
	prov Provider
	pki  *pki.Authority
	bus  *bus

	mu       sync.Mutex
	state    State
	reason   string
	since    time.Time
	host     HostInfo
	apps     map[string]AppStatus
	results  map[string]probe.Result // by app name
	opCancel context.CancelFunc      // cancels the lifecycle command in progress
	opDone   chan struct{}           // closed when it ends
	work     sync.WaitGroup          // probes and sends in flight

	interactive bool

	// steps are the results of the last script (RunSteps), for the report
	steps []StepResult

	// capture
	keys *wire.KeyLog // TLS secrets of the lab's own clients

	prompts atomic.Uint64 // the last question's ID
	// unsynced are the probes' connections made while capture ran, not yet
	// waited for by SyncCapture.
	unsynced []capture.Conn
	store    *wire.Store // decoded records, kept across capture restarts
	keyFile  *os.File
	cs       captureSession
	// spoolSwept: stale named spools are removed once per lab
	spoolSwept sync.Once

	// the client Metrics scrapes with (lazily made)
	scrapeOnce   sync.Once
	scrapeClient *http.Client
}

// New creates a Lab in state down. newProvider builds the provider from the
// environment the Lab gives it (configuration, CA, event sink).
func New(cfg Config, newProvider func(Env) (Provider, error)) (*Lab, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	auth, err := pki.Load(cfg.StateDir+"/pki", cfg.ExtraNames)
	if err != nil {
		return nil, fmt.Errorf("lab CA: %w", err)
	}
	l := &Lab{
		cfg:     cfg,
		pki:     auth,
		bus:     newBus(),
		state:   Down,
		since:   time.Now(),
		apps:    make(map[string]AppStatus),
		results: make(map[string]probe.Result),
		keys:    wire.NewKeyLog(nil),
		store:   wire.NewStore(cfg.Capture.RingSize),
	}
	prov, err := newProvider(Env{Config: cfg, PKI: auth, Emit: l.emit, Ask: l.ask, KeyLog: l.keys})
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", cfg.Provider, err)
	}
	l.prov = prov
	return l, nil
}

// Interactive says a front end can answer prompts (the TUI); without it,
// questions fail at once.
func (l *Lab) Interactive(on bool) {
	l.mu.Lock()
	l.interactive = on
	l.mu.Unlock()
}

// ErrNoAnswer means a question needed a person and none could answer.
var ErrNoAnswer = errors.New("no one to answer (headless)")

func (l *Lab) ask(ctx context.Context, question string, secret bool) (string, error) {
	l.mu.Lock()
	on := l.interactive
	l.mu.Unlock()
	if !on {
		return "", ErrNoAnswer
	}
	reply := make(chan string, 1)
	id := l.prompts.Add(1)
	l.emit(PromptEvent{At: now(), ID: id, Question: question, Secret: secret, reply: reply})
	defer l.emit(PromptClosedEvent{At: now(), ID: id})
	select {
	case a := <-reply:
		return a, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Config returns the Lab's effective configuration.
func (l *Lab) Config() Config { return l.cfg }

// PKI returns the lab CA.
func (l *Lab) PKI() *pki.Authority { return l.pki }

// InProcess reports whether the lab's apps live in this process (the
// embedded provider), so they end when it exits.
func (l *Lab) InProcess() bool {
	ip, ok := l.prov.(interface{ InProcess() bool })
	return ok && ip.InProcess()
}

// Provider returns the Lab's provider.
func (l *Lab) Provider() Provider { return l.prov }

// Subscribe returns the event stream from now on and a function that ends it
// (the channel closes after the events already queued are delivered). A
// subscriber must keep reading until the channel closes.
func (l *Lab) Subscribe() (<-chan Event, func()) { return l.bus.subscribe() }

func (l *Lab) emit(e Event) {
	switch ev := e.(type) {
	case AppEvent:
		l.mu.Lock()
		l.apps[ev.App.Name] = ev.App
		l.mu.Unlock()
	case HostEvent: // a provider's news of the host (an SSH link lost)
		l.mu.Lock()
		l.host = ev.Host
		l.mu.Unlock()
	}
	l.bus.publish(e)
}

// Snapshot returns the Lab's state now.
func (l *Lab) Snapshot() Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Snapshot{
		Name: l.cfg.Name, Provider: l.prov.Name(), State: l.state, Reason: l.reason,
		Since: l.since, Host: l.host, Results: make(map[string]probe.Result, len(l.results)),
		Apps: l.appsLocked(),
	}
	for k, v := range l.results {
		s.Results[k] = v
	}
	return s
}

// appsLocked lists the apps' status in the configuration's order (apps
// the provider reports beyond it follow, by name). l.mu must be held.
func (l *Lab) appsLocked() []AppStatus {
	out := make([]AppStatus, 0, len(l.apps))
	for _, c := range l.cfg.Apps {
		if a, ok := l.apps[c.Name]; ok {
			out = append(out, a)
		}
	}
	if len(out) < len(l.apps) {
		var extra []AppStatus
		for name, a := range l.apps {
			if _, ok := l.cfg.App(name); !ok {
				extra = append(extra, a)
			}
		}
		sort.Slice(extra, func(i, j int) bool { return extra[i].Name < extra[j].Name })
		out = append(out, extra...)
	}
	return out
}

// setStateLocked moves to a new state and publishes it. l.mu must be held.
func (l *Lab) setStateLocked(to State, reason string) {
	from := l.state
	l.state, l.reason, l.since = to, reason, time.Now()
	l.bus.publish(StateEvent{At: now(), Lab: l.cfg.Name, From: from, To: to, Reason: reason})
}

// lifecycle runs one state transition in the background: from one of the
// allowed states, through the busy state, to the done state (or failed).
func (l *Lab) lifecycle(ctx context.Context, op string, allowed []State, busy, done State, work func(context.Context) error) *Job {
	l.mu.Lock()
	if !contains(allowed, l.state) {
		st := l.state
		l.mu.Unlock()
		err := fmt.Errorf("%s: %w: it is %s (possible from %v)", op, ErrBusy, st, allowed)
		if !st.Busy() {
			err = fmt.Errorf("%s is not possible while the lab is %s (possible from %v)", op, st, allowed)
		}
		l.emit(ErrorEvent{At: now(), Op: op, Error: err.Error()})
		return failedJob(err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.OpTimeout)
	l.opCancel, l.opDone = cancel, make(chan struct{})
	opDone := l.opDone
	l.setStateLocked(busy, "")
	l.mu.Unlock()

	j := newJob()
	go func() {
		defer close(opDone)
		defer cancel()
		err := work(ctx)
		l.mu.Lock()
		l.opCancel = nil
		if err != nil {
			if errors.Is(err, context.Canceled) {
				err = fmt.Errorf("%s cancelled: %w", op, err)
			}
			l.setStateLocked(Failed, err.Error())
		} else {
			l.setStateLocked(done, "")
		}
		l.mu.Unlock()
		if err != nil {
			l.emit(ErrorEvent{At: now(), Op: op, Error: err.Error()})
		}
		j.finish(err)
	}()
	return j
}

func contains(states []State, s State) bool {
	for _, x := range states {
		if x == s {
			return true
		}
	}
	return false
}

// Up brings the lab host up: down (or failed) → provisioning → ready.
func (l *Lab) Up(ctx context.Context) *Job {
	return l.lifecycle(ctx, "up", []State{Down, Failed}, Provisioning, Ready, func(ctx context.Context) error {
		host, err := l.prov.Up(ctx)
		if err != nil {
			return err
		}
		l.mu.Lock()
		l.host = host
		l.mu.Unlock()
		l.emit(HostEvent{At: now(), Host: host})
		return nil
	})
}

// Deploy starts the apps: ready → deploying → running.
func (l *Lab) Deploy(ctx context.Context) *Job {
	return l.lifecycle(ctx, "deploy", []State{Ready}, Deploying, Running, func(ctx context.Context) error {
		return l.publishApps(l.prov.Deploy(ctx, l.deployOrder()))
	})
}

// Redeploy replaces the running apps: running → deploying → running.
func (l *Lab) Redeploy(ctx context.Context) *Job {
	return l.lifecycle(ctx, "redeploy", []State{Running}, Deploying, Running, func(ctx context.Context) error {
		return l.publishApps(l.prov.Redeploy(ctx, l.deployOrder()))
	})
}

// deployOrder is the lab's apps, each after its upstreams.
func (l *Lab) deployOrder() []App {
	apps, err := DeployOrder(l.cfg.Apps)
	if err != nil { // WithDefaults refused such a config
		return l.cfg.Apps
	}
	return apps
}

func (l *Lab) publishApps(apps []AppStatus, err error) error {
	for _, a := range apps {
		l.emit(AppEvent{At: now(), App: a})
	}
	return err
}

// Teardown stops everything: it cancels a lifecycle command in progress, waits
// for it, then tears down (→ tearing_down → down). It works from any state, so
// it also cleans up after a failure.
func (l *Lab) Teardown(ctx context.Context) *Job {
	l.mu.Lock()
	if l.state == TearingDown {
		l.mu.Unlock()
		err := fmt.Errorf("teardown: %w: already tearing down", ErrBusy)
		l.emit(ErrorEvent{At: now(), Op: "teardown", Error: err.Error()})
		return failedJob(err)
	}
	if l.opCancel != nil {
		l.opCancel()
	}
	pending := l.opDone
	l.mu.Unlock()
	if pending != nil {
		select {
		case <-pending:
		case <-ctx.Done():
			err := fmt.Errorf("teardown: waiting for the command in progress: %w", ctx.Err())
			l.emit(ErrorEvent{At: now(), Op: "teardown", Error: err.Error()})
			return failedJob(err)
		}
	}
	return l.lifecycle(ctx, "teardown", []State{Down, Ready, Running, Failed}, TearingDown, Down, func(ctx context.Context) error {
		// No probe or send can start now that the state is tearing_down; let
		// those in flight finish before their apps go.
		l.work.Wait()
		_ = l.StopCapture().Err() // capture ends before the apps do
		err := l.prov.Teardown(ctx)
		l.mu.Lock()
		for name, a := range l.apps {
			a.State, a.Health, a.Endpoint = AppStopped, "", ""
			l.apps[name] = a
		}
		apps := l.appsLocked()
		l.mu.Unlock()
		if err == nil {
			for _, a := range apps {
				l.emit(AppEvent{At: now(), App: a})
			}
		}
		return err
	})
}

// Target returns how to reach the named app from this machine, with the lab
// CA for verification and the lab's key log for decryption.
func (l *Lab) Target(app string) (probe.Target, error) {
	cfg, a, err := l.reachable(app)
	if err != nil {
		return probe.Target{}, err
	}
	t := probe.Target{App: app, Protocol: cfg.Protocol, Addr: a.Endpoint, ServerName: "localhost", RootCAs: l.pki.Pool(),
		Roots: []*x509.Certificate{l.pki.CA}, KeyLog: l.keys, Dial: l.tapDial(cfg), Compression: cfg.Compression}
	if k, _ := protocol.LookupKind(cfg.Kind); k.Token {
		// Through a token-checked proxy to its first target, with a token
		// the lab mints for the run.
		tok, err := l.MintToken(cfg.Upstream[:1], l.cfg.Probe.Timeout+time.Minute)
		if err != nil {
			return probe.Target{}, fmt.Errorf("%s: %w", app, err)
		}
		t.Path = "/" + tok + "/" + cfg.Upstream[0] + "/echo"
	}
	return t, nil
}

// reachable is the named app's configuration and status when it is
// running, so a client can reach it at its endpoint; else why not.
func (l *Lab) reachable(app string) (App, AppStatus, error) {
	cfg, known := l.cfg.App(app)
	l.mu.Lock()
	a, ok := l.apps[app]
	st := l.state
	l.mu.Unlock()
	if !known {
		return cfg, a, fmt.Errorf("no app named %q in this lab (it has %s)", app, strings.Join(l.cfg.AppNames(), ", "))
	}
	if st != Running {
		return cfg, a, fmt.Errorf("%s: the lab is %s, not running: bring it up and deploy first", app, st)
	}
	if !ok {
		return cfg, a, fmt.Errorf("%s: the app is not deployed: redeploy the lab", app)
	}
	if a.Endpoint == "" || a.State != AppRunning {
		why := a.State
		if a.Detail != "" {
			why += " (" + a.Detail + ")"
		}
		return cfg, a, fmt.Errorf("%s: the app is %s, not running: redeploy to start it again", app, why)
	}
	return cfg, a, nil
}

// MintToken makes a token (protocol/labtoken) with the lab's secret that lets
// its holder reach targets through the lab's ws-proxy apps for ttl.
func (l *Lab) MintToken(targets []string, ttl time.Duration) (string, error) {
	secret, err := labtoken.LoadSecret(SecretPath(l.cfg.StateDir))
	if err != nil {
		return "", err
	}
	return labtoken.Mint(secret, targets, ttl, time.Now())
}

// running registers probe work so Teardown waits for it; it fails when the
// lab is not running.
func (l *Lab) running(op string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state != Running {
		return fmt.Errorf("%s: the lab is %s, not running", op, l.state)
	}
	l.work.Add(1)
	return nil
}

// Probe measures the named apps (all of them when none is named) one at a
// time, so they do not skew each other, publishing a ProbeEvent for each
// and a ReportEvent at the end.
func (l *Lab) Probe(ctx context.Context, apps ...string) *Job {
	if len(apps) == 0 {
		apps = l.cfg.AppNames()
	}
	if err := l.running("probe"); err != nil {
		l.emit(ErrorEvent{At: now(), Op: "probe", Error: err.Error()})
		return failedJob(err)
	}
	j := newJob()
	go func() {
		defer l.work.Done()
		for i, name := range apps {
			l.emit(ProgressEvent{At: now(), Op: "probe", Step: name, Done: i, Total: len(apps)})
			var res probe.Result
			began := time.Now()
			t, err := l.Target(name)
			if err == nil {
				t.Connected = func() {
					l.emit(ProgressEvent{At: now(), Op: "probe", Step: name + " connected", Done: i, Total: len(apps)})
				}
				capturing := l.captureSession().running() != nil
				res, _ = probe.RunClient(ctx, t, l.cfg.Probe)
				if capturing {
					l.noteProbed(res)
				}
			} else {
				cfg, _ := l.cfg.App(name)
				res = probe.Result{App: name, Protocol: cfg.Protocol, Error: err.Error()}
			}
			res.TookMs = float64(time.Since(began)) / float64(time.Millisecond)
			l.mu.Lock()
			l.results[name] = res
			l.mu.Unlock()
			l.emit(ProbeEvent{At: now(), Result: res})
		}
		rep := l.Report()
		l.emit(ReportEvent{At: now(), Report: rep})
		var err error
		var failed []string // of the apps probed now: the others are not this job's
		for _, name := range rep.Failed() {
			if slices.Contains(apps, name) {
				failed = append(failed, name)
			}
		}
		if len(failed) > 0 {
			err = fmt.Errorf("probe failed for %s", strings.Join(failed, ", "))
		}
		j.finish(err)
	}()
	return j
}

// NotMeasured is the report's error for an app no probe has measured yet.
const NotMeasured = "not measured"

// Report compares the latest measurement of each configured app; an app
// not yet measured counts as failed. When capture ran, each app carries its
// wire figures and the report says how it captured.
func (l *Lab) Report() Report {
	stats := l.CaptureStats()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := Report{Lab: l.cfg.Name, Provider: l.prov.Name(), OK: true, Apps: map[string]AppReport{}}
	captured := stats.Mode != "" && stats.Mode != capture.ModeOff
	if captured {
		r.Capture = &stats
	}
	for _, a := range l.cfg.Apps {
		res, ok := l.results[a.Name]
		if !ok {
			res = probe.Result{App: a.Name, Protocol: a.Protocol, Error: NotMeasured}
		}
		ar := AppReport{Kind: a.Kind, Result: res, Hops: Hops(l.cfg, a.Name, l.results)}
		if captured {
			w := l.store.Counters(a.Name).Summarize()
			ar.Wire = &w
		}
		r.Order = append(r.Order, a.Name)
		r.Apps[a.Name] = ar
		r.OK = r.OK && res.OK
	}
	if len(l.steps) > 0 {
		r.Steps = append([]StepResult(nil), l.steps...)
	}
	return r
}

// Send sends one text message to the named app and publishes a SendEvent
// with the echo.
func (l *Lab) Send(ctx context.Context, app string, text string) *Job {
	cfg, _ := l.cfg.App(app)
	if err := l.running("send"); err != nil {
		l.emit(SendEvent{At: now(), SendResult: probe.SendResult{App: app, Protocol: cfg.Protocol, Sent: text}, Error: err.Error()})
		return failedJob(err)
	}
	j := newJob()
	go func() {
		defer l.work.Done()
		_, err := l.sendOnce(ctx, app, text)
		j.finish(err)
	}()
	return j
}

// Get asks an HTTP app for path with GET on a connection of its own (the
// explorer's u and U, beside Send's POST); the outcome is a SendEvent whose
// Sent is "GET path" and whose Reply is the body.
func (l *Lab) Get(ctx context.Context, app, path string) *Job {
	cfg, _ := l.cfg.App(app)
	if err := l.running("get"); err != nil {
		l.emit(SendEvent{At: now(), SendResult: probe.SendResult{App: app, Protocol: cfg.Protocol, Sent: "GET " + path}, Error: err.Error()})
		return failedJob(err)
	}
	j := newJob()
	go func() {
		defer l.work.Done()
		t, err := l.Target(app)
		res := probe.SendResult{App: app, Protocol: cfg.Protocol, Sent: "GET " + path}
		if err == nil {
			res, err = probe.Get(ctx, t, path)
		}
		ev := SendEvent{At: now(), SendResult: res}
		if err != nil {
			ev.Error = err.Error()
		}
		l.emit(ev)
		j.finish(err)
	}()
	return j
}

// Catchup lists the events that bring a front end starting now to the
// lab's state: where the lab is (since when), its host, its apps, the
// capture and the latest report. A front end that joins a running lab (a
// session of serve) applies them before the live stream (Subscribe first,
// then Catchup: what changes meanwhile comes again, in order, live).
func (l *Lab) Catchup() []Event {
	s := l.Snapshot()
	at := At{Time: s.Since}
	out := []Event{StateEvent{At: at, Lab: s.Name, From: Down, To: s.State, Reason: s.Reason}}
	if s.Host.Provider != "" {
		out = append(out, HostEvent{At: at, Host: s.Host})
	}
	for _, a := range s.Apps {
		out = append(out, AppEvent{At: at, App: a})
	}
	if on, _ := l.Capturing(); on {
		out = append(out, CaptureEvent{At: now(), State: "on", Stats: l.CaptureStats()})
	}
	if len(s.Results) > 0 {
		out = append(out, ReportEvent{At: now(), Report: l.Report()})
	}
	return out
}
