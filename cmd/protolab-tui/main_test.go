package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/joshdk/go-junit"

	"github.com/protolab/protolab-tui/internal/sshdtest"
	"github.com/protolab/protolab-tui/internal/testenv"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "protolab-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "protolab-tui")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building protolab-tui:", err)
		os.Exit(1)
	}
	code := m.Run()
	for _, f := range cleanups {
		f()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePorts are the flags that put every app on a free port.
var freePorts = []string{"--http-port", "0", "--https-port", "0", "--ws-port", "0", "--wss-port", "0"}

func command(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--state-dir", t.TempDir()}, args...)...)
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	return cmd
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func TestHeadlessJSON(t *testing.T) {
	cmd := command(t, append([]string{"--headless", "--json", "--count", "50"}, freePorts...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("exit %d: %v\nstderr: %s\nstdout: %s", exitCode(err), err, stderr.String(), stdout.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	types := map[string]int{}
	var last map[string]any
	for i, line := range lines {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %d is not JSON: %q", i+1, line)
		}
		typ, _ := ev["type"].(string)
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(ev["time"])); typ == "" || err != nil {
			t.Errorf("line %d lacks type or time: %q", i+1, line)
		}
		types[typ]++
		last = ev
	}
	if last["type"] != "report" || last["provider"] != "local" || last["ok"] != true {
		t.Fatalf("last line is not an ok report from the local provider: %v", last)
	}
	protocols, _ := last["apps"].(map[string]any)
	for _, p := range []string{"http", "https", "ws", "wss"} {
		r, _ := protocols[p].(map[string]any)
		if r == nil || r["ok"] != true {
			t.Errorf("report for %s: %v", p, r)
			continue
		}
		for _, k := range []string{"setup_ms", "rtt_p50_ms", "rtt_p99_ms", "msgs_per_s"} {
			if v, ok := r[k].(float64); !ok || v <= 0 {
				t.Errorf("%s.%s = %v", p, k, r[k])
			}
		}
		if r["messages"] != float64(50) {
			t.Errorf("%s.messages = %v, want 50", p, r["messages"])
		}
	}
	if types["state"] != 6 || types["probe"] != 4 || types["app"] < 8 || types["report"] != 1 {
		t.Errorf("event counts %v", types)
	}
}

func TestHeadlessText(t *testing.T) {
	cmd := command(t, append([]string{"--headless", "--count", "20"}, freePorts...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("exit %d: %s", exitCode(err), out)
	}
	s := string(out)
	for _, want := range []string{"state     down → provisioning", "rtt p50 ms", "tearing_down → down"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	rows := 0
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && (f[0] == "http" || f[0] == "https" || f[0] == "ws" || f[0] == "wss") && f[1] == f[0] && f[2] == "ok" {
			rows++
		}
	}
	if rows != 4 {
		t.Errorf("%d ok rows in the table, want 4:\n%s", rows, s)
	}
}

func TestHeadlessPortTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	args := append([]string{"--headless"}, freePorts...)
	args = append(args, "--https-port", port) // the later flag wins
	cmd := command(t, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if code := exitCode(err); code != 1 {
		t.Fatalf("exit code %d, want 1; stderr: %s", code, stderr.String())
	}
	for _, want := range []string{port, "app https", "--port https=N", "already in use"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q: %s", want, stderr.String())
		}
	}
}

// endpointsFrom collects app endpoints from NDJSON app events.
func endpointsFrom(ev map[string]any, into map[string]string) {
	if ev["type"] != "app" {
		return
	}
	app, _ := ev["app"].(map[string]any)
	if ep, _ := app["endpoint"].(string); ep != "" {
		into[fmt.Sprint(app["name"])] = ep
	}
}

// readEvents reads NDJSON events until stop says so, and returns the apps'
// endpoints seen on the way.
func readEvents(t *testing.T, r io.Reader, stop func(map[string]any) bool) map[string]string {
	t.Helper()
	endpoints := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		endpointsFrom(ev, endpoints)
		if stop(ev) {
			break
		}
	}
	return endpoints
}

func assertNothingListens(t *testing.T, endpoints map[string]string) {
	t.Helper()
	if len(endpoints) != 4 {
		t.Fatalf("saw %d endpoints, want 4: %v", len(endpoints), endpoints)
	}
	for name, ep := range endpoints {
		if c, err := net.DialTimeout("tcp", ep, time.Second); err == nil {
			c.Close()
			t.Errorf("%s app still listening on %s", name, ep)
		}
	}
}

func TestHeadlessSignalMidRun(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			// So many round trips that the probes are still running when the
			// signal comes.
			cmd := command(t, append([]string{"--headless", "--json", "--count", "100000000"}, freePorts...)...)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Mid-run: the first probe has started.
			endpoints := readEvents(t, stdout, func(ev map[string]any) bool { return ev["type"] == "progress" && ev["op"] == "probe" })
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if code := exitCode(err); code != tc.code {
					t.Errorf("exit code %d, want %d; stderr: %s", code, tc.code, stderr.String())
				}
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatal("no exit 30s after the signal")
			}
			if !strings.Contains(stderr.String(), "torn down") {
				t.Errorf("stderr does not say the lab was torn down: %s", stderr.String())
			}
			assertNothingListens(t, endpoints)
		})
	}
}

