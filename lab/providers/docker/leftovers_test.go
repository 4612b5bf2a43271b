package docker_test

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/providers/docker"
	"github.com/protolab/protolab-tui/protocol"
)

// mkLab is a docker lab named name of apps, torn down at the test's end.
func mkLab(t *testing.T, name, stateDir string, apps []lab.App, attach bool) (*lab.Lab, <-chan lab.Event) {
	t.Helper()
	l, err := lab.New(lab.Config{Name: name, Provider: "docker", StateDir: stateDir, Apps: apps, Attach: attach,
		Probe: probe.Options{Count: 2}, Capture: lab.CaptureConfig{Mode: "off"}}, docker.New)
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

// removeLab removes every lab of name, as --teardown does.
func removeLab(t *testing.T, name string) {
	l, err := lab.New(lab.Config{Name: name, Provider: "docker", StateDir: t.TempDir()}, docker.New)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := lab.RemoveLab(ctx, l.Provider()); err != nil {
		t.Errorf("removing lab %s: %v", name, err)
	}
}

// A lab of a name that is already on the engine (here brought up by
// another Lab, as another protolab run would) is refused at Up with an
// error naming it and the commands that attach to it and remove it; the
// refused lab's teardown leaves the earlier lab whole. Asked before it is
// up (the explorer that does not bring the lab up itself), the lab
// publishes an EarlierLabEvent. A lab of another name hears nothing of it.
func TestEarlierLabIsRefusedAndLeftAlone(t *testing.T) {
	cli := engine(t)
	const name = "t-earlier"
	t.Cleanup(func() { removeLab(t, name) })
	apps := lab.OnFreePorts([]lab.App{{Name: "ws", Protocol: "ws"}})
	first, firstEvents := mkLab(t, name, t.TempDir(), apps, false)
	do(t, first.Up(context.Background()))
	do(t, first.Deploy(context.Background()))
	if c, n := leftovers(t, cli, name); c != 1 || n != 1 {
		t.Fatalf("%d containers and %d networks of %s, want 1 and 1", c, n, name)
	}
	// Its own containers are no earlier lab (an explorer that opens on a
	// lab already up: serve's sessions).
	do(t, first.CheckEarlierLab(context.Background()))
	for quiet := time.After(time.Second); quiet != nil; {
		select {
		case e := <-firstEvents:
			if e.EventType() == "earlier_lab" {
				t.Errorf("the lab warns of its own containers: %+v", e)
			}
		case <-quiet:
			quiet = nil
		}
	}

	second, secondEvents := mkLab(t, name, t.TempDir(), apps, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := second.CheckEarlierLab(ctx).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-secondEvents:
		w, ok := e.(lab.EarlierLabEvent)
		if !ok || w.Containers != 1 || w.Running != 1 || !strings.HasSuffix(w.Remove, "--name "+name+" --teardown") {
			t.Errorf("CheckEarlierLab published %#v, want the earlier lab's event", e)
		}
	case <-time.After(10 * time.Second):
		t.Error("CheckEarlierLab published nothing")
	}
	err := second.Up(ctx).Wait(ctx)
	var el *lab.EarlierLabError
	if !errors.As(err, &el) {
		t.Fatalf("Up beside an earlier lab of the name: %v, want an *lab.EarlierLabError", err)
	}
	if el.Lab != name || el.Containers != 1 || el.Running != 1 || !strings.HasPrefix(el.Where, "the Docker engine at ") ||
		!strings.HasPrefix(el.Remove, "protolab-tui --provider docker ") || !strings.HasSuffix(el.Remove, "--name "+name+" --teardown") ||
		!strings.HasPrefix(el.Attach, "protolab-tui serve --provider docker ") || !strings.Contains(el.Attach, "--name "+name) {
		t.Errorf("refusal %+v", el)
	}
	for _, want := range []string{`a lab named "t-earlier" is already on the Docker engine at `, "(1 container, 1 running", "another --name", el.Attach, el.Remove} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, err)
		}
	}
	do(t, second.Teardown(ctx))
	if c, n := leftovers(t, cli, name); c != 1 || n != 1 {
		t.Fatalf("after the refused lab's teardown: %d containers and %d networks of %s, want the earlier lab's 1 and 1", c, n, name)
	}
	do(t, first.Probe(ctx))
	if !first.Report().OK {
		t.Errorf("the earlier lab was broken by the refused one: %+v", first.Report())
	}

	other, _ := mkLab(t, "t-earlier-other", t.TempDir(), apps, false)
	do(t, other.Up(ctx))
}

