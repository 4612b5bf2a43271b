package lab

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
)

// Event is one item on the Lab's event stream. The TUI turns each into a
// tea.Msg; the headless runner prints it (text or NDJSON). Every concrete
// event type below is a plain struct, so front ends type-switch on them.
type Event interface {
	// EventType is the "type" field of the event's JSON form.
	EventType() string
	// EventTime is when the event happened.
	EventTime() time.Time
}

// At carries an event's time; every event embeds it.
type At struct {
	Time time.Time `json:"time"`
}

// EventTime implements Event.
func (a At) EventTime() time.Time { return a.Time }

func now() At { return At{Time: time.Now()} }

// StateEvent reports a change of the Lab's state.
type StateEvent struct {
	At
	Lab    string `json:"lab"`
	From   State  `json:"from"`
	To     State  `json:"to"`
	Reason string `json:"reason,omitempty"`
}

// HostEvent reports the lab host's details (after Up and when they change).
type HostEvent struct {
	At
	Host HostInfo `json:"host"`
}

// AppEvent reports one app's status.
type AppEvent struct {
	At
	App AppStatus `json:"app"`
}

// ProgressEvent reports a step of long work (provisioning, image builds…).
type ProgressEvent struct {
	At
	Op    string `json:"op"`
	Step  string `json:"step"`
	Done  int    `json:"done,omitempty"`
	Total int    `json:"total,omitempty"`
}

// ProbeEvent reports one protocol's measurement.
type ProbeEvent struct {
	At
	Result probe.Result `json:"result"`
}

// SendEvent reports a single message sent with Send and its echo.
type SendEvent struct {
	At
	probe.SendResult
	Error string `json:"error,omitempty"`
}

// LogEvent is a log line from the lab, a provider or an app.
type LogEvent struct {
	At
	Level   string `json:"level"`
	Source  string `json:"source"`
	Message string `json:"message"`
}

// ErrorEvent reports a failed command.
type ErrorEvent struct {
	At
	Op    string `json:"op"`
	Error string `json:"error"`
}

// PromptEvent asks the person at the front end a question; Answer replies
// (once). Headless front ends cannot answer: the asker then fails with its
// own advice.
type PromptEvent struct {
	At
	// ID tells one question from another: several front ends (the
	// sessions of serve) may show it, the first answer counts, and a
	// PromptClosedEvent with the same ID tells the others it is gone.
	ID       uint64 `json:"id"`
	Question string `json:"question"`
	Secret   bool   `json:"secret,omitempty"`
	reply    chan string
}

// PromptClosedEvent says a question was answered (or given up on): a front
// end still showing it takes it down.
type PromptClosedEvent struct {
	At
	ID uint64 `json:"id"`
}

// Answer replies to the question ("" declines).
func (e PromptEvent) Answer(s string) {
	select {
	case e.reply <- s:
	default:
	}
}

// ReportEvent carries the comparison report.
type ReportEvent struct {
	At
	Report
}

// Report compares the apps after a probe run.
type Report struct {
	Lab      string         `json:"lab"`
	Provider string         `json:"provider"`
	OK       bool           `json:"ok"`
	Capture  *capture.Stats `json:"capture,omitempty"`
	// Apps are the apps' rows, by app name; Order lists the names in the
	// lab's display order.
	Apps  map[string]AppReport `json:"apps"`
	Order []string             `json:"order"`
	// Steps are how the lab file's steps went, when a script ran
	// (RunSteps).
	Steps []StepResult `json:"steps,omitempty"`
}

// AppReport is one app's row of the report: its kind, the probe's
// measurement (with the app's name and protocol) and, when capture was on,
// what the wire showed.
type AppReport struct {
	Kind string `json:"kind"`
	probe.Result
	Wire *wire.Summary `json:"wire,omitempty"`
	// Hops is, for an intermediary, its path hop by hop (itself first,
	// then what is behind it), each with what it adds over the hops
	// behind it.
	Hops []Hop `json:"hops,omitempty"`
}

// Hop is one app on an intermediary's path: the same echo measured on it
// directly, and what it costs over the apps behind it (its figures less the
// mean of its upstreams'; its upstreams are measured on their own).
type Hop struct {
	App      string            `json:"app"`
	Kind     string            `json:"kind"`
	Protocol protocol.Protocol `json:"protocol"`
	// Upstream lists the apps this hop hands on to.
	Upstream     []string `json:"upstream,omitempty"`
	SetupMs      float64  `json:"setup_ms"`
	RTTP50Ms     float64  `json:"rtt_p50_ms"`
	AddedSetupMs float64  `json:"added_setup_ms"`
	AddedRTTMs   float64  `json:"added_rtt_p50_ms"`
	// Replicas counts what each replica served this hop's probe, when a
	// balancer on its path named them.
	Replicas map[string]int `json:"replicas,omitempty"`
}

