package lab_test

import (
	"context"
	"testing"

	"github.com/hinshun/vt10x"

	"github.com/protolab/protolab-tui/internal/vtscreen"
	"github.com/protolab/protolab-tui/lab"
)

func TestLocalShellOnAPty(t *testing.T) {
	sh, err := lab.LocalRunner{}.OpenShell(context.Background(), 80, 24)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	s := vtscreen.New(t, sh, 80, 24)
	s.Expect("TERM=xterm-256color; export TERM; "+vtscreen.ColourAndCursor, func(vt vt10x.Terminal) bool { return vt.Cell(12, 7).Char == 'X' })
	vtscreen.CheckColourAndCursor(t, s.VT)
	// Resizing the pane resizes the pty.
	if err := sh.Resize(100, 30); err != nil {
		t.Fatal(err)
	}
	s.VT.Resize(100, 30)
	s.Expect("clear; echo cols=$(tput cols)\r", func(vt vt10x.Terminal) bool { return vtscreen.OnScreen(vt, "cols=100") })
}
