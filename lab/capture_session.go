package lab

import (
	"context"
	"errors"
	"fmt"
	"sync"

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
	// ErrLabClosed is returned by capture commands after Close.
	ErrLabClosed = errors.New("the lab is closed")
)

// captureState is where a lab's capture session is.
type captureState int

// The session's states: off → starting → on → stopping → off; a start that
// fails goes back to off.
const (
	captureOff captureState = iota
	captureStarting
	captureOn
	captureStopping
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
	work   sync.WaitGroup // capture goroutines in flight
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

// stop turns capture off and returns when it is: a start in progress is
// cancelled and waited for, a stop in progress is waited for. It publishes
// one CaptureEvent when it stops a capture, and nothing when capture was
// already off (or the start it cancelled failed, which that start reports).
func (s *captureSession) stop(l *Lab) error {
	for {
		s.mu.Lock()
		switch s.state {
		case captureOff:
			s.mu.Unlock()
			return nil
		case captureStarting, captureStopping:
			if s.state == captureStarting && s.cancel != nil {
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
