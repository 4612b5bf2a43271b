package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/providers"
)

// stopSignals end a run: each tears the lab down and exits 128+signal.
var stopSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// exitFor is the exit code of a run ended by s: 130 for SIGINT, 143 for
// SIGTERM, 129 for SIGHUP.
func exitFor(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return exitFailed
}

// describe says what a signal means to the person who sent it.
func describe(s os.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "interrupted (SIGINT)"
	case syscall.SIGTERM:
		return "terminated (SIGTERM)"
	case syscall.SIGHUP:
		return "hung up (SIGHUP: the terminal closed)"
	}
	return fmt.Sprint(s)
}

// stops watches the stop signals for one run. The first cancels the run's
// context (its cause says which signal), so the front end tears the lab down.
// A second SIGINT or SIGTERM before the run ends forces the exit at once
// (128+that signal), saying what is left behind and how to remove it. A
// second SIGHUP forces nothing: a closed terminal sends it more than once
// (the shell forwards its own, and the kernel signals the foreground group
// when the session ends), and no one is there to insist. Nor does the same
// signal again within echoWindow of the first: one Ctrl-C may reach the run
// twice (from the terminal, and forwarded by the namespace parent or a
// wrapper script that traps and re-sends it), and no person presses twice
// that fast; a second press to insist is seen.
type stops struct {
	sigs   chan os.Signal
	stderr io.Writer
	left   func() string

	mu    sync.Mutex
	first os.Signal
	at    time.Time // when first came
	done  chan struct{}
}

// echoWindow is how soon after the first stop signal the same signal counts
// as an echo of it rather than a second request.
const echoWindow = 200 * time.Millisecond

// watchStops starts watching; left says, for the forced exit, what the run
// leaves behind and how to remove it.
func watchStops(cancel context.CancelCauseFunc, stderr io.Writer, left func() string) *stops {
	s := &stops{sigs: make(chan os.Signal, 8), stderr: stderr, left: left, done: make(chan struct{})}
	signal.Notify(s.sigs, stopSignals...)
	go func() {
		defer close(s.done)
		for sig := range s.sigs {
			s.mu.Lock()
			first, at := s.first, s.at
			if first == nil {
				s.first, s.at = sig, time.Now()
			}
			s.mu.Unlock()
			switch {
			case first == nil:
				cancel(errors.New(describe(sig)))
			case sig == syscall.SIGHUP, sig == first && time.Since(at) < echoWindow:
				// Already stopping; see the type's comment.
			default:
				fmt.Fprintf(s.stderr, "protolab-tui: second signal, %s, while the lab was being torn down: exiting now, before the teardown finished.\n%s\n", describe(sig), s.left())
				os.Exit(exitFor(sig))
			}
		}
	}()
	return s
}

// got returns the first stop signal (nil when none came).
func (s *stops) got() os.Signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

// stop ends the watch.
func (s *stops) stop() {
	signal.Stop(s.sigs)
	close(s.sigs)
	<-s.done
}

// leftBehind says what a run of cfg leaves when it exits before its
// teardown ends, and the command that removes it.
func leftBehind(o options) string {
	var b strings.Builder
	if providers.InProcess(o.cfg.Provider) {
		b.WriteString("Left behind: nothing of the lab — its apps lived in this process and end with it, and capture spools have no name on disk.")
	} else {
		what := map[string]string{
			"docker":  "the lab's containers and network on the Docker engine (labelled protolab.lab=" + o.cfg.Name + ")",
			"ssh":     "the lab's containers and network on " + o.cfg.SSH.Host + " (labelled protolab.lab=" + o.cfg.Name + ")",
			"vagrant": "the lab's Vagrant VM (the Vagrantfile in " + providers.VagrantDir(o.cfg) + "), running, with the apps in it",
		}[o.cfg.Provider]
		if what == "" {
			what = "what the " + o.cfg.Provider + " provider started for the lab"
		}
		fmt.Fprintf(&b, "Left behind: %s.\nRemove it with: %s", what, teardownCommand(o))
		if o.cfg.Provider == "vagrant" {
			fmt.Fprintf(&b, " (or vagrant destroy -f in %s)", providers.VagrantDir(o.cfg))
		}
	}
	if o.pcap != "" {
		fmt.Fprintf(&b, "\nIf the export to %s was being written, its partial file is hidden next to it: rm %s", o.pcap,
			filepath.Join(filepath.Dir(o.pcap), "."+filepath.Base(o.pcap)+".*"))
	}
	return b.String()
}

// teardownCommand is the command line that removes what a run of o left.
func teardownCommand(o options) string { return lab.TeardownCommand(o.cfg, o.labPath) }

// tearDown tears l down unless it is down already, within timeout; a
// teardown in progress (the explorer's own) is waited for instead of started
// again, so the lab is torn down once.
func tearDown(l *lab.Lab, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	events, unsubscribe := l.Subscribe()
	defer func() {
		unsubscribe()
		for range events {
		}
	}()
	for {
		switch l.Snapshot().State {
		case lab.Down:
			return nil
		case lab.TearingDown:
			if err := waitLeaving(ctx, events, lab.TearingDown); err != nil {
				return fmt.Errorf("waiting for the teardown in progress: %w", err)
			}
			continue
		}
		err := l.Teardown(ctx).Wait(ctx)
		if !errors.Is(err, lab.ErrBusy) {
			return err
		}
	}
}

// waitLeaving waits until a state event leaves from.
func waitLeaving(ctx context.Context, events <-chan lab.Event, from lab.State) error {
	for {
		select {
		case e, ok := <-events:
			if !ok {
				return errors.New("the lab's event stream ended")
			}
			if se, isState := e.(lab.StateEvent); isState && se.From == from {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
