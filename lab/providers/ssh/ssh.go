// Package ssh is the SSH provider: any host reachable over SSH becomes the
// lab host. It connects with the SSH runner, provisions Docker when the host
// has none (the matching provision/ script), and then runs the docker
// provider over the tunnel — the engine's unix socket dialed through SSH,
// the apps reached through SSH port forwards (nothing needs opening on the
// remote firewall), capture by tcpdump streamed back over SSH.
package ssh

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/providers/docker"
	"github.com/protolab/protolab-tui/lab/sshrun"
	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/provision"
)

// Name is the provider's name.
const Name = "ssh"

// dockerSocket is where the engine listens on the lab host.
const dockerSocket = "/var/run/docker.sock"

// Provider is a lab host over SSH.
type Provider struct {
	env    lab.Env
	cfg    sshrun.Config
	priv   Privilege
	runner *sshrun.Runner
	docker *docker.Provider

	mu       sync.Mutex
	forwards map[int]net.Listener // remote port → local listener
	host     lab.HostInfo         // as Up described it, the link's state kept current
}

// Privilege says how remote commands that need root (tcpdump, provisioning)
// get it: "auto" (sudo -n unless the user is root), "sudo", or "none".
type Privilege string

// New returns a constructor for a host reached with cfg.
func New(cfg sshrun.Config) func(lab.Env) (lab.Provider, error) { return NewWithPrivilege(cfg, "auto") }

// NewWithPrivilege is New with the way to root (--remote-priv).
func NewWithPrivilege(cfg sshrun.Config, priv Privilege) func(lab.Env) (lab.Provider, error) {
	return func(env lab.Env) (lab.Provider, error) {
		if cfg.Host == "" {
			return nil, errors.New("--provider ssh needs --host user@host[:port]")
		}
		switch priv {
		case "", "auto", "sudo", "none":
		default:
			return nil, fmt.Errorf("--remote-priv %q: want auto, sudo or none", priv)
		}
		return &Provider{env: env, cfg: cfg, priv: priv, forwards: map[int]net.Listener{}}, nil
	}
}

// sudo says whether root-only commands go through sudo -n.
func (p *Provider) sudo() bool { return p.sudoFor(p.runner) }

// sudoFor says whether root-only commands over r go through sudo -n.
func (p *Provider) sudoFor(r *sshrun.Runner) bool {
	switch p.priv {
	case "sudo":
		return true
	case "none":
		return false
	}
	return r.User() != "root"
}

// Name implements lab.Provider.
func (p *Provider) Name() string { return Name }

// Runner implements lab.Provider (valid after Up).
func (p *Provider) Runner() lab.Runner {
	if p.runner == nil {
		return lab.LocalRunner{}
	}
	return p.runner
}

// Up implements lab.Provider.
func (p *Provider) Up(ctx context.Context) (lab.HostInfo, error) {
	cfg := p.runnerConfig(ctx)
	cfg.Link = p.linkChanged
	p.env.Progress("up", "connecting to "+cfg.Host, 0, 4)
	r, err := sshrun.Dial(ctx, cfg)
	if err != nil {
		return lab.HostInfo{}, err
	}
	p.runner = r
	p.env.Progress("up", "detecting the OS", 1, 4)
	osr, err := p.osRelease(ctx)
	if err != nil {
		return lab.HostInfo{}, err
	}
	if c, err := r.Dial(ctx, "unix", dockerSocket); err == nil {
		c.Close()
	} else {
		p.env.Progress("up", "no Docker engine: provisioning "+osr["PRETTY_NAME"], 2, 4)
		if err := p.provision(ctx, osr); err != nil {
			return lab.HostInfo{}, err
		}
	}
	p.env.Progress("up", "connecting to the Docker engine over SSH", 3, 4)
	d, err := p.dockerOver(r, p.forward)
	if err != nil {
		return lab.HostInfo{}, err
	}
	p.mu.Lock()
	p.docker = d
	p.mu.Unlock()
	host, err := d.Up(ctx)
	if err != nil {
		return lab.HostInfo{}, err
	}
	host.Provider = Name
	host.Address = r.Addr()
	host.Details = append([]lab.KV{{Key: "ssh", Value: r.User() + "@" + r.Addr()}, {Key: "link", Value: "up"}, {Key: "os", Value: osr["PRETTY_NAME"]}}, host.Details...)
	p.mu.Lock()
	p.host = host
	p.mu.Unlock()
	return host, nil
}

// dockerOver is the docker provider of the host's engine, reached through
// r; forward makes its published ports reachable here (nil: none).
func (p *Provider) dockerOver(r *sshrun.Runner, forward func(context.Context, int) (string, error)) (*docker.Provider, error) {
	return docker.NewWith(p.env, docker.Options{
		Dial:    func(ctx context.Context, _, _ string) (net.Conn, error) { return r.Dial(ctx, "unix", dockerSocket) },
		Runner:  r,
		Forward: forward,
		Sudo:    p.sudoFor(r),
		Purge:   p.env.Config.Docker.Purge,
	})
}

