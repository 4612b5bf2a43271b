package docker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/providers/docker"
)

// A lab that comes up while an earlier lab of its name still has
// containers on the engine (here one left running by another Lab, as a
// crashed protolab leaves it) publishes an EarlierLabEvent before it
// deploys: how many containers, how many run, and the command that removes
// them. A lab of another name hears nothing of it.
func TestEarlierLabWarnsAtUp(t *testing.T) {
	cli := engine(t)
	const name = "t-earlier"
	apps := lab.OnFreePorts([]lab.App{{Name: "ws", Protocol: "ws"}})
	mk := func(name string) (*lab.Lab, <-chan lab.Event) {
		l, err := lab.New(lab.Config{Name: name, Provider: "docker", StateDir: t.TempDir(), Apps: apps,
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
	earlierLab := func(l *lab.Lab, events <-chan lab.Event) *lab.EarlierLabEvent {
		ctx := context.Background()
		do(t, l.Up(ctx))
		var found *lab.EarlierLabEvent
		for {
			select {
			case e := <-events:
				if w, ok := e.(lab.EarlierLabEvent); ok {
					found = &w
				}
				if s, ok := e.(lab.StateEvent); ok && s.To == lab.Ready {
					return found
				}
			case <-time.After(time.Minute):
				t.Fatal("no ready state after Up")
			}
		}
	}
	first, firstEvents := mk(name)
	if w := earlierLab(first, firstEvents); w != nil {
		t.Fatalf("the first lab %s warns of an earlier one: %+v (a leftover of an earlier test run?)", name, w)
	}
	do(t, first.Deploy(context.Background()))
	if c, _ := leftovers(t, cli, name); c != 1 {
		t.Fatalf("%d containers of %s, want 1", c, name)
	}

	second, secondEvents := mk(name)
	// Asked before it is up (the explorer that does not bring the lab up
	// itself), the lab looks as Up does.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := second.CheckEarlierLab(ctx).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-secondEvents:
		if w, ok := e.(lab.EarlierLabEvent); !ok || w.Containers != 1 {
			t.Errorf("CheckEarlierLab published %#v, want the earlier lab's event", e)
		}
	case <-time.After(10 * time.Second):
		t.Error("CheckEarlierLab published nothing")
	}
	w := earlierLab(second, secondEvents)
	if w == nil {
		t.Fatalf("no warning of the earlier lab %s", name)
	}
	if w.Lab != name || w.Provider != "docker" || w.Containers != 1 || w.Running != 1 || !strings.HasPrefix(w.Where, "the Docker engine at ") {
		t.Errorf("warning %+v", w)
	}
	if !strings.HasPrefix(w.Remove, "protolab-tui --provider docker ") || !strings.HasSuffix(w.Remove, "--name "+name+" --teardown") {
		t.Errorf("the warning's command %q does not remove the lab", w.Remove)
	}
	if msg := w.Message(); !strings.Contains(msg, "(1 container, 1 running)") || !strings.Contains(msg, w.Remove) {
		t.Errorf("message %q", msg)
	}

	other, otherEvents := mk("t-earlier-other")
	if w := earlierLab(other, otherEvents); w != nil {
		t.Errorf("a lab of another name warns: %+v", w)
	}
}