func TestHeadlessKeep(t *testing.T) {
	cmd := command(t, append([]string{"--headless", "--json", "--keep", "--count", "5"}, freePorts...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	endpoints := readEvents(t, stdout, func(ev map[string]any) bool { return ev["type"] == "report" })
	note, err := bufio.NewReader(stderr).ReadString('\n')
	if err != nil || !strings.Contains(note, "keeps running") {
		t.Fatalf("stderr note %q (%v)", note, err)
	}
	// Still serving after the report (a few tries: a loaded machine, with
	// a docker test's port rules coming and going, may drop one SYN).
	var c net.Conn
	for try := 0; try < 5; try++ {
		if c, err = net.DialTimeout("tcp", endpoints["ws"], time.Second); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("kept lab does not answer: %v", err)
	}
	c.Close()
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(stdout); rest <- string(b) }()
	_ = cmd.Process.Signal(syscall.SIGINT)
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if code := exitCode(err); code != 130 {
			t.Errorf("exit code %d, want 130", code)
		}
	case <-ctx.Done():
		t.Fatal("kept lab did not exit after SIGINT")
	}
	// What the capture took in while the lab was kept is printed after the
	// report (root captures live here; elsewhere the mode says).
	if after := <-rest; os.Geteuid() == 0 && !strings.Contains(after, `"type":"capture","time":`) || strings.Contains(after, `"state":"off"`) != strings.Contains(after, `"packets":`) {
		t.Errorf("after the report, no capture counters:\n%s", after)
	}
	assertNothingListens(t, endpoints)
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--provider", "moon"}, 2, `unknown provider "moon"`},
		{[]string{"--protocols", "ftp"}, 2, `unknown protocol "ftp"`},
		{[]string{"--json"}, 2, "go with --headless"},
		{[]string{"--count", "0", "--headless"}, 2, "--count"},
		{[]string{"--payload", "70000", "--headless"}, 2, "more than app ws accepts (apps[2].read_limit 65536"},
		{[]string{"--ws-port", "3000", "--headless"}, 2, "app ws asks for port 3000, which apps[0] (http) has"},
		{[]string{"--port", "gopher=1", "--headless"}, 2, `the lab has no app named "gopher"`},
		{[]string{"--protocols", "", "--headless"}, 2, "no protocol named"},
		{[]string{"--lab", "/nonexistent/lab.yaml"}, 2, "lab file: open /nonexistent/lab.yaml"},
		{[]string{"stray"}, 2, `unexpected argument "stray"`},
		{[]string{"--junit", "x.xml"}, 2, "go with --headless"},
		{[]string{"--junit", "/nonexistent/x.xml", "--headless"}, 2, "--junit /nonexistent/x.xml: the folder /nonexistent does not exist"},
		{[]string{}, 2, "the explorer needs a terminal"},
	} {
		out, err := command(t, tc.args...).CombinedOutput()
		if code := exitCode(err); code != tc.code || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: exit %d, output %q; want %d and %q", tc.args, code, out, tc.code, tc.want)
		}
	}
}

// report runs the binary headless with --json and returns its report line.
func report(t *testing.T, cmd *exec.Cmd) map[string]any {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("exit %d: %v\nstderr: %s\nstdout: %s", exitCode(err), err, stderr.String(), stdout.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var rep map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil || rep["type"] != "report" {
		t.Fatalf("last line is not a report: %q", lines[len(lines)-1])
	}
	return rep
}

// wireMessages returns each protocol's wire message count from a report.
func wireMessages(t *testing.T, rep map[string]any) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	protocols, _ := rep["apps"].(map[string]any)
	for p, v := range protocols {
		w, _ := v.(map[string]any)["wire"].(map[string]any)
		if w == nil {
			t.Fatalf("%s has no wire figures: %v", p, v)
		}
		for _, k := range []string{"packets", "bytes", "messages", "setup_packets", "bytes_per_message", "payload_bytes_per_message"} {
			if _, ok := w[k].(float64); !ok {
				t.Errorf("%s.wire.%s missing: %v", p, k, w)
			}
		}
		out[p] = w["messages"].(float64)
	}
	return out
}

func TestHeadlessCaptureAndPcap(t *testing.T) {
	testenv.NeedRoot(t) // TestHeadlessUnprivileged covers other users
	pcap := filepath.Join(t.TempDir(), "lab.pcapng")
	rep := report(t, command(t, append([]string{"--headless", "--json", "--count", "30", "--pcap", pcap}, freePorts...)...))
	capt, _ := rep["capture"].(map[string]any)
	if capt["mode"] != "live" || capt["queue_drops"] != float64(0) {
		t.Errorf("capture %v, want live with no drops", capt)
	}
	for p, n := range wireMessages(t, rep) {
		if n != 2*30+2 {
			t.Errorf("%s: %v messages on the wire, want %d", p, n, 2*30+2)
		}
	}
	st, err := os.Stat(pcap)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() < 1000 {
		t.Errorf("pcap %v %v", st, err)
	}
}

