package faults_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/wire"
)

// shown is how soon a fault must be on the event stream.
const shown = 2 * time.Second

// stream records a Lab's events for a test to wait on.
type stream struct {
	mu     sync.Mutex
	events []lab.Event
	wake   chan struct{}
	stop   func()
	done   chan struct{}
}

func watch(t *testing.T, l *lab.Lab) *stream {
	ch, stop := l.Subscribe()
	s := &stream{wake: make(chan struct{}, 1), stop: stop, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for e := range ch {
			s.mu.Lock()
			s.events = append(s.events, e)
			s.mu.Unlock()
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { s.stop(); <-s.done })
	return s
}

// mark is where the events from now on start.
func (s *stream) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

// await waits, at most within, for an event from index from on that
// matches, and returns it; the test fails naming what it waited for and
// what came instead.
func (s *stream) await(t *testing.T, from int, within time.Duration, what string, match func(lab.Event) bool) lab.Event {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		for i := from; i < len(s.events); i++ {
			if match(s.events[i]) {
				e := s.events[i]
				s.mu.Unlock()
				return e
			}
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-deadline.C:
			t.Fatalf("no %s within %s; the events since: %s", what, within, s.since(from))
			return nil
		}
	}
}

// since describes the events from index from on, for failure messages.
func (s *stream) since(from int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for _, e := range s.events[min(from, len(s.events)):] {
		b, _ := lab.MarshalEvent(e)
		parts = append(parts, string(b))
	}
	return strings.Join(parts, "\n  ")
}

func captureState(state, note string) func(lab.Event) bool {
	return func(e lab.Event) bool {
		c, ok := e.(lab.CaptureEvent)
		return ok && c.State == state && strings.Contains(c.Note, note)
	}
}

func logged(source, text string) func(lab.Event) bool {
	return func(e lab.Event) bool {
		m, ok := e.(lab.LogEvent)
		return ok && m.Source == source && strings.Contains(m.Message, text)
	}
}

func do(t *testing.T, j *lab.Job) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := j.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func syncCapture(t *testing.T, l *lab.Lab) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.SyncCapture(ctx); err != nil {
		t.Fatal(err)
	}
}

// kept is what the store holds of an app at one moment.
type kept struct {
	first    uint64 // ID of the oldest record
	counters wire.Counters
}

func keptOf(t *testing.T, l *lab.Lab, app string) kept {
	t.Helper()
	recs := l.Wire().Window(app, 0, 1)
	if len(recs) == 0 {
		t.Fatalf("%s: nothing captured", app)
	}
	return kept{first: recs[0].ID, counters: l.Wire().Counters(app)}
}

// stillKept checks that nothing of before is gone and that more came.
func stillKept(t *testing.T, l *lab.Lab, app string, before kept) {
	t.Helper()
	now := keptOf(t, l, app)
	if now.first != before.first || now.counters.Evicted != 0 {
		t.Errorf("%s: the oldest record is now %d (was %d), %d evicted: records were lost", app, now.first, before.first, now.counters.Evicted)
	}
	if now.counters.Packets <= before.counters.Packets || now.counters.Messages <= before.counters.Messages {
		t.Errorf("%s: %d packets, %d messages after recovery (were %d, %d): nothing new captured", app,
			now.counters.Packets, now.counters.Messages, before.counters.Packets, before.counters.Messages)
	}
}

// packetsIn counts the packets of a capture file.
func packetsIn(t *testing.T, path string) int {
	t.Helper()
	f, err := capture.OpenFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for {
		_, _, err := f.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		n++
	}
}

// run runs a command for the test (mount, ip, …) and fails with its output.
func run(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
}

// mountOrSkip runs a mount command; a kernel or sandbox that refuses mounts
// is a missing component, not a failure of the lab.
func mountOrSkip(t *testing.T, argv ...string) {
	t.Helper()
	testenv.NeedRoot(t)
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		testenv.Missing(t, fmt.Sprintf("%s: %v: %s (this test mounts file systems as root)", strings.Join(argv, " "), err, out))
	}
}

// labName is a lab name no other test run uses at the same time.
func labName(what string) string { return fmt.Sprintf("t16-%s-%d", what, os.Getpid()) }

// appPort is the port an app is reached on (its endpoint's).
func appPort(t *testing.T, l *lab.Lab, app string) int {
	t.Helper()
	for _, a := range l.Snapshot().Apps {
		if a.Name == app {
			_, p, err := net.SplitHostPort(a.Endpoint)
			if err == nil {
				if n, err := strconv.Atoi(p); err == nil {
					return n
				}
			}
		}
	}
	t.Fatalf("no endpoint for %s", app)
	return 0
}

func wsPort(t *testing.T, l *lab.Lab) int { return appPort(t, l, "ws") }

// tcpdumpsOf lists the pids of the streaming tcpdumps that capture port
// (the lab's ports are free ports: no other run's tcpdump has them).
func tcpdumpsOf(port int) []int {
	out, _ := exec.Command("pgrep", "-f", fmt.Sprintf(`tcpdump -i lo --immediate-mode .*tcp port %d( |$)`, port)).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		// tcpdump itself, not the shells whose command lines name it.
		comm, _ := os.ReadFile("/proc/" + f + "/comm")
		if n, err := strconv.Atoi(f); err == nil && strings.TrimSpace(string(comm)) == "tcpdump" {
			pids = append(pids, n)
		}
	}
	return pids
}

// killTcpdump kills, by pid, the tcpdump that captures port.
func killTcpdump(t *testing.T, port int) {
	t.Helper()
	pids := tcpdumpsOf(port)
	if len(pids) != 1 {
		t.Fatalf("%d tcpdumps capture port %d, want 1: %v", len(pids), port, pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}
