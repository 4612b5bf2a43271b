// Package docker is the Docker provider: the lab's apps as containers on a
// Docker engine, talked to through the Engine API (github.com/moby/moby/client)
// — this machine's engine, or a remote one through an injected dialer (the
// SSH runner's). Images are built FROM scratch from the apps cross-compiled
// for the engine's platform; everything the lab creates is labelled, so
// status, logs and teardown find it even after a crash. A run's teardown
// removes what that run created (labelled with its run id) and nothing
// else; a lab of the same name already on the engine is refused at Up, or
// adopted and left running when the run asks to attach (serve).
package docker

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"

	"github.com/protolab/protolab-tui/apps/appmain"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/pki"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/protocol/labtoken"
)

// Name is the provider's name.
const Name = "docker"

// Labels on everything the lab creates.
const (
	LabelLab      = "protolab.lab"
	LabelApp      = "protolab.app" // the app's name
	LabelKind     = "protolab.kind"
	LabelProtocol = "protolab.protocol"
	LabelHash     = "protolab.hash"
	LabelImage    = "protolab.image"
	// LabelRun is the id of the run that created the container or
	// network: a run's teardown removes what carries its own.
	LabelRun = "protolab.run"
	// LabelSpec is the app's configuration (lab.App as JSON) and
	// LabelOrder its place in the lab, so a run that attaches reads the
	// lab's apps back from the engine.
	LabelSpec  = "protolab.spec"
	LabelOrder = "protolab.order"
	// LabelCA is the fingerprint of the lab CA the app's certificate
	// comes from, and LabelStateDir the state directory that holds it.
	LabelCA       = "protolab.ca"
	LabelStateDir = "protolab.state-dir"
)

// Dialer opens connections to the engine (for a remote engine: through SSH).
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// Provider runs the apps as containers.
type Provider struct {
	env     lab.Env
	dial    Dialer
	runner  lab.Runner
	purge   bool
	forward func(ctx context.Context, remotePort int) (string, error)
	sudo    bool

	mu    sync.Mutex
	cli   *client.Client
	image string
	// shellImage is the app image with a shell, for kinds that run one.
	shellImage string
	netID      string
	apps       map[string]*app
	stopBg     context.CancelFunc
	bgCtx      context.Context
	bgDone     sync.WaitGroup
	engine     string
	started    map[string]bool // containers whose logs are followed

	// run is this run's id, the LabelRun of everything it creates.
	run string
	// attached: the lab was already on the engine and this run adopted it
	// (Config.Attach): it creates nothing and its teardown removes nothing.
	attached bool
	// attachedRun is the LabelRun of the lab attached to.
	attachedRun string
	// inner are the adopted apps' inner ports, as their containers have them.
	inner map[string]int
	// claimedNet is the network a crashed run of this lab's name left
	// (with no container of it on the engine), which this run took over:
	// its teardown removes it.
	claimedNet string
}

type app struct {
	spec  lab.App
	id    string
	port  int    // published port on the engine's host
	local string // where this machine reaches it (the port itself, or a forward)
}

// Options tune the provider.
type Options struct {
	// Dial reaches the engine; nil uses DOCKER_HOST or the default socket.
	Dial Dialer
	// Runner runs commands on the engine's host; nil is this machine.
	Runner lab.Runner
	// Purge makes Teardown remove the lab's images too.
	Purge bool
	// Forward, for an engine on another host, makes a published port
	// reachable from this machine (an SSH port forward) and returns the
	// local address; nil dials the bind address directly.
	Forward func(ctx context.Context, remotePort int) (string, error)
	// Sudo runs remote tcpdump through `sudo -n`.
	Sudo bool
}

// New creates the provider for this machine's engine.
func New(env lab.Env) (lab.Provider, error) { return NewWith(env, Options{}) }

// NewWith creates the provider with an injected transport and runner.
func NewWith(env lab.Env, o Options) (*Provider, error) {
	r := o.Runner
	if r == nil {
		r = lab.LocalRunner{}
	}
	id := make([]byte, 6)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("making the run's id: %w", err)
	}
	return &Provider{env: env, dial: o.Dial, runner: r, purge: o.Purge, forward: o.Forward, sudo: o.Sudo,
		apps: map[string]*app{}, started: map[string]bool{}, run: hex.EncodeToString(id)}, nil
}

// Name implements lab.Provider.
func (p *Provider) Name() string { return Name }

// Runner implements lab.Provider.
func (p *Provider) Runner() lab.Runner { return p.runner }

func (p *Provider) labName() string { return p.env.Config.Name }

// connect opens the API client and checks the engine answers, within 5s.
func (p *Provider) connect(ctx context.Context) (*client.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cli != nil {
		return p.cli, nil
	}
	cli, err := p.dialEngine(ctx)
	if err != nil {
		return nil, err
	}
	p.cli, p.engine = cli, cli.DaemonHost()
	return cli, nil
}

// dialEngine opens an API client of the engine and checks it answers,
// within 5s.
func (p *Provider) dialEngine(ctx context.Context) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv} // the client negotiates the API version itself
	if p.dial != nil {
		opts = append(opts, client.WithHost("unix:///var/run/docker.sock"), client.WithDialContext(p.dial))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{}); err != nil {
		cli.Close()
		return nil, fmt.Errorf("the Docker engine at %s does not answer (%v): start it (systemctl start docker, or dockerd &), point DOCKER_HOST at one, or use --provider local", cli.DaemonHost(), err)
	}
	return cli, nil
}

