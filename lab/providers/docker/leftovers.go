package docker

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/protolab/protolab-tui/lab"
)

// Labs lists the labs protolab left on the engine, by name: every lab with a
// container or network carrying the protolab.lab label, running or not,
// with its containers counted.
func (p *Provider) Labs(ctx context.Context) ([]lab.LabSummary, error) {
	cli, err := p.connect(ctx)
	if err != nil {
		return nil, err
	}
	labelled := client.Filters{}.Add("label", LabelLab)
	seen := map[string]*lab.LabSummary{}
	get := func(name string) *lab.LabSummary {
		if seen[name] == nil {
			seen[name] = &lab.LabSummary{Name: name}
		}
		return seen[name]
	}
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelled})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	for _, c := range list.Items {
		s := get(c.Labels[LabelLab])
		s.Containers++
		if c.State == "running" {
			s.Running++
		}
	}
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: labelled})
	if err != nil {
		return nil, fmt.Errorf("listing networks: %w", err)
	}
	for _, n := range nets.Items {
		get(n.Labels[LabelLab]).Networks++
	}
	out := make([]lab.LabSummary, 0, len(seen))
	for name, s := range seen {
		if name != "" {
			out = append(out, *s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// labContainers lists the containers of the lab's name on the engine,
// whichever run made them, running or not.
func (p *Provider) labContainers(ctx context.Context, cli *client.Client) ([]container.Summary, error) {
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: p.labFilter()})
	if err != nil {
		return nil, fmt.Errorf("listing the containers of lab %q: %w", p.labName(), err)
	}
	return list.Items, nil
}

func running(list []container.Summary) int {
	n := 0
	for _, c := range list {
		if c.State == "running" {
			n++
		}
	}
	return n
}

// where names the engine for people: this machine's (its address), or the
// lab host's of the ssh and vagrant providers.
func (p *Provider) where(cli *client.Client) string {
	cfg := p.env.Config
	if cfg.Provider != Name && cfg.Provider != "" {
		w := "the Docker engine of the " + cfg.Provider + " lab host"
		if cfg.SSH.Host != "" {
			w += " " + cfg.SSH.Host
		}
		return w
	}
	return "the Docker engine at " + cli.DaemonHost()
}

// commandConfig is the configuration the command lines for people are
// made of (the provider the user named; docker when none).
func (p *Provider) commandConfig() lab.Config {
	cfg := p.env.Config
	if cfg.Provider == "" {
		cfg.Provider = Name
	}
	cfg.Name = p.labName()
	return cfg
}

// refusal is Up's error when a lab of this name is already on the engine.
func (p *Provider) refusal(cli *client.Client, list []container.Summary) error {
	cfg := p.commandConfig()
	return &lab.EarlierLabError{Lab: p.labName(), Provider: cfg.Provider, Where: p.where(cli), Containers: len(list), Running: running(list),
		Attach: lab.AttachCommand(cfg), Remove: lab.TeardownCommand(cfg, "")}
}

// warnEarlierLab publishes a lab.EarlierLabEvent when a lab of this name
// has containers on the engine — a crash left it, or another protolab runs
// it — so the explorer says so before Up refuses to start beside it. A
// run that attaches (Config.Attach) is looking for it, and the run's own
// containers (an explorer that starts after its lab came up: serve's
// sessions) are no earlier lab: no warning.
func (p *Provider) warnEarlierLab(ctx context.Context, cli *client.Client) {
	if p.env.Config.Attach {
		return
	}
	list, err := p.labContainers(ctx, cli)
	if err != nil {
		return
	}
	list = slices.DeleteFunc(list, func(c container.Summary) bool { return c.Labels[LabelRun] == p.run }) // this run's own
	if len(list) == 0 {
		return
	}
	cfg := p.commandConfig()
	if p.env.Emit != nil {
		p.env.Emit(lab.EarlierLabEvent{At: lab.At{Time: time.Now()}, Lab: p.labName(), Provider: cfg.Provider, Where: p.where(cli),
			Containers: len(list), Running: running(list), Remove: lab.TeardownCommand(cfg, "")})
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
