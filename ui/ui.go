// Package ui is protolab's terminal front end (Bubble Tea). It renders the
// Lab's state and events and sends it commands; it never does I/O itself.
//
// The explorer is built in its own issue; until then Run reports that it is
// not built and the headless runner is the way to drive a lab.
package ui

import (
	"context"
	"errors"

	"github.com/protolab/protolab-tui/lab"
)

// ErrNotBuilt is returned by Run until the TUI lands.
var ErrNotBuilt = errors.New("TUI not built yet: run with --headless")

// Run would open the TUI on l.
func Run(_ context.Context, _ *lab.Lab) error { return ErrNotBuilt }
