// Package vtscreen drives an interactive shell through a VT emulator for
// tests of the debugging pane: type, read, and look at the emulated screen.
package vtscreen

import (
	"testing"
	"time"

	"github.com/hinshun/vt10x"

	"github.com/protolab/protolab-tui/lab"
)

// Screen runs a shell's output through a VT emulator (one reader for the
// shell's whole life).
type Screen struct {
	t   testing.TB
	sh  lab.Shell
	VT  vt10x.Terminal
	out chan []byte
}

// New starts reading the shell.
func New(t testing.TB, sh lab.Shell, cols, rows int) *Screen {
	s := &Screen{t: t, sh: sh, VT: vt10x.New(vt10x.WithSize(cols, rows)), out: make(chan []byte, 64)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sh.Read(buf)
			if n > 0 {
				s.out <- append([]byte(nil), buf[:n]...)
			}
			if err != nil {
				close(s.out)
				return
			}
		}
	}()
	return s
}

// expect types input and feeds the output to the emulator until done.
// Expect types input and feeds the output to the emulator until done
// reports true (called with the emulator locked).
func (s *Screen) Expect(input string, done func(vt10x.Terminal) bool) {
	s.t.Helper()
	if _, err := s.sh.Write([]byte(input)); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		s.VT.Lock()
		ok := done(s.VT)
		s.VT.Unlock()
		if ok {
			return
		}
		select {
		case b, ok := <-s.out:
			if !ok {
				s.t.Fatalf("the shell ended; screen:\n%s", s.VT.String())
			}
			s.VT.Write(b)
		case <-deadline:
			s.t.Fatalf("timed out; screen:\n%s", s.VT.String())
		}
	}
}

// colourAndCursor is what the debugging-pane tests type: red text, then a
// jump of the cursor with tput.
const ColourAndCursor = "printf '\\033[31mRED\\033[0m'; tput cup 7 12; printf X; printf '\\n'\r"

// CheckColourAndCursor asserts what ColourAndCursor draws.
func CheckColourAndCursor(t testing.TB, vt vt10x.Terminal) {
	t.Helper()
	vt.Lock()
	defer vt.Unlock()
	if g := vt.Cell(12, 7); g.Char != 'X' {
		t.Errorf("cell (12,7) = %q, want X from tput cup 7 12:\n%s", g.Char, vt.String())
	}
	found := false
	for y := 0; y < 24 && !found; y++ {
		for x := 0; x+2 < 80; x++ {
			if vt.Cell(x, y).Char == 'R' && vt.Cell(x+1, y).Char == 'E' && vt.Cell(x+2, y).Char == 'D' && vt.Cell(x, y).FG == 1 {
				found = true
				break
			}
		}
	}
	if !found {
		t.Errorf("no red RED on the screen:\n%s", vt.String())
	}
}

// OnScreen looks for text at the start of a line (the emulator is locked).
func OnScreen(vt vt10x.Terminal, want string) bool {
	cols, rows := vt.Size()
	for y := 0; y < rows; y++ {
		line := make([]rune, 0, cols)
		for x := 0; x < cols && x < len(want); x++ {
			line = append(line, vt.Cell(x, y).Char)
		}
		if string(line) == want {
			return true
		}
	}
	return false
}
