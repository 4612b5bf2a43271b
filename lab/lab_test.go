package lab_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/providers/local"
	"github.com/protolab/protolab-tui/protocol"
)

// anyPorts is the seed's four apps, each on a free port.
func anyPorts() []lab.App { return lab.OnFreePorts(lab.SeedApps()) }

// recorder collects every event of a Lab.
type recorder struct {
	mu     sync.Mutex
	events []lab.Event
	done   chan struct{}
	stop   func()
}

func record(l *lab.Lab) *recorder {
	ch, stop := l.Subscribe()
	r := &recorder{done: make(chan struct{}), stop: stop}
	go func() {
		defer close(r.done)
		for e := range ch {
			r.mu.Lock()
			r.events = append(r.events, e)
			r.mu.Unlock()
		}
	}()
	return r
}

// finish ends the subscription and returns everything recorded.
func (r *recorder) finish() []lab.Event {
	r.stop()
	<-r.done
	return r.events
}

func newLab(t *testing.T, cfg lab.Config) *lab.Lab {
	t.Helper()
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	if cfg.Apps == nil {
		cfg.Apps = anyPorts()
	}
	if cfg.Probe.Count == 0 {
		cfg.Probe.Count = 20
	}
	l, err := lab.New(cfg, local.New)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if s := l.Snapshot().State; s != lab.Down {
			_ = l.Teardown(ctx).Wait(ctx)
		}
	})
	return l
}

func wait(t *testing.T, j *lab.Job) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return j.Wait(ctx)
}

func TestLifecycle(t *testing.T) {
	l := newLab(t, lab.Config{})
	rec := record(l)
	ctx := context.Background()

	if err := wait(t, l.Up(ctx)); err != nil {
		t.Fatal(err)
	}
	if s := l.Snapshot(); s.State != lab.Ready || s.Host.Provider != "local" {
		t.Fatalf("after Up: %+v", s)
	}
	if err := wait(t, l.Deploy(ctx)); err != nil {
		t.Fatal(err)
	}
	snap := l.Snapshot()
	if snap.State != lab.Running || len(snap.Apps) != 4 {
		t.Fatalf("after Deploy: state %s, %d apps", snap.State, len(snap.Apps))
	}
	for _, a := range snap.Apps {
		if a.State != lab.AppRunning || a.Health != "healthy" || a.Endpoint == "" {
			t.Errorf("app %+v: want running, healthy, with an endpoint", a)
		}
	}
	if err := wait(t, l.Probe(ctx)); err != nil {
		t.Fatal(err)
	}
	rep := l.Report()
	if !rep.OK || len(rep.Apps) != 4 || len(rep.Order) != 4 || rep.Provider != "local" {
		t.Fatalf("report %+v", rep)
	}
	for p, r := range rep.Apps {
		if !r.OK || r.Messages != 20 {
			t.Errorf("%s: %+v", p, r)
		}
	}
	if err := wait(t, l.Send(ctx, "wss", "ping from test")); err != nil {
		t.Fatal(err)
	}

	// Redeploy keeps the endpoints and counts a restart.
	if err := wait(t, l.Redeploy(ctx)); err != nil {
		t.Fatal(err)
	}
	for i, a := range l.Snapshot().Apps {
		if a.Endpoint != snap.Apps[i].Endpoint || a.Restarts != 1 {
			t.Errorf("after redeploy %s: endpoint %s (was %s), restarts %d", a.Name, a.Endpoint, snap.Apps[i].Endpoint, a.Restarts)
		}
	}
	if err := wait(t, l.Probe(ctx, "ws")); err != nil {
		t.Fatal(err)
	}

	if err := wait(t, l.Teardown(ctx)); err != nil {
		t.Fatal(err)
	}
	if s := l.Snapshot().State; s != lab.Down {
		t.Fatalf("after Teardown: %s", s)
	}
	for _, a := range snap.Apps {
		if c, err := net.DialTimeout("tcp", a.Endpoint, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listening on %s after teardown", a.Name, a.Endpoint)
		}
	}

	// The event stream told the whole story, in order.
	var states []string
	var probes, sends, reports int
	for _, e := range rec.finish() {
		switch e := e.(type) {
		case lab.StateEvent:
			states = append(states, string(e.To))
		case lab.ProbeEvent:
			probes++
		case lab.SendEvent:
			sends++
			if e.Reply != "ping from test" || e.Error != "" {
				t.Errorf("send event %+v", e)
			}
		case lab.ReportEvent:
			reports++
		}
	}
	want := "provisioning ready deploying running deploying running tearing_down down"
	if got := strings.Join(states, " "); got != want {
		t.Errorf("states %q, want %q", got, want)
	}
	if probes != 5 || sends != 1 || reports != 2 {
		t.Errorf("%d probe, %d send, %d report events; want 5, 1, 2", probes, sends, reports)
	}
}