// Up implements lab.Provider: connect, describe the engine, build the image
// when the apps changed, make the lab network and start watching events.
// A lab of this name already on the engine is refused (a
// *lab.EarlierLabError) before anything is built — or, with Config.Attach,
// adopted (attach.go).
func (p *Provider) Up(ctx context.Context) (lab.HostInfo, error) {
	cli, err := p.connect(ctx)
	if err != nil {
		return lab.HostInfo{}, err
	}
	earlier, err := p.labContainers(ctx, cli)
	if err != nil {
		return lab.HostInfo{}, err
	}
	if len(earlier) > 0 {
		if p.env.Config.Attach {
			return p.adopt(ctx, cli, earlier)
		}
		return lab.HostInfo{}, p.refusal(cli, earlier)
	}
	info, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return lab.HostInfo{}, fmt.Errorf("docker info: %w", err)
	}
	in := info.Info
	p.env.Progress("up", "building the app image for "+in.OSType+"/"+in.Architecture, 0, 3)
	img, err := p.ensureImage(ctx, in.OSType, goarch(in.Architecture))
	if err != nil {
		return lab.HostInfo{}, err
	}
	p.env.Progress("up", "creating the lab network", 1, 3)
	if err := p.ensureNetwork(ctx); err != nil {
		return lab.HostInfo{}, err
	}
	p.env.Progress("up", "watching the engine's events", 2, 3)
	p.watch()
	return p.hostInfo(cli, in, img), nil
}

// hostInfo describes the engine and the lab's ports.
func (p *Provider) hostInfo(cli *client.Client, in system.Info, img string) lab.HostInfo {
	host := lab.HostInfo{
		Provider: Name, Name: in.Name, Address: p.env.Config.Bind,
		OS: fmt.Sprintf("%s/%s (%s)", in.OSType, in.Architecture, in.OperatingSystem),
		Details: []lab.KV{
			{Key: "engine", Value: in.ServerVersion + " at " + p.engine},
			{Key: "api", Value: cli.ClientVersion()},
			{Key: "image", Value: img},
			{Key: "network", Value: p.networkName()},
			{Key: "storage", Value: in.Driver},
			{Key: "cpus/mem", Value: fmt.Sprintf("%d / %d MiB", in.NCPU, in.MemTotal>>20)},
		},
	}
	inner := p.innerPorts()
	for _, a := range p.env.Config.Apps {
		port := "any free port"
		if a.Port != 0 {
			port = strconv.Itoa(a.Port)
		}
		host.Ports = append(host.Ports, fmt.Sprintf("%s %s:%s → %d", a.Name, p.env.Config.Bind, port, inner[a.Name]))
	}
	return host
}

// innerPorts is the port each app listens on in its container: as the
// adopted containers have them, else InnerPorts of the lab's apps.
func (p *Provider) innerPorts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inner != nil {
		return maps.Clone(p.inner)
	}
	return InnerPorts(p.env.Config.Apps)
}

func goarch(engineArch string) string {
	switch engineArch {
	case "x86_64":
		return "amd64"
	case "aarch64":
		return "arm64"
	}
	return engineArch
}

// ensureImage builds the FROM scratch image from the app binary (see
// appBinary), unless an image of the same binary exists.
func (p *Provider) ensureImage(ctx context.Context, goos, arch string) (string, error) {
	tag, err := p.buildImage(ctx, goos, arch, false)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	p.image = tag
	p.mu.Unlock()
	if p.needsShell(p.env.Config.Apps) {
		shell, err := p.buildImage(ctx, goos, arch, true)
		if err != nil {
			return "", err
		}
		p.mu.Lock()
		p.shellImage = shell
		p.mu.Unlock()
	}
	return tag, nil
}

// needsShell says whether one of apps is of a kind that runs a shell (a
// web terminal): its containers need the image with one.
func (p *Provider) needsShell(apps []lab.App) bool {
	for _, a := range apps {
		if k, _ := protocol.LookupKind(a.Kind); k.Shell {
			return true
		}
	}
	return false
}

