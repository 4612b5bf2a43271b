package lab

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/protolab/protolab-tui/lab/capture"
)

// Errors of a capture command given in the wrong capture state.
var (
	// ErrCaptureOn is returned by StartCapture while capture is on.
	ErrCaptureOn = errors.New("capture is already on (stop it first to restart it)")
	// ErrCaptureStarting is returned by StartCapture while an earlier one
	// is still opening its source.
	ErrCaptureStarting = errors.New("capture is starting: wait for it to be on (or to fail) before starting it again")
	// ErrCaptureStopping is returned by StartCapture while capture is
	// being stopped.
	ErrCaptureStopping = errors.New("capture is stopping: start it again once it is off")
	// ErrCaptureRestarting is returned by StartCapture while the Lab
	// restarts a capture whose source ended by itself.
	ErrCaptureRestarting = errors.New("capture is restarting after its source ended: wait for it to be on again, or stop it")
	// ErrLabClosed is returned by capture commands after Close.
	ErrLabClosed = errors.New("the lab is closed")
)

// captureState is where a lab's capture session is.
type captureState int

// The session's states: off → starting → on → stopping → off; a start that
// fails goes back to off. A capture whose source ends by itself (tcpdump
// killed, the SSH link cut, the interface down) goes on → restarting → on
// (or → off when stopped meanwhile).
const (
	captureOff captureState = iota
	captureStarting
	captureOn
	captureStopping
	captureRestarting
)

// captureSession is a lab's capture: at most one capture running (or being
// started or stopped) at a time, and every capture that ran since the lab
// was created, whose records may still be in the lab's store (which is never
// cleared), so that an export holds every packet the lists show. Its mutex
// guards only the session; capture's I/O runs with it released.
type captureSession struct {
	mu     sync.Mutex
	state  captureState
	cur    *capture.Capture // while on or stopping
	opDone chan struct{}    // closed when the start or stop in progress ends
	cancel context.CancelFunc
	ran    []*capture.Capture // every capture started, oldest first (cur included)
	last   capture.Stats      // the last stopped capture's counters
	closed bool
	// closing is closed by Close: the watchers of running captures end.
	closing     chan struct{}
	closingOnce sync.Once
	work        sync.WaitGroup // capture goroutines in flight
}

// captureSession returns the lab's capture session.
func (l *Lab) captureSession() *captureSession { return &l.cs }

// release closes every capture the session kept (removing the spools).
func (s *captureSession) release() {
	s.mu.Lock()
	ran := s.ran
	s.ran, s.cur, s.state = nil, nil, captureOff
	s.mu.Unlock()
	for _, c := range ran {
		_ = c.Close()
	}
}

// startableLocked says why capture cannot start now (nil when it can).
// s.mu must be held.
func (s *captureSession) startableLocked() error {
	if s.closed {
		return ErrLabClosed
	}
	switch s.state {
	case captureStarting:
		return ErrCaptureStarting
	case captureOn:
		return ErrCaptureOn
	case captureStopping:
		return ErrCaptureStopping
	case captureRestarting:
		return ErrCaptureRestarting
	}
	return nil
}

// running returns the capture when capture is on (nil otherwise).
func (s *captureSession) running() *capture.Capture {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != captureOn {
		return nil
	}
	return s.cur
}

// stop turns capture off and returns when it is: a start (or restart) in
// progress is cancelled and waited for, a stop in progress is waited for.
// It publishes one CaptureEvent when it stops a capture, and nothing when
// capture was already off (or the start it cancelled failed, which that
// start reports; a cancelled restart reports "off" itself).
func (s *captureSession) stop(l *Lab) error {
	for {
		s.mu.Lock()
		switch s.state {
		case captureOff:
			s.mu.Unlock()
			return nil
		case captureStarting, captureStopping, captureRestarting:
			if s.state != captureStopping && s.cancel != nil {
				s.cancel()
			}
			done := s.opDone
			s.mu.Unlock()
			<-done
			continue
		}
		c, done := s.beginStopLocked()
		s.mu.Unlock()
		return s.finishStop(l, c, done)
	}
}

// beginStopLocked moves a session that is on to stopping and returns its
// capture and the channel finishStop closes. s.mu must be held.
func (s *captureSession) beginStopLocked() (*capture.Capture, chan struct{}) {
	done := make(chan struct{})
	s.state, s.opDone = captureStopping, done
	return s.cur, done
}

