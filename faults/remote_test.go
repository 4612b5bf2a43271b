package faults_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/protolab/protolab-tui/internal/sshdtest"
	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/providers/docker"
	"github.com/protolab/protolab-tui/lab/providers/ssh"
	"github.com/protolab/protolab-tui/lab/sshrun"
	"github.com/protolab/protolab-tui/protocol"
)

// engine returns a client of this machine's Docker engine, or skips (fails
// under the test command) without one.
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

// faultApps are the apps of the remote labs: one plain, one TLS.
func faultApps() []lab.App {
	return lab.OnFreePorts([]lab.App{{Name: "ws", Protocol: protocol.WS}, {Name: "https", Protocol: protocol.HTTPS}})
}

func remoteLab(t *testing.T, name string, newProvider func(lab.Env) (lab.Provider, error)) *lab.Lab {
	t.Helper()
	l, err := lab.New(lab.Config{Name: name, StateDir: t.TempDir(), Apps: faultApps(),
		Probe: probe.Options{Count: 10}, Capture: lab.CaptureConfig{Mode: "on"}}, newProvider)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := l.Teardown(ctx).Wait(ctx); err != nil {
			t.Errorf("teardown: %v", err)
		}
		_ = l.Close()
	})
	return l
}

// killContainer kills the lab's container of app from outside, as
// `docker kill` does, and waits (2 s) for the lab to say it exited.
func killContainer(t *testing.T, cli *client.Client, l *lab.Lab, ev *stream, app string) {
	t.Helper()
	ctx := context.Background()
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{Filters: client.Filters{}.
		Add("label", docker.LabelApp+"="+app).Add("label", docker.LabelLab+"="+l.Config().Name)})
	if err != nil || len(cs.Items) != 1 {
		t.Fatalf("the %s container: %v (%d found)", app, err, len(cs.Items))
	}
	from := ev.mark()
	if _, err := cli.ContainerKill(ctx, cs.Items[0].ID, client.ContainerKillOptions{}); err != nil {
		t.Fatal(err)
	}
	e := ev.await(t, from, shown, "AppEvent: "+app+" exited", func(e lab.Event) bool {
		a, ok := e.(lab.AppEvent)
		return ok && a.App.Name == app && a.App.State == lab.AppExited
	}).(lab.AppEvent)
	t.Logf("after docker kill: %+v", e.App)
}

func TestContainerKilled(t *testing.T) {
	testenv.NeedRoot(t) // live capture
	cli := engine(t)
	l := remoteLab(t, labName("kill"), docker.New)
	ev := watch(t, l)
	up(t, l)
	before := keptOf(t, l, "ws")

	killContainer(t, cli, l, ev, "ws")
	if on, _ := l.Capturing(); !on {
		t.Error("capture stopped with the container")
	}
	if err := l.Probe(context.Background(), "ws").Wait(context.Background()); err == nil {
		t.Error("the ws probe passed with its container dead")
	}
	// Recovery: redeploy (the explorer's r), on the same port, while the
	// capture goes on.
	from := ev.mark()
	do(t, l.Redeploy(context.Background()))
	ev.await(t, from, shown, "AppEvent: ws running again", func(e lab.Event) bool {
		a, ok := e.(lab.AppEvent)
		return ok && a.App.Name == "ws" && a.App.State == lab.AppRunning && a.App.Health == "healthy"
	})
	do(t, l.Probe(context.Background()))
	syncCapture(t, l)
	stillKept(t, l, "ws", before)
	out := filepath.Join(t.TempDir(), "all.pcapng")
	do(t, l.Export(out))
	if n := packetsIn(t, out); uint64(n) < l.Wire().Counters("ws").Packets+l.Wire().Counters("https").Packets {
		t.Errorf("the export holds %d packets, fewer than the lists", n)
	}
}

