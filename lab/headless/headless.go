// Package headless is protolab's screenless front end: it drives a Lab
// through up → deploy → probe → report → teardown (or through the lab
// file's steps) and prints every event on the way, as text lines or as
// NDJSON, for scripts and CI.
package headless

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/probe"
)

// Options tunes Run.
type Options struct {
	// JSON prints one JSON object per event (NDJSON) instead of text.
	JSON bool
	// Keep leaves the lab running at the end instead of tearing it down.
	Keep bool
	// Out receives the output.
	Out io.Writer
	// Notes receives remarks for a person (where a kept lab runs); may be nil.
	Notes io.Writer
	// TeardownTimeout bounds the teardown after a cancellation (default 30s).
	TeardownTimeout time.Duration
	// Pcap, when set, is where the capture is exported (pcapng with the TLS
	// keys embedded) after the probes.
	Pcap string
}

// ErrTeardown marks Run's error when the teardown failed (what it left is
// the provider's to say).
var ErrTeardown = errors.New("teardown failed")

// AppError says which apps failed.
type AppError struct {
	Failed  []string
	Reasons []string
}

func (e *AppError) Error() string {
	var b strings.Builder
	for i, p := range e.Failed {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s failed: %s", p, e.Reasons[i])
	}
	return b.String()
}

// Run drives l through the whole flow and prints its events to o.Out; when
// the lab's configuration has steps (the lab file's script), it runs those
// instead (lab.RunSteps), then tears the lab down unless a down step did
// or o.Keep says not to. The comparison report (for a script, how its
// steps went, then the figures if a compare step ran) is always the last
// thing printed. It returns the report and an error when a step or a
// protocol failed (for a script: a *lab.StepError, the first step that
// failed; the apps are judged by its compare steps). When ctx is cancelled (a
// signal), the lab is torn down before Run returns ctx's error.
func Run(ctx context.Context, l *lab.Lab, o Options) (lab.Report, error) {
	if o.TeardownTimeout == 0 {
		o.TeardownTimeout = 30 * time.Second
	}
	steps, err := l.Config().ParsedSteps()
	if err != nil {
		return lab.Report{}, err
	}
	scripted := len(steps) > 0
	if scripted && o.Pcap != "" {
		return lab.Report{}, errors.New("--pcap: the lab file has steps: export the capture with an export step (export FILE)")
	}
	p := &printer{out: o.Out, json: o.JSON, start: time.Now()}
	events, unsubscribe := l.Subscribe()
	printed := make(chan struct{})
	go func() {
		defer close(printed)
		for e := range events {
			if _, isReport := e.(lab.ReportEvent); isReport {
				continue // printed once, last, below
			}
			p.print(e)
		}
	}()

	teardown := func() error {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.TeardownTimeout)
		defer cancel()
		if err := l.Teardown(tctx).Wait(tctx); err != nil {
			return fmt.Errorf("%w: %w", ErrTeardown, err)
		}
		return nil
	}
	var exported bool
	if scripted {
		_, err = l.RunSteps(ctx, steps)
	} else {
		exported, err = flow(ctx, l, o)
	}
	if ctx.Err() != nil && o.Pcap != "" && !exported {
		// Interrupted: what was captured goes to the file before the
		// teardown (which a second signal may cut short), marked as such.
		if note := exportCutShort(ctx, l, o.Pcap); note != "" && o.Notes != nil {
			fmt.Fprintln(o.Notes, note)
		}
	}
	// A script that ended with its lab down (a down step) leaves nothing
	// to tear down.
	if (!o.Keep || ctx.Err() != nil) && !(scripted && l.Snapshot().State == lab.Down) {
		err = errors.Join(err, teardown())
	}
	unsubscribe()
	<-printed

	rep := l.Report()
	if ctx.Err() == nil {
		p.print(lab.ReportEvent{At: lab.At{Time: time.Now()}, Report: rep})
	}
	if o.Keep && ctx.Err() == nil && err == nil && l.InProcess() && l.Snapshot().State != lab.Down {
		// The embedded lab lives in this process: keeping it means staying.
		if o.Notes != nil {
			fmt.Fprintf(o.Notes, "the lab keeps running in this process (%s); press Ctrl-C to tear it down\n", endpoints(l))
		}
		<-ctx.Done()
		err = teardown()
		// the printer stopped with the report: say what the capture took
		// in while the lab was kept
		if st := l.CaptureStats(); st.Mode != "" && st.Mode != capture.ModeOff {
			p.print(lab.CaptureEvent{At: lab.At{Time: time.Now()}, State: "off", Stats: st})
		}
	}
	if ctx.Err() != nil {
		return rep, fmt.Errorf("interrupted: %w", errors.Join(ctx.Err(), err))
	}
	if err != nil {
		return rep, err
	}
	if scripted {
		return rep, nil // the apps failed a compare step, or were not measured
	}
	if failed := rep.Failed(); len(failed) > 0 {
		pe := &AppError{Failed: failed}
		for _, f := range failed {
			pe.Reasons = append(pe.Reasons, rep.Apps[f].Error)
		}
		return rep, pe
	}
	return rep, nil
}

