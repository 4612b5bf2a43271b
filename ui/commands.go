package ui

import (
	"context"
	"encoding/base64"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/wire"
)

// This file holds the explorer's commands: everything that waits, reads
// or writes runs here, in a tea.Cmd, never in Update or View.

// waitEvents blocks (in a Cmd) for the next event and takes whatever else
// is already queued, so a burst becomes one message.
func waitEvents(ch <-chan lab.Event) tea.Cmd {
	return func() tea.Msg {
		e, ok := <-ch
		if !ok {
			return eventsEnded{}
		}
		batch := eventsMsg{e}
		for len(batch) < 256 {
			select {
			case e, ok := <-ch:
				if !ok {
					return batch
				}
				batch = append(batch, e)
			default:
				return batch
			}
		}
		return batch
	}
}

// The packet view refreshes at most this often: faster arrivals are batched.
const refresh = 100 * time.Millisecond

func tick(every time.Duration) tea.Cmd {
	return tea.Tick(every, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// checkEarlierLab asks the provider whether an earlier lab of this name is
// still there; what it finds arrives as an event (lab.EarlierLabEvent).
func (m Model) checkEarlierLab() tea.Cmd {
	l := m.lab
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = l.CheckEarlierLab(ctx).Wait(ctx) // an engine that does not answer: Up says so
		return nil
	}
}

func (m Model) provision() tea.Cmd {
	l, mode := m.lab, m.opt.CaptureMode
	return func() tea.Msg {
		ctx := context.Background()
		for _, step := range []func(context.Context) *lab.Job{l.Up, l.Deploy} {
			if err := step(ctx).Wait(ctx); err != nil {
				return jobMsg{op: "provision", err: err}
			}
		}
		if mode != "off" {
			_ = l.StartCapture(ctx).Wait(ctx) // its event says how, or why not
		}
		_ = l.Probe(ctx).Wait(ctx) // the comparison's figures; each app's event says how it went
		return jobMsg{op: "provision"}
	}
}

func job(op string, quit bool, run func(ctx context.Context) *lab.Job) tea.Cmd {
	return func() tea.Msg {
		ctx := context.Background()
		return jobMsg{op: op, err: run(ctx).Wait(ctx), quit: quit}
	}
}

func (m Model) fetch() tea.Cmd {
	if m.width == 0 {
		return nil
	}
	l := m.lab
	return tea.Batch(m.packets.fetch(l.Wire(), nil), func() tea.Msg { return statsMsg(l.CaptureStats()) })
}

// probe runs the Lab's probes (every app, one at a time) for the
// comparison; the events fill it in as they come.
func (m *Model) probe() tea.Cmd {
	m.busy++
	m.cmp.running, m.cmp.progress = true, "starting the probes"
	return job("probe", false, func(ctx context.Context) *lab.Job { return m.lab.Probe(ctx) })
}

// copyOSC52 puts text on the terminal's clipboard with OSC 52, which works
// over SSH and in tmux (set-clipboard on); a Cmd, as it writes to the
// terminal.
func copyOSC52(out io.Writer, text string) tea.Cmd {
	return func() tea.Msg {
		seq := "\x1b]52;c;" + base64.StdEncoding.EncodeToString([]byte(text)) + "\a"
		if os.Getenv("TMUX") != "" {
			seq = "\x1bPtmux;\x1b" + strings.ReplaceAll(seq, "\x1b", "\x1b\x1b") + "\x1b\\"
		}
		_, _ = io.WriteString(out, seq)
		return nil
	}
}

// metricsEvery is how often the explorer scrapes the apps' /metrics while
// the lab runs: each scrape is a request on the wire, so not often.
const metricsEvery = 5 * time.Second

// metricsTick asks for the next round of scrapes.
type metricsTick time.Time

func tickMetrics() tea.Cmd {
	return tea.Tick(metricsEvery, func(t time.Time) tea.Msg { return metricsTick(t) })
}

// metricsMsg is one round of scrapes, by app name.
type metricsMsg map[string]scrapeResult

type scrapeResult struct {
	m   lab.AppMetrics
	err error
}

// scrapeMetrics scrapes every app's /metrics through the lab, all at once,
// each bounded by a timeout.
func scrapeMetrics(l Lab, apps []lab.App) tea.Cmd {
	return func() tea.Msg {
		out := make(metricsMsg, len(apps))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, a := range apps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				m, err := l.Metrics(ctx, a.Name)
				mu.Lock()
				out[a.Name] = scrapeResult{m: m, err: err}
				mu.Unlock()
			}()
		}
		wg.Wait()
		return out
	}
}

// liveMsg is every app's wire counters, for the comparison's live figures.
type liveMsg map[string]wire.Counters

// readLive reads every app's counters from the store (a look under its
// lock, no copy of records).
func readLive(store *wire.Store, apps []lab.App) tea.Cmd {
	return func() tea.Msg {
		out := make(liveMsg, len(apps))
		for _, a := range apps {
			out[a.Name] = store.Counters(a.Name)
		}
		return out
	}
}
