// Package ui is protolab's terminal explorer, built on Bubble Tea: the lab
// host, its apps and the live per-protocol packet lists side by side, driven
// by single keys. It follows the Elm architecture: lab events arrive as
// messages from a Cmd that waits on the event stream, commands go to the lab
// from Cmds, and Update and View never do I/O.
package ui

import (
	"context"
	"fmt"
	"os"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/protolab/protolab-tui/lab"
)

// Run opens the explorer on l and returns when the user quits.
func Run(ctx context.Context, l *lab.Lab, autoStart bool) error {
	if os.Getenv("NO_COLOR") != "" {
		lipgloss.SetColorProfile(termenv.Ascii)
	}
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
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithMouseCellMotion(), tea.WithContext(ctx))
	if _, err := p.Run(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("terminal UI: %w", err)
	}
	return nil
}