// engine connects to the host for a look at its engine alone (RemoveLab,
// FindLab): the runner (to close when done) and the docker provider, or
// nil when the host has no engine (so no lab either).
func (p *Provider) engine(ctx context.Context) (*sshrun.Runner, *docker.Provider, error) {
	r, err := sshrun.Dial(ctx, p.runnerConfig(ctx))
	if err != nil {
		return nil, nil, err
	}
	c, err := r.Dial(ctx, "unix", dockerSocket)
	if err != nil {
		return r, nil, nil
	}
	c.Close()
	d, err := p.dockerOver(r, nil)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return r, d, nil
}

// RemoveLab implements lab.LabRemover: every container and network of
// the lab's name on the host's engine, whichever run made them.
func (p *Provider) RemoveLab(ctx context.Context) error {
	r, d, err := p.engine(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	if d == nil {
		return nil // no engine: nothing of a lab there
	}
	return d.RemoveLab(ctx)
}

// Labs lists the labs protolab left on the host's engine (down --all).
func (p *Provider) Labs(ctx context.Context) ([]lab.LabSummary, error) {
	r, d, err := p.engine(ctx)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if d == nil {
		return nil, nil
	}
	return d.Labs(ctx)
}

// FindLab implements lab.LabFinder: the lab of this name on the host's
// engine (nil when none runs there).
func (p *Provider) FindLab(ctx context.Context) (*lab.RunningLab, error) {
	r, d, err := p.engine(ctx)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if d == nil {
		return nil, nil
	}
	return d.FindLab(ctx)
}

// runnerConfig is the SSH runner's configuration, with the questions
// (an unknown host key, a key's passphrase) put to the front end.
func (p *Provider) runnerConfig(ctx context.Context) sshrun.Config {
	cfg := p.cfg
	if p.env.Ask != nil {
		cfg.ConfirmHostKey = func(host, fp string) bool {
			a, err := p.env.Ask(ctx, fmt.Sprintf("The host key of %s is unknown: %s. Trust it and add it to known_hosts? (yes/no)", host, fp), false)
			return err == nil && (strings.EqualFold(strings.TrimSpace(a), "yes") || strings.EqualFold(strings.TrimSpace(a), "y"))
		}
		cfg.Passphrase = func(file string) ([]byte, error) {
			a, err := p.env.Ask(ctx, "Passphrase for "+file+":", true)
			if err != nil {
				return nil, fmt.Errorf("%s is encrypted: add it to ssh-agent, or use the TUI to type its passphrase (%w)", file, err)
			}
			return []byte(a), nil
		}
	}
	return cfg
}

// linkChanged tells the front ends that the SSH link went down or came
// back: a log line, and the host's "link" detail (the host pane shows it
// with no change of its own).
func (p *Provider) linkChanged(up bool, msg string) {
	level, state := "warn", "lost since "+time.Now().Format("15:04:05")+": reconnecting"
	if up {
		level, state = "info", "up (re-established "+time.Now().Format("15:04:05")+")"
	}
	p.env.Log(level, "ssh", msg)
	p.mu.Lock()
	host := p.host
	if host.Provider == "" {
		p.mu.Unlock()
		return // still coming up: Up reports the host
	}
	host.Details = append([]lab.KV(nil), host.Details...)
	for i, kv := range host.Details {
		if kv.Key == "link" {
			host.Details[i].Value = state
		}
	}
	p.host = host
	p.mu.Unlock()
	if p.env.Emit != nil {
		p.env.Emit(lab.HostEvent{At: lab.At{Time: time.Now()}, Host: host})
	}
}

func (p *Provider) osRelease(ctx context.Context) (map[string]string, error) {
	var out bytes.Buffer
	if err := p.runner.Run(ctx, lab.Cmd{Argv: []string{"cat", "/etc/os-release"}, Stdout: &out}); err != nil {
		return nil, fmt.Errorf("reading /etc/os-release on the lab host: %w", err)
	}
	return ParseOSRelease(&out), nil
}

// ParseOSRelease reads os-release KEY=value lines.
func ParseOSRelease(r io.Reader) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if ok && k != "" && !strings.HasPrefix(k, "#") {
			m[k] = strings.Trim(v, `"'`)
		}
	}
	return m
}

// ProvisionScript names the provision/ script for an os-release.
func ProvisionScript(osr map[string]string) (string, error) {
	ids := strings.Fields(osr["ID"] + " " + osr["ID_LIKE"])
	for _, id := range ids {
		switch id {
		case "debian", "ubuntu":
			return "initial-provision-debian.sh", nil
		case "rhel":
			if osr["ID"] == "rhel" {
				return "initial-provision-rhel.sh", nil
			}
		case "centos", "rocky", "almalinux", "fedora":
			return "initial-provision-centos.sh", nil
		}
	}
	if strings.Contains(osr["ID_LIKE"], "rhel") {
		return "initial-provision-centos.sh", nil
	}
	return "", fmt.Errorf("no provision script for %q (ID=%s): install Docker Engine and tcpdump on the host by hand", osr["PRETTY_NAME"], osr["ID"])
}

