package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/protolab/protolab-tui/browser"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/protocol"
)

// StepOp is what a step of a lab file's script does.
type StepOp string

// The steps a script is made of (docs/lab-file.md, "Steps").
const (
	StepUp      StepOp = "up"
	StepDeploy  StepOp = "deploy"
	StepSend    StepOp = "send"
	StepWait    StepOp = "wait"
	StepCapture StepOp = "capture"
	StepExport  StepOp = "export"
	StepCompare StepOp = "compare"
	StepDown    StepOp = "down"
	StepBrowser StepOp = "browser"
)

// stepForms is how each step is written, for the errors that list them.
const stepForms = `up, deploy, send APP "text", wait DURATION, capture on|off, export FILE, compare [APP...], browser APP, down`

// MaxWait bounds a wait step.
const MaxWait = time.Hour

// Step is one parsed step of a script.
type Step struct {
	Op StepOp `json:"op"`
	// App is the app a send goes to.
	App string `json:"app,omitempty"`
	// Text is what a send sends.
	Text string `json:"text,omitempty"`
	// Wait is how long a wait waits.
	Wait time.Duration `json:"wait,omitempty"`
	// On says whether a capture step starts (true) or stops capture.
	On bool `json:"on,omitempty"`
	// Path is the file an export writes.
	Path string `json:"path,omitempty"`
	// Apps are the apps a compare measures (none: every app).
	Apps []string `json:"apps,omitempty"`
}

// String writes the step as a lab file has it (ParseStep reads it back).
func (s Step) String() string {
	switch s.Op {
	case StepSend:
		return fmt.Sprintf("send %s %s", s.App, strconv.Quote(s.Text))
	case StepWait:
		return "wait " + s.Wait.String()
	case StepCapture:
		if s.On {
			return "capture on"
		}
		return "capture off"
	case StepExport:
		if f := strings.Fields(s.Path); len(f) != 1 || f[0] != s.Path || strings.HasPrefix(s.Path, `"`) {
			return "export " + strconv.Quote(s.Path)
		}
		return "export " + s.Path
	case StepCompare:
		return strings.TrimSpace("compare " + strings.Join(s.Apps, " "))
	case StepBrowser:
		return "browser " + s.App
	}
	return string(s.Op)
}

// ParseStep reads one step as a lab file writes it: `up`, `deploy`,
// `send APP "text"` (the text in double quotes, with Go's escapes such as
// \n and \"), `wait 2s`, `capture on`, `capture off`, `export FILE` (in
// double quotes when it has spaces), `compare` or `compare APP...`, `down`.
// Its errors say what is wrong and how the step is written; whether the
// apps named exist is the configuration's to check (Config.WithDefaults).
func ParseStep(src string) (Step, error) {
	line := strings.TrimSpace(src)
	if line == "" {
		return Step{}, fmt.Errorf("an empty step: write one of %s", stepForms)
	}
	word, rest, _ := strings.Cut(line, " ")
	if i := strings.IndexAny(word, "\t"); i >= 0 {
		word, rest = word[:i], word[i+1:]+" "+rest
	}
	rest = strings.TrimSpace(rest)
	args := strings.Fields(rest)
	noArgs := func(op StepOp) (Step, error) {
		if rest != "" {
			return Step{}, fmt.Errorf("step %s takes nothing after it, not %q", op, rest)
		}
		return Step{Op: op}, nil
	}
	switch StepOp(word) {
	case StepUp, StepDeploy, StepDown:
		return noArgs(StepOp(word))
	case StepSend:
		return parseSend(rest)
	case StepWait:
		if len(args) != 1 {
			return Step{}, errors.New(`step wait takes one duration, such as "wait 2s" or "wait 500ms"`)
		}
		d, err := time.ParseDuration(args[0])
		if err != nil {
			return Step{}, fmt.Errorf("wait %s: not a duration: write it as 2s, 500ms or 1m", args[0])
		}
		if d <= 0 || d > MaxWait {
			return Step{}, fmt.Errorf("wait %s: want a duration above 0 and at most %s", args[0], MaxWait)
		}
		return Step{Op: StepWait, Wait: d}, nil
	case StepCapture:
		if len(args) == 1 && (args[0] == "on" || args[0] == "off") {
			return Step{Op: StepCapture, On: args[0] == "on"}, nil
		}
		return Step{}, fmt.Errorf(`step capture takes on or off ("capture on", "capture off"), not %q`, rest)
	case StepExport:
		path := rest
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return Step{}, fmt.Errorf("export %s: the file name has no closing quote (or a bad escape in it)", rest)
			}
			if tail := strings.TrimSpace(rest[len(q):]); tail != "" {
				return Step{}, fmt.Errorf("export: %q after the file name: give one file", tail)
			}
			path, _ = strconv.Unquote(q)
		} else if len(args) > 1 {
			return Step{}, fmt.Errorf(`export %s: one file, in double quotes if its name has spaces (export "my capture.pcapng")`, rest)
		}
		if strings.TrimSpace(path) == "" {
			return Step{}, errors.New("step export needs a file: export FILE, such as export lab.pcapng")
		}
		return Step{Op: StepExport, Path: path}, nil
	case StepCompare:
		return Step{Op: StepCompare, Apps: args}, nil
	case StepBrowser:
		if len(args) != 1 {
			return Step{}, errors.New("step browser takes one app, whose chat page the browser opens: browser APP, such as browser wss")
		}
		return Step{Op: StepBrowser, App: args[0]}, nil
	}
	return Step{}, fmt.Errorf("unknown step %q: the steps are %s", word, stepForms)
}

