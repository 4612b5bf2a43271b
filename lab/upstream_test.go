package lab_test

import (
	"strings"
	"testing"

	"github.com/protolab/protolab-tui/lab"
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