// buildImage builds the app image — with a shell in it (a static busybox
// of this machine's, as /bin/sh) when shell is set — unless an image of
// the same files exists, and returns its tag.
func (p *Provider) buildImage(ctx context.Context, goos, arch string, shell bool) (string, error) {
	app, err := p.appBinary(ctx, goos, arch)
	if err != nil {
		return "", err
	}
	from := app.from
	type file struct {
		name string
		mode int64
		data []byte
	}
	df := dockerfile
	files := []file{{"Dockerfile", 0o644, nil}, {appmain.Name, 0o755, app.bin}}
	what := "app image"
	if shell {
		sh, shFrom, err := shellBinary(arch)
		if err != nil {
			return "", err
		}
		df = shellDockerfile
		files = append(files, file{"busybox", 0o755, sh})
		what, from = "app image with a shell", from+" and "+shFrom
	}
	if len(app.libs) > 0 {
		df = withLibs(df, app.libDirs)
		for _, l := range app.libs {
			files = append(files, file{path.Join("root", l.path), 0o755, l.data})
		}
	}
	files[0].data = []byte(df)
	p.env.Log("info", "docker build", what+" from "+from)
	h := sha256.New()
	for _, f := range files {
		if strings.HasPrefix(f.name, "root/") {
			h.Write([]byte(f.name)) // where a library goes matters too
		}
		h.Write(f.data)
	}
	hash := hex.EncodeToString(h.Sum(nil))[:16]
	tag := "protolab-app:" + hash
	list, err := p.cli.ImageList(ctx, client.ImageListOptions{Filters: client.Filters{}.Add("label", LabelHash+"="+hash)})
	if err != nil {
		return "", fmt.Errorf("listing images: %w", err)
	}
	if len(list.Items) > 0 {
		return tag, nil // the same binary is already an image: the cache
	}
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	res, err := p.cli.ImageBuild(ctx, &ctxTar, client.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true, Dockerfile: "Dockerfile",
		Labels: map[string]string{LabelHash: hash, LabelImage: "app"},
	})
	if err != nil {
		return "", fmt.Errorf("building image %s: %w", tag, err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		var m struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			if m.Error != "" {
				return "", fmt.Errorf("building image %s: %s", tag, m.Error)
			}
			if s := strings.TrimSpace(m.Stream); s != "" {
				p.env.Log("info", "docker build", s)
			}
		}
	}
	return tag, sc.Err()
}

func (p *Provider) networkName() string { return "protolab-" + p.labName() }

// labFilter finds everything of the lab's name, whichever run made it.
func (p *Provider) labFilter() client.Filters {
	return client.Filters{}.Add("label", LabelLab+"="+p.labName())
}

// ownFilter finds what this run answers for: what it created, or the whole
// lab it attached to.
func (p *Provider) ownFilter() client.Filters {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.attached {
		return p.labFilter()
	}
	return client.Filters{}.Add("label", LabelRun+"="+p.run)
}

// ensureNetwork makes the lab network. One of the name left by a crashed
// run (Up found no container of the lab) is taken over, to be removed at
// teardown.
func (p *Provider) ensureNetwork(ctx context.Context) error {
	nets, err := p.cli.NetworkList(ctx, client.NetworkListOptions{Filters: p.labFilter()})
	if err != nil {
		return fmt.Errorf("listing networks: %w", err)
	}
	for _, n := range nets.Items {
		if n.Name == p.networkName() {
			p.mu.Lock()
			p.netID = n.ID
			if n.Labels[LabelRun] != p.run && !p.attached {
				p.claimedNet = n.ID
			}
			p.mu.Unlock()
			return nil
		}
	}
	res, err := p.cli.NetworkCreate(ctx, p.networkName(), client.NetworkCreateOptions{Driver: "bridge", Labels: map[string]string{LabelLab: p.labName(), LabelRun: p.run}})
	if err != nil {
		return fmt.Errorf("creating network %s: %w", p.networkName(), err)
	}
	p.netID = res.ID
	return nil
}

// hasUpstreams says whether an app of the lab hands on to another (then
// traffic crosses the lab network).
func (p *Provider) hasUpstreams() bool {
	for _, a := range p.env.Config.Apps {
		if len(a.Upstream) > 0 {
			return true
		}
	}
	return false
}

// bridge names the lab network's bridge interface on this host and its
// gateway address.
func (p *Provider) bridge(ctx context.Context) (string, netip.Addr, error) {
	res, err := p.cli.NetworkInspect(ctx, p.networkName(), client.NetworkInspectOptions{})
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("inspecting network %s: %w", p.networkName(), err)
	}
	n := res.Network
	iface := n.Options["com.docker.network.bridge.name"]
	if iface == "" && len(n.ID) >= 12 {
		iface = "br-" + n.ID[:12]
	}
	var gw netip.Addr
	for _, c := range n.IPAM.Config {
		if c.Gateway.IsValid() {
			gw = c.Gateway
			break
		}
	}
	if iface == "" || !gw.IsValid() {
		return "", netip.Addr{}, fmt.Errorf("network %s has no bridge or gateway the engine reports", p.networkName())
	}
	return iface, gw, nil
}

func (p *Provider) containerName(appName string) string {
	return "protolab-" + p.labName() + "-" + appName
}

// ShellActions implements lab.ShellActioner: the lab's containers (by
// label) and the selected app's logs, with the docker CLI of the lab host.
func (p *Provider) ShellActions(selected string, apps []lab.AppStatus) []lab.ShellAction {
	out := []lab.ShellAction{{Key: "f2", Label: "docker ps (this lab)", Command: "docker ps -a --filter label=" + LabelLab + "=" + p.labName()}}
	if selected != "" {
		out = append(out, lab.ShellAction{Key: "f3", Label: "logs of " + selected, Command: "docker logs -f --tail 50 " + p.containerName(selected)})
	}
	return out
}

// Deploy implements lab.Provider. An attached lab's apps run already:
// their status is the deploy's.
func (p *Provider) Deploy(ctx context.Context, specs []lab.App) ([]lab.AppStatus, error) {
	if p.isAttached() {
		return p.Status(ctx)
	}
	for i, s := range specs {
		p.env.Progress("deploy", "starting container "+p.containerName(s.Name), i, len(specs))
		if err := p.start(ctx, s, s.Port); err != nil {
			return nil, err
		}
	}
	return p.Status(ctx)
}

