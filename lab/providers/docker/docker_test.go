package docker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/moby/moby/client"

	"github.com/protolab/protolab-tui/apps/webapp"
	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/providers/docker"
	"github.com/protolab/protolab-tui/protocol"
)

// engine returns a client of the local engine, or skips/fails without one.
func engine(t *testing.T) *client.Client {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		testenv.Missing(t, "no Docker client: "+err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		testenv.Missing(t, "no Docker engine answers: "+err.Error())
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

var anyPorts = lab.OnFreePorts(lab.SeedApps())

func newLab(t *testing.T, name string) (*lab.Lab, <-chan lab.Event) {
	t.Helper()
	l, err := lab.New(lab.Config{Name: name, Provider: "docker", StateDir: t.TempDir(), Apps: anyPorts,
		Probe: probe.Options{Count: 10}, Capture: lab.CaptureConfig{Mode: "off"}}, docker.New)
	if err != nil {
		t.Fatal(err)
	}
	events, stop := l.Subscribe()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = l.Teardown(ctx).Wait(ctx)
		stop()
		for range events {
		}
	})
	return l, events
}

func do(t *testing.T, j *lab.Job) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := j.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// leftovers counts what carries the lab's label.
func leftovers(t *testing.T, cli *client.Client, name string) (containers, networks int) {
	t.Helper()
	ctx := context.Background()
	f := client.Filters{}.Add("label", docker.LabelLab+"="+name)
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	return len(cs.Items), len(ns.Items)
}

func TestDockerLabLifecycle(t *testing.T) {
	cli := engine(t)
	name := "t-life"
	l, events := newLab(t, name)
	ctx := context.Background()
	do(t, l.Up(ctx))
	do(t, l.Deploy(ctx))
	do(t, l.Probe(ctx))
	if rep := l.Report(); !rep.OK || rep.Provider != "docker" {
		t.Fatalf("report %+v", rep)
	}
	// Each container serves its /metrics at its published port (https and
	// wss with the lab's certificate), and the probe's traffic is in it.
	for _, a := range anyPorts {
		m, err := l.Metrics(ctx, a.Name)
		if err != nil {
			t.Fatalf("metrics of %s: %v", a.Name, err)
		}
		got := m.Requests
		if a.Protocol.WebSocket() {
			got = m.MessagesIn
		}
		if got < 10 {
			t.Errorf("%s: after a probe of 10 round trips its /metrics says %+v", a.Name, m)
		}
	}

	// Kill the ws container from outside: the lab hears of it within 2 s.
	var wsID string
	cs, _ := cli.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.Add("label", docker.LabelApp+"=ws").Add("label", docker.LabelLab+"="+name)})
	if len(cs.Items) != 1 {
		t.Fatalf("%d ws containers", len(cs.Items))
	}
	wsID = cs.Items[0].ID
	for len(events) > 0 {
		<-events
	}
	killed := time.Now()
	if _, err := cli.ContainerKill(ctx, wsID, client.ContainerKillOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(2 * time.Second)
wait:
	for {
		select {
		case e := <-events:
			if a, ok := e.(lab.AppEvent); ok && a.App.Name == "ws" && a.App.State == "exited" {
				t.Logf("status event %v after the kill: %+v", time.Since(killed), a.App)
				break wait
			}
		case <-deadline:
			t.Fatal("no status event within 2s of docker kill")
		}
	}
	if err := l.Probe(ctx, "ws").Wait(ctx); err == nil {
		t.Error("the probe passed with the ws container dead")
	}
	do(t, l.Redeploy(ctx))
	do(t, l.Probe(ctx))
	if rep := l.Report(); !rep.OK {
		t.Fatalf("after redeploy: %+v", rep)
	}
	do(t, l.Teardown(ctx))
	if c, n := leftovers(t, cli, name); c != 0 || n != 0 {
		t.Errorf("teardown left %d containers and %d networks", c, n)
	}
}

