package lab_test

import (
	"math"
	"strings"
	"testing"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/probe"
)

func TestUpstreamConfigErrors(t *testing.T) {
	hub := lab.App{Name: "hub", Protocol: "ws"}
	for _, tc := range []struct {
		name string
		apps []lab.App
		want string
	}{
		{"unknown upstream", []lab.App{{Name: "edge", Kind: "tls-front", Protocol: "wss", Upstream: []string{"nope"}}, hub}, `apps[0].upstream[0]: app edge: upstream "nope" is not an app of this lab (it has edge, hub)`},
		{"front over wss", []lab.App{{Name: "edge", Kind: "tls-front", Protocol: "wss", Upstream: []string{"hub2"}}, {Name: "hub2", Protocol: "wss"}}, "wants an upstream speaking ws, and hub2 speaks wss"},
		{"no upstream", []lab.App{{Name: "lb", Kind: "balancer", Protocol: "ws"}}, "a balancer needs at least 1 upstream"},
		{"two for a front", []lab.App{{Name: "edge", Kind: "tls-front", Protocol: "wss", Upstream: []string{"hub", "hub3"}}, hub, {Name: "hub3", Protocol: "ws"}}, "takes at most 1"},
		{"server with upstream", []lab.App{{Name: "a", Protocol: "ws", Upstream: []string{"hub"}}, hub}, "answers by itself and takes no upstream"},
		{"self", []lab.App{{Name: "lb", Kind: "balancer", Protocol: "ws", Upstream: []string{"lb"}}}, "cannot be its own upstream"},
		{"loop", []lab.App{{Name: "a", Kind: "balancer", Protocol: "ws", Upstream: []string{"b"}}, {Name: "b", Kind: "balancer", Protocol: "ws", Upstream: []string{"a"}}}, "the upstreams loop: a → b → a"},
		{"affinity on a proxy", []lab.App{{Name: "gw", Kind: "ws-proxy", Protocol: "ws", Upstream: []string{"hub"}, Affinity: "cookie"}, hub}, "affinity is a balancer's option"},
		{"bad affinity", []lab.App{{Name: "lb", Kind: "balancer", Protocol: "ws", Upstream: []string{"hub"}, Affinity: "sticky"}, hub}, `affinity "sticky": want none or cookie`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := lab.Config{Apps: tc.apps, StateDir: t.TempDir()}.WithDefaults()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestDeployOrderPutsUpstreamsFirst(t *testing.T) {
	apps := []lab.App{
		{Name: "edge", Upstream: []string{"lb"}},
		{Name: "lb", Upstream: []string{"hub-1", "hub-2"}},
		{Name: "hub-1"}, {Name: "hub-2"}, {Name: "other"},
	}
	got, err := lab.DeployOrder(apps)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range got {
		names = append(names, a.Name)
	}
	if strings.Join(names, " ") != "hub-1 hub-2 lb edge other" {
		t.Errorf("order %v", names)
	}
	chain := lab.Config{Apps: apps}.Chain("edge")
	if len(chain) != 4 || chain[0].Name != "edge" || chain[1].Name != "lb" {
		t.Errorf("chain %+v", chain)
	}
}

// TestHopsAddOverWhatWasReached: a hop's added cost is over the upstreams
// its probe went on to — the token proxy's first target, the replicas the
// balancer named (weighted by how often each served) — not over all.
func TestHopsAddOverWhatWasReached(t *testing.T) {
	cfg := lab.Config{Apps: []lab.App{
		{Name: "gw", Kind: "ws-proxy", Protocol: "ws", Upstream: []string{"ws", "wss"}},
		{Name: "lb", Kind: "balancer", Protocol: "ws", Upstream: []string{"hub-1", "hub-2"}},
		{Name: "edge", Kind: "tls-front", Protocol: "wss", Upstream: []string{"lb"}},
		{Name: "ws", Kind: "chat-ws", Protocol: "ws"}, {Name: "wss", Kind: "chat-ws", Protocol: "wss"},
		{Name: "hub-1", Kind: "chat-ws", Protocol: "ws"}, {Name: "hub-2", Kind: "chat-ws", Protocol: "ws"},
	}}
	res := func(setup, rtt float64, replicas map[string]int) probe.Result {
		return probe.Result{OK: true, SetupMs: setup, RTTP50Ms: rtt, Replicas: replicas}
	}
	results := map[string]probe.Result{
		"gw": res(5, 3, nil), "ws": res(1, 1, nil), "wss": res(4, 2, nil),
		"lb": res(3, 2, map[string]int{"hub-2": 3, "hub-1": 1}), "hub-1": res(1, 1, nil), "hub-2": res(2, 0.5, nil),
		"edge": res(6, 2.5, map[string]int{"hub-2": 1}),
	}
	for _, tc := range []struct {
		app               string
		hops              int
		addSetup, addRTT  float64 // the first hop's
		leafAdded, leafOK bool
	}{
		{"gw", 2, 5 - 1, 3 - 1, false, true},                           // over ws, the target the token names (wss is not on its way)
		{"lb", 3, 3 - (1*1+3*2)/4.0, 2 - (1*1+3*0.5)/4.0, false, true}, // over the replicas, 1:3
		{"edge", 4, 6 - 3, 2.5 - 2, false, true},                       // over its one upstream
	} {
		hops := lab.Hops(cfg, tc.app, results)
		if len(hops) != tc.hops {
			t.Fatalf("%s: %d hops %+v", tc.app, len(hops), hops)
		}
		h := hops[0]
		if math.Abs(h.AddedSetupMs-tc.addSetup) > 1e-9 || math.Abs(h.AddedRTTMs-tc.addRTT) > 1e-9 {
			t.Errorf("%s adds setup %.3f rtt %.3f, want %.3f %.3f", tc.app, h.AddedSetupMs, h.AddedRTTMs, tc.addSetup, tc.addRTT)
		}
		if leaf := hops[len(hops)-1]; leaf.AddedSetupMs != 0 || leaf.AddedRTTMs != 0 || len(leaf.Upstream) != 0 {
			t.Errorf("%s's last hop %+v adds something", tc.app, leaf)
		}
	}
	if lab.Hops(cfg, "ws", results) != nil {
		t.Error("an app with no upstream has hops")
	}
	delete(results, "ws")
	if lab.Hops(cfg, "gw", results) != nil {
		t.Error("hops with a hop not measured")
	}
}