// Redeploy implements lab.Provider: the image is rebuilt when the apps
// changed, and each container is replaced in turn on the same port. An
// attached lab's apps are the run's that brought it up: refused.
func (p *Provider) Redeploy(ctx context.Context, specs []lab.App) ([]lab.AppStatus, error) {
	if p.isAttached() {
		return nil, fmt.Errorf("lab %q is attached (another run brought it up, and keeps it): this run does not replace its apps; "+
			"redeploy from the run that brought it up, or remove it (%s) and bring up a lab of your own", p.labName(), lab.TeardownCommand(p.commandConfig(), ""))
	}
	info, err := p.cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return nil, fmt.Errorf("docker info: %w", err)
	}
	if _, err := p.ensureImage(ctx, info.Info.OSType, goarch(info.Info.Architecture)); err != nil {
		return nil, err
	}
	for i, s := range specs {
		p.env.Progress("redeploy", "replacing "+p.containerName(s.Name), i, len(specs))
		port := s.Port
		p.mu.Lock()
		if a := p.apps[s.Name]; a != nil {
			port = a.port
		}
		p.mu.Unlock()
		if err := p.remove(ctx, p.containerName(s.Name)); err != nil {
			return nil, err
		}
		if err := p.start(ctx, s, port); err != nil {
			return nil, err
		}
	}
	return p.Status(ctx)
}

func (p *Provider) remove(ctx context.Context, nameOrID string) error {
	_, err := p.cli.ContainerRemove(ctx, nameOrID, client.ContainerRemoveOptions{Force: true})
	if err != nil && !strings.Contains(strings.ToLower(err.Error()), "no such container") {
		return fmt.Errorf("removing container %s: %w", nameOrID, err)
	}
	return nil
}

// InnerPorts is the port each app listens on inside its container: its
// protocol's default port for the first app of each protocol, the next
// hundred up for each further one (hub-1 3002, hub-2 3102), skipping the
// lab's published ports. Every app's inner port is its own, so a capture on
// the lab network tells the inside legs apart by port, as the one on the
// published side does.
func InnerPorts(apps []lab.App) map[string]int {
	used := map[int]string{}
	for _, a := range apps {
		if a.Port != 0 {
			used[a.Port] = a.Name
		}
	}
	out := map[string]int{}
	for _, a := range apps {
		port := a.Protocol.DefaultPort()
		for {
			if who, ok := used[port]; !ok || who == a.Name && port == a.Port {
				break
			}
			port += 100
		}
		used[port] = a.Name
		out[a.Name] = port
	}
	return out
}

// appEnv is an app's container environment (KEY=value, in a fixed order):
// the provider's containers and the compose file (ComposeFile) both get it.
// The app listens on its inner port (InnerPorts) in the container; TLS
// apps read the lab's leaf certificate and key from /pki. An intermediary
// reaches its upstreams by their hosts on the lab's network (host names
// them: container names, or compose services), at their inner ports; it
// verifies TLS ones with /pki/ca.pem, and a ws-proxy checks tokens with the
// lab secret in /secret.
func appEnv(a lab.App, apps []lab.App, host func(app string) string) []string {
	inner := InnerPorts(apps)
	env := []string{"PROTOLAB_MODE=" + string(a.Protocol), "PROTOLAB_KIND=" + a.Kind, fmt.Sprintf("PROTOLAB_ADDR=:%d", inner[a.Name]),
		fmt.Sprintf("PROTOLAB_READ_LIMIT=%d", a.ReadLimit), "PROTOLAB_NAME=protolab-" + a.Name}
	if len(a.AllowedOrigins) > 0 {
		env = append(env, "PROTOLAB_ALLOWED_ORIGINS="+strings.Join(a.AllowedOrigins, ","))
	}
	if a.Compression != "" && a.Compression != protocol.CompressionNone {
		env = append(env, "PROTOLAB_COMPRESSION="+a.Compression)
	}
	if a.Protocol.Secure() {
		env = append(env, "PROTOLAB_TLS_CERT="+pkiDir+"/leaf.pem", "PROTOLAB_TLS_KEY="+pkiDir+"/leaf-key.pem")
	}
	if len(a.Upstream) > 0 {
		var ups []string
		for _, name := range a.Upstream {
			for _, u := range apps {
				if u.Name == name {
					ups = append(ups, fmt.Sprintf("%s=%s://%s:%d", name, u.Protocol, host(name), inner[name]))
				}
			}
		}
		env = append(env, "PROTOLAB_UPSTREAMS="+strings.Join(ups, ","))
		if a.Affinity != "" {
			env = append(env, "PROTOLAB_AFFINITY="+a.Affinity)
		}
		if a.HandshakeTimeout != 0 {
			env = append(env, "PROTOLAB_HANDSHAKE_TIMEOUT="+a.HandshakeTimeout.String())
		}
		if a.HealthInterval != 0 {
			env = append(env, "PROTOLAB_HEALTH_INTERVAL="+a.HealthInterval.String())
		}
	}
	if tlsUpstream(a, apps) {
		// Its secrets come out in its log, for the capture (logStream).
		env = append(env, "PROTOLAB_CA="+pkiDir+"/"+pki.CAFile, "PROTOLAB_KEYLOG_STDERR=1")
	}
	if k, _ := protocol.LookupKind(a.Kind); k.Token {
		env = append(env, "PROTOLAB_SECRET_FILE="+secretDir+"/"+labtoken.SecretFile)
	}
	return env
}