func TestTwoLabsSideBySide(t *testing.T) {
	cli := engine(t)
	a, _ := newLab(t, "t-side-a")
	b, _ := newLab(t, "t-side-b")
	ctx := context.Background()
	for _, l := range []*lab.Lab{a, b} {
		do(t, l.Up(ctx))
		do(t, l.Deploy(ctx))
	}
	do(t, b.Teardown(ctx))
	if c, n := leftovers(t, cli, "t-side-b"); c != 0 || n != 0 {
		t.Errorf("lab b left %d containers, %d networks", c, n)
	}
	if c, n := leftovers(t, cli, "t-side-a"); c != 4 || n != 1 {
		t.Errorf("lab a has %d containers, %d networks after b's teardown; want 4 and 1", c, n)
	}
	do(t, a.Probe(ctx))
	if !a.Report().OK {
		t.Errorf("lab a broken by lab b's teardown: %+v", a.Report())
	}
}

func TestEngineUnreachable(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	l, err := lab.New(lab.Config{Provider: "docker", StateDir: t.TempDir()}, docker.New)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	err = l.Up(ctx).Wait(ctx)
	if err == nil || !strings.Contains(err.Error(), "does not answer") || !strings.Contains(err.Error(), "start it") {
		t.Fatalf("err = %v, want a clear 'does not answer … start it' error", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %v to say the engine is unreachable", time.Since(start))
	}
}

// TestComposeFileStartsTheApps runs apps/docker-compose.yaml — the hand-run
// way of the seed lab — with Debian's docker-compose, on the image the
// provider builds, and checks that all four apps answer.
func TestComposeFileStartsTheApps(t *testing.T) {
	cli := engine(t)
	compose := testenv.NeedCommand(t, "docker-compose")
	l, _ := newLab(t, "t-compose")
	ctx := context.Background()
	do(t, l.Up(ctx)) // builds (or finds) the image
	imgs, err := cli.ImageList(ctx, client.ImageListOptions{Filters: client.Filters{}.Add("label", docker.LabelImage+"=app")})
	if err != nil || len(imgs.Items) == 0 {
		t.Fatalf("no app image: %v", err)
	}
	if _, err := cli.ImageTag(ctx, client.ImageTagOptions{Source: imgs.Items[0].ID, Target: "protolab-app:latest"}); err != nil {
		t.Fatal(err)
	}
	project := fmt.Sprintf("protolabtest%d", os.Getpid())
	file, _ := filepath.Abs("../../../apps/docker-compose.yaml")
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(compose, append([]string{"-p", project, "-f", file}, args...)...)
		cmd.Env = append(os.Environ(), "PROTOLAB_PKI="+filepath.Join(l.Config().StateDir, "pki"), "PROTOLAB_UID=0", "PROTOLAB_GID=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker-compose %v: %v\n%s", args, err, out)
		}
	}
	run("up", "-d")
	defer run("down", "-v")
	for _, p := range protocol.Seed() {
		tg := probe.Target{Protocol: p, Addr: fmt.Sprintf("127.0.0.1:%d", p.DefaultPort()), ServerName: "localhost", RootCAs: l.PKI().Pool()}
		var err error
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if _, err = probe.Run(ctx, tg, probe.Options{Count: 3}); err == nil {
				break
			}
		}
		if err != nil {
			t.Errorf("%s from docker-compose: %v", p, err)
		}
	}
}

