package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/protocol"
)

// labels are an app container's labels: the lab, the app (its name, kind,
// protocol, and its whole configuration with its place in the lab, so a
// run that attaches reads the lab back), this run's id, and the lab CA its
// certificate comes from.
func (p *Provider) labels(s lab.App) (map[string]string, error) {
	spec, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("the labels of app %s: %w", s.Name, err)
	}
	order := len(p.env.Config.Apps)
	for i, a := range p.env.Config.Apps {
		if a.Name == s.Name {
			order = i
		}
	}
	m := map[string]string{LabelLab: p.labName(), LabelApp: s.Name, LabelKind: s.Kind, LabelProtocol: string(s.Protocol),
		LabelRun: p.run, LabelSpec: string(spec), LabelOrder: strconv.Itoa(order), LabelStateDir: p.env.Config.StateDir}
	if p.env.PKI != nil {
		m[LabelCA] = p.env.PKI.Fingerprint()
	}
	return m, nil
}

// appOf reads an app's configuration back from its container's labels (a
// container of an older protolab has no spec: its name, kind and protocol
// then), on the port it is published on; order is its place in the lab.
func appOf(c container.Summary) (a lab.App, order int) {
	if json.Unmarshal([]byte(c.Labels[LabelSpec]), &a) != nil || a.Name == "" {
		a = lab.App{Name: c.Labels[LabelApp], Kind: c.Labels[LabelKind], Protocol: protocol.Protocol(c.Labels[LabelProtocol])}
	}
	for _, pt := range c.Ports {
		if pt.PublicPort != 0 {
			a.Port = int(pt.PublicPort)
			break
		}
	}
	order, err := strconv.Atoi(c.Labels[LabelOrder])
	if err != nil {
		order = 1 << 20 // unknown: after the others, by name
	}
	return a, order
}

// appsOf is the lab's apps as its containers have them, in the lab's order.
func appsOf(list []container.Summary) []lab.App {
	type ordered struct {
		app   lab.App
		order int
	}
	var all []ordered
	for _, c := range list {
		a, o := appOf(c)
		all = append(all, ordered{a, o})
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].order != all[j].order {
			return all[i].order < all[j].order
		}
		return all[i].app.Name < all[j].app.Name
	})
	out := make([]lab.App, len(all))
	for i, o := range all {
		out[i] = o.app
	}
	return out
}

// FindLab implements lab.LabFinder: the lab of this name on the engine,
// its apps read from their containers' labels, each on its published port
// (nil when there is none). It creates nothing. A lab brought up with
// another lab CA is an error naming its state directory: its TLS apps hold
// that CA's certificate, which this lab's clients would not trust.
func (p *Provider) FindLab(ctx context.Context) (*lab.RunningLab, error) {
	cli, err := p.dialEngine(ctx)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	list, err := p.labContainers(ctx, cli)
	if err != nil || len(list) == 0 {
		return nil, err
	}
	if p.env.PKI != nil {
		for _, c := range list {
			if ca := c.Labels[LabelCA]; ca != "" && ca != p.env.PKI.Fingerprint() {
				return nil, fmt.Errorf("lab %q on %s was brought up with another lab CA (the one in %s): its TLS apps hold that CA's certificate, "+
					"which this run's clients would not trust: attach with --state-dir %s", p.labName(), p.where(cli), c.Labels[LabelStateDir], c.Labels[LabelStateDir])
			}
		}
	}
	return &lab.RunningLab{Apps: appsOf(list), Where: p.where(cli), Containers: len(list), Running: running(list)}, nil
}

// adopt takes the lab of this name that runs on the engine as this run's
// lab (Config.Attach): its apps as their containers are, its network, its
// events and logs (from now on). Nothing is built or created; Deploy
// reports the apps as they run, Redeploy is refused, and Teardown leaves
// them running.
func (p *Provider) adopt(ctx context.Context, cli *client.Client, list []container.Summary) (lab.HostInfo, error) {
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return lab.HostInfo{}, fmt.Errorf("docker info: %w", err)
	}
	apps := map[string]*app{}
	inner := map[string]int{}
	var img, shellImg, run string
	var live []*app // running containers, whose logs are followed
	for _, c := range list {
		in, err := cli.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			return lab.HostInfo{}, fmt.Errorf("inspecting container %s of lab %q: %w", c.ID[:12], p.labName(), err)
		}
		spec, _ := appOf(c)
		var cport network.Port
		if in.Container.Config != nil {
			for pt := range in.Container.Config.ExposedPorts {
				cport = pt
			}
		}
		port := publishedPort(in.Container, cport)
		local := ""
		if port != 0 {
			host := p.env.Config.Bind
			for _, b := range in.Container.NetworkSettings.Ports[cport] {
				if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
					host = b.HostIP.String() // where it was published
				}
			}
			local = net.JoinHostPort(host, strconv.Itoa(port))
			if p.forward != nil {
				if local, err = p.forward(ctx, port); err != nil {
					return lab.HostInfo{}, fmt.Errorf("forwarding port %d of %s's container: %w", port, spec.Name, err)
				}
			}
		}
		a := &app{spec: spec, id: c.ID, port: port, local: local}
		apps[spec.Name] = a
		inner[spec.Name] = int(cport.Num())
		if k, _ := protocol.LookupKind(spec.Kind); k.Shell {
			shellImg = c.Image
		} else {
			img = c.Image
		}
		if run == "" {
			run = c.Labels[LabelRun]
		}
		if c.State == "running" {
			live = append(live, a)
		}
	}
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: p.labFilter()})
	if err != nil {
		return lab.HostInfo{}, fmt.Errorf("listing networks: %w", err)
	}
	p.mu.Lock()
	p.attached, p.attachedRun, p.apps, p.inner = true, run, apps, inner
	p.image, p.shellImage = img, shellImg
	for _, n := range nets.Items {
		if n.Name == p.networkName() {
			p.netID = n.ID
		}
	}
	p.mu.Unlock()
	p.watch()
	since := fmt.Sprintf("%d", time.Now().Unix())
	for _, a := range live {
		p.followLogs(a.id, a.spec.Name, since)
	}
	if img == "" {
		img = shellImg
	}
	host := p.hostInfo(cli, info.Info, img)
	what := fmt.Sprintf("lab %q of another run (%s, %d running): left running when this run ends", p.labName(), lab.Containers(len(list)), running(list))
	host.Details = append(host.Details, lab.KV{Key: "attached", Value: what})
	p.env.Log("info", "docker", fmt.Sprintf("attached to lab %q on %s (%s, %d running): its apps are served as they run, and it is left running when this run ends",
		p.labName(), p.where(cli), lab.Containers(len(list)), running(list)))
	return host, nil
}