// tlsUpstream reports whether one of a's upstreams speaks TLS.
func tlsUpstream(a lab.App, apps []lab.App) bool {
	for _, name := range a.Upstream {
		for _, u := range apps {
			if u.Name == name && u.Protocol.Secure() {
				return true
			}
		}
	}
	return false
}

// secretDir is where a ws-proxy's container finds the lab secret.
const secretDir = "/secret"

// pkiDir is where a TLS app's container finds the lab's leaf certificate.
const pkiDir = "/pki"

// start creates and starts one app's container, publishing its port on the
// bind address, and waits until its health check answers.
func (p *Provider) start(ctx context.Context, s lab.App, hostPort int) error {
	cport, err := network.ParsePort(fmt.Sprintf("%d/tcp", p.innerPorts()[s.Name]))
	if err != nil {
		return err
	}
	bind, err := netip.ParseAddr(p.env.Config.Bind)
	if err != nil {
		return err
	}
	env := appEnv(s, p.env.Config.Apps, p.containerName)
	p.mu.Lock()
	image := p.image
	if k, _ := protocol.LookupKind(s.Kind); k.Shell {
		image = p.shellImage
	}
	p.mu.Unlock()
	hp := ""
	if hostPort != 0 {
		hp = strconv.Itoa(hostPort)
	}
	name := p.containerName(s.Name)
	labels, err := p.labels(s)
	if err != nil {
		return err
	}
	config := &container.Config{
		Image: image, Env: env,
		ExposedPorts: network.PortSet{cport: struct{}{}},
		Labels:       labels,
	}
	hostConfig := &container.HostConfig{
		PortBindings: network.PortMap{cport: []network.PortBinding{{HostIP: bind, HostPort: hp}}},
		NetworkMode:  container.NetworkMode(p.networkName()),
	}
	if k, _ := protocol.LookupKind(s.Kind); k.Shell {
		p.termBridge(name, config, hostConfig) // term.go
	}
	res, err := p.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Config: config, HostConfig: hostConfig})
	if err != nil {
		if strings.Contains(err.Error(), "Conflict") {
			return fmt.Errorf("container %s already exists (not this run's: a lab of the same name runs, or a crash left it; this run leaves it alone): %s removes it", name, lab.TeardownCommand(p.commandConfig(), ""))
		}
		return fmt.Errorf("creating container %s: %w", name, err)
	}
	files, err := p.secrets(s)
	if err == nil && len(files) > 0 {
		err = p.copyPKI(ctx, res.ID, files)
	}
	if err != nil {
		_ = p.remove(ctx, res.ID)
		return err
	}
	if _, err := p.cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		_ = p.remove(ctx, res.ID)
		if strings.Contains(err.Error(), "address already in use") || strings.Contains(err.Error(), "port is already allocated") {
			return &lab.PortInUseError{App: s.Name, Addr: net.JoinHostPort(p.env.Config.Bind, hp), Err: err}
		}
		return fmt.Errorf("starting container %s: %w", name, err)
	}
	in, err := p.cli.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspecting container %s: %w", name, err)
	}
	port := publishedPort(in.Container, cport)
	if port == 0 {
		return fmt.Errorf("container %s published no port for %s", name, cport)
	}
	local := net.JoinHostPort(p.env.Config.Bind, strconv.Itoa(port))
	if p.forward != nil {
		if local, err = p.forward(ctx, port); err != nil {
			return fmt.Errorf("forwarding %s's port %d: %w", name, port, err)
		}
	}
	p.mu.Lock()
	p.apps[s.Name] = &app{spec: s, id: res.ID, port: port, local: local}
	p.mu.Unlock()
	p.followLogs(res.ID, s.Name, "")
	// Ready when its health check answers through the published port.
	t := probe.Target{App: s.Name, Protocol: s.Protocol, Addr: local, ServerName: "localhost", RootCAs: p.env.PKI.Pool()}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := probe.Health(ctx, t)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("container %s did not become healthy: %w", name, errors.Join(err, ctx.Err()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func publishedPort(c container.InspectResponse, cport network.Port) int {
	if c.NetworkSettings == nil {
		return 0
	}
	for _, b := range c.NetworkSettings.Ports[cport] {
		if n, err := strconv.Atoi(b.HostPort); err == nil {
			return n
		}
	}
	return 0
}

// containerFile is a file to put in a container: its path there, and what
// it holds.
type containerFile struct {
	path string
	data []byte
}

// secrets are the files an app's container needs from the lab: the leaf
// and its key for a TLS app, the CA for one with TLS upstreams, the lab
// secret (made now if there is none yet) for a token-checking proxy.
func (p *Provider) secrets(a lab.App) ([]containerFile, error) {
	var out []containerFile
	add := func(in, from string) error {
		data, err := os.ReadFile(from)
		if err != nil {
			return err
		}
		out = append(out, containerFile{in, data})
		return nil
	}
	var err error
	if a.Protocol.Secure() {
		err = errors.Join(add("pki/"+pki.LeafFile, p.env.PKI.Path(pki.LeafFile)), add("pki/"+pki.LeafKeyFile, p.env.PKI.Path(pki.LeafKeyFile)))
	}
	if err == nil && tlsUpstream(a, p.env.Config.Apps) {
		err = add("pki/"+pki.CAFile, p.env.PKI.Path(pki.CAFile))
	}
	if k, _ := protocol.LookupKind(a.Kind); err == nil && k.Token {
		if _, err = p.env.Secret(); err == nil {
			err = add(strings.TrimPrefix(secretDir, "/")+"/"+labtoken.SecretFile, p.env.SecretPath())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("the files %s's container needs: %w", a.Name, err)
	}
	return out, nil
}

// copyPKI puts files into the container, owned by the unprivileged user
// the image runs as, readable by it alone.
func (p *Provider) copyPKI(ctx context.Context, id string, files []containerFile) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		dir := path.Dir(f.path) + "/"
		if !dirs[dir] {
			dirs[dir] = true
			_ = tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o500, Uid: 65534, Gid: 65534, ModTime: time.Unix(0, 0)})
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.path, Mode: 0o400, Size: int64(len(f.data)), Uid: 65534, Gid: 65534, ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if _, err := p.cli.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/", Content: &buf}); err != nil {
		return fmt.Errorf("copying the lab's certificates and secret into %s: %w", id[:12], err)
	}
	return nil
}

