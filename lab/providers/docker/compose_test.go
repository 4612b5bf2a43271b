package docker

import (
	"bytes"
	"flag"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/protocol"
)

var update = flag.Bool("update", false, "rewrite apps/docker-compose.yaml from the seed lab's apps")

// committedCompose is the hand-run compose file (bench_test.go runs it too).
const committedCompose = "../../../apps/docker-compose.yaml"

const regenerate = "go test ./lab/providers/docker -run TestComposeFileFollowsTheSeedApps -update" +
	" (or: go run ./cmd/protolab-tui --print-compose > apps/docker-compose.yaml)"

func composeOf(t *testing.T, c lab.Config) (lab.Config, []byte) {
	t.Helper()
	cfg, err := c.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	b, err := ComposeFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, b
}

func seedLab() lab.Config { return lab.Config{StateDir: "/x"} }

func twoWSLab() lab.Config {
	return lab.Config{StateDir: "/x", Apps: []lab.App{
		{Name: "ws-a", Protocol: protocol.WS, Port: 4002},
		{Name: "ws-b", Protocol: protocol.WS, Port: 4003},
	}}
}

// TestComposeFileFollowsTheSeedApps: apps/docker-compose.yaml is
// ComposeFile of the seed lab, byte for byte.
func TestComposeFileFollowsTheSeedApps(t *testing.T) {
	_, want := composeOf(t, seedLab())
	if *update {
		if err := os.WriteFile(committedCompose, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(committedCompose)
	if err != nil {
		t.Fatalf("%v: regenerate it with %s", err, regenerate)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		i := 0
		for i < len(gl) && i < len(wl) && gl[i] == wl[i] {
			i++
		}
		line := func(l []string) string {
			if i < len(l) {
				return l[i]
			}
			return "(end of file)"
		}
		t.Fatalf("apps/docker-compose.yaml does not follow the seed lab's apps (ComposeFile); line %d is\n\t%s\nwant\n\t%s\nregenerate it with %s",
			i+1, line(gl), line(wl), regenerate)
	}
	if _, again := composeOf(t, seedLab()); !bytes.Equal(again, want) {
		t.Error("ComposeFile is not stable")
	}
}

// composeDoc is what the tests read back of a compose file.
type composeDoc struct {
	Version  string `yaml:"version"`
	Services map[string]struct {
		Image       string            `yaml:"image"`
		User        string            `yaml:"user"`
		Environment map[string]string `yaml:"environment"`
		Labels      map[string]string `yaml:"labels"`
		Ports       []string          `yaml:"ports"`
		Volumes     []string          `yaml:"volumes"`
	} `yaml:"services"`
}

// TestComposeFileOfTwoWSApps: a lab of two ws apps gives two services named
// after them, on their ports, with the provider's environment and labels.
func TestComposeFileOfTwoWSApps(t *testing.T) {
	cfg, b := composeOf(t, twoWSLab())
	var doc composeDoc
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if doc.Version != "3.7" || len(doc.Services) != 2 {
		t.Fatalf("version %q, %d services:\n%s", doc.Version, len(doc.Services), b)
	}
	// Each app its own inner port (InnerPorts): ws-b, the second ws app,
	// listens a hundred up.
	ports := map[string]string{"ws-a": "127.0.0.1:4002:3002", "ws-b": "127.0.0.1:4003:3102"}
	addrs := map[string]string{"ws-a": ":3002", "ws-b": ":3102"}
	for _, a := range cfg.Apps {
		s, ok := doc.Services[a.Name]
		if !ok {
			t.Fatalf("no service %s:\n%s", a.Name, b)
		}
		if s.Image != ComposeImage || s.User == "" {
			t.Errorf("%s: the x-app anchor is not merged: image %q user %q", a.Name, s.Image, s.User)
		}
		if len(s.Ports) != 1 || s.Ports[0] != ports[a.Name] {
			t.Errorf("%s: ports %q, want [%s]", a.Name, s.Ports, ports[a.Name])
		}
		if len(s.Volumes) != 0 {
			t.Errorf("%s: a ws app mounts %q", a.Name, s.Volumes)
		}
		env := map[string]string{}
		for _, kv := range appEnv(a, cfg.Apps, func(n string) string { return n }) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		if len(env) != len(s.Environment) {
			t.Errorf("%s: environment %v, want the provider's %v", a.Name, s.Environment, env)
		}
		for k, v := range env {
			if s.Environment[k] != v {
				t.Errorf("%s: %s=%q, want the provider's %q", a.Name, k, s.Environment[k], v)
			}
		}
		if s.Environment["PROTOLAB_NAME"] != "protolab-"+a.Name || s.Environment["PROTOLAB_MODE"] != "ws" || s.Environment["PROTOLAB_ADDR"] != addrs[a.Name] {
			t.Errorf("%s: environment %v", a.Name, s.Environment)
		}
		wantLabels := map[string]string{LabelLab: ComposeLab, LabelApp: a.Name, LabelKind: protocol.KindChatWS, LabelProtocol: "ws"}
		if len(s.Labels) != len(wantLabels) {
			t.Errorf("%s: labels %v, want %v", a.Name, s.Labels, wantLabels)
		}
		for k, v := range wantLabels {
			if s.Labels[k] != v {
				t.Errorf("%s: label %s=%q, want %q", a.Name, k, s.Labels[k], v)
			}
		}
	}
	// Services in the apps' order.
	if i, j := bytes.Index(b, []byte("\n  ws-a:\n")), bytes.Index(b, []byte("\n  ws-b:\n")); i < 0 || j < i {
		t.Errorf("services out of the apps' order:\n%s", b)
	}
	// The seed's TLS apps mount the pki folder; the others do not.
	_, seed := composeOf(t, seedLab())
	var sd composeDoc
	if err := yaml.Unmarshal(seed, &sd); err != nil {
		t.Fatal(err)
	}
	for _, p := range protocol.Seed() {
		s := sd.Services[string(p)]
		if mounts := len(s.Volumes) == 1 && strings.HasSuffix(s.Volumes[0], ":/pki:ro"); mounts != p.Secure() {
			t.Errorf("seed app %s: volumes %q", p, s.Volumes)
		}
		if p.Secure() && (s.Environment["PROTOLAB_TLS_CERT"] != "/pki/leaf.pem" || s.Environment["PROTOLAB_TLS_KEY"] != "/pki/leaf-key.pem") {
			t.Errorf("seed app %s: environment %v", p, s.Environment)
		}
	}
}

// TestComposeFileOfFreePorts: an app on port 0 is published on a free host
// port ("ip::inner", which docker-compose 1.29 accepts; "ip:inner" it does
// not), IPv6 bind addresses are bracketed, and names YAML would read as
// booleans are quoted.
func TestComposeFileOfFreePorts(t *testing.T) {
	_, b := composeOf(t, freePortsLab())
	for _, want := range []string{`ports: ["[::1]::3002"]`, `ports: ["[::1]:4001:3001"]`, "\n  \"yes\":\n", `PROTOLAB_ALLOWED_ORIGINS: "https://a.example:8443,http://$$x"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("no %s in\n%s", want, b)
		}
	}
}

func freePortsLab() lab.Config {
	return lab.Config{StateDir: "/x", Bind: "::1", Apps: []lab.App{
		{Name: "ws-a", Protocol: protocol.WS, AllowedOrigins: []string{"https://a.example:8443", "http://$x"}},
		{Name: "yes", Protocol: protocol.HTTPS, Port: 4001},
	}}
}

// TestComposeFileValidates: docker-compose itself accepts the generated
// files (`docker-compose config -q`), and refuses the seed's without
// PROTOLAB_PKI, saying what to set.
func TestComposeFileValidates(t *testing.T) {
	dc := testenv.NeedCommand(t, "docker-compose")
	dir := t.TempDir()
	run := func(file string, env ...string) (string, error) {
		cmd := exec.Command(dc, "-f", file, "config", "-q")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for name, c := range map[string]lab.Config{"seed": seedLab(), "two-ws": twoWSLab(), "free-ports": freePortsLab()} {
		_, b := composeOf(t, c)
		file := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := run(file, "PROTOLAB_PKI="+dir); err != nil {
			t.Errorf("docker-compose config refuses the %s lab's file: %v\n%s\n%s", name, err, out, b)
		}
	}
	committed, _ := filepath.Abs(committedCompose)
	if out, err := run(committed, "PROTOLAB_PKI="+dir); err != nil {
		t.Errorf("docker-compose config refuses apps/docker-compose.yaml: %v\n%s", err, out)
	}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PROTOLAB_PKI=") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(dc, "-f", committed, "config", "-q")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "set PROTOLAB_PKI") {
		t.Errorf("without PROTOLAB_PKI: %v\n%s", err, out)
	}
}

func TestInnerPorts(t *testing.T) {
	app := func(name string, p protocol.Protocol, port int, up ...string) lab.App {
		return lab.App{Name: name, Protocol: p, Port: port, Upstream: up}
	}
	for _, tc := range []struct {
		name string
		apps []lab.App
		want map[string]int
	}{
		{"the seed lab: the protocols' own ports", lab.SeedApps(), map[string]int{"http": 3000, "https": 3001, "ws": 3002, "wss": 3003}},
		{"replicas: a hundred up each", []lab.App{app("edge", protocol.WSS, 0, "lb"), app("lb", protocol.WS, 0, "hub-1", "hub-2"),
			app("hub-1", protocol.WS, 0), app("hub-2", protocol.WS, 0)}, map[string]int{"edge": 3003, "lb": 3002, "hub-1": 3102, "hub-2": 3202}},
		{"another app's published port is skipped", []lab.App{app("a", protocol.WS, 3102), app("b", protocol.WS, 0)},
			map[string]int{"a": 3002, "b": 3202}},
		{"an app's own published port may be its inner one", []lab.App{app("a", protocol.WS, 3002), app("b", protocol.WS, 3003)},
			map[string]int{"a": 3002, "b": 3102}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := InnerPorts(tc.apps)
			if !maps.Equal(got, tc.want) {
				t.Errorf("InnerPorts = %v, want %v", got, tc.want)
			}
			published := map[int]string{}
			for _, a := range tc.apps {
				if a.Port != 0 {
					published[a.Port] = a.Name
				}
			}
			for name, p := range got {
				if who, ok := published[p]; ok && who != name {
					t.Errorf("%s's inner port %d is %s's published one", name, p, who)
				}
			}
		})
	}
}

// TestShellBinary: the web terminal's image carries this machine's static
// busybox for the engine's architecture; for another, the error says what
// to install.
func TestShellBinary(t *testing.T) {
	if _, err := os.Stat("/bin/busybox"); err != nil {
		testenv.Missing(t, "no static busybox: apt-get install busybox-static (scripts/test.sh does)")
	}
	b, from, err := shellBinary("amd64")
	if runtime.GOARCH != "amd64" {
		t.Skip("the check below is for amd64 machines")
	}
	if err != nil || len(b) == 0 || from == "" {
		t.Fatalf("shellBinary(amd64) = %d bytes from %q, %v", len(b), from, err)
	}
	if _, _, err := shellBinary("arm64"); err == nil || !strings.Contains(err.Error(), "busybox-static") || !strings.Contains(err.Error(), "the engine runs arm64") {
		t.Errorf("for arm64: %v", err)
	}
}
