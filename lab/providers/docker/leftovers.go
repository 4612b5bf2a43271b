package docker

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/moby/moby/client"

	"github.com/protolab/protolab-tui/lab"
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

// warnEarlierLab publishes a lab.EarlierLabEvent when an earlier lab of
// this name still has containers on the engine — a crash left it, or
// another protolab runs it — before deploying runs into them. Up calls it
// before it builds anything, so the warning comes at once.
func (p *Provider) warnEarlierLab(ctx context.Context, cli *client.Client) {
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: p.labFilter()})
	if err != nil || len(list.Items) == 0 {
		return
	}
	running := 0
	for _, c := range list.Items {
		if c.State == "running" {
			running++
		}
	}
	cfg := p.env.Config
	where := "the Docker engine at " + cli.DaemonHost()
	if cfg.Provider != Name && cfg.Provider != "" {
		where = "the Docker engine of the " + cfg.Provider + " lab host"
		if cfg.SSH.Host != "" {
			where += " " + cfg.SSH.Host
		}
	}
	if cfg.Provider == "" {
		cfg.Provider = Name
	}
	cfg.Name = p.labName()
	if p.env.Emit != nil {
		p.env.Emit(lab.EarlierLabEvent{At: lab.At{Time: time.Now()}, Lab: p.labName(), Provider: cfg.Provider, Where: where,
			Containers: len(list.Items), Running: running, Remove: lab.TeardownCommand(cfg, "")})
	}
}

// CheckEarlierLab implements lab.EarlierLabChecker: it connects to the
// engine and publishes a lab.EarlierLabEvent when an earlier lab of this
// name has containers on it.
func (p *Provider) CheckEarlierLab(ctx context.Context) error {
	cli, err := p.connect(ctx)
	if err != nil {
		return err
	}
	p.warnEarlierLab(ctx, cli)
	return nil
}