// TestWebTerminalInContainer: a term app on docker is a bridge to its own
// container through the Engine API: each WebSocket session on /term is an
// exec (the engine lists it for the container, its pid the one the shell
// reports), typed in and echoed out, resized with the exec resize API, run
// as nobody (who cannot open the mounted engine socket); closing the socket
// ends the exec'd shell, and exit closes the socket 1000.
func TestWebTerminalInContainer(t *testing.T) {
	cli := engine(t)
	if _, err := os.Stat("/bin/busybox"); err != nil {
		testenv.Missing(t, "no static busybox: apt-get install busybox-static (scripts/test.sh does)")
	}
	l, err := lab.New(lab.Config{Name: "t-term", Provider: "docker", StateDir: t.TempDir(),
		Apps:  lab.OnFreePorts([]lab.App{{Name: "shell", Kind: protocol.KindTerm, Protocol: protocol.WS}, {Name: "ws", Protocol: protocol.WS}}),
		Probe: probe.Options{Count: 5}, Capture: lab.CaptureConfig{Mode: "off"}}, docker.New)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = l.Teardown(ctx).Wait(ctx)
	})
	events, stop := l.Subscribe()
	defer func() {
		stop()
		for range events {
		}
	}()
	ctx := context.Background()
	do(t, l.Up(ctx))
	do(t, l.Deploy(ctx))
	tg, err := l.Target("shell")
	if err != nil {
		t.Fatal(err)
	}
	if h, _, _ := net.SplitHostPort(tg.Addr); h != "127.0.0.1" {
		t.Errorf("the term app is published on %s, want loopback", tg.Addr)
	}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+tg.Addr+"/term", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess := termSession(t, c)
	const name = "protolab-t-term-shell"
	if sess.Mode != "exec" || sess.Container != name || sess.Exec == "" {
		t.Fatalf("session %+v, want an exec in %s", sess, name)
	}
	in, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(in.Container.ExecIDs, sess.Exec) {
		t.Errorf("the engine lists execs %v for %s, not the session's %s", in.Container.ExecIDs, name, sess.Exec)
	}
	ex, err := cli.ExecInspect(ctx, sess.Exec, client.ExecInspectOptions{})
	if err != nil || !ex.Running || ex.ContainerID != in.Container.ID {
		t.Fatalf("exec %s: %+v %v, want running in %s", sess.Exec, ex, err, in.Container.ID)
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", ex.PID)); err == nil { // the engine runs here
		if ns := nsPid(string(st)); ns != sess.PID {
			t.Errorf("the exec's process (pid %d here) is pid %d in the container, the session says %d", ex.PID, ns, sess.PID)
		}
	}

	typeIn(t, c, "echo hi\n")
	termUntil(t, c, "\nhi\r\n")
	typeIn(t, c, "echo hi-$((40+2)) host=$(hostname) pid=$$ uid=$(id -u); [ -w "+"/var/run/docker.sock ] && echo engine=yes || echo engine=no\n")
	m := termMatch(t, c, regexp.MustCompile(`hi-42 host=(\S+) pid=(\d+) uid=(\d+)\r\nengine=(yes|no)`))
	host, eng := m[1], m[4]
	pid, _ := strconv.Atoi(m[2])
	uid, _ := strconv.Atoi(m[3])
	if me, _ := os.Hostname(); host == "" || host == me || !strings.HasPrefix(in.Container.ID, host) {
		t.Errorf("the shell runs on %q, want the container's hostname (%.12s, not this machine's %q)", host, in.Container.ID, me)
	}
	if pid != sess.PID || uid != 65534 || eng != "no" {
		t.Errorf("the shell: pid %d uid %d engine %s; want pid %d (the session's), uid 65534, and no access to the engine", pid, uid, eng, sess.PID)
	}

	// Resize: the exec's terminal takes the new size.
	rs, _ := json.Marshal(webapp.TermResize{Type: "resize", Cols: 100, Rows: 40})
	if err := c.WriteMessage(websocket.TextMessage, rs); err != nil {
		t.Fatal(err)
	}
	typeIn(t, c, "stty size\n")
	termUntil(t, c, "40 100")

	// The socket goes: the exec'd shell ends.
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ex, err := cli.ExecInspect(ctx, sess.Exec, client.ExecInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !ex.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exec %s (pid %d) still runs 10s after its socket closed", sess.Exec, sess.PID)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The bridge runs in the target container: it hung the shell up itself.
	ended := time.After(10 * time.Second)
	for found := false; !found; {
		select {
		case e := <-events:
			le, ok := e.(lab.LogEvent)
			found = ok && le.Source == "shell" && strings.Contains(le.Message, "the shell ended") && strings.Contains(le.Message, "exec="+sess.Exec)
			if found && (!strings.Contains(le.Message, "signal=HUP") || !strings.Contains(le.Message, `signalled="in this PID namespace"`)) {
				t.Errorf("the bridge says %q, want the shell hung up (HUP) from its own PID namespace", le.Message)
			}
		case <-ended:
			t.Fatal("the term app's log never said the shell ended")
		}
	}

	// exit ends the shell, and the socket with close 1000.
	c2, _, err := websocket.DefaultDialer.Dial("ws://"+tg.Addr+"/term", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if s2 := termSession(t, c2); s2.Exec == sess.Exec {
		t.Errorf("a second session reuses exec %s", s2.Exec)
	}
	typeIn(t, c2, "exit\n")
	c2.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		if _, _, err := c2.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) || !strings.Contains(err.Error(), "the shell exited") {
				t.Errorf("after exit: %v, want close 1000 \"the shell exited\"", err)
			}
			break
		}
	}
	// The lab measures it like any ws app (its /echo).
	if err := l.Probe(context.Background(), "shell").Wait(context.Background()); err != nil {
		t.Errorf("probe: %v", err)
	}
}

