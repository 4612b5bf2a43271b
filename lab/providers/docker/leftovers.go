package docker

import (
	"context"
	"fmt"
	"sort"

	"github.com/moby/moby/client"
)

// Labs lists the labs protolab left on the engine, by name: every lab with a
// container or network carrying the protolab.lab label, running or not.
func (p *Provider) Labs(ctx context.Context) ([]string, error) {
	cli, err := p.connect(ctx)
	if err != nil {
		return nil, err
	}
	labelled := client.Filters{}.Add("label", LabelLab)
	seen := map[string]bool{}
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelled})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	for _, c := range list.Items {
		seen[c.Labels[LabelLab]] = true
	}
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: labelled})
	if err != nil {
		return nil, fmt.Errorf("listing networks: %w", err)
	}
	for _, n := range nets.Items {
		seen[n.Labels[LabelLab]] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		if n != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// warnEarlierLab warns (a log event: the explorer's log line) when an
// earlier lab of this name still has containers on the engine — a crash
// left it, or another protolab runs it — before deploying runs into them.
func (p *Provider) warnEarlierLab(ctx context.Context) {
	list, err := p.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: p.labFilter()})
	if err != nil || len(list.Items) == 0 {
		return
	}
	running := 0
	for _, c := range list.Items {
		if c.State == "running" {
			running++
		}
	}
	p.env.Log("warn", Name, fmt.Sprintf("an earlier lab %q is still on this engine (%d containers, %d running): deploying will fail on them; protolab-tui --provider %s --teardown --name %s removes it",
		p.labName(), len(list.Items), running, Name, p.labName()))
}