func endpoints(l *lab.Lab) string {
	var parts []string
	for _, a := range l.Snapshot().Apps {
		parts = append(parts, a.Name+" "+a.Endpoint)
	}
	return strings.Join(parts, ", ")
}

// exportCutShort exports what an interrupted run captured to path, marked
// as cut short (why: the context's cause, such as the signal), with a fresh
// bounded context. It returns a note for people when there was nothing to
// export or the export failed (the export event says the rest).
func exportCutShort(ctx context.Context, l *lab.Lab, path string) string {
	if on, _ := l.Capturing(); !on && l.CaptureStats().Packets == 0 {
		return fmt.Sprintf("--pcap %s: nothing was captured before the interrupt: no file written", path)
	}
	why := "interrupted"
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		why = cause.Error()
	}
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	sctx, scancel := context.WithTimeout(ectx, 2*time.Second)
	_ = l.SyncCapture(sctx) // what is still queued, if it comes quickly
	scancel()
	if err := l.ExportCutShort(path, why).Wait(ectx); err != nil {
		return fmt.Sprintf("--pcap %s: the capture of the interrupted run could not be written: %v", path, err)
	}
	return ""
}

// flow runs up → deploy → capture → probe → export, stopping at the first
// failure. exported says the --pcap file was written.
func flow(ctx context.Context, l *lab.Lab, o Options) (exported bool, err error) {
	if err := l.Up(ctx).Wait(ctx); err != nil {
		return false, err
	}
	if err := l.Deploy(ctx).Wait(ctx); err != nil {
		return false, err
	}
	capturing := false
	switch l.Config().Capture.Mode {
	case "on":
		if err := l.StartCapture(ctx).Wait(ctx); err != nil {
			return false, err
		}
		capturing = true
	case "auto":
		capturing = l.StartCapture(ctx).Wait(ctx) == nil // when it cannot, the event says why
	}
	_ = l.Probe(ctx).Wait(ctx) // protocol failures are judged from the report
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if !capturing {
		if o.Pcap != "" {
			return false, errors.New("--pcap: nothing was captured (capture is off)")
		}
		return false, nil
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.SyncCapture(sctx); err != nil {
		return false, err
	}
	if o.Pcap != "" {
		if err := l.Export(o.Pcap).Wait(ctx); err != nil {
			// Nothing captured is lost: it goes to the state directory
			// instead (a full or read-only disk for --pcap).
			fallback := l.DefaultExportPath()
			if ferr := l.Export(fallback).Wait(ctx); ferr != nil {
				return false, fmt.Errorf("--pcap %s: %w; saving it in the state directory failed too: %w", o.Pcap, err, ferr)
			}
			return false, fmt.Errorf("--pcap %s: %w; the capture is saved in %s instead", o.Pcap, err, fallback)
		}
		return true, nil
	}
	return false, nil
}

type printer struct {
	out   io.Writer
	json  bool
	start time.Time
}

func (p *printer) print(e lab.Event) {
	if p.json {
		b, err := lab.MarshalEvent(e)
		if err != nil {
			b = []byte(fmt.Sprintf(`{"type":"error","op":"print","error":%q}`, err.Error()))
		}
		fmt.Fprintf(p.out, "%s\n", b)
		return
	}
	if r, ok := e.(lab.ReportEvent); ok {
		fmt.Fprintln(p.out)
		if len(r.Steps) > 0 {
			WriteSteps(p.out, r.Report)
			if !measured(r.Report) {
				return // no compare step ran: no figures
			}
			fmt.Fprintln(p.out)
		}
		WriteTable(p.out, r.Report)
		return
	}
	fmt.Fprintf(p.out, "[%7.3fs] %s\n", e.EventTime().Sub(p.start).Seconds(), Describe(e))
}

// Describe renders an event as one line of text: lab.Describe, which the
// explorer's log line says too (lab.Brief).
func Describe(e lab.Event) string { return lab.Describe(e) }

// writeClients says where each measurement's client ran (Result.Client).
func writeClients(w io.Writer, rows []lab.AppReport) {
	var order []string
	by := map[string][]string{}
	for _, res := range rows {
		if !res.OK {
			continue
		}
		where := res.Client
		if where == "" {
			where = "unknown"
		}
		if res.ClientCPUs != "" {
			where += " (" + res.ClientCPUs + ")"
		}
		if _, ok := by[where]; !ok {
			order = append(order, where)
		}
		by[where] = append(by[where], res.App)
	}
	for _, where := range order {
		fmt.Fprintf(w, "client: %s for %s\n", where, strings.Join(by[where], ", "))
	}
}

// writeModes says which apps were probed open-loop (msgs/s is then the
// rate the echoes came back at, offered the rate the messages went out
// at, and latency is under that load), and why an app asked to was not.
func writeModes(w io.Writer, rows []lab.AppReport) {
	for _, res := range rows {
		switch {
		case !res.OK:
		case res.Mode == probe.ModeOpen:
			fmt.Fprintf(w, "open-loop: %s: %.0f msgs/s offered, %.0f came back; latency under that load\n", res.App, res.OfferedPerS, res.MsgsPerS)
		case res.ModeNote != "":
			fmt.Fprintf(w, "open-loop: %s: %s\n", res.App, res.ModeNote)
		}
	}
}

// writeHops prints, for each intermediary, what each hop on its path adds.
func writeHops(w io.Writer, rows []lab.AppReport) {
	for _, res := range rows {
		if len(res.Hops) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nThrough %s, hop by hop (each hop's cost over the hops behind it):\n", res.App)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "hop\tkind\tprotocol\tsetup ms\tadded\trtt p50 ms\tadded\thands on to\treplicas\t")
		for _, h := range res.Hops {
			var reps []string
			for name, n := range h.Replicas {
				reps = append(reps, fmt.Sprintf("%s×%d", name, n))
			}
			sort.Strings(reps)
			addedSetup, addedRTT := "-", "-" // the last hop answers: it adds nothing over anything
			if len(h.Upstream) > 0 {
				addedSetup, addedRTT = fmt.Sprintf("%+.2f", h.AddedSetupMs), fmt.Sprintf("%+.3f", h.AddedRTTMs)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%s\t%.3f\t%s\t%s\t%s\t\n", h.App, h.Kind, h.Protocol, h.SetupMs, addedSetup,
				h.RTTP50Ms, addedRTT, dash(strings.Join(h.Upstream, ", ")), dash(strings.Join(reps, " ")))
		}
		tw.Flush()
	}
}

// protoName is an app's protocol as the tables show it: with the
// compression its probe negotiated ("ws+deflate").
func protoName(res lab.AppReport) string {
	if res.Compression != "" {
		return string(res.Protocol) + "+" + res.Compression
	}
	return string(res.Protocol)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// measured reports whether any app of r was measured (a compare step ran).
func measured(r lab.Report) bool {
	for _, a := range r.Rows() {
		if a.OK || a.Error != lab.NotMeasured {
			return true
		}
	}
	return false
}

// WriteSteps prints how a script's steps went: one line each.
func WriteSteps(w io.Writer, r lab.Report) {
	ok, failed, skipped := 0, 0, 0
	for _, s := range r.Steps {
		switch s.State {
		case lab.StepOK:
			ok++
		case lab.StepFailed:
			failed++
		default:
			skipped++
		}
	}
	fmt.Fprintf(w, "Lab %q on provider %s: %d steps, %d ok, %d failed, %d skipped\n", r.Lab, r.Provider, len(r.Steps), ok, failed, skipped)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range r.Steps {
		what := s.Detail
		if s.State == lab.StepFailed {
			what = s.Error
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", s.Index, s.Step, strings.ToUpper(s.State), what)
	}
	tw.Flush()
}

// WriteTable prints the comparison table: one row per app.
func WriteTable(w io.Writer, r lab.Report) {
	fmt.Fprintf(w, "Lab %q on provider %s\n", r.Lab, r.Provider)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "app\tprotocol\tresult\tsetup ms\ttcp+tls+req ms\trtt p50 ms\trtt p99 ms\tmsgs/s\tbytes/msg\tpayload\t")
	rows := r.Rows()
	for _, res := range rows {
		proto := protoName(res)
		if !res.OK {
			fmt.Fprintf(tw, "%s\t%s\tFAILED\t-\t-\t-\t-\t-\t-\t-\t\n", res.App, proto)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\tok\t%.2f\t%.2f+%.2f+%.2f\t%.3f\t%.3f\t%.0f\t%.1f\t%d\t\n",
			res.App, proto, res.SetupMs, res.ConnectMs, res.TLSMs, res.HandshakeMs, res.RTTP50Ms, res.RTTP99Ms, res.MsgsPerS, res.BytesPerM, res.PayloadB)
		for _, v := range res.Variants { // the same connection, echoed another way
			fmt.Fprintf(tw, "%s · %s\t%s\tok\t-\t-\t%.3f\t%.3f\t%.0f\t%.1f\t%d\t\n",
				res.App, v.Name, proto, v.RTTP50Ms, v.RTTP99Ms, v.MsgsPerS, v.BytesPerM, res.PayloadB)
		}
	}
	tw.Flush()
	writeClients(w, rows)
	writeModes(w, rows)
	writeHops(w, rows)
	for _, name := range r.Failed() {
		fmt.Fprintf(w, "%s: %s\n", name, r.Apps[name].Error)
	}
	if r.Capture == nil {
		return
	}
	sync := ""
	if r.Capture.Sync != "" {
		sync = "; synced " + r.Capture.Sync
	}
	drops := fmt.Sprintf("%d dropped", r.Capture.Drops())
	if r.Capture.Drops() > 0 {
		drops += fmt.Sprintf(" (%d by the kernel, which names no app; %d by protolab's queue)", r.Capture.KernelDrops, r.Capture.QueueDrops)
	}
	fmt.Fprintf(w, "\nOn the wire (capture %s: %s; %d packets, %s%s)\n", r.Capture.Mode, r.Capture.Source, r.Capture.Packets, drops, sync)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "app\tprotocol\tpackets\tbytes\tmessages\tsetup pkts\twire B/msg\tpayload B/msg\tinflated B/msg\tdecrypted\terrors\tgaps\tdropped\t")
	for _, res := range rows {
		if res.Wire == nil {
			continue
		}
		s := res.Wire
		inflated := "-" // what compressed messages carry once inflated
		if s.WSCompressed > 0 {
			inflated = fmt.Sprintf("%.1f", s.InflatedPerMessage)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.1f\t%.1f\t%.1f\t%s\t%d\t%d\t%d\t%d\t\n", res.App, protoName(res), s.Packets, s.Bytes, s.Messages,
			s.SetupPacketsPerConn, s.BytesPerMessage, s.PayloadPerMessage, inflated, s.Decrypted, s.Errors, s.Gaps, s.Dropped)
	}
	tw.Flush()
}