// parseSend reads what follows "send": an app name and the quoted text.
func parseSend(rest string) (Step, error) {
	const form = `write it as send APP "text", such as send ws "hello"`
	app, text, _ := strings.Cut(rest, " ")
	if i := strings.IndexAny(app, "\t"); i >= 0 {
		app, text = app[:i], app[i+1:]+" "+text
	}
	text = strings.TrimSpace(text)
	if app == "" {
		return Step{}, fmt.Errorf("send: no app named: %s", form)
	}
	if strings.HasPrefix(app, `"`) {
		return Step{}, fmt.Errorf("send %s: the app's name comes first: %s", rest, form)
	}
	if text == "" {
		return Step{}, fmt.Errorf("send %s: no text to send: %s", app, form)
	}
	if !strings.HasPrefix(text, `"`) {
		return Step{}, fmt.Errorf("send %s %s: the text must be in double quotes: %s", app, text, form)
	}
	q, err := strconv.QuotedPrefix(text)
	if err != nil {
		return Step{}, fmt.Errorf("send %s %s: the text has no closing quote (or a bad escape in it): %s", app, text, form)
	}
	if tail := strings.TrimSpace(text[len(q):]); tail != "" {
		return Step{}, fmt.Errorf("send %s: %q after the closing quote: put it inside the quotes (\\\" for a quote)", app, tail)
	}
	msg, _ := strconv.Unquote(q)
	return Step{Op: StepSend, App: app, Text: msg}, nil
}

// ParsedSteps parses the configuration's steps (checked already when the
// configuration came from WithDefaults).
func (c Config) ParsedSteps() ([]Step, error) {
	out := make([]Step, 0, len(c.Steps))
	for i, src := range c.Steps {
		s, err := ParseStep(src)
		if err != nil {
			return nil, configErr(fmt.Sprintf("steps[%d]", i), "%v", err)
		}
		out = append(out, s)
	}
	return out, nil
}

// checkSteps parses the steps and checks the apps they name.
func (c Config) checkSteps() error {
	steps, err := c.ParsedSteps()
	if err != nil {
		return err
	}
	for i, s := range steps {
		names := s.Apps
		if s.App != "" {
			names = []string{s.App}
		}
		for _, n := range names {
			if _, ok := c.App(n); !ok {
				return configErr(fmt.Sprintf("steps[%d]", i), "step %s: the lab has no app named %q (it has %s)", s, n, strings.Join(c.AppNames(), ", "))
			}
		}
		if s.Op == StepBrowser && !c.ChatPage(s.App) {
			return configErr(fmt.Sprintf("steps[%d]", i), "step %s: %s serves no chat page, nor does an app behind it (a chat-ws app has one)", s, s.App)
		}
	}
	return nil
}

// The states of a step in a StepEvent and a StepResult.
const (
	StepStarted = "started"
	StepOK      = "ok"
	StepFailed  = "failed"
	StepSkipped = "skipped" // an earlier step failed, or the run was interrupted
)