// finishStop stops c (s.mu not held), then turns the session off and
// publishes the CaptureEvent.
func (s *captureSession) finishStop(l *Lab, c *capture.Capture, done chan struct{}) error {
	err := c.Stop()
	st := c.Stats()
	ev := CaptureEvent{At: now(), State: "off", Stats: st}
	if err != nil {
		err = fmt.Errorf("capture is off, after an error while capturing from %s (what was captured until then is kept): %w", c.Describe(), err)
		ev.Note = err.Error()
	}
	s.mu.Lock()
	s.state, s.cur, s.last, s.opDone = captureOff, nil, st, nil
	// Published under s.mu, so a capture starting next reports "on" after
	// this "off".
	l.emit(ev)
	close(done)
	s.mu.Unlock()
	return err
}

// watch starts following c, which is on: when its source ends by itself
// the capture is lost and restarted. s.mu must be held.
func (s *captureSession) watchLocked(l *Lab, c *capture.Capture) {
	if s.closed || !c.HasSource() {
		return // socket-level capture has no source to lose
	}
	s.initLocked()
	closing := s.closing
	s.work.Add(1)
	go func() {
		defer s.work.Done()
		select {
		case <-c.Done():
		case <-closing:
			return
		}
		s.mu.Lock()
		if s.state != captureOn || s.cur != c || s.closed {
			s.mu.Unlock() // stopped on purpose
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		s.state, s.cur, s.cancel, s.opDone = captureRestarting, nil, cancel, done
		s.work.Add(1)
		s.mu.Unlock()
		go s.restart(l, ctx, cancel, c, done)
	}()
}

// Backoff between attempts to restart a lost capture.
const (
	restartFirst = 250 * time.Millisecond
	restartMax   = 2 * time.Second
)

// restart finishes the lost capture (what it read is decoded, its records
// and packets stay for the lists and export), says so, and opens a new one
// on the lab's ports until one opens or the capture is stopped.
func (s *captureSession) restart(l *Lab, ctx context.Context, cancel context.CancelFunc, lost *capture.Capture, done chan struct{}) {
	defer s.work.Done()
	defer cancel()
	err := lost.Stop()
	st := lost.Stats()
	why := "its source ended"
	if err != nil {
		why = err.Error()
	}
	s.mu.Lock()
	s.last = st
	s.mu.Unlock()
	l.emit(CaptureEvent{At: now(), State: "lost", Stats: st,
		Note: fmt.Sprintf("capture from %s stopped: %s; what it captured is kept; restarting it", lost.Describe(), why)})
	wait, said := restartFirst, ""
	if time.Since(lost.Started()) < time.Second {
		// It ended soon after it started: do not spin on a source that
		// dies at once.
		select {
		case <-ctx.Done():
		case <-time.After(restartMax):
		}
	}
	for attempt := 1; ; attempt++ {
		c, note, err := l.openCapture(ctx)
		if err == nil && c == nil {
			err = errors.New(note) // no way to capture (now)
		}
		s.mu.Lock()
		if ctx.Err() != nil || s.closed {
			if c != nil {
				s.mu.Unlock()
				c.Close()
				s.mu.Lock()
			}
			s.state, s.cancel, s.opDone = captureOff, nil, nil
			l.emit(CaptureEvent{At: now(), State: "off", Stats: st, Note: "capture was stopped while it was restarting after: " + why})
			close(done)
			s.mu.Unlock()
			return
		}
		if err == nil {
			s.state, s.cur, s.cancel, s.opDone = captureOn, c, nil, nil
			s.ran = append(s.ran, c)
			if note != "" {
				note = "; " + note
			}
			l.emit(CaptureEvent{At: now(), State: "on", Stats: c.Stats(),
				Note: fmt.Sprintf("capture restarted (attempt %d) after: %s%s", attempt, why, note)})
			s.watchLocked(l, c)
			close(done)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		if msg := err.Error(); msg != said {
			said = msg // said once, not at every attempt
			l.emit(LogEvent{At: now(), Level: "warn", Source: "capture",
				Message: fmt.Sprintf("restarting the capture failed: %v; trying again every %s until it opens (or capture is stopped)", err, restartMax)})
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, restartMax)
	}
}

// closeWatchers ends the goroutines watching running captures (Close).
func (s *captureSession) closeWatchers() {
	s.mu.Lock()
	s.initLocked()
	s.mu.Unlock()
	s.closingOnce.Do(func() { close(s.closing) })
}

// initLocked makes the closing channel. s.mu must be held.
func (s *captureSession) initLocked() {
	if s.closing == nil {
		s.closing = make(chan struct{})
	}
}