func TestCommandsOutOfOrder(t *testing.T) {
	l := newLab(t, lab.Config{})
	ctx := context.Background()
	if err := wait(t, l.Deploy(ctx)); err == nil || !strings.Contains(err.Error(), "not possible while the lab is down") {
		t.Errorf("deploy while down: %v", err)
	}
	if err := wait(t, l.Probe(ctx)); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("probe while down: %v", err)
	}
	if err := wait(t, l.Send(ctx, "ws", "x")); err == nil {
		t.Error("send while down succeeded")
	}
	if err := wait(t, l.Up(ctx)); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, l.Up(ctx)); err == nil {
		t.Error("up twice succeeded")
	}
}

func TestPortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	apps := anyPorts()
	apps[2].Port = port // ws
	l := newLab(t, lab.Config{Apps: apps})
	rec := record(l)
	ctx := context.Background()
	if err := wait(t, l.Up(ctx)); err != nil {
		t.Fatal(err)
	}
	err = wait(t, l.Deploy(ctx))
	var inUse *lab.PortInUseError
	if !errors.As(err, &inUse) || inUse.App != "ws" {
		t.Fatalf("deploy on a taken port: %v", err)
	}
	for _, want := range []string{strconv.Itoa(port), "app ws", "--port ws=N", "already in use"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	snap := l.Snapshot()
	if snap.State != lab.Failed || !strings.Contains(snap.Reason, "--port ws=N") {
		t.Errorf("state %s (%s), want failed naming the flag", snap.State, snap.Reason)
	}
	// The apps started before the failure were stopped again; teardown from
	// failed works.
	if err := wait(t, l.Teardown(ctx)); err != nil {
		t.Fatal(err)
	}
	var sawError bool
	for _, e := range rec.finish() {
		if ee, ok := e.(lab.ErrorEvent); ok && ee.Op == "deploy" {
			sawError = true
		}
	}
	if !sawError {
		t.Error("no error event for the failed deploy")
	}
}

func TestTeardownCancelsADeployInProgress(t *testing.T) {
	l := newLab(t, lab.Config{})
	ctx := context.Background()
	if err := wait(t, l.Up(ctx)); err != nil {
		t.Fatal(err)
	}
	deploy := l.Deploy(ctx)
	if err := wait(t, l.Teardown(ctx)); err != nil {
		t.Fatal(err)
	}
	_ = deploy.Err() // finished, whichever way
	if s := l.Snapshot(); s.State != lab.Down {
		t.Fatalf("state after teardown = %s", s.State)
	}
	for _, a := range l.Snapshot().Apps {
		if a.State == lab.AppRunning {
			t.Errorf("%s still running", a.Name)
		}
	}
}

