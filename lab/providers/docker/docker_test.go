package docker_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/moby/moby/client"

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

// TestWebTerminalInContainer: a term app on docker runs in an image with a
// shell (this machine's static busybox as /bin/sh): its WebSocket carries
// that container's shell — typed in, echoed out, on a pty of its own — and
// the shell is the container's (its hostname is the container's).
func TestWebTerminalInContainer(t *testing.T) {
	engine(t)
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
	do(t, l.Up(context.Background()))
	do(t, l.Deploy(context.Background()))
	tg, err := l.Target("shell")
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+tg.Addr+"/term", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.BinaryMessage, []byte("echo hi-$((40+2)) host=$(hostname)\n")); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	for !strings.Contains(out.String(), "hi-42 host=") || !strings.Contains(out.String()[strings.Index(out.String(), "hi-42 host="):], "\n") {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("%v; the terminal showed %q", err, out.String())
		}
		out.Write(b)
	}
	line := out.String()[strings.Index(out.String(), "hi-42 host="):]
	host := strings.TrimSpace(strings.SplitN(strings.TrimPrefix(line, "hi-42 host="), "\n", 2)[0])
	if me, _ := os.Hostname(); host == "" || host == me {
		t.Errorf("the shell runs on %q, want the container's hostname (not this machine's %q)", host, me)
	}
	// The lab measures it like any ws app (its /echo).
	if err := l.Probe(context.Background(), "shell").Wait(context.Background()); err != nil {
		t.Errorf("probe: %v", err)
	}
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
