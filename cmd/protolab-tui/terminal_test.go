package main

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// The terminal queries termenv (and so Bubble Tea's init) would send.
const (
	bgQuery     = "\x1b]11;?"
	cursorQuery = "\x1b[6n"
)

// TestNoTerminalQueries: commands that draw no explorer ask the terminal
// nothing, so a terminal that never answers (CI logs, script, serial
// consoles) does not stall them. (How long each takes under such a terminal
// is BenchmarkSilentTerminal's.)
func TestNoTerminalQueries(t *testing.T) {
	for _, args := range [][]string{
		{"--help"},
		{"--print-lab"},
		append([]string{"--headless", "--json", "--count", "3", "--capture", "off"}, freePorts...),
		append([]string{"--headless", "--count", "3"}, freePorts...),
	} {
		r := startPty(t, userRoot, nil, args...) // TERM=xterm-256color, colours on
		code, out := r.exit()
		if code != 0 {
			t.Errorf("%v: exit %d:\n%s", args, code, tail(out))
		}
		if strings.Contains(out, bgQuery) || strings.Contains(out, cursorQuery) {
			t.Errorf("%v asked the terminal: %q", args, tail(out))
		}
	}
}

// TestExplorerColours: the explorer asks the terminal for its background
// once and picks the palette from the answer; a terminal that never answers
// gets the dark one after a short wait, and the explorer goes on; NO_COLOR
// asks nothing and draws no colour.
func TestExplorerColours(t *testing.T) {
	const (
		darkAccent  = "38;2;185;165;255" // #B9A5FF
		lightAccent = "38;2;89;63;192"   // #5A3FC0, as termenv rounds it
	)
	for _, tc := range []struct {
		name    string
		env     []string
		answer  string
		queries int
		want    string
		notWant []string
	}{
		{"a light terminal", nil, "\x1b]11;rgb:ffff/ffff/ffff\x1b\\\x1b[45;1R", 1, lightAccent, []string{darkAccent}},
		{"a dark terminal", nil, "\x1b]11;rgb:1e1e/1e1e/1e1e\a\x1b[45;1R", 1, darkAccent, []string{lightAccent}},
		{"a terminal that never answers", nil, "", 1, darkAccent, []string{lightAccent}},
		{"NO_COLOR", []string{"NO_COLOR=1"}, "", 0, "", []string{darkAccent, lightAccent, "\x1b[38;"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startPtyAnswering(t, userRoot, tc.answer, append([]string{"COLORTERM=truecolor"}, tc.env...), append([]string{"--capture", "off"}, freePorts...)...)
			r.waitFor("the lab to run", "running", "healthy")
			if err := syscall.Kill(r.cmd.Process.Pid, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			code, out := r.exit()
			if code != 143 {
				t.Errorf("exit %d after SIGTERM:\n%s", code, tail(out))
			}
			if n := strings.Count(out, bgQuery); n != tc.queries {
				t.Errorf("%d background queries, want %d", n, tc.queries)
			}
			if tc.want != "" && !strings.Contains(out, tc.want) {
				t.Errorf("no %q in the explorer's output", tc.want)
			}
			for _, bad := range tc.notWant {
				if strings.Contains(out, bad) {
					t.Errorf("%q in the explorer's output", bad)
				}
			}
		})
	}
}

// BenchmarkSilentTerminal times --help and a short headless run in a
// terminal that never answers queries against the same under TERM=dumb
// (where termenv never asked, even before), alternately in each iteration so
// that load on the machine touches both alike. It reports both times and
// their ratio, which should be about 1. Before internal/termquiet, the
// silent terminal cost 5 s more each.
func BenchmarkSilentTerminal(b *testing.B) {
	for _, cmd := range []struct {
		name string
		args []string
	}{
		{"help", []string{"--help"}},
		{"headless", append([]string{"--headless", "--count", "3", "--capture", "off"}, freePorts...)},
	} {
		b.Run(cmd.name, func(b *testing.B) {
			took := map[string]time.Duration{}
			for b.Loop() {
				for _, term := range []string{"TERM=dumb", "TERM=xterm-256color"} {
					start := time.Now()
					r := startPty(b, userRoot, []string{term}, cmd.args...)
					if code, out := r.exit(); code != 0 {
						b.Fatalf("%s: exit %d: %s", term, code, tail(out))
					}
					took[term] += time.Since(start)
				}
			}
			silent, dumb := took["TERM=xterm-256color"], took["TERM=dumb"]
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(silent.Seconds()*1e3/float64(b.N), "silent-ms/op")
			b.ReportMetric(dumb.Seconds()*1e3/float64(b.N), "dumb-ms/op")
			b.ReportMetric(silent.Seconds()/dumb.Seconds(), "silent/dumb")
		})
	}
}