// TestSSHLabFaults runs a lab on a lab host reached over SSH (a real sshd
// on this machine, its Docker engine, tcpdump streamed back) and breaks it
// three ways in turn: the remote tcpdump killed, the SSH link cut (the
// sshd child serving it killed), a container killed after the link came
// back (the engine's events are followed again).
func TestSSHLabFaults(t *testing.T) {
	s := sshdtest.Start(t)
	testenv.NeedCommand(t, "tcpdump")
	cli := engine(t)
	cfg := sshrun.Config{Host: "127.0.0.1", Port: s.Port, User: "root", IdentityFiles: []string{s.ClientID},
		KnownHosts: []string{s.KnownHosts(s.HostPub)}, SSHConfig: "/nonexistent"}
	l := remoteLab(t, labName("ssh"), ssh.New(cfg))
	ev := watch(t, l)
	up(t, l)
	port := func() int {
		// The lab host's published port of ws: what its tcpdump captures.
		cs, err := cli.ContainerList(context.Background(), client.ContainerListOptions{Filters: client.Filters{}.
			Add("label", docker.LabelApp+"=ws").Add("label", docker.LabelLab+"="+l.Config().Name)})
		if err != nil || len(cs.Items) != 1 {
			t.Fatalf("the ws container: %v", err)
		}
		for _, p := range cs.Items[0].Ports {
			if p.PublicPort != 0 {
				return int(p.PublicPort)
			}
		}
		t.Fatalf("the ws container publishes no port: %+v", cs.Items[0].Ports)
		return 0
	}

	t.Run("tcpdump killed", func(t *testing.T) {
		before := keptOf(t, l, "ws")
		from := ev.mark()
		killTcpdump(t, port())
		lost := ev.await(t, from, shown, `capture "lost"`, captureState("lost", "tcpdump")).(lab.CaptureEvent)
		t.Logf("%s", lost.Note)
		ev.await(t, from, 10*time.Second, `capture "on" again`, captureState("on", "restarted"))
		do(t, l.Probe(context.Background()))
		syncCapture(t, l)
		stillKept(t, l, "ws", before)
	})

	t.Run("ssh link cut", func(t *testing.T) {
		before := keptOf(t, l, "https")
		from := ev.mark()
		s.KillSessions()
		ev.await(t, from, shown, "the link reported lost", logged("ssh", "lost"))
		ev.await(t, from, shown, `the host's "link" detail lost`, linkDetail("lost"))
		ev.await(t, from, shown, `capture "lost"`, captureState("lost", ""))
		ev.await(t, from, 15*time.Second, "the link re-established", logged("ssh", "re-established"))
		ev.await(t, from, 15*time.Second, `the host's "link" detail up`, linkDetail("up"))
		ev.await(t, from, 15*time.Second, `capture "on" again`, captureState("on", "restarted"))
		ev.await(t, from, 15*time.Second, "the engine's events followed again", logged("docker", "is back"))
		do(t, l.Probe(context.Background()))
		if rep := l.Report(); !rep.OK {
			t.Fatalf("after the link came back: %v", rep.Failed())
		}
		syncCapture(t, l)
		stillKept(t, l, "https", before)
	})

	t.Run("container killed after the link came back", func(t *testing.T) {
		killContainer(t, cli, l, ev, "ws")
		do(t, l.Redeploy(context.Background()))
		do(t, l.Probe(context.Background()))
		if rep := l.Report(); !rep.OK {
			t.Fatalf("after redeploy: %v", rep.Failed())
		}
	})

	out := filepath.Join(t.TempDir(), "all.pcapng")
	do(t, l.Export(out))
	if n := packetsIn(t, out); uint64(n) < l.Wire().Counters("ws").Packets {
		t.Errorf("the export holds %d packets, fewer than ws alone counted", n)
	}
	// Every capture the lab restarted ended with it: no tcpdump is left.
	p := port()
	do(t, l.Teardown(context.Background()))
	deadline := time.Now().Add(5 * time.Second)
	for len(tcpdumpsOf(p)) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if left := tcpdumpsOf(p); len(left) > 0 {
		t.Errorf("tcpdumps (pids %v) left after teardown", left)
	}
}

// linkDetail matches a HostEvent whose "link" detail starts with state.
func linkDetail(state string) func(lab.Event) bool {
	return func(e lab.Event) bool {
		h, ok := e.(lab.HostEvent)
		if !ok {
			return false
		}
		for _, kv := range h.Host.Details {
			if kv.Key == "link" && strings.HasPrefix(kv.Value, state) {
				return true
			}
		}
		return false
	}
}