// termSession reads a web terminal's first message, the session.
func termSession(t *testing.T, c *websocket.Conn) webapp.TermSession {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	op, b, err := c.ReadMessage()
	var s webapp.TermSession
	if err != nil || op != websocket.TextMessage || json.Unmarshal(b, &s) != nil || s.Type != "session" {
		t.Fatalf("the first message: %d %q %v, want the session", op, b, err)
	}
	return s
}

func typeIn(t *testing.T, c *websocket.Conn, keys string) {
	t.Helper()
	if err := c.WriteMessage(websocket.BinaryMessage, []byte(keys)); err != nil {
		t.Fatal(err)
	}
}

// termUntil reads the terminal's output until it holds want; it returns
// what it read.
func termUntil(t *testing.T, c *websocket.Conn, want string) string {
	t.Helper()
	var out strings.Builder
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for !strings.Contains(out.String(), want) {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %q: %v; the terminal showed %q", want, err, out.String())
		}
		out.Write(b)
	}
	return out.String()
}

// termMatch reads the terminal's output until re matches it, and returns
// the match.
func termMatch(t *testing.T, c *websocket.Conn, re *regexp.Regexp) []string {
	t.Helper()
	var out strings.Builder
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m
		}
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v; the terminal showed %q", re, err, out.String())
		}
		out.Write(b)
	}
}

// nsPid is the last NSpid of a /proc/PID/status: the pid in the innermost
// PID namespace.
func nsPid(status string) int {
	for _, l := range strings.Split(status, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "NSpid:" {
			n, _ := strconv.Atoi(f[len(f)-1])
			return n
		}
	}
	return 0
}

// Capture on lo sees the probes' connections to the engine's proxy on the
// published ports as the probes made them: the sync after a probe waits
// for exactly their bytes and closes, not for a quiet period.
func TestCaptureSyncsExactlyOnPublishedPorts(t *testing.T) {
	testenv.NeedRoot(t)
	engine(t)
	name := fmt.Sprintf("t-sync-%d", os.Getpid())
	l, err := lab.New(lab.Config{Name: name, Provider: "docker", StateDir: t.TempDir(), Apps: anyPorts,
		Probe: probe.Options{Count: 10}, Capture: lab.CaptureConfig{Mode: "on"}}, docker.New)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = l.Teardown(ctx).Wait(ctx)
		_ = l.Close()
	})
	ctx := context.Background()
	do(t, l.Up(ctx))
	do(t, l.Deploy(ctx))
	do(t, l.StartCapture(ctx))
	do(t, l.Probe(ctx))
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := l.SyncCapture(sctx); err != nil {
		t.Fatal(err)
	}
	if got := l.CaptureStats().Sync; got != "exact (4 connections)" {
		t.Errorf("sync %q, want exact for the four probe connections", got)
	}
	for _, a := range l.Report().Rows() {
		if w := a.Wire; w == nil || w.Messages < uint64(2*a.Messages) {
			t.Errorf("%s: %+v on the wire right after the sync, want at least %d messages", a.App, a.Wire, 2*a.Messages)
		}
	}
}
