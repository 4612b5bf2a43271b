package ui

import (
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/protolab/protolab-tui/lab/wire"
)

// filterRecords are the real records of a decoded ws conversation (the
// upgrade, a masked and an echoed text frame, a close) with its packets.
func filterRecords(t testing.TB) []wire.Record {
	tt, ok := t.(*testing.T)
	if !ok {
		tt = &testing.T{}
	}
	return wsConversation(tt).All("ws")
}

func TestFilterLanguage(t *testing.T) {
	recs := filterRecords(t)
	count := func(f filterFunc) int {
		n := 0
		for i := range recs {
			if f(&recs[i]) {
				n++
			}
		}
		return n
	}
	all, _ := compileFilter("")
	total := count(all)
	for _, tc := range []struct {
		filter string
		want   int
	}{
		{"message", 6},                              // upgrade request, 101, upgrade complete, two text frames, close
		{"s>c message", 4},                          // terms combine: and
		{"s>c and message", 4},                      // the same, spelled out
		{"c>s or s>c", total},                       // everything
		{"not packet", 6},                           // negation
		{"!packet and c>s", 2},                      // the request and the masked frame
		{"opcode == TEXT", 2},                       // a decoded field, by name
		{"opcode == 1", 2},                          // ... or by number
		{"websocket.opcode == 8", 1},                // Wireshark's name for it
		{"opcode ~ text|close", 3},                  // a regular expression
		{"status == 101", 1},                        // the upgrade's answer
		{"hello", 2},                                // a word: the row's text
		{`text ~ "hel+o lab"`, 2},                   // a quoted regular expression
		{"(c>s or s>c) and not message", total - 6}, // parentheses
		{"port == 3002", total},                     // either end of the flow
		{"tcp.port == 3002", total},                 // Wireshark's name
		{"port == 3003", 0},
		{"dport == 3002 and message", 2}, // to the server
		{"len > 10 and kind == message", 4},
		{"close_code == 1000", 1},
		{"close_code != 1000", 0}, // != needs the field
	} {
		f, err := compileFilter(tc.filter)
		if err != nil {
			t.Errorf("%q: %v", tc.filter, err)
			continue
		}
		if got := count(f); got != tc.want {
			t.Errorf("%q keeps %d of %d records, want %d", tc.filter, got, total, tc.want)
		}
	}
}

func TestFilterErrorsSayWhat(t *testing.T) {
	for filter, want := range map[string]string{
		"tcp.flagz == SYN": `unknown field "tcp.flagz"`,
		"len > many":       "len is a number",
		"method > GET":     "> and < compare numbers",
		"(c>s":             "the ( at 1 is not closed",
		"c>s)":             "unexpected \")\" at 4",
		`text ~ "(`:        "not closed",
		"text ~ (":         "not a regular expression",
		"== 3":             "has no field before it",
		"port ==":          "needs a value",
		"not":              "ends where a term is expected",
		"c>s and":          "ends where a term is expected",
		"bogusfield == 1":  `unknown field "bogusfield"`,
	} {
		if _, err := compileFilter(filter); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", filter, err, want)
		}
	}
}

func FuzzFilter(f *testing.F) {
	for _, s := range []string{"s>c message", "not (port == 3002 or len > 10)", `text ~ "a|b"`, "opcode == TEXT and !packet", "((", "\"", "a or or"} {
		f.Add(s)
	}
	recs := filterRecords(f)
	f.Fuzz(func(t *testing.T, s string) {
		fn, err := compileFilter(s)
		if err != nil {
			if fn != nil {
				t.Fatal("an error and a filter")
			}
			return
		}
		for i := range recs {
			fn(&recs[i]) // must not panic
		}
	})
}

// TestFilterPromptSaysWhatIsWrong: the prompt shows a parse error as one
// types, and Enter does not apply a filter that does not parse.
func TestFilterPromptSaysWhatIsWrong(t *testing.T) {
	m, _ := newModel(t)
	m = send(t, m, tea.WindowSizeMsg{Width: 120, Height: 30}, upEvents())
	m = send(t, m, keys("/")...)
	m.promptView().input.SetValue("")
	m = send(t, m, keys("tcp.flagz == SYN")...)
	if v := m.text(); !strings.Contains(v, `does not parse: unknown field "tcp.flagz"`) {
		t.Errorf("no error shown while typing:\n%s", v)
	}
	m = send(t, m, tea.KeyMsg{Type: tea.KeyEnter})
	if m.prompting() != inputFilter || m.packets.filter != "" {
		t.Errorf("a broken filter was applied (%q) or the prompt closed", m.packets.filter)
	}
	m.promptView().input.SetValue("")
	m = send(t, m, keys("s>c message")...)
	m = send(t, m, tea.KeyMsg{Type: tea.KeyEnter})
	if m.prompting() != inputNone || m.packets.filter != "s>c message" {
		t.Errorf("a good filter: input %v, filter %q", m.prompting(), m.packets.filter)
	}
}