// followLogs streams a container's output as log events from the app.
// When the stream breaks (the engine's connection lost: an SSH link cut)
// it follows again from the last line seen, for as long as the container
// runs; it ends with the container. since is where to start ("" for the
// container's first line).
func (p *Provider) followLogs(id, appName, since string) {
	p.mu.Lock()
	if p.stopBg == nil || p.started[id] {
		p.mu.Unlock()
		return
	}
	p.started[id] = true
	ctx := p.bgCtx
	p.bgDone.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.bgDone.Done()
		wait := 250 * time.Millisecond
		for {
			last, err := p.logStream(ctx, id, appName, since)
			if last != "" {
				since, wait = last, 250*time.Millisecond
			}
			if ctx.Err() != nil {
				return
			}
			in, ierr := p.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
			switch {
			case ierr == nil && (in.Container.State == nil || !in.Container.State.Running):
				return // the container ended: so do its logs
			case ierr != nil && strings.Contains(strings.ToLower(ierr.Error()), "no such container"):
				return
			}
			_ = err // the stream broke while the container runs: follow again
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 2*time.Second)
		}
	}()
}

// logStream follows one log stream from since (a docker timestamp, "" for
// the start) until it ends, and returns the timestamp to resume after.
func (p *Provider) logStream(ctx context.Context, id, appName, since string) (resume string, err error) {
	rc, err := p.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true, Timestamps: true, Since: since})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, pw, rc)
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		ts, line, _ := strings.Cut(sc.Text(), " ")
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			t = t.Add(time.Nanosecond) // resume after this line
			resume = fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
		}
		if keys, ok := strings.CutPrefix(line, protocol.KeyLogPrefix); ok {
			// An intermediary's TLS secrets for an upstream: the lab's
			// key log, not its log.
			if p.env.KeyLog != nil {
				_, _ = io.WriteString(p.env.KeyLog, keys+"\n")
			}
			continue
		}
		p.env.Log("info", appName, line)
	}
	return resume, sc.Err()
}

