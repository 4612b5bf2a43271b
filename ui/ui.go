// Package ui is protolab's terminal explorer, built on Bubble Tea: the lab
// host, its apps and the live per-protocol packet lists side by side, driven
// by single keys. It follows the Elm architecture: lab events arrive as
// messages from a Cmd that waits on the event stream, commands go to the lab
// from Cmds, and Update and View never do I/O.
package ui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/protolab/protolab-tui/internal/termbg"
	"github.com/protolab/protolab-tui/lab"
)

// ErrInterrupted is returned by Run when the explorer quit on Ctrl-C (the
// key: in the explorer's raw mode it is a key, not a signal), so the caller
// can exit as an interrupted program does (130).
var ErrInterrupted = errors.New("the explorer was interrupted (Ctrl-C)")

// ErrLeftRunning is returned by Run when the user quit leaving the lab
// running (l in the quit question): the caller says what is left and the
// command that removes it. After Ctrl-C it comes joined with
// ErrInterrupted.
var ErrLeftRunning = errors.New("the lab was left running")

// ErrTeardownFailed is returned by Run when the user quit tearing the lab
// down (t) and the teardown failed: what is left is the caller's to say.
var ErrTeardownFailed = errors.New("the teardown failed")

// BackgroundTimeout bounds the wait for the terminal's answer to the
// background-colour query: a terminal that never answers costs this much
// once, at start, and gets the dark palette.
const BackgroundTimeout = 300 * time.Millisecond

// DefaultFPS bounds how often the renderer may draw. Bubble Tea's renderer
// wakes at this rate whatever happens (to flush a changed frame); 60, its
// default, is twice what a person reading packet rows can tell apart and
// costs the idle explorer its wake-ups (bench/run.sh idle measures both).
// PROTOLAB_FPS (1–120) sets another, for such measurements.
const DefaultFPS = 30

// fps is DefaultFPS, or PROTOLAB_FPS when it is a rate Bubble Tea takes.
func fps() int {
	if v, err := strconv.Atoi(os.Getenv("PROTOLAB_FPS")); err == nil && v >= 1 && v <= 120 {
		return v
	}
	return DefaultFPS
}

// Run opens the explorer on l and returns when the user quits (ErrInterrupted
// when that was Ctrl-C) or ctx ends (nil: the caller knows why). Signals are
// the caller's: the explorer installs no handler of its own.
func Run(ctx context.Context, l *lab.Lab, autoStart bool) error {
	setupColours()
	l.Interactive(true) // prompts (host keys, passphrases) are answered here
	defer l.Interactive(false)
	events, stop := l.Subscribe()
	defer func() {
		stop()
		for range events { // drain, so the stream's goroutine ends
		}
	}()
	cfg := l.Config()
	m := New(l, events, Options{
		Name: cfg.Name, Provider: cfg.Provider, StateDir: cfg.StateDir,
		Fingerprint: l.PKI().Fingerprint(), CaptureMode: cfg.Capture.Mode, AutoStart: autoStart, Apps: cfg.Apps,
	})
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithMouseCellMotion(), tea.WithContext(ctx),
		tea.WithoutSignalHandler(), tea.WithFPS(fps()))
	final, err := p.Run()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("terminal UI: %w", err)
	}
	fm, ok := final.(Model)
	if !ok || ctx.Err() != nil {
		return nil
	}
	return fm.quitErr()
}

// quitErr is how the explorer ended, as Run reports it: nil for a plain
// quit; ErrInterrupted for Ctrl-C; ErrLeftRunning when the lab was left
// running (joined with ErrInterrupted after Ctrl-C); ErrTeardownFailed
// (wrapping why) when the chosen teardown failed.
func (m Model) quitErr() error {
	var errs []error
	if m.interrupted {
		errs = append(errs, ErrInterrupted)
	}
	if m.leftRunning {
		errs = append(errs, ErrLeftRunning)
	}
	if m.tearErr != nil {
		errs = append(errs, fmt.Errorf("%w: %w", ErrTeardownFailed, m.tearErr))
	}
	return errors.Join(errs...)
}

// setupColours points lipgloss at the terminal as it is now. Bubble Tea's
// package init would have asked the terminal for its background and waited
// up to 5 s for an answer; cmd/protolab-tui prevents that
// (internal/termquiet), and here the explorer asks instead, bounded by
// BackgroundTimeout, and only when colours are on at all (NO_COLOR, or a
// terminal without colours, means no question).
func setupColours() {
	out := termenv.NewOutput(os.Stdout)
	termenv.SetDefaultOutput(out)
	r := lipgloss.DefaultRenderer()
	r.SetOutput(out)
	profile := out.EnvColorProfile() // Ascii with NO_COLOR
	r.SetColorProfile(profile)
	dark := true
	if profile != termenv.Ascii {
		dark = termbg.Dark(os.Stdin, os.Stdout, BackgroundTimeout).Dark
	}
	r.SetHasDarkBackground(dark)
}