// A lab's teardown removes what its run created and nothing else: a
// container of the lab's name that another run made (here by hand, with
// the lab's label) stays; removing the lab (--teardown) takes it too.
func TestTeardownRemovesOnlyWhatTheRunCreated(t *testing.T) {
	cli := engine(t)
	const name = "t-own"
	t.Cleanup(func() { removeLab(t, name) })
	l, _ := mkLab(t, name, t.TempDir(), lab.OnFreePorts([]lab.App{{Name: "http", Protocol: "http"}}), false)
	ctx := context.Background()
	do(t, l.Up(ctx))
	do(t, l.Deploy(ctx))
	img := l.Snapshot().Apps[0].Image
	foreign := "protolab-t-own-foreign"
	if out, err := exec.Command("docker", "create", "--name", foreign, "--label", docker.LabelLab+"="+name, "--label", docker.LabelApp+"=foreign", img).CombinedOutput(); err != nil {
		t.Fatalf("docker create: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", foreign).Run() })
	do(t, l.Teardown(ctx))
	if c, _ := leftovers(t, cli, name); c != 1 {
		t.Errorf("after the teardown %d containers of %s are left, want the foreign one only", c, name)
	}
	if err := exec.Command("docker", "inspect", foreign).Run(); err != nil {
		t.Errorf("the teardown removed a container its run did not create: %v", err)
	}
	removeLab(t, name)
	if c, n := leftovers(t, cli, name); c != 0 || n != 0 {
		t.Errorf("RemoveLab left %d containers and %d networks", c, n)
	}
}

// A lab with Attach set adopts the running lab of its name: FindLab reads
// its apps (kind, protocol, published port) from the engine, Up and Deploy
// create nothing, the probes reach the running apps, and the teardown
// leaves them running.
func TestAttachAdoptsTheRunningLab(t *testing.T) {
	cli := engine(t)
	const name = "t-attach"
	t.Cleanup(func() { removeLab(t, name) })
	apps := lab.OnFreePorts([]lab.App{{Name: "web", Protocol: protocol.HTTPS}, {Name: "chat", Protocol: protocol.WS, ReadLimit: 4096}})
	state := t.TempDir()
	first, _ := mkLab(t, name, state, apps, false)
	ctx := context.Background()
	do(t, first.Up(ctx))
	do(t, first.Deploy(ctx))
	eps := map[string]string{}
	for _, a := range first.Snapshot().Apps {
		eps[a.Name] = a.Endpoint
	}

	finder, _ := mkLab(t, name, state, lab.SeedApps(), true)
	found, err := finder.FindRunning(ctx)
	if err != nil || found == nil {
		t.Fatalf("FindRunning: %v %v", found, err)
	}
	if len(found.Apps) != 2 || found.Containers != 2 || found.Running != 2 {
		t.Fatalf("found %+v", found)
	}
	for i, want := range apps {
		got := found.Apps[i]
		if got.Name != want.Name || got.Protocol != want.Protocol || got.Kind == "" || got.Port == 0 || !strings.HasSuffix(eps[got.Name], ":"+strconv.Itoa(got.Port)) {
			t.Errorf("found app %d: %+v, want %s (%s) on %s", i, got, want.Name, want.Protocol, eps[want.Name])
		}
	}
	if found.Apps[1].ReadLimit != 4096 {
		t.Errorf("the chat app's read limit is %d, want 4096 (its spec, from its label)", found.Apps[1].ReadLimit)
	}

	attached, _ := mkLab(t, name, state, found.Apps, true)
	do(t, attached.Up(ctx))
	do(t, attached.Deploy(ctx))
	for _, a := range attached.Snapshot().Apps {
		if a.Endpoint != eps[a.Name] || a.State != lab.AppRunning {
			t.Errorf("attached app %+v, want it running at %s", a, eps[a.Name])
		}
	}
	if c, _ := leftovers(t, cli, name); c != 2 {
		t.Errorf("attaching made containers: %d, want the 2 running", c)
	}
	do(t, attached.Probe(ctx))
	if !attached.Report().OK {
		t.Errorf("the attached lab's probes: %+v", attached.Report())
	}
	if err := attached.Redeploy(ctx).Wait(ctx); err == nil || !strings.Contains(err.Error(), "attached") {
		t.Errorf("redeploying an attached lab: %v, want a refusal", err)
	}
	do(t, attached.Teardown(ctx))
	if c, n := leftovers(t, cli, name); c != 2 || n != 1 {
		t.Errorf("after the attached lab's teardown: %d containers and %d networks, want the running lab's 2 and 1", c, n)
	}
	do(t, first.Probe(ctx))
	if !first.Report().OK {
		t.Errorf("the lab attached to broke: %+v", first.Report())
	}

	// Another lab CA cannot serve it (its TLS apps hold this one's
	// certificate): FindLab says which state directory brought it up.
	other, _ := mkLab(t, name, t.TempDir(), lab.SeedApps(), true)
	if _, err := other.FindRunning(ctx); err == nil || !strings.Contains(err.Error(), "--state-dir "+state) {
		t.Errorf("FindRunning with another lab CA: %v, want an error naming --state-dir %s", err, state)
	}
	nothing, _ := mkLab(t, "t-attach-none", t.TempDir(), lab.SeedApps(), true)
	if found, err := nothing.FindRunning(ctx); found != nil || err != nil {
		t.Errorf("FindRunning of a lab that is not there: %+v %v", found, err)
	}
}