// Status implements lab.Provider: every container of the run (or of the
// lab it attached to), as the engine sees it, with a health check through
// its published port.
func (p *Provider) Status(ctx context.Context) ([]lab.AppStatus, error) {
	list, err := p.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: p.ownFilter()})
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	var out []lab.AppStatus
	for _, c := range list.Items {
		st, err := p.status(ctx, c.ID)
		if err == nil {
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (p *Provider) status(ctx context.Context, id string) (lab.AppStatus, error) {
	in, err := p.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return lab.AppStatus{}, err
	}
	c := in.Container
	name := c.Config.Labels[LabelApp]
	p.mu.Lock()
	a := p.apps[name]
	p.mu.Unlock()
	st := lab.AppStatus{Name: name, Kind: c.Config.Labels[LabelKind], Protocol: protocol.Protocol(c.Config.Labels[LabelProtocol]),
		Image: c.Config.Image, Restarts: c.RestartCount}
	if a != nil {
		st.Kind, st.Protocol = a.spec.Kind, a.spec.Protocol
	}
	if c.State != nil {
		st.State = string(c.State.Status)
		if t, err := time.Parse(time.RFC3339Nano, c.State.StartedAt); err == nil {
			st.Started = t
		}
		if c.State.OOMKilled {
			st.Detail = "killed: out of memory"
		} else if !c.State.Running && c.State.ExitCode != 0 {
			st.Detail = fmt.Sprintf("exit code %d", c.State.ExitCode)
		}
	}
	if c.NetworkSettings != nil {
		for cp, bs := range c.NetworkSettings.Ports {
			for _, b := range bs {
				st.Ports = append(st.Ports, fmt.Sprintf("%s:%s→%s", b.HostIP, b.HostPort, cp))
				if st.Endpoint == "" && c.State != nil && c.State.Running {
					st.Endpoint = net.JoinHostPort(p.env.Config.Bind, b.HostPort)
					if a != nil && a.local != "" && strconv.Itoa(a.port) == b.HostPort {
						st.Endpoint = a.local
					}
				}
			}
		}
	}
	if st.Endpoint != "" && st.Protocol != "" {
		t := probe.Target{App: name, Protocol: st.Protocol, Addr: st.Endpoint, ServerName: "localhost", RootCAs: p.env.PKI.Pool()}
		if err := probe.Health(ctx, t); err != nil {
			st.Health, st.Detail = "unhealthy", err.Error()
		} else {
			st.Health = "healthy"
		}
	}
	return st, nil
}

// watch follows the engine's events for the lab's containers and publishes
// each change as an app status, as it happens. When the stream ends (the
// engine restarted, the SSH link to it cut) it says so, subscribes again
// once the engine answers, and publishes every app's status then, so
// nothing that changed meanwhile goes unseen.
func (p *Provider) watch() {
	p.mu.Lock()
	if p.stopBg != nil {
		p.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.stopBg, p.bgCtx = cancel, ctx
	p.bgDone.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.bgDone.Done()
		wait := 250 * time.Millisecond
		for lost := false; ; {
			if lost {
				pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := p.cli.Ping(pctx, client.PingOptions{})
				pcancel()
				if err != nil {
					select {
					case <-ctx.Done():
						return
					case <-time.After(wait):
					}
					wait = min(2*wait, 2*time.Second)
					continue
				}
			}
			res := p.cli.Events(ctx, client.EventsListOptions{Filters: p.eventFilter()})
			if lost {
				lost, wait = false, 250*time.Millisecond
				p.env.Log("info", "docker", "the engine's event stream is back: app status is followed again")
				p.publishAll(ctx)
			}
			err := p.events(ctx, res)
			if ctx.Err() != nil {
				return
			}
			lost = true
			p.env.Log("warn", "docker", fmt.Sprintf("the engine's event stream ended (%v): app status changes go unseen until it is back; subscribing again", err))
		}
	}()
}

func (p *Provider) eventFilter() client.Filters {
	f := p.ownFilter().Add("type", "container")
	for _, e := range []string{"start", "die", "oom", "kill", "stop", "restart", "health_status", "destroy"} {
		f = f.Add("event", e)
	}
	return f
}

// events publishes the stream's events until it ends, and says why.
func (p *Provider) events(ctx context.Context, res client.EventsResult) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-res.Err:
			return err
		case m := <-res.Messages:
			appName := m.Actor.Attributes[LabelApp]
			if string(m.Action) == "destroy" {
				p.env.AppChanged(lab.AppStatus{Name: appName, State: lab.AppMissing, Detail: "container removed"})
				continue
			}
			sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
			st, err := p.status(sctx, m.Actor.ID)
			scancel()
			if err == nil {
				st.Detail = strings.TrimSpace(st.Detail + " (event: " + string(m.Action) + ")")
				p.env.AppChanged(st)
			}
		}
	}
}

// publishAll publishes every app's status as the engine has it now.
func (p *Provider) publishAll(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := p.Status(sctx)
	if err != nil {
		p.env.Log("warn", "docker", "reading the apps' status after the event stream came back: "+err.Error())
		return
	}
	for _, st := range list {
		p.env.AppChanged(st)
	}
}

// Teardown implements lab.Provider: the containers and the network this
// run created go — found by its run label, so a create the engine carried
// out after it was cancelled goes too — and nothing else: not a lab of the
// same name another run brought up, and not the lab this run attached to,
// which is left running. Images stay as a cache unless the provider
// purges. RemoveLab removes a whole lab, whichever run made it.
func (p *Provider) Teardown(ctx context.Context) error {
	p.mu.Lock()
	cli := p.cli
	p.mu.Unlock()
	if cli == nil {
		return nil // never connected: this run created nothing
	}
	p.stopWatching()
	if p.isAttached() {
		p.mu.Lock()
		n := len(p.apps)
		p.attached, p.attachedRun, p.inner = false, "", nil
		p.apps = map[string]*app{}
		p.started = map[string]bool{}
		p.mu.Unlock()
		p.env.Log("info", "docker", fmt.Sprintf("lab %q was attached, not brought up by this run: its %s are left running (%s removes them)",
			p.labName(), lab.Containers(n), lab.TeardownCommand(p.commandConfig(), "")))
		return nil
	}
	return p.removeFound(ctx, cli, p.ownFilter(), true)
}

// RemoveLab implements lab.LabRemover: every container and network of the
// lab's name goes, whichever run made it (--teardown, down --all, a crash's
// leftovers).
func (p *Provider) RemoveLab(ctx context.Context) error {
	cli, err := p.connect(ctx)
	if err != nil {
		return err
	}
	p.stopWatching()
	return p.removeFound(ctx, cli, p.labFilter(), false)
}