// Hops is app's path with each hop's added cost, from the measured
// results; nil when the app is no intermediary or a hop was not measured.
func Hops(cfg Config, app string, results map[string]probe.Result) []Hop {
	a, ok := cfg.App(app)
	if !ok || len(a.Hops()) == 0 {
		return nil
	}
	var out []Hop
	for _, h := range reachedChain(cfg, app, results) {
		r, ok := results[h.Name]
		if !ok || !r.OK {
			return nil
		}
		hop := Hop{App: h.Name, Kind: h.Kind, Protocol: h.Protocol, Upstream: h.Upstream, SetupMs: r.SetupMs, RTTP50Ms: r.RTTP50Ms, Replicas: r.Replicas}
		if reached := reachedUpstreams(h, r); len(reached) > 0 {
			var setup, rtt, n float64
			for up, w := range reached {
				u, ok := results[up]
				if !ok || !u.OK {
					return nil
				}
				setup += w * u.SetupMs
				rtt += w * u.RTTP50Ms
				n += w
			}
			hop.AddedSetupMs, hop.AddedRTTMs = r.SetupMs-setup/n, r.RTTP50Ms-rtt/n
		}
		out = append(out, hop)
	}
	return out
}

// reachedChain is app's path as its probes went: the app, then the
// upstreams each hop went on to (reachedUpstreams), each app once.
func reachedChain(cfg Config, app string, results map[string]probe.Result) []App {
	var out []App
	seen := map[string]bool{}
	next := []string{app}
	for len(next) > 0 {
		var after []string
		for _, n := range next {
			a, ok := cfg.App(n)
			if !ok || seen[n] {
				continue
			}
			seen[n] = true
			out = append(out, a)
			reached := reachedUpstreams(a, results[n])
			for _, up := range a.Hops() { // in the lab file's order
				if reached[up] > 0 {
					after = append(after, up)
				}
			}
		}
		next = after
	}
	return out
}

// reachedUpstreams are the upstreams hop h's probe went on to, each with
// its weight: a token proxy's first target (the one the lab's token names),
// the replicas a balancer named in its answers (as often as each served),
// else every upstream alike (a front's one).
func reachedUpstreams(h App, r probe.Result) map[string]float64 {
	out := map[string]float64{}
	if len(h.Upstream) == 0 {
		return out
	}
	if k, _ := protocol.LookupKind(h.Kind); k.Token {
		out[h.Upstream[0]] = 1
		return out
	}
	for _, up := range h.Upstream {
		if n := r.Replicas[up]; n > 0 {
			out[up] = float64(n)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, up := range h.Upstream {
		out[up] = 1
	}
	return out
}

// Rows lists the apps' rows in display order.
func (r Report) Rows() []AppReport {
	out := make([]AppReport, 0, len(r.Order))
	for _, name := range r.Order {
		if a, ok := r.Apps[name]; ok {
			out = append(out, a)
		}
	}
	return out
}

// Failed lists the apps that are not ok, in display order.
func (r Report) Failed() []string {
	var out []string
	for _, a := range r.Rows() {
		if !a.OK {
			out = append(out, a.App)
		}
	}
	return out
}

// EventType implementations: the JSON "type" of each event.
func (StateEvent) EventType() string        { return "state" }
func (HostEvent) EventType() string         { return "host" }
func (AppEvent) EventType() string          { return "app" }
func (ProgressEvent) EventType() string     { return "progress" }
func (ProbeEvent) EventType() string        { return "probe" }
func (SendEvent) EventType() string         { return "send" }
func (LogEvent) EventType() string          { return "log" }
func (ErrorEvent) EventType() string        { return "error" }
func (ReportEvent) EventType() string       { return "report" }
func (PromptEvent) EventType() string       { return "prompt" }
func (PromptClosedEvent) EventType() string { return "prompt_closed" }

// MarshalEvent encodes e as one JSON object whose first field is "type".
func MarshalEvent(e Event) ([]byte, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encoding %s event: %w", e.EventType(), err)
	}
	if len(body) < 2 || body[0] != '{' {
		return nil, fmt.Errorf("encoding %s event: not a JSON object", e.EventType())
	}
	typ, _ := json.Marshal(e.EventType())
	out := make([]byte, 0, len(body)+len(typ)+10)
	out = append(out, `{"type":`...)
	out = append(out, typ...)
	if len(body) > 2 {
		out = append(out, ',')
	}
	return append(out, body[1:]...), nil
}

// bus fans events out to subscribers. Each subscriber has its own unbounded
// queue, so a slow reader never blocks the Lab and never loses an event
// (events are low-rate: packets go to ring buffers, not here).
type bus struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	mu     sync.Mutex
	queue  []Event
	wake   chan struct{}
	closed bool
	out    chan Event
}

func newBus() *bus { return &bus{subs: make(map[*subscriber]struct{})} }

func (b *bus) publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		s.mu.Lock()
		if !s.closed {
			s.queue = append(s.queue, e)
		}
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// subscribe returns a channel of every event published from now on, and a
// function that ends the subscription: the channel is closed once the events
// queued before that call have been delivered.
func (b *bus) subscribe() (<-chan Event, func()) {
	s := &subscriber{wake: make(chan struct{}, 1), out: make(chan Event)}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go s.pump()
	var once sync.Once
	return s.out, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, s)
			b.mu.Unlock()
			s.mu.Lock()
			s.closed = true
			s.mu.Unlock()
			select {
			case s.wake <- struct{}{}:
			default:
			}
		})
	}
}

func (s *subscriber) pump() {
	defer close(s.out)
	for {
		s.mu.Lock()
		batch := s.queue
		s.queue = nil
		closed := s.closed
		s.mu.Unlock()
		for _, e := range batch {
			s.out <- e
		}
		if closed && len(batch) == 0 {
			return
		}
		if len(batch) == 0 {
			<-s.wake
		}
	}
}
