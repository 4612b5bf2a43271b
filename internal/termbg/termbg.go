// Package termbg asks a terminal for its background colour (OSC 11), with a
// bound on the wait, so that a terminal that never answers costs a fraction
// of a second instead of termenv's 5.
//
// The query is followed by a cursor position request (DSR 6), which every
// terminal answers: a terminal that does not know OSC 11 answers only that,
// so the answer ends the wait at once. Only a terminal that answers nothing
// at all makes Dark wait for its timeout.
package termbg

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Result is what Dark found out.
type Result struct {
	// Dark says the background is dark (the default when nothing is known).
	Dark bool
	// Source says where Dark comes from: "terminal" (it answered),
	// "COLORFGBG", or "default".
	Source string
}

// Dark reports whether the terminal on in/out has a dark background. It asks
// the terminal only when in and out are the same terminal, this process is
// in its foreground and TERM allows queries (not dumb, screen or tmux); it
// waits at most timeout for the answer. Otherwise, and when the terminal
// does not answer, COLORFGBG decides, or the default (dark).
func Dark(in, out *os.File, timeout time.Duration) Result {
	if dark, err := ask(in, out, timeout); err == nil {
		return Result{Dark: dark, Source: "terminal"}
	}
	if dark, ok := fromCOLORFGBG(os.Getenv("COLORFGBG")); ok {
		return Result{Dark: dark, Source: "COLORFGBG"}
	}
	return Result{Dark: true, Source: "default"}
}

// errNoAnswer means the terminal did not answer OSC 11 (or was not asked).
var errNoAnswer = errors.New("the terminal does not report its background colour")

func ask(in, out *os.File, timeout time.Duration) (bool, error) {
	term := os.Getenv("TERM")
	if term == "" || strings.HasPrefix(term, "dumb") || strings.HasPrefix(term, "screen") || strings.HasPrefix(term, "tmux") {
		return false, errNoAnswer
	}
	fd := int(in.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return false, errNoAnswer // not a terminal
	}
	if _, err := unix.IoctlGetTermios(int(out.Fd()), unix.TCGETS); err != nil {
		return false, errNoAnswer
	}
	if pg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP); err != nil || pg != unix.Getpgrp() {
		return false, errNoAnswer // in the background: the terminal is not ours to ask
	}
	// No echo, no line buffering; signals stay on (Ctrl-C still works).
	raw := *old
	raw.Lflag &^= unix.ECHO | unix.ICANON
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return false, errNoAnswer
	}
	defer func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }()
	if _, err := out.WriteString("\x1b]11;?\x1b\\\x1b[6n"); err != nil {
		return false, errNoAnswer
	}
	var got []byte
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 256)
	for {
		// The cursor position report ("ESC [ row ; col R") comes last.
		if osc, done := scan(got); done {
			if osc == "" {
				return false, errNoAnswer
			}
			return parseOSC11(osc)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, errNoAnswer
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			return false, errNoAnswer
		}
		r, err := unix.Read(fd, buf)
		if err != nil || r <= 0 {
			return false, errNoAnswer
		}
		got = append(got, buf[:r]...)
		if len(got) > 4096 {
			return false, errNoAnswer
		}
	}
}

// scan looks for the cursor position report in b; done is true once it is
// there, and osc is the OSC 11 answer before it ("" when there was none).
func scan(b []byte) (osc string, done bool) {
	s := string(b)
	for i := 0; i < len(s); i++ {
		if s[i] != 0x1b || i+1 >= len(s) {
			continue
		}
		switch s[i+1] {
		case ']':
			end := strings.IndexAny(s[i:], "\a")
			st := strings.Index(s[i:], "\x1b\\")
			switch {
			case st >= 0 && (end < 0 || st < end):
				osc = s[i+2 : i+st]
				i += st + 1
			case end >= 0:
				osc = s[i+2 : i+end]
				i += end
			default:
				return "", false // the rest has not arrived yet
			}
		case '[':
			j := i + 2
			for j < len(s) && (s[j] == ';' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			if j < len(s) && s[j] == 'R' {
				return osc, true
			}
		}
	}
	return osc, false
}

// parseOSC11 reads "11;rgb:RRRR/GGGG/BBBB" (1 to 4 hex digits a channel)
// and says whether that colour is dark (HSL lightness below one half, as
// termenv decides).
func parseOSC11(s string) (bool, error) {
	spec, ok := strings.CutPrefix(s, "11;rgb:")
	if !ok {
		return false, fmt.Errorf("background colour answer %q: want 11;rgb:R/G/B", s)
	}
	parts := strings.Split(spec, "/")
	if len(parts) != 3 {
		return false, fmt.Errorf("background colour answer %q: want three channels", s)
	}
	var ch [3]float64
	for i, p := range parts {
		if len(p) < 1 || len(p) > 4 {
			return false, fmt.Errorf("background colour answer %q: channel %q", s, p)
		}
		v, err := strconv.ParseUint(p, 16, 16)
		if err != nil {
			return false, fmt.Errorf("background colour answer %q: %w", s, err)
		}
		ch[i] = float64(v) / float64(uint64(1)<<(4*len(p))-1)
	}
	hi, lo := max(ch[0], ch[1], ch[2]), min(ch[0], ch[1], ch[2])
	return (hi+lo)/2 < 0.5, nil
}

// fromCOLORFGBG reads the background from COLORFGBG ("fg;bg" or
// "fg;other;bg", ANSI colour numbers): 0–6 and 8 are dark.
func fromCOLORFGBG(v string) (dark, ok bool) {
	if !strings.Contains(v, ";") {
		return false, false
	}
	f := strings.Split(v, ";")
	bg, err := strconv.Atoi(f[len(f)-1])
	if err != nil || bg < 0 || bg > 15 {
		return false, false
	}
	return bg <= 6 || bg == 8, true
}