// stopWatching ends the event watcher and the log followers.
func (p *Provider) stopWatching() {
	p.mu.Lock()
	stop := p.stopBg
	p.stopBg = nil
	p.mu.Unlock()
	if stop != nil {
		stop()
		p.bgDone.Wait()
	}
}

func (p *Provider) isAttached() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.attached
}

// removeFound removes the containers and networks f finds (and, when claimed
// is set, the network this run took over), and the app images when the
// provider purges.
func (p *Provider) removeFound(ctx context.Context, cli *client.Client, f client.Filters, claimed bool) error {
	// A create cancelled mid-request (SIGINT during deploy) may still be
	// carried out by the engine after a first pass: sweep until a pass after
	// a short pause finds nothing.
	var errs []error
	for pass := 0; pass < 10; pass++ {
		found, perrs := p.sweep(ctx, cli, f)
		errs = perrs
		if found == 0 && pass > 0 {
			break
		}
		select {
		case <-ctx.Done():
			return errors.Join(append(errs, ctx.Err())...)
		case <-time.After(300 * time.Millisecond):
		}
	}
	if p.purge {
		imgs, err := cli.ImageList(ctx, client.ImageListOptions{Filters: client.Filters{}.Add("label", LabelImage+"=app")})
		if err == nil {
			for _, im := range imgs.Items {
				if _, err := cli.ImageRemove(ctx, im.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	p.mu.Lock()
	net := p.claimedNet
	p.claimedNet = ""
	p.apps = map[string]*app{}
	p.started = map[string]bool{}
	p.mu.Unlock()
	if claimed && net != "" {
		if _, err := cli.NetworkRemove(ctx, net, client.NetworkRemoveOptions{}); err != nil && !strings.Contains(strings.ToLower(err.Error()), "not found") {
			errs = append(errs, fmt.Errorf("removing network %s: %w", p.networkName(), err))
		}
	}
	return errors.Join(errs...)
}

// sweep removes what f finds and says how much it found.
func (p *Provider) sweep(ctx context.Context, cli *client.Client, f client.Filters) (int, []error) {
	var errs []error
	found := 0
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return 0, []error{fmt.Errorf("listing containers: %w", err)}
	}
	for _, c := range list.Items {
		found++
		if err := p.remove(ctx, c.ID); err != nil {
			errs = append(errs, err)
		}
	}
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err == nil {
		for _, n := range nets.Items {
			found++
			if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil {
				errs = append(errs, fmt.Errorf("removing network %s: %w", n.Name, err))
			}
		}
	}
	return found, errs
}

// OpenCapture implements lab.CaptureOpener. On this host, the probes reach
// the apps through the ports published on the bind address, so the traffic
// crosses loopback; the intermediaries reach their upstreams over the lab
// network, so its bridge is captured too (each app's inner port is its own,
// and the engine's proxy's copies of the published connections, from the
// gateway, are left out). Through a Forward (a remote engine), each
// capture is tcpdump on the engine's host, streamed through the runner,
// and the port map names the published ports there.
func (p *Provider) OpenCapture(ctx context.Context, ports wire.PortMap) (capture.Source, capture.Mode, wire.PortMap, error) {
	// Where the published ports are seen, and how the lab network's
	// bridge is opened, here or on the engine's host.
	mode := capture.ModeLive
	open := func(iface string, list []int) (capture.Source, error) {
		s, err := capture.OpenLive(iface, list)
		if err != nil {
			return nil, err // not a nil *Live in a non-nil Source
		}
		return s, nil
	}
	if p.forward != nil {
		mode = capture.ModeStream
		ports = wire.PortMap{}
		p.mu.Lock()
		for _, a := range p.apps {
			ports[uint16(a.port)] = wire.AppRef{Name: a.spec.Name, Protocol: a.spec.Protocol}
		}
		p.mu.Unlock()
		open = func(iface string, list []int) (capture.Source, error) {
			argv := capture.TcpdumpArgs(iface, list)
			if p.sudo {
				argv = append([]string{"sudo", "-n"}, argv...)
			}
			s, err := capture.OpenStream(ctx, lab.CaptureRunner(p.runner), argv, "tcpdump on the lab host's "+iface)
			if err != nil {
				return nil, err
			}
			return s, nil
		}
	}
	list := make([]int, 0, len(ports))
	for port := range ports {
		list = append(list, int(port))
	}
	src, err := open("lo", list)
	if err != nil {
		return nil, "", nil, err
	}
	if !p.hasUpstreams() {
		return src, mode, ports, nil
	}
	seen := maps.Clone(ports)
	var inside []int
	for name, port := range p.innerPorts() {
		if a, ok := p.env.Config.App(name); ok {
			seen[uint16(port)] = wire.AppRef{Name: a.Name, Protocol: a.Protocol}
			inside = append(inside, port)
		}
	}
	iface, gateway, err := p.bridge(ctx)
	var br capture.Source
	if err == nil {
		br, err = open(iface, inside)
	}
	if err != nil {
		src.Close()
		return nil, "", nil, fmt.Errorf("capturing the lab network's inside legs: %w", err)
	}
	m, err := capture.Merge(src, capture.Exclude(br, gateway))
	if err != nil {
		src.Close()
		br.Close()
		return nil, "", nil, err
	}
	return m, mode, seen, nil
}