func TestConfigDefaultsAndErrors(t *testing.T) {
	c, err := lab.Config{StateDir: "/x"}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "protolab" || c.Provider != "local" || c.Bind != "127.0.0.1" || len(c.Apps) != 4 {
		t.Errorf("defaults: %+v", c)
	}
	for i, p := range protocol.Seed() {
		a := c.Apps[i]
		if a.Name != string(p) || a.Protocol != p || a.Port != p.DefaultPort() || a.Kind != p.Desc().DefaultKind || a.ReadLimit != lab.DefaultReadLimit {
			t.Errorf("default app %d: %+v", i, a)
		}
	}
	ws := func(name string, port int) lab.App { return lab.App{Name: name, Protocol: protocol.WS, Port: port} }
	for _, tc := range []struct {
		cfg  lab.Config
		want string
	}{
		{lab.Config{StateDir: "/x", Name: "bad name!"}, "lab name"},
		{lab.Config{StateDir: "/x", Bind: "localhost"}, "not an IP"},
		{lab.Config{StateDir: "/x", Apps: []lab.App{ws("ws", 70000)}}, "apps[0].port: app ws: port 70000"},
		{lab.Config{StateDir: "/x", Apps: []lab.App{ws("a", 3000), ws("b", 3000)}}, "apps[1].port: app b asks for port 3000, which apps[0] (a) has"},
		{lab.Config{StateDir: "/x", Apps: []lab.App{ws("a", 1), ws("a", 2)}}, "apps[1].name: app name \"a\" is already used"},
		{lab.Config{StateDir: "/x", Apps: []lab.App{{Name: "g", Protocol: "gopher"}}}, "apps[0].protocol: app g: unknown protocol \"gopher\""},
		{lab.Config{StateDir: "/x", Apps: []lab.App{{Name: "g", Protocol: protocol.WS, Kind: "echo-http"}}}, "apps[0].kind: app g: kind echo-http does not speak ws"},
		{lab.Config{StateDir: "/x", Apps: []lab.App{{Name: "Bad Name", Protocol: protocol.WS}}}, "apps[0].name"},
		{lab.Config{StateDir: "/x", Apps: []lab.App{}}, "apps: the lab has no apps"},
		{lab.Config{StateDir: "/x", Capture: lab.CaptureConfig{Mode: "sometimes"}}, "capture.mode"},
	} {
		if _, err := tc.cfg.WithDefaults(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestMarshalEvent(t *testing.T) {
	at := lab.At{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	for _, e := range []lab.Event{
		lab.StateEvent{At: at, Lab: "x", From: lab.Down, To: lab.Provisioning},
		lab.ReportEvent{At: at, Report: lab.Report{Provider: "local", Apps: map[string]lab.AppReport{"ws": {Kind: "chat-ws", Result: probe.Result{App: "ws", Protocol: protocol.WS, OK: true}}}, Order: []string{"ws"}}},
		lab.SendEvent{At: at, SendResult: probe.SendResult{Sent: "a"}},
	} {
		b, err := lab.MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if m["type"] != e.EventType() || m["time"] != "2026-01-02T03:04:05Z" {
			t.Errorf("%s: type/time wrong", b)
		}
		if !strings.HasPrefix(string(b), `{"type":"`+e.EventType()+`",`) {
			t.Errorf("%s: type is not the first field", b)
		}
	}
	b, _ := lab.MarshalEvent(lab.ReportEvent{At: at, Report: lab.Report{Provider: "local"}})
	if !strings.Contains(string(b), `"provider":"local"`) {
		t.Errorf("report fields are not at the top level: %s", b)
	}
}

func TestSlowSubscriberLosesNothing(t *testing.T) {
	l := newLab(t, lab.Config{})
	ch, stop := l.Subscribe()
	ctx := context.Background()
	// Nobody reads while the lab works: commands must not block on the stream.
	if err := wait(t, l.Up(ctx)); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, l.Teardown(ctx)); err != nil {
		t.Fatal(err)
	}
	stop()
	var states int
	for e := range ch {
		if _, ok := e.(lab.StateEvent); ok {
			states++
		}
	}
	if states != 4 {
		t.Errorf("read %d state events after the fact, want 4", states)
	}
}

func TestCaptureThroughTheLab(t *testing.T) {
	testenv.NeedRoot(t)
	state := t.TempDir()
	l := newLab(t, lab.Config{StateDir: state, Capture: lab.CaptureConfig{Mode: "on"}})
	defer l.Close()
	ctx := context.Background()
	if err := wait(t, l.StartCapture(ctx)); err == nil {
		t.Error("capture started before any port was known")
	}
	for _, j := range []func(context.Context) *lab.Job{l.Up, l.Deploy, l.StartCapture} {
		if err := wait(t, j(ctx)); err != nil {
			t.Fatal(err)
		}
	}
	if on, mode := l.Capturing(); !on || mode != capture.ModeLive {
		t.Fatalf("capturing %v %s", on, mode)
	}
	if err := wait(t, l.Probe(ctx)); err != nil {
		t.Fatal(err)
	}
	if err := l.SyncCapture(ctx); err != nil {
		t.Fatal(err)
	}
	rep := l.Report()
	if rep.Capture == nil || rep.Capture.Mode != capture.ModeLive {
		t.Fatalf("report capture %+v", rep.Capture)
	}
	for p, r := range rep.Apps {
		if r.Wire == nil || r.Wire.Messages != 2*20+2 {
			t.Errorf("%s wire %+v", p, r.Wire)
		}
	}
	if err := wait(t, l.StopCapture()); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "after-stop.pcapng")
	if err := wait(t, l.Export(out)); err != nil {
		t.Fatalf("export after stop: %v", err)
	}
	keys, _ := filepath.Glob(filepath.Join(state, "keys", "*.keys"))
	if len(keys) != 1 {
		t.Fatalf("key logs: %v", keys)
	}
	for _, f := range []string{keys[0], out} {
		st, err := os.Stat(f)
		if err != nil || st.Mode().Perm() != 0o600 || st.Size() == 0 {
			t.Errorf("%s: %v %v, want a non-empty 0600 file", f, st, err)
		}
	}
}

func TestStreamThroughTheRunner(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "tcpdump")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := capture.OpenStream(ctx, lab.CaptureRunner(lab.LocalRunner{}), capture.TcpdumpArgs("lo", []int{port}), "tcpdump through the local runner")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	go func() {
		for {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				return
			}
			c.Close()
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	data, _, err := s.ReadPacketData()
	if err != nil || len(data) < 40 {
		t.Fatalf("read %d bytes: %v", len(data), err)
	}
}

// envOf builds a lab on the embedded provider and hands back the provider's
// environment, as a provider would use it.
func envOf(t *testing.T) (*lab.Lab, *lab.Env) {
	t.Helper()
	var env lab.Env
	l, err := lab.New(lab.Config{StateDir: t.TempDir(), Apps: anyPorts()}, func(e lab.Env) (lab.Provider, error) {
		env = e
		return local.New(e)
	})
	if err != nil {
		t.Fatal(err)
	}
	return l, &env
}

func TestPrompts(t *testing.T) {
	l, env := envOf(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Headless: no one answers, at once.
	if _, err := env.Ask(ctx, "trust?", false); !errors.Is(err, lab.ErrNoAnswer) {
		t.Fatalf("headless ask: %v", err)
	}
	l.Interactive(true)
	events, stop := l.Subscribe()
	defer stop()
	got := make(chan string, 1)
	go func() {
		a, err := env.Ask(ctx, "Passphrase for key:", true)
		if err != nil {
			a = "error: " + err.Error()
		}
		got <- a
	}()
	for e := range events {
		if p, ok := e.(lab.PromptEvent); ok {
			if !p.Secret || p.Question != "Passphrase for key:" {
				t.Errorf("prompt %+v", p)
			}
			p.Answer("hunter2")
			break
		}
	}
	if a := <-got; a != "hunter2" {
		t.Errorf("answer %q", a)
	}
	b, _ := lab.MarshalEvent(lab.PromptEvent{Question: "q"})
	if !strings.Contains(string(b), `"type":"prompt"`) {
		t.Errorf("prompt JSON %s", b)
	}
}

func TestPruneOldKeepsTheNewest(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().Add(-time.Hour)
	for i := range 5 {
		f := filepath.Join(dir, fmt.Sprintf("lab-%d.keys", i))
		os.WriteFile(f, []byte("x"), 0o600)
		os.Chtimes(f, base.Add(time.Duration(i)*time.Minute), base.Add(time.Duration(i)*time.Minute))
	}
	os.WriteFile(filepath.Join(dir, "other.txt"), nil, 0o600)
	lab.PruneOld(dir, ".keys", 2, 0)
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	var names []string
	for _, f := range left {
		names = append(names, filepath.Base(f))
	}
	if strings.Join(names, " ") != "lab-3.keys lab-4.keys other.txt" {
		t.Errorf("left %v, want the two newest key logs and the other file", names)
	}
}

// TestProbeOfSomeApps: probing some apps fails only for those: the others,
// not measured yet, are not this probe's failure (they stay "not measured"
// in the report).
func TestProbeOfSomeApps(t *testing.T) {
	l := newLab(t, lab.Config{})
	for _, step := range []func(context.Context) *lab.Job{l.Up, l.Deploy} {
		if err := wait(t, step(context.Background())); err != nil {
			t.Fatal(err)
		}
	}
	if err := wait(t, l.Probe(context.Background(), "ws")); err != nil {
		t.Errorf("probing ws alone: %v", err)
	}
	rep := l.Report()
	if !rep.Apps["ws"].OK || rep.Apps["http"].OK || !strings.Contains(rep.Apps["http"].Error, "not measured") {
		t.Errorf("report after probing ws: ws %+v, http %+v", rep.Apps["ws"].Result, rep.Apps["http"].Result)
	}
}