// StepResult is how one step of a script went.
type StepResult struct {
	// Index counts the steps from 1.
	Index int    `json:"index"`
	Step  string `json:"step"`
	State string `json:"state"`
	// Detail says what an ok step did (the echo of a send, the file of an
	// export).
	Detail string  `json:"detail,omitempty"`
	Error  string  `json:"error,omitempty"`
	TookMs float64 `json:"took_ms"`
}

// StepEvent reports a step of a script: once when it starts, once when it
// ends (ok or failed), or once as skipped.
type StepEvent struct {
	At
	StepResult
	Total int `json:"total"`
}

// EventType implements Event.
func (StepEvent) EventType() string { return "step" }

// StepError is the error of a script whose step failed.
type StepError struct {
	Index int
	Step  string
	Err   error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %d (%s) failed: %v", e.Index, e.Step, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// RunSteps runs a script, one step after the other, and returns when it
// has ended: each step is reported as a StepEvent when it starts and when
// it ends. The first step that fails ends the script: the steps after it
// are reported skipped, and the error is a *StepError naming it. The
// results are also the report's (Report.Steps). Unlike the commands it
// blocks; ctx's end stops the step in progress.
func (l *Lab) RunSteps(ctx context.Context, steps []Step) ([]StepResult, error) {
	results := make([]StepResult, len(steps))
	for i, s := range steps {
		results[i] = StepResult{Index: i + 1, Step: s.String(), State: StepSkipped}
	}
	l.setSteps(results)
	var failed error
	for i, s := range steps {
		r := &results[i]
		if failed != nil || ctx.Err() != nil {
			l.emit(StepEvent{At: now(), StepResult: *r, Total: len(steps)})
			continue
		}
		r.State = StepStarted
		l.emit(StepEvent{At: now(), StepResult: *r, Total: len(steps)})
		start := time.Now()
		detail, err := l.runStep(ctx, s)
		r.TookMs = float64(time.Since(start).Microseconds()) / 1000
		if err != nil {
			r.State, r.Error = StepFailed, err.Error()
			failed = &StepError{Index: r.Index, Step: r.Step, Err: err}
		} else {
			r.State, r.Detail = StepOK, detail
		}
		l.setSteps(results)
		l.emit(StepEvent{At: now(), StepResult: *r, Total: len(steps)})
	}
	if failed == nil && ctx.Err() != nil {
		failed = fmt.Errorf("the steps were interrupted: %w", ctx.Err())
	}
	return append([]StepResult(nil), results...), failed
}

func (l *Lab) setSteps(r []StepResult) {
	l.mu.Lock()
	l.steps = append(l.steps[:0:0], r...)
	l.mu.Unlock()
}

// runStep does one step and says what it did.
func (l *Lab) runStep(ctx context.Context, s Step) (string, error) {
	switch s.Op {
	case StepUp:
		return "", l.Up(ctx).Wait(ctx)
	case StepDeploy:
		if err := l.Deploy(ctx).Wait(ctx); err != nil {
			return "", err
		}
		var parts []string
		for _, a := range l.Snapshot().Apps {
			parts = append(parts, a.Name+" "+string(a.State))
		}
		return strings.Join(parts, ", "), nil
	case StepDown:
		return "", l.Teardown(ctx).Wait(ctx)
	case StepSend:
		res, err := l.sendNow(ctx, s.App, s.Text)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("echo %q in %.2f ms", res.Reply, res.RTTMs), nil
	case StepWait:
		t := time.NewTimer(s.Wait)
		defer t.Stop()
		select {
		case <-t.C:
			return "", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	case StepCapture:
		if s.On {
			if err := l.StartCapture(ctx).Wait(ctx); err != nil {
				return "", err
			}
			_, mode := l.Capturing()
			return "capturing (" + string(mode) + ")", nil
		}
		if on, _ := l.Capturing(); !on {
			return "", errors.New("capture is not on: nothing to stop (capture on first)")
		}
		l.syncCapture(ctx)
		if err := l.StopCapture().Wait(ctx); err != nil {
			return "", err
		}
		st := l.CaptureStats()
		return fmt.Sprintf("%d packets, %d dropped", st.Packets, st.Drops()), nil
	case StepExport:
		l.syncCapture(ctx)
		if err := l.Export(s.Path).Wait(ctx); err != nil {
			return "", err
		}
		return "written to " + s.Path, nil
	case StepCompare:
		l.syncCapture(ctx)
		err := l.Probe(ctx, s.Apps...).Wait(ctx)
		l.syncCapture(ctx) // the probes' own bytes, for the report's wire figures
		if err != nil {
			rep := l.Report()
			var why []string
			for _, name := range rep.Failed() {
				if len(s.Apps) == 0 || slices.Contains(s.Apps, name) {
					why = append(why, name+": "+rep.Apps[name].Error)
				}
			}
			if len(why) > 0 {
				return "", fmt.Errorf("probe failed for %s", strings.Join(why, "; "))
			}
			return "", err
		}
		n := len(s.Apps)
		if n == 0 {
			n = len(l.cfg.Apps)
		}
		return fmt.Sprintf("%d apps measured, all ok", n), nil
	case StepBrowser:
		res, err := l.BrowserChat(ctx, s.App, "")
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("two people chatted in Chromium (%s), a taken name was refused, in %s", strings.Join(res.Members, ", "), res.Took.Round(time.Millisecond)), nil
	}
	return "", fmt.Errorf("unknown step %q", s.Op)
}

// ChatPage says whether app serves the chat page: its kind has a chat
// room, or an app on its way does (a front, a balancer before a chat app).
func (c Config) ChatPage(app string) bool {
	for _, a := range c.Chain(app) {
		if k, ok := protocol.LookupKind(a.Kind); ok && k.Chat != "" {
			return true
		}
	}
	return false
}

// BrowserChat runs the two-person chat in Chromium on app's page
// (browser.Chat), trusting the lab CA as a user would and bringing the
// browser's TLS secrets into the lab's key log as it runs, so a capture
// shows its wss frames decrypted. screenshot, when set, keeps a PNG of
// the page.
func (l *Lab) BrowserChat(ctx context.Context, app, screenshot string) (browser.ChatResult, error) {
	if !l.cfg.ChatPage(app) {
		return browser.ChatResult{}, fmt.Errorf("browser %s: %s serves no chat page", app, app)
	}
	t, err := l.Target(app)
	if err != nil {
		return browser.ChatResult{}, fmt.Errorf("browser %s: %w", app, err)
	}
	_, port, err := net.SplitHostPort(t.Addr)
	if err != nil {
		return browser.ChatResult{}, fmt.Errorf("browser %s: endpoint %q: %w", app, t.Addr, err)
	}
	scheme := "http"
	if t.Protocol.Secure() {
		scheme = "https"
	}
	// localhost: the name the lab's certificate is for.
	res, err := browser.Chat(ctx, browser.ChatOptions{URL: scheme + "://localhost:" + port + "/", TrustSPKI: browser.CASPKI(l.pki.CA),
		KeyLog: l.keys, Screenshot: screenshot})
	if err != nil {
		return res, fmt.Errorf("browser %s: %w", app, err)
	}
	return res, nil
}

// syncCapture waits (briefly) for what a running capture has still to
// decode, so the step after sees it.
func (l *Lab) syncCapture(ctx context.Context) {
	if on, _ := l.Capturing(); !on {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = l.SyncCapture(sctx)
}

// sendNow sends text to app and waits for the echo, publishing the
// SendEvent as Send does.
func (l *Lab) sendNow(ctx context.Context, app, text string) (probe.SendResult, error) {
	cfg, _ := l.cfg.App(app)
	if err := l.running("send"); err != nil {
		l.emit(SendEvent{At: now(), SendResult: probe.SendResult{App: app, Protocol: cfg.Protocol, Sent: text}, Error: err.Error()})
		return probe.SendResult{}, err
	}
	defer l.work.Done()
	return l.sendOnce(ctx, app, text)
}

// sendOnce sends while l.work counts it.
func (l *Lab) sendOnce(ctx context.Context, app, text string) (probe.SendResult, error) {
	cfg, _ := l.cfg.App(app)
	t, err := l.Target(app)
	var res probe.SendResult
	if err == nil {
		res, err = probe.SendClient(ctx, t, text, l.cfg.Probe)
	} else {
		res = probe.SendResult{App: app, Protocol: cfg.Protocol, Sent: text}
	}
	ev := SendEvent{At: now(), SendResult: res}
	if err != nil {
		ev.Error = err.Error()
	}
	l.emit(ev)
	return res, err
}