// asNobody runs the binary as the unprivileged user nobody.
func asNobody(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	testenv.NeedRoot(t) // to switch to nobody
	setpriv := testenv.NeedCommand(t, "setpriv")
	dir, err := os.MkdirTemp("", "protolab-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "protolab-tui")
	data, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	argv := append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups", bin, "--state-dir", filepath.Join(dir, "state")}, args...)
	cmd := exec.Command(setpriv, argv...)
	cmd.Env = append([]string{"HOME=" + dir, "PATH=" + os.Getenv("PATH")}, env...)
	return cmd
}

func TestHeadlessUnprivileged(t *testing.T) {
	args := append([]string{"--headless", "--json", "--capture", "on", "--count", "10"}, freePorts...)

	t.Run("namespace or socket", func(t *testing.T) {
		rep := report(t, asNobody(t, nil, args...))
		capt, _ := rep["capture"].(map[string]any)
		mode := capt["mode"]
		if mode != "namespace" && mode != "socket" {
			t.Fatalf("as nobody, capture mode %v: want namespace (or socket where user namespaces are refused)", mode)
		}
		t.Logf("capture mode as nobody: %v (%v)", mode, capt["source"])
		for p, n := range wireMessages(t, rep) {
			if n != 2*10+2 {
				t.Errorf("%s: %v messages, want 22", p, n)
			}
		}
	})
	t.Run("socket", func(t *testing.T) {
		rep := report(t, asNobody(t, []string{"PROTOLAB_NO_NETNS=1"}, args...))
		capt, _ := rep["capture"].(map[string]any)
		if capt["mode"] != "socket" {
			t.Fatalf("without a namespace, capture mode %v, want socket", capt["mode"])
		}
		for p, n := range wireMessages(t, rep) {
			if n != 2*10+2 {
				app := rep["apps"].(map[string]any)[p].(map[string]any)
				t.Errorf("%s: %v messages, want 22; capture %v; wire %v; conn %v", p, n, capt, app["wire"], app["conn"])
			}
		}
	})
	t.Run("auto says why it is off", func(t *testing.T) {
		cmd := asNobody(t, []string{"PROTOLAB_NO_NETNS=1"}, "--headless", "--count", "3", "--http-port", "0", "--https-port", "0", "--ws-port", "0", "--wss-port", "0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if !strings.Contains(string(out), "capture   off") || !strings.Contains(string(out), "no permission to capture packets") {
			t.Errorf("output does not say capture is off and why:\n%s", out)
		}
	})
}

func TestReadReplaysAnExport(t *testing.T) {
	testenv.NeedRoot(t)
	dir := t.TempDir()
	pcap := filepath.Join(dir, "lab.pcapng")
	// Fixed ports, so --read can be given the same port map.
	ports := []string{"--http-port", "0", "--https-port", "0", "--ws-port", "0", "--wss-port", "0"}
	rep := report(t, command(t, append([]string{"--headless", "--json", "--count", "12", "--pcap", pcap}, ports...)...))
	// Read with the ports the run used: each protocol's "addr" in the report.
	var args []string
	protocols, _ := rep["apps"].(map[string]any)
	for p, v := range protocols {
		addr, _ := v.(map[string]any)["addr"].(string)
		_, port, _ := net.SplitHostPort(addr)
		args = append(args, "--"+p+"-port", port)
	}
	out, err := command(t, append([]string{"--read", pcap, "--json"}, args...)...).Output()
	if err != nil {
		t.Fatalf("--read: %v", err)
	}
	var replay struct {
		Packets   float64                   `json:"packets"`
		Protocols map[string]map[string]any `json:"apps"`
	}
	if err := json.Unmarshal(out, &replay); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	live := wireMessages(t, rep)
	for p, n := range live {
		if got := replay.Protocols[p]["messages"]; got != n {
			t.Errorf("%s: replay counts %v messages, the live capture %v", p, got, n)
		}
	}

	// A capture cut short: what was read is shown, and the error says where.
	data, _ := os.ReadFile(pcap)
	cut := filepath.Join(dir, "cut.pcapng")
	os.WriteFile(cut, data[:len(data)*2/3], 0o600)
	cmd := command(t, append([]string{"--read", cut}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if exitCode(err) != 1 || !strings.Contains(stderr.String(), "stopped after") || !strings.Contains(stdout.String(), "protocol") {
		t.Errorf("truncated file: exit %d\nstdout %s\nstderr %s", exitCode(err), stdout.String(), stderr.String())
	}
}

// tmux drives the built binary in a real terminal.
type tmux struct {
	t       *testing.T
	bin     string
	session string
}

func (x tmux) run(args ...string) string {
	x.t.Helper()
	out, err := exec.Command(x.bin, append([]string{"-L", x.session}, args...)...).CombinedOutput()
	if err != nil {
		x.t.Fatalf("tmux %v: %v %s", args, err, out)
	}
	return string(out)
}

func (x tmux) screen() string {
	out, _ := exec.Command(x.bin, "-L", x.session, "capture-pane", "-p", "-t", x.session).CombinedOutput()
	return string(out)
}

// waitFor polls the screen until it shows every want.
func (x tmux) waitFor(what string, want ...string) string {
	x.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := x.screen()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(s, w)
		}
		if ok {
			return s
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("waiting for %s (%q); the screen:\n%s", what, want, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitGone polls the screen until it no longer shows gone.
func (x tmux) waitGone(what, gone string) {
	x.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := x.screen()
		if !strings.Contains(s, gone) {
			return
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("waiting for %s (%q to go); the screen:\n%s", what, gone, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func TestTUIEndToEndInTmux(t *testing.T) {
	bin := testenv.NeedCommand(t, "tmux")
	for _, size := range [][2]int{{80, 24}, {120, 40}, {200, 50}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			x := tmux{t: t, bin: bin, session: fmt.Sprintf("protolab-e2e-%d-%d", os.Getpid(), size[0])}
			ports := map[string]string{"http": freePort(t), "https": freePort(t), "ws": freePort(t), "wss": freePort(t)}
			state := t.TempDir()
			cmdline := fmt.Sprintf("%s --state-dir %s --http-port %s --https-port %s --ws-port %s --wss-port %s; echo EXITED $?; sleep 60",
				binary, state, ports["http"], ports["https"], ports["ws"], ports["wss"])
			x.run("new-session", "-d", "-s", x.session, "-x", fmt.Sprint(size[0]), "-y", fmt.Sprint(size[1]), "env", "NO_COLOR=1", "sh", "-c", cmdline)
			defer exec.Command(bin, "-L", x.session, "kill-server").Run()

			x.waitFor("the lab to be up", "· running ·", "healthy", "? help")
			// The first start measures every app and shows the comparison.
			x.waitFor("the first comparison", "Comparison", "probe wss ok")
			// It covers the body until a key closes it.
			x.run("send-keys", "-t", x.session, "Escape")
			x.waitFor("the comparison to close", "pkts", "Lab host")
			if size[0] >= 120 { // at 80×24 the apps pane has room for its rows only
				// The apps pane's live numbers, from each app's /metrics.
				x.waitFor("the live numbers", "live (/metrics, every 5s)", " req · ", " open · ")
			}
			x.run("send-keys", "-t", x.session, "s")
			x.waitFor("the ws prompt", "send over ws:")
			x.run("send-keys", "-t", x.session, "-l", "hello from tmux")
			x.run("send-keys", "-t", x.session, "Enter")
			// In follow mode the newest rows are on screen: the echo and
			// the close that ends the connection.
			x.waitFor("the echo and the frames", `send ws "hello from tmux" → "hello from tmux"`, `"hello from tmux"`, "WS CLOSE")
			// In follow mode the newest record's row is on screen: its
			// number is the count of records the ring holds (none evicted
			// yet), first in its row.
			scr := x.screen()
			held := regexp.MustCompile(`ring (\d+) rows`).FindStringSubmatch(scr)
			if held == nil {
				t.Fatalf("no ring size on screen:\n%s", scr)
			}
			if !regexp.MustCompile(`(?m)[┃│]` + held[1] + ` `).MatchString(scr) {
				t.Errorf("the newest row (record %v) is not on screen in follow mode:\n%s", held[1], scr)
			}
			// Keys sent as one burst all count: 8k moves up eight rows,
			// 4j then down exactly four.
			position := func(s string) int {
				m := regexp.MustCompile(`paused (\d+)/\d+`).FindStringSubmatch(s)
				if m == nil {
					t.Fatalf("no position on screen:\n%s", s)
				}
				n, _ := strconv.Atoi(m[1])
				return n
			}
			// (The position counts a move past the window's edge at once,
			// before the window's rows come back: what it first shows is
			// where the burst landed. Counted from the ring's oldest row, it
			// holds still as records arrive.)
			x.run("send-keys", "-t", x.session, "-l", "8k")
			up := position(x.waitFor("the burst to move the cursor", "paused"))
			x.run("send-keys", "-t", x.session, "-l", "4j")
			want := fmt.Sprintf("paused %d/", up+4)
			x.waitFor("4j to move four rows down", want)
			x.run("send-keys", "-t", x.session, "-l", "4k")
			x.waitFor("4k to move four rows up", fmt.Sprintf("paused %d/", up))
			x.run("send-keys", "-t", x.session, "G")
			x.waitFor("follow again", "follow")
			// The help lists every key, at this size too.
			x.run("send-keys", "-t", x.session, "?")
			x.waitFor("the help", "q/ctrl+c", "esc", "filter packets", "shell on the lab host", "end/G")
			help := x.screen()
			for _, k := range []string{"bring the lab up", "redeploy the apps", "send over ws", "send over wss", "POST /echo over http",
				"POST /echo over https", "GET a path over http", "GET a path over https", "compare the apps", "tear down (asks)",
				"capture on/off", "export pcapng", "filter packets", "find (filter language)", "next/previous found", "show app N",
				"next pane", "previous pane", "shell on the lab host", "the app's connections", "page up", "page down", "oldest",
				"newest (follow)", "packet details", "follow the row's connection", "fold/unfold the setup", "the message on each hop",
				"close / cancel", "quit (asks if up)"} {
				if !strings.Contains(help, k) {
					t.Errorf("the help does not list %q:\n%s", k, help)
				}
			}
			x.run("send-keys", "-t", x.session, "Escape")
			// (An escape followed at once by t reads as alt+t: wait. The
			// help is drawn over the lists, which show around it.)
			x.waitGone("the help to close", "Keys  (? or esc closes)")

			x.run("send-keys", "-t", x.session, "t")
			x.waitFor("the teardown question", "Tear the lab down?")
			x.run("send-keys", "-t", x.session, "y")
			x.waitFor("the lab to be down", "· down ·")
			x.run("send-keys", "-t", x.session, "q")
			x.waitFor("the program to exit", "EXITED 0")

			for name, port := range ports {
				if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), time.Second); err == nil {
					c.Close()
					t.Errorf("%s app still listening on %s after the TUI quit", name, port)
				}
			}
		})
	}
}

// dockerLeftovers counts the containers and networks labelled for lab name.
func dockerLeftovers(t *testing.T, name string) int {
	t.Helper()
	n := 0
	for _, kind := range []string{"ps -a -q", "network ls -q"} {
		args := append(strings.Fields(kind), "--filter", "label=protolab.lab="+name)
		out, err := exec.Command("docker", args...).Output()
		if err != nil {
			t.Fatalf("docker %v: %v", args, err)
		}
		n += len(strings.Fields(string(out)))
	}
	return n
}

func needDocker(t *testing.T) {
	t.Helper()
	testenv.NeedCommand(t, "docker")
	if err := exec.Command("docker", "info").Run(); err != nil {
		testenv.Missing(t, "no Docker engine answers `docker info`")
	}
}

func TestHeadlessDocker(t *testing.T) {
	needDocker(t)
	rep := report(t, command(t, append([]string{"--headless", "--json", "--provider", "docker", "--name", "t-cmd", "--count", "20"}, freePorts...)...))
	if rep["provider"] != "docker" || rep["ok"] != true {
		t.Fatalf("report: %v", rep)
	}
	checkLabRun(t, rep, 20, "t-cmd")
}

// checkLabRun checks a container lab's report: every protocol's wire count
// is what n round trips make, and nothing labelled for the lab is left.
func checkLabRun(t *testing.T, rep map[string]any, n int, name string) {
	t.Helper()
	for p, got := range wireMessages(t, rep) {
		if got != float64(2*n+2) {
			t.Errorf("%s: %v messages on the wire, want %d", p, got, 2*n+2)
		}
	}
	if left := dockerLeftovers(t, name); left != 0 {
		t.Errorf("%d labelled containers/networks left", left)
	}
}

func TestDockerSIGINTMidDeploy(t *testing.T) {
	needDocker(t)
	cmd := command(t, append([]string{"--headless", "--json", "--provider", "docker", "--name", "t-sigint"}, freePorts...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"op":"deploy"`) && strings.Contains(sc.Text(), `"done":1`) {
			break // one container up, the others on their way
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	if code := exitCode(cmd.Wait()); code != 130 {
		t.Errorf("exit code %d, want 130", code)
	}
	if n := dockerLeftovers(t, "t-sigint"); n != 0 {
		t.Errorf("SIGINT mid-deploy left %d labelled containers/networks", n)
	}
}

func TestDockerTeardownFlagCleansACrash(t *testing.T) {
	needDocker(t)
	// A crashed lab: its network was made, then the process died.
	if out, err := exec.Command("docker", "network", "create", "--label", "protolab.lab=t-crash", "protolab-t-crash").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	out, err := command(t, "--provider", "docker", "--name", "t-crash", "--teardown").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "nothing of it is left") {
		t.Fatalf("--teardown: %v %s", err, out)
	}
	if n := dockerLeftovers(t, "t-crash"); n != 0 {
		t.Errorf("%d leftovers after --teardown", n)
	}
}

// sshLab starts an OpenSSH server on loopback (root's, with this
// machine's Docker engine behind it) and returns the arguments that reach
// it and an environment with a HOME of its own (an empty known_hosts).
func sshLab(t *testing.T) (args, env []string) {
	t.Helper()
	needDocker(t)
	s := sshdtest.Start(t)
	home := t.TempDir() // its known_hosts starts empty
	// A new HOME must not mean a cold Go build cache for the image build.
	goenv, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	if err != nil {
		t.Fatal(err)
	}
	gv := strings.Fields(string(goenv))
	env = append(os.Environ(), "HOME="+home, "SSH_AUTH_SOCK=", "GOCACHE="+gv[0], "GOMODCACHE="+gv[1], "GOPATH="+gv[2])
	return []string{"--provider", "ssh", "--host", "root@" + s.Addr(), "--identity", s.ClientID}, env
}

// TestHeadlessSSHProductionPath runs the production path (a TLS front, a
// balancer, two hubs) on a lab host over SSH: every app ok, the hop table
// there, and the inside legs on the wire — remote tcpdump on the lab
// network's bridge beside lo — so the balancer's port carries the front's
// frames on top of its own probe's.
func TestHeadlessSSHProductionPath(t *testing.T) {
	ssh, env := sshLab(t)
	args := append([]string{"--headless", "--json", "--lab", "../../examples/production.yaml", "--name", "t-ssh-prod", "--count", "15",
		"--accept-new-host-key", "--port", "edge=0", "--port", "lb=0", "--port", "hub-1=0", "--port", "hub-2=0"}, ssh...)
	if os.Geteuid() == 0 {
		args = append(args, "--capture", "on")
	}
	cmd := command(t, args...)
	cmd.Env = env
	rep := report(t, cmd)
	apps, _ := rep["apps"].(map[string]any)
	for _, name := range []string{"edge", "lb", "hub-1", "hub-2"} {
		if a, _ := apps[name].(map[string]any); a == nil || a["ok"] != true {
			t.Errorf("%s: %v", name, apps[name])
		}
	}
	edge, _ := apps["edge"].(map[string]any)
	if hops, _ := edge["hops"].([]any); len(hops) != 3 { // edge → lb → the hub its affinity kept it on
		t.Errorf("edge's hops: %v", edge["hops"])
	}
	if left := dockerLeftovers(t, "t-ssh-prod"); left != 0 {
		t.Errorf("%d labelled containers/networks left", left)
	}
	if os.Geteuid() != 0 {
		t.Log("not root: capture is checked as root (scripts/test.sh)")
		return
	}
	capt, _ := rep["capture"].(map[string]any)
	if capt["mode"] != "stream" || !strings.Contains(fmt.Sprint(capt["source"]), "tcpdump on the lab host's lo + tcpdump on the lab host's br-") {
		t.Errorf("capture %v, want tcpdump on lo and the lab network streamed over SSH", capt)
	}
	msgs := wireMessages(t, rep)
	if msgs["edge"] == 0 || msgs["lb"] != 2*msgs["edge"] || msgs["hub-1"]+msgs["hub-2"] != 4*msgs["edge"] {
		t.Errorf("wire messages %v: want lb twice edge's, the hubs four times", msgs)
	}
}

func TestHeadlessSSHProvider(t *testing.T) {
	ssh, env := sshLab(t)
	args := append(append([]string{"--headless", "--json", "--name", "t-ssh", "--count", "15"}, ssh...), freePorts...)

	// Unknown host, headless, no flag: refused with the fingerprint.
	cmd := command(t, args...)
	cmd.Env = env
	started := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("refused in %v", time.Since(started))
	if exitCode(err) != 1 || !strings.Contains(string(out), "--accept-new-host-key") || !strings.Contains(string(out), "SHA256:") {
		t.Fatalf("unknown host key: exit %d\n%s", exitCode(err), out)
	}

	cmd = command(t, append(args, "--accept-new-host-key")...)
	cmd.Env = env
	started = time.Now()
	rep := report(t, cmd)
	t.Logf("lab run in %v", time.Since(started))
	if rep["provider"] != "ssh" || rep["ok"] != true {
		t.Fatalf("report %v", rep)
	}
	capt, _ := rep["capture"].(map[string]any)
	if capt["mode"] != "stream" {
		t.Errorf("capture %v, want tcpdump streamed over SSH", capt)
	}
	checkLabRun(t, rep, 15, "t-ssh") // the wire counts are remote tcpdump's
}

// TestLabFileTwoWSApps runs the example lab of two ws apps side by side:
// the report has exactly those apps, each ok; with capture (root), each
// app's wire messages are what tshark counts on that app's port.
func TestLabFileTwoWSApps(t *testing.T) {
	pcap := filepath.Join(t.TempDir(), "two.pcapng")
	args := []string{"--headless", "--json", "--lab", "../../examples/two-ws.yaml", "--port", "ws-a=0", "--port", "ws-b=0", "--count", "25"}
	root := os.Geteuid() == 0
	if root {
		args = append(args, "--capture", "on", "--pcap", pcap)
	}
	rep := report(t, command(t, args...))
	apps, _ := rep["apps"].(map[string]any)
	order, _ := rep["order"].([]any)
	if len(apps) != 2 || apps["ws-a"] == nil || apps["ws-b"] == nil || fmt.Sprint(order) != "[ws-a ws-b]" {
		t.Fatalf("report apps %v (order %v), want exactly ws-a and ws-b", apps, order)
	}
	ports := map[string]string{}
	for name, v := range apps {
		a := v.(map[string]any)
		if a["ok"] != true || a["protocol"] != "ws" || a["kind"] != "chat-ws" || a["app"] != name || a["messages"] != float64(25) {
			t.Errorf("%s: %v", name, a)
		}
		_, ports[name], _ = net.SplitHostPort(fmt.Sprint(a["addr"]))
	}
	if ports["ws-a"] == ports["ws-b"] {
		t.Fatalf("both apps on port %s", ports["ws-a"])
	}
	if !root {
		t.Log("not root: the wire figures against tshark are checked as root (scripts/test.sh)")
		return
	}
	num := map[string]uint16{}
	for name, p := range ports {
		n, _ := strconv.ParseUint(p, 10, 16)
		num[name] = uint16(n)
	}
	frames := testenv.TsharkWSFrames(t, pcap, []uint16{num["ws-a"], num["ws-b"]}, nil)
	for name, msgs := range wireMessages(t, rep) {
		if got := frames[num[name]]; float64(got) != msgs || got < 2*25 {
			t.Errorf("%s (port %s): the report counts %v messages, tshark %d WebSocket frames", name, ports[name], msgs, got)
		}
	}
}

func TestPrintLab(t *testing.T) {
	out, err := command(t, "--lab", "../../examples/two-ws.yaml", "--protocols", "ws", "--port", "ws-b=0", "--print-lab").Output()
	if err != nil {
		t.Fatalf("--print-lab: %v", err)
	}
	s := string(out)
	for _, want := range []string{"name: two-ws", "name: ws-a", "port: 3002", "name: ws-b", "port: 0", "read_limit: 4096", "kind: chat-ws"} {
		if !strings.Contains(s, want) {
			t.Errorf("--print-lab lacks %q:\n%s", want, s)
		}
	}
	// What it prints runs as a lab file.
	file := filepath.Join(t.TempDir(), "lab.yaml")
	os.WriteFile(file, out, 0o600)
	again, err := command(t, "--lab", file, "--print-lab").Output()
	noState := func(s string) string { // each command gets its own --state-dir
		var keep []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.HasPrefix(l, "state_dir:") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if err != nil || noState(string(again)) != noState(s) {
		t.Errorf("the printed lab file does not print the same again (%v):\n%s\n---\n%s", err, s, again)
	}
	// Without a lab file: the seed's four.
	out, _ = command(t, "--print-lab").Output()
	if n := strings.Count(string(out), "- name:"); n != 4 {
		t.Errorf("the default lab has %d apps:\n%s", n, out)
	}
	// --print-compose of the seed lab is the committed compose file.
	compose, err := command(t, "--print-compose").Output()
	committed, _ := os.ReadFile("../../apps/docker-compose.yaml")
	if err != nil || string(compose) != string(committed) {
		t.Errorf("--print-compose (%v) is not apps/docker-compose.yaml:\n%s", err, compose)
	}
	// A broken lab file fails at once, naming the line.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("apps:\n  - name: g\n    protocol: gopher\n"), 0o600)
	msg, err := command(t, "--lab", bad, "--headless").CombinedOutput()
	if exitCode(err) != 2 || !strings.Contains(string(msg), "bad.yaml:3:") || !strings.Contains(string(msg), `unknown protocol "gopher"`) {
		t.Errorf("exit %d: %s", exitCode(err), msg)
	}
}

// TestJUnit: --junit writes a report a JUnit parser reads — a case per app
// and one for the flow — all passed on a good run; when an app cannot come
// up (its port is taken), the flow's case fails and says why, and the run
// exits 1.
func TestJUnit(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.xml")
	if out, err := command(t, append([]string{"--headless", "--count", "5", "--capture", "off", "--junit", good}, freePorts...)...).CombinedOutput(); err != nil {
		t.Fatalf("exit %d: %s", exitCode(err), out)
	}
	suites, err := junit.IngestFile(good)
	if err != nil || len(suites) != 1 || suites[0].Totals.Tests != 5 || suites[0].Totals.Failed != 0 {
		t.Fatalf("a JUnit parser reads %+v (%v) from the good run, want 5 cases, none failed", suites, err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := fmt.Sprint(busy.Addr().(*net.TCPAddr).Port)
	bad := filepath.Join(dir, "bad.xml")
	out, err := command(t, "--headless", "--count", "5", "--capture", "off", "--junit", bad,
		"--http-port", "0", "--https-port", "0", "--ws-port", port, "--wss-port", "0").CombinedOutput()
	if code := exitCode(err); code != 1 {
		t.Fatalf("with the ws port taken: exit %d, want 1: %s", code, out)
	}
	suites, err = junit.IngestFile(bad)
	if err != nil || len(suites) != 1 || suites[0].Totals.Failed < 1 {
		t.Fatalf("a JUnit parser reads %+v (%v) from the failed run, want a failure", suites, err)
	}
	var flow *junit.Test
	for i, c := range suites[0].Tests {
		if strings.HasPrefix(c.Name, "flow") {
			flow = &suites[0].Tests[i]
		}
	}
	if flow == nil || flow.Status != junit.StatusFailed || flow.Error == nil || !strings.Contains(flow.Error.Error(), port) {
		t.Errorf("the flow's case %+v does not fail naming port %s", flow, port)
	}
	// The ws app, whose port was taken, failed saying so; the others were
	// not measured (skipped), and say why: the lab did not come up.
	for _, c := range suites[0].Tests {
		switch {
		case strings.HasPrefix(c.Name, "flow"):
		case c.Name == "ws (ws)":
			if c.Status != junit.StatusFailed || c.Error == nil || !strings.Contains(c.Error.Error(), "127.0.0.1:"+port+") is already in use") {
				t.Errorf("case %q: %s %v, want failed naming port %s", c.Name, c.Status, c.Error, port)
			}
		default:
			if c.Status != junit.StatusSkipped || !strings.Contains(c.Message, "not measured: the run stopped before the probes: ") || !strings.Contains(c.Message, port) {
				t.Errorf("case %q: %s %q, want skipped, naming the deploy's failure", c.Name, c.Status, c.Message)
			}
		}
	}
}

// TestJUnitTimesAreTheProbes: an app's case takes as long as its probe
// (took_ms in the report), not its connection setup.
func TestJUnitTimesAreTheProbes(t *testing.T) {
	file := filepath.Join(t.TempDir(), "junit.xml")
	cmd := command(t, append([]string{"--headless", "--json", "--count", "50", "--capture", "off", "--junit", file}, freePorts...)...)
	rep := report(t, cmd)
	suites, err := junit.IngestFile(file)
	if err != nil || len(suites) != 1 {
		t.Fatalf("a JUnit parser reads %+v (%v)", suites, err)
	}
	apps := rep["apps"].(map[string]any)
	for _, c := range suites[0].Tests {
		name, _, _ := strings.Cut(c.Name, " ")
		a, ok := apps[name].(map[string]any)
		if !ok {
			continue // the flow
		}
		took, _ := a["took_ms"].(float64)
		setup, _ := a["setup_ms"].(float64)
		if d := c.Duration - time.Duration(took*float64(time.Millisecond)); took <= setup || d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("case %q: time %v, want the probe's %.3f ms (its setup: %.3f ms)", c.Name, c.Duration, took, setup)
		}
	}
}

// TestJUnitScripted: a lab file with steps runs them headless; a step that
// fails (a send after the lab is down) exits 1, and the JUnit file a JUnit
// parser reads has that step's case failed with its reason, the step after
// it skipped. --pcap with steps is a usage mistake (exit 2).
func TestJUnitScripted(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "lab.yaml")
	if err := os.WriteFile(file, []byte(`name: scripted-cmd
apps:
  - name: ws
    protocol: ws
    port: 0
capture:
  mode: on
steps:
  - up
  - deploy
  - capture on
  - send ws "hello"
  - export run.pcapng
  - down
  - send ws "too late"
  - compare
`), 0o600); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "junit.xml")
	cmd := command(t, "--lab", file, "--headless", "--junit", report)
	cmd.Dir = dir // the export step's relative path is relative to it
	out, err := cmd.CombinedOutput()
	if code := exitCode(err); code != 1 {
		t.Fatalf("exit %d, want 1 (a failed step): %s", code, out)
	}
	if !strings.Contains(string(out), `protolab-tui: step 7 (send ws "too late") failed: send: the lab is down, not running`) {
		t.Errorf("the output does not name the failed step:\n%s", out)
	}
	if st, err := os.Stat(filepath.Join(dir, "run.pcapng")); err != nil || st.Size() == 0 {
		t.Errorf("the export step wrote no file in the run's folder: %v", err)
	}
	suites, err := junit.IngestFile(report)
	if err != nil || len(suites) != 1 {
		t.Fatalf("a JUnit parser reads %+v (%v)", suites, err)
	}
	s := suites[0]
	if s.Totals.Tests != 9 || s.Totals.Failed != 1 || s.Totals.Skipped != 2 {
		t.Errorf("JUnit totals %+v, want 9 cases (8 steps, 1 app), 1 failed, 2 skipped (the compare step and the app it did not measure)", s.Totals)
	}
	for _, c := range s.Tests {
		if c.Name == `step 7: send ws "too late"` {
			if c.Status != junit.StatusFailed || c.Error == nil || !strings.Contains(c.Error.Error(), "the lab is down, not running") {
				t.Errorf("case %q: %s %v, want failed with the reason", c.Name, c.Status, c.Error)
			}
		} else if c.Status == junit.StatusFailed {
			t.Errorf("case %q failed: %v", c.Name, c.Error)
		}
	}

	out, err = command(t, "--lab", file, "--headless", "--pcap", filepath.Join(dir, "x.pcapng")).CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), "has steps: export the capture with an export step") {
		t.Errorf("--pcap with steps: exit %d: %s", code, out)
	}
}
