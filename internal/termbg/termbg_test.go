package termbg

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

func TestParseOSC11(t *testing.T) {
	for _, tc := range []struct {
		in   string
		dark bool
		err  bool
	}{
		{"11;rgb:0000/0000/0000", true, false},
		{"11;rgb:ffff/ffff/ffff", false, false},
		{"11;rgb:1e1e/1e1e/2e2e", true, false},
		{"11;rgb:fd/f6/e3", false, false}, // solarized light, two digits a channel
		{"11;rgb:f/f/f", false, false},
		{"11;rgb:8/8/8", false, false}, // lightness 0.53
		{"11;rgb:7/7/7", true, false},
		{"11;rgba:0/0/0/0", false, true},
		{"11;rgb:0000/0000", false, true},
		{"11;rgb:xx/00/00", false, true},
		{"11;rgb:00000/0/0", false, true},
		{"10;rgb:0/0/0", false, true},
	} {
		dark, err := parseOSC11(tc.in)
		if (err != nil) != tc.err || err == nil && dark != tc.dark {
			t.Errorf("parseOSC11(%q) = %v, %v; want dark %v, error %v", tc.in, dark, err, tc.dark, tc.err)
		}
	}
}

func TestScan(t *testing.T) {
	for _, tc := range []struct {
		in   string
		osc  string
		done bool
	}{
		{"", "", false},
		{"\x1b]11;rgb:0/0/0\x1b\\", "11;rgb:0/0/0", false},
		{"\x1b]11;rgb:0/0/0\x1b\\\x1b[24;1R", "11;rgb:0/0/0", true},
		{"\x1b]11;rgb:f/f/f\a\x1b[1;1R", "11;rgb:f/f/f", true},
		{"\x1b[5;10R", "", true},                                  // no OSC 11 support: only the cursor report
		{"q\x1b[A\x1b]11;rgb:0/0/0\x1b\\", "11;rgb:0/0/0", false}, // keys typed meanwhile
		{"\x1b]11;rgb:0/0", "", false},                            // the rest is on its way
	} {
		osc, done := scan([]byte(tc.in))
		if osc != tc.osc || done != tc.done {
			t.Errorf("scan(%q) = %q, %v; want %q, %v", tc.in, osc, done, tc.osc, tc.done)
		}
	}
}

func TestFromCOLORFGBG(t *testing.T) {
	for _, tc := range []struct {
		in       string
		dark, ok bool
	}{
		{"15;0", true, true}, {"0;15", false, true}, {"0;default;15", false, true}, {"7;8", true, true},
		{"", false, false}, {"15", false, false}, {"15;x", false, false}, {"1;99", false, false},
	} {
		dark, ok := fromCOLORFGBG(tc.in)
		if dark != tc.dark || ok != tc.ok {
			t.Errorf("fromCOLORFGBG(%q) = %v, %v; want %v, %v", tc.in, dark, ok, tc.dark, tc.ok)
		}
	}
}

// TestHelperDark is not a test: it is the process the pty tests start, in a
// new session whose controlling terminal is the pty, so that it is the
// terminal's foreground process as a program run from a shell is.
func TestHelperDark(t *testing.T) {
	if os.Getenv("TERMBG_HELPER") != "1" {
		t.Skip("run by the pty tests")
	}
	timeout, _ := time.ParseDuration(os.Getenv("TERMBG_TIMEOUT"))
	r := Dark(os.Stdin, os.Stdout, timeout)
	fmt.Printf("RESULT dark=%v source=%s\n", r.Dark, r.Source)
	os.Exit(0)
}

// runInPty starts the helper in a pty and answers its queries with answer
// (nothing when empty); it returns what the helper printed and whether it
// asked at all.
func runInPty(t *testing.T, env []string, answer string) (result string, asked bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperDark$", "-test.count=1")
	cmd.Env = append(os.Environ(), append([]string{"TERMBG_HELPER=1", "TERMBG_TIMEOUT=300ms", "TERM=xterm-256color", "COLORFGBG="}, env...)...)
	master, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	var out bytes.Buffer
	buf := make([]byte, 1024)
	for { // until the helper has exited and the pty reports EIO
		n, err := master.Read(buf)
		out.Write(buf[:n])
		if !asked && strings.Contains(out.String(), "\x1b]11;?") && strings.Contains(out.String(), "\x1b[6n") {
			asked = true
			if answer != "" {
				if _, err := io.WriteString(master, answer); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err != nil {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v; output %q", err, out.String())
	}
	s := out.String()
	i := strings.Index(s, "RESULT ")
	if i < 0 {
		t.Fatalf("no result in %q", s)
	}
	return strings.TrimSpace(strings.SplitN(s[i+len("RESULT "):], "\n", 2)[0]), asked
}

func TestDarkInAPty(t *testing.T) {
	for _, tc := range []struct {
		name   string
		env    []string
		answer string
		want   string
		asks   bool
	}{
		{"dark answer", nil, "\x1b]11;rgb:0000/0000/0000\x1b\\\x1b[24;1R", "dark=true source=terminal", true},
		{"light answer, BEL", nil, "\x1b]11;rgb:ffff/ffff/ffff\a\x1b[24;1R", "dark=false source=terminal", true},
		{"no OSC 11: only the cursor report", nil, "\x1b[24;1R", "dark=true source=default", true},
		{"never answers", nil, "", "dark=true source=default", true},
		{"never answers, COLORFGBG light", []string{"COLORFGBG=0;15"}, "", "dark=false source=COLORFGBG", true},
		{"TERM=dumb is not asked", []string{"TERM=dumb"}, "", "dark=true source=default", false},
		{"tmux is not asked", []string{"TERM=tmux-256color"}, "", "dark=true source=default", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, asked := runInPty(t, tc.env, tc.answer)
			if got != tc.want || asked != tc.asks {
				t.Errorf("got %q (asked %v), want %q (asked %v)", got, asked, tc.want, tc.asks)
			}
		})
	}
}

func TestDarkNotATerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	t.Setenv("TERM", "xterm")
	t.Setenv("COLORFGBG", "")
	if got := Dark(r, w, time.Second); got != (Result{Dark: true, Source: "default"}) {
		t.Errorf("on a pipe: %+v", got)
	}
}
