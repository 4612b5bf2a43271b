package lab_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/protocol"
)

// load parses a lab file and applies the defaults, as the command does;
// errors are placed at their line.
func load(t *testing.T, text string) (lab.Config, error) {
	t.Helper()
	lf, err := lab.ParseLabFile("lab.yaml", []byte(text))
	if err != nil {
		return lab.Config{}, err
	}
	lf.Config.StateDir = t.TempDir()
	c, err := lf.Config.WithDefaults()
	return c, lf.Explain(err)
}

func TestLabFileMistakesNameTheLine(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"typo'd key at the top", "name: x\nprovidr: local\n",
			[]string{"lab.yaml:2:1", `unknown key "providr" at the top level`, "provider"}},
		{"typo'd key in an app", "apps:\n  - name: a\n    protocol: ws\n    prot: 3\n",
			[]string{"lab.yaml:4:5", `unknown key "prot" in apps[0]`, "protocol", "port", "kind"}},
		{"typo'd key in a section", "capture:\n  mod: on\n",
			[]string{"lab.yaml:2:3", `unknown key "mod" in capture`, "mode, ring"}},
		{"duplicate port", "apps:\n  - name: a\n    protocol: ws\n    port: 3002\n  - name: b\n    protocol: ws\n    port: 3002\n",
			[]string{"lab.yaml:7:", "apps[1].port", "app b asks for port 3002, which apps[0] (a) has", "another port"}},
		{"duplicate port by default", "apps:\n  - name: a\n    protocol: ws\n  - name: b\n    protocol: ws\n",
			[]string{"lab.yaml:4:", "apps[1].port", "port 3002"}},
		{"duplicate name", "apps:\n  - name: a\n    protocol: ws\n    port: 1\n  - name: a\n    protocol: http\n    port: 2\n",
			[]string{"lab.yaml:5:", `app name "a" is already used by apps[0]`}},
		{"unknown protocol", "apps:\n  - name: g\n    protocol: gopher\n",
			[]string{"lab.yaml:3:", `unknown protocol "gopher"`, "want one of " + protocol.Names()}},
		{"kind that does not speak it", "apps:\n  - name: g\n    protocol: ws\n    kind: echo-http\n",
			[]string{"lab.yaml:4:", "kind echo-http does not speak ws"}},
		{"unknown kind", "apps:\n  - name: g\n    protocol: ws\n    kind: teapot\n",
			[]string{"lab.yaml:4:", `unknown kind "teapot"`, protocol.KindNames()}},
		{"wrong type", "apps:\n  - name: g\n    protocol: ws\n    port: many\n",
			[]string{"lab.yaml:4:"}},
		{"no apps", "apps: []\n", []string{"lab.yaml:1:", "the lab has no apps"}},
		{"not YAML", "apps: [\n", []string{"lab.yaml:"}},
		{"bad duration", "timeout: soon\n", []string{"lab.yaml:1:"}},
		{"unknown probe client", "probe:\n  client: remote\n",
			[]string{"lab.yaml:2:", "probe.client", `client "remote"`, `"worker"`, `"in-process"`}},
		{"negative warm-up", "probe:\n  warmup: -1\n",
			[]string{"lab.yaml:2:", "probe.warmup", "warm-up -1 is negative"}},
		{"unknown probe mode", "probe:\n  mode: pipelined\n",
			[]string{"lab.yaml:2:", "probe.mode", `mode "pipelined"`, `"closed"`, `"open"`}},
		{"a rate closed-loop", "probe:\n  rate: 100\n",
			[]string{"lab.yaml:2:", "probe.rate", "add mode: open"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.text)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestLabFileDefaults(t *testing.T) {
	c, err := load(t, "name: w\napps:\n  - name: chat\n    protocol: wss\n  - name: any\n    protocol: ws\n    port: 0\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []lab.App{
		{Name: "chat", Kind: protocol.KindChatWS, Protocol: protocol.WSS, Port: 3003, ReadLimit: lab.DefaultReadLimit},
		{Name: "any", Kind: protocol.KindChatWS, Protocol: protocol.WS, Port: 0, ReadLimit: lab.DefaultReadLimit},
	}
	if !reflect.DeepEqual(c.Apps, want) {
		t.Errorf("apps %+v, want %+v", c.Apps, want)
	}
	if c.Name != "w" || c.Provider != "local" || c.Capture.Mode != "auto" {
		t.Errorf("defaults %+v", c)
	}
	// No apps key: the seed's four.
	c, err = load(t, "name: x\n")
	if err != nil || !reflect.DeepEqual(c.AppNames(), []string{"http", "https", "ws", "wss"}) {
		t.Errorf("no apps key: %v %v", c.AppNames(), err)
	}
}

// TestPrintedLabFileReadsBack: what --print-lab writes is a lab file that
// gives the same configuration.
func TestPrintedLabFileReadsBack(t *testing.T) {
	in, err := load(t, "name: rt\nprovider: ssh\nssh:\n  host: root@h:2222\n  identity: [k1]\napps:\n  - name: a\n    protocol: ws\n    port: 0\n    allowed_origins: [http://x:1]\n  - name: b\n    protocol: https\ncapture:\n  mode: off\n  ring: 50\nprobe:\n  count: 7\n  timeout: 3s\ntimeout: 2m\n")
	if err != nil {
		t.Fatal(err)
	}
	b, err := lab.MarshalLabFile(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := load(t, string(b))
	if err != nil {
		t.Fatalf("%v:\n%s", err, b)
	}
	out.StateDir = in.StateDir
	if !reflect.DeepEqual(in, out) {
		t.Errorf("read back differs:\n%+v\n%+v\n%s", in, out, b)
	}
}

// TestExamplesAreValid: every lab file in examples/ loads, and the seed
// example is the lab with no file.
func TestExamplesAreValid(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.yaml")
	if len(files) < 3 {
		t.Fatalf("examples/ has %d lab files", len(files))
	}
	for _, f := range files {
		lf, err := lab.LoadLabFile(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		lf.Config.StateDir = t.TempDir()
		c, err := lf.Config.WithDefaults()
		if err != nil {
			t.Errorf("%s: %v", f, lf.Explain(err))
			continue
		}
		if filepath.Base(f) == "seed.yaml" {
			def, _ := lab.Config{StateDir: c.StateDir}.WithDefaults()
			if !reflect.DeepEqual(c.Apps, def.Apps) {
				t.Errorf("examples/seed.yaml's apps %+v are not the default lab's %+v", c.Apps, def.Apps)
			}
		}
	}
	if _, err := os.Stat("../examples/two-ws.yaml"); err != nil {
		t.Error("examples/two-ws.yaml is missing")
	}
}

func TestLabFileValueTypes(t *testing.T) {
	for text, want := range map[string]string{
		"apps:\n  - name: a\n    protocol: ws\n    port: many\n": "lab.yaml:4:11: apps[0].port: many is not a whole number",
		"probe:\n  timeout: 10\n":                                "lab.yaml:2:12: probe.timeout: 10 has no unit",
		"capture: on\n":                                          "lab.yaml:1:10: capture: want a mapping",
		"san: localhost\n":                                       "lab.yaml:1:6: san: want a list",
		"docker:\n  purge: maybe\n":                              "lab.yaml:2:10: docker.purge: maybe is not true or false",
	} {
		if _, err := load(t, text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", text, err, want)
		}
	}
}