// provision uploads and runs the matching provision/ script (carried in the
// binary), streaming its
// output as log lines.
func (p *Provider) provision(ctx context.Context, osr map[string]string) error {
	name, err := ProvisionScript(osr)
	if err != nil {
		return err
	}
	script, err := provision.Scripts.ReadFile(name)
	if err != nil {
		return fmt.Errorf("provision script %s: %w", name, err)
	}
	remote := "/tmp/protolab-" + name
	if err := p.runner.Upload(ctx, script, remote, 0o700); err != nil {
		return err
	}
	argv := []string{"bash", remote}
	if p.sudo() {
		argv = append([]string{"sudo", "-n"}, argv...)
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.env.Log("info", "provision", sc.Text())
		}
	}()
	err = p.runner.Run(ctx, lab.Cmd{Argv: argv, Stdout: pw, Stderr: pw})
	pw.Close()
	<-done
	if err != nil {
		return fmt.Errorf("provisioning with %s: %w", name, err)
	}
	return nil
}

// forward makes a port of the lab host reachable on this machine's
// loopback, through the SSH connection; one forward per port, kept across
// redeploys.
func (p *Provider) forward(ctx context.Context, remotePort int) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l, ok := p.forwards[remotePort]; ok {
		return l.Addr().String(), nil
	}
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(remotePort))
	if c, err := p.runner.Dial(ctx, "tcp", target); err == nil {
		c.Close()
	} else if d, derr := (&net.Dialer{}).DialContext(ctx, "tcp", target); derr == nil {
		// Not listening on the lab host's loopback but reachable from here
		// (an engine shared with this machine): use it directly.
		d.Close()
		p.env.Log("info", "ssh", fmt.Sprintf("port %d is not on the lab host's loopback but is reachable from here: using it directly", remotePort))
		return target, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	p.forwards[remotePort] = l
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				rc, err := p.runner.Dial(context.Background(), "tcp", target)
				if err != nil {
					p.env.Log("warn", "ssh", fmt.Sprintf("forward to %s: %v", target, err))
					return
				}
				defer rc.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(rc, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, rc); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return l.Addr().String(), nil
}

func (p *Provider) needUp() error {
	if p.docker == nil {
		return errors.New("the ssh lab host is not up")
	}
	return nil
}

// ShellActions implements lab.ShellActioner: the host's docker, as the
// docker provider has it (nothing before Up).
func (p *Provider) ShellActions(selected string, apps []lab.AppStatus) []lab.ShellAction {
	p.mu.Lock()
	d := p.docker
	p.mu.Unlock()
	if d == nil {
		return nil
	}
	return d.ShellActions(selected, apps)
}

// Deploy implements lab.Provider.
func (p *Provider) Deploy(ctx context.Context, apps []lab.App) ([]lab.AppStatus, error) {
	if err := p.needUp(); err != nil {
		return nil, err
	}
	return p.docker.Deploy(ctx, apps)
}

// Redeploy implements lab.Provider.
func (p *Provider) Redeploy(ctx context.Context, apps []lab.App) ([]lab.AppStatus, error) {
	if err := p.needUp(); err != nil {
		return nil, err
	}
	return p.docker.Redeploy(ctx, apps)
}

// Status implements lab.Provider.
func (p *Provider) Status(ctx context.Context) ([]lab.AppStatus, error) {
	if err := p.needUp(); err != nil {
		return nil, err
	}
	return p.docker.Status(ctx)
}

// OpenCapture implements lab.CaptureOpener: tcpdump on the lab host.
func (p *Provider) OpenCapture(ctx context.Context, ports wire.PortMap) (capture.Source, capture.Mode, wire.PortMap, error) {
	if err := p.needUp(); err != nil {
		return nil, "", nil, err
	}
	return p.docker.OpenCapture(ctx, ports)
}

// Teardown implements lab.Provider: the containers and network this run
// created go (a lab it attached to, or one of the same name it refused to
// start beside, stays: see the docker provider), the forwards close, the
// SSH connection ends. RemoveLab removes a whole lab.
func (p *Provider) Teardown(ctx context.Context) error {
	var err error
	if p.docker != nil {
		err = p.docker.Teardown(ctx)
	}
	p.mu.Lock()
	for port, l := range p.forwards {
		l.Close()
		delete(p.forwards, port)
	}
	p.mu.Unlock()
	if p.runner != nil {
		p.runner.Close()
		p.runner, p.docker = nil, nil
	}
	return err
}
