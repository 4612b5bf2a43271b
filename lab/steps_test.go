package lab_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/lab"
)

func TestParseStep(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want lab.Step
	}{
		{"up", lab.Step{Op: lab.StepUp}},
		{"  deploy  ", lab.Step{Op: lab.StepDeploy}},
		{"down", lab.Step{Op: lab.StepDown}},
		{`send ws "hello"`, lab.Step{Op: lab.StepSend, App: "ws", Text: "hello"}},
		{`send   chat-1   "two words, \"quoted\"\n"`, lab.Step{Op: lab.StepSend, App: "chat-1", Text: "two words, \"quoted\"\n"}},
		{`send ws ""`, lab.Step{Op: lab.StepSend, App: "ws"}},
		{"send\tws\t\"tab\"", lab.Step{Op: lab.StepSend, App: "ws", Text: "tab"}},
		{"wait 2s", lab.Step{Op: lab.StepWait, Wait: 2 * time.Second}},
		{"wait 1m30s", lab.Step{Op: lab.StepWait, Wait: 90 * time.Second}},
		{"capture on", lab.Step{Op: lab.StepCapture, On: true}},
		{"capture off", lab.Step{Op: lab.StepCapture}},
		{"export out/lab.pcapng", lab.Step{Op: lab.StepExport, Path: "out/lab.pcapng"}},
		{`export "my capture.pcapng"`, lab.Step{Op: lab.StepExport, Path: "my capture.pcapng"}},
		{"compare", lab.Step{Op: lab.StepCompare}},
		{"compare ws wss", lab.Step{Op: lab.StepCompare, Apps: []string{"ws", "wss"}}},
	} {
		got, err := lab.ParseStep(tc.src)
		if err != nil {
			t.Errorf("ParseStep(%q): %v", tc.src, err)
			continue
		}
		if tc.want.Apps == nil && len(got.Apps) == 0 {
			got.Apps = nil
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseStep(%q) = %+v, want %+v", tc.src, got, tc.want)
		}
		back, err := lab.ParseStep(got.String())
		if err != nil || back.String() != got.String() {
			t.Errorf("ParseStep(%q).String() = %q reads back as %+v, %v", tc.src, got.String(), back, err)
		}
	}
}

func TestParseStepMistakes(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"", "an empty step"},
		{"launch", `unknown step "launch": the steps are up, deploy, send APP "text"`},
		{"Up", `unknown step "Up"`},
		{"up now", `step up takes nothing after it, not "now"`},
		{"send", "send: no app named"},
		{"send ws", "send ws: no text to send"},
		{"send ws hello", "the text must be in double quotes"},
		{`send ws "hello`, "the text has no closing quote"},
		{`send ws "bad \q escape"`, "no closing quote (or a bad escape"},
		{`send ws "hi" there`, `"there" after the closing quote`},
		{`send "hi"`, "the app's name comes first"},
		{"wait", "step wait takes one duration"},
		{"wait 2", "wait 2: not a duration"},
		{"wait soon", "wait soon: not a duration"},
		{"wait -1s", "want a duration above 0"},
		{"wait 2h", "at most 1h0m0s"},
		{"wait 1s 2s", "step wait takes one duration"},
		{"capture", "step capture takes on or off"},
		{"capture yes", `not "yes"`},
		{"export", "step export needs a file"},
		{"export a b", "one file, in double quotes"},
		{`export "a b`, "no closing quote"},
		{`export "a" b`, `"b" after the file name`},
		{`export ""`, "step export needs a file"},
	} {
		_, err := lab.ParseStep(tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseStep(%q) = %v, want an error with %q", tc.src, err, tc.want)
		}
	}
}

// A bad step in a lab file is reported at its line, as every other mistake.
func TestStepMistakesNameTheLine(t *testing.T) {
	head := "apps:\n  - name: chat\n    protocol: ws\nsteps:\n  - up\n  - deploy\n"
	for _, tc := range []struct {
		name, step string
		want       []string
	}{
		{"unknown step", "launch", []string{"lab.yaml:7:", "steps[2]", `unknown step "launch"`}},
		{"bad duration", "wait 2 seconds", []string{"lab.yaml:7:", "steps[2]", "step wait takes one duration"}},
		{"bad duration unit", "wait 2", []string{"lab.yaml:7:", "wait 2: not a duration"}},
		{"unknown app", `send ws "hi"`, []string{"lab.yaml:7:", "steps[2]", `the lab has no app named "ws" (it has chat)`}},
		{"unknown app to compare", "compare chat ws", []string{"lab.yaml:7:", `no app named "ws"`}},
		{"missing quote", `send chat "hi`, []string{"lab.yaml:7:", "no closing quote"}},
		{"a mapping, not a line", "send: chat", []string{"lab.yaml:7:", "steps[2]: want a single value", "write each step on one line"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, head+"  - "+tc.step+"\n")
			if err == nil {
				t.Fatalf("no error for step %q", tc.step)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	c, err := load(t, head+"  - send chat \"hi\"\n  - down\n")
	if err != nil {
		t.Fatal(err)
	}
	steps, err := c.ParsedSteps()
	if err != nil || len(steps) != 4 || steps[2].String() != `send chat "hi"` {
		t.Fatalf("steps %+v, %v", steps, err)
	}
	// --print-lab writes the steps, and they read back.
	out, err := lab.MarshalLabFile(c)
	if err != nil {
		t.Fatal(err)
	}
	lf, err := lab.ParseLabFile("printed.yaml", out)
	if err != nil || !reflect.DeepEqual(lf.Config.Steps, c.Steps) {
		t.Fatalf("printed steps read back as %q (%v):\n%s", lf.Config.Steps, err, out)
	}
}

// FuzzParseStep: any line is a step or an error, never a panic; a step
// writes itself (String) as a line that reads back as the same step.
func FuzzParseStep(f *testing.F) {
	for _, s := range []string{"up", "deploy", `send ws "hello"`, `send ws "a\"b\n"`, "wait 2s", "capture on", "capture off",
		"export lab.pcapng", `export "a b.pcapng"`, "export \"a\u00a0b\"", `export "\"q"`, `export a"b`, "compare", "compare ws wss", "down", `send ws "x`, "wait -1s", "\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := lab.ParseStep(src)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("ParseStep(%q): an empty error", src)
			}
			return
		}
		back, err := lab.ParseStep(s.String())
		if err != nil {
			t.Fatalf("ParseStep(%q) = %+v writes as %q, which does not read back: %v", src, s, s.String(), err)
		}
		if back.String() != s.String() || back.Op != s.Op || back.Text != s.Text || back.Path != s.Path || back.App != s.App || back.Wait != s.Wait || back.On != s.On {
			t.Fatalf("ParseStep(%q) = %+v, but its line %q reads back as %+v", src, s, s.String(), back)
		}
	})
}
