// Package vagrant is the Vagrant provider: a VM (CentOS Stream, Rocky, Alma,
// RHEL — or any box) brought up by the vagrant CLI, then used as an SSH lab
// host. protolab drives `vagrant up` (its output streamed as progress),
// reads `vagrant status --machine-readable` and `vagrant ssh-config`, pins
// the VM's host key in the lab's state directory on first contact (Vagrant
// turns host-key checking off; protolab does not), and hands the VM to the
// ssh provider. Teardown is `vagrant destroy -f` (or `halt`) of a VM this
// run brought up; a VM that was running already is left running, only this
// run's containers in it removed.
package vagrant

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	protolab "github.com/protolab/protolab-tui"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/providers/ssh"
	"github.com/protolab/protolab-tui/lab/sshrun"
	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/provision"
)

// Name is the provider's name.
const Name = "vagrant"

// Options say which Vagrantfile and which Vagrant provider.
type Options struct {
	// Dir holds the Vagrantfile (default "."). When it holds none,
	// protolab's own (the repository's, carried in the binary) is written
	// with the provision scripts into the lab's state directory
	// (EmbeddedDir), and vagrant runs there.
	Dir string
	// Provider is Vagrant's provider (virtualbox, libvirt, docker); "" lets
	// Vagrant choose.
	Provider string
	// Machine names the machine in a multi-machine Vagrantfile ("" for the
	// default one).
	Machine string
	// KeepVM makes teardown halt the VM (vagrant halt) instead of
	// destroying it, so the next `up` is quick.
	KeepVM bool
}

// Provider is a Vagrant VM as the lab host.
type Provider struct {
	env lab.Env
	o   Options
	mu  sync.Mutex // guards ssh for ShellActions (the lifecycle sets it)
	ssh lab.Provider
	vm  MachineState
	// given is the folder the options named when it held no Vagrantfile
	// and protolab's own is used instead ("" otherwise).
	given string
	// wasRunning: the VM ran before this run's `vagrant up` (another run
	// brought it up): the teardown leaves it running.
	wasRunning bool
	// upRan: this run ran `vagrant up` (which may have made a VM even
	// when it failed).
	upRan bool
}

// New returns a constructor for a Vagrant lab.
func New(o Options) func(lab.Env) (lab.Provider, error) {
	return func(env lab.Env) (lab.Provider, error) {
		if o.Dir == "" {
			o.Dir = "."
		}
		p := &Provider{env: env, o: o}
		if !HasVagrantfile(o.Dir) {
			dir := EmbeddedDir(env.Config.StateDir, env.Config.Name)
			if err := WriteEmbedded(dir); err != nil {
				return nil, fmt.Errorf("%s holds no Vagrantfile, and protolab's own could not be written to %s: %w (give --vagrant-dir a folder with a Vagrantfile)", o.Dir, dir, err)
			}
			p.given, p.o.Dir = o.Dir, dir
		}
		return p, nil
	}
}

// HasVagrantfile says whether dir holds a Vagrantfile (as Vagrant names
// it: Vagrantfile or vagrantfile).
func HasVagrantfile(dir string) bool {
	for _, name := range []string{"Vagrantfile", "vagrantfile"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil && st.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// EmbeddedDir is where protolab's own Vagrantfile goes for the lab name
// in stateDir (with provision/, the scripts it runs; Vagrant keeps its
// .vagrant state there too).
func EmbeddedDir(stateDir, name string) string { return filepath.Join(stateDir, "vagrant", name) }

// Dir is the folder the provider runs vagrant in for dir, stateDir and
// the lab name: dir when it holds a Vagrantfile, else EmbeddedDir.
func Dir(dir, stateDir, name string) string {
	if dir == "" {
		dir = "."
	}
	if HasVagrantfile(dir) {
		return dir
	}
	return EmbeddedDir(stateDir, name)
}

// WriteEmbedded writes protolab's own Vagrantfile and the provision
// scripts it runs into dir (made 0700), each file only when it differs
// (so a newer binary brings its newer Vagrantfile), through a temporary
// file renamed into place.
func WriteEmbedded(dir string) error {
	files := map[string][]byte{"Vagrantfile": protolab.Vagrantfile}
	scripts, err := fs.Glob(provision.Scripts, "*.sh")
	if err != nil {
		return err
	}
	for _, name := range scripts {
		b, err := provision.Scripts.ReadFile(name)
		if err != nil {
			return err
		}
		files[filepath.Join("provision", name)] = b
	}
	if err := os.MkdirAll(filepath.Join(dir, "provision"), 0o700); err != nil {
		return err
	}
	for name, data := range files {
		path := filepath.Join(dir, name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
			continue
		}
		tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
		if err != nil {
			return err
		}
		_, werr := tmp.Write(data)
		cerr := tmp.Close()
		if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), 0o644)); err != nil {
			os.Remove(tmp.Name())
			return err
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			os.Remove(tmp.Name())
			return err
		}
	}
	return nil
}

// Name implements lab.Provider.
func (p *Provider) Name() string { return Name }

// vagrant runs the CLI in the Vagrantfile's folder; each output line goes
// to line (when not nil).
func (p *Provider) vagrant(ctx context.Context, line func(string), args ...string) ([]byte, error) {
	bin, err := exec.LookPath("vagrant")
	if err != nil {
		return nil, errors.New("vagrant not found on PATH: install Vagrant (and VirtualBox or libvirt), or use --provider local, docker or ssh")
	}
	if p.o.Machine != "" && len(args) > 0 && args[0] != "global-status" {
		args = append(args, p.o.Machine)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = p.o.Dir
	// The Vagrantfile forwards the lab's ports (PROTOLAB_PORTS); the lab's
	// value wins over one in protolab's own environment.
	cmd.Env = append(os.Environ(), "VAGRANT_NO_COLOR=1", PortsEnv+"="+PortsSpec(p.env.Config.Apps))
	var out bytes.Buffer
	pr, pw := io.Pipe()
	// One writer for both streams: exec then gives the child one pipe and
	// copies it in one goroutine. Two writers would be two goroutines
	// writing out at once (a data race when vagrant writes to both).
	w := io.MultiWriter(&out, pw)
	cmd.Stdout, cmd.Stderr = w, w
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if line != nil {
				line(sc.Text())
			}
		}
	}()
	err = cmd.Run()
	pw.Close()
	<-done
	if err != nil {
		return out.Bytes(), fmt.Errorf("vagrant %s: %w: %s", strings.Join(args, " "), err, lastLines(out.String(), 6))
	}
	return out.Bytes(), nil
}

// PortsEnv is the environment variable the Vagrantfile reads the ports to
// forward from.
const PortsEnv = "PROTOLAB_PORTS"

// PortsSpec is the Vagrantfile's PROTOLAB_PORTS for apps: name=port for each
// app with a fixed port, comma-separated, in the apps' order. Apps on port 0
// (any free port) are left out: the lab reaches them through SSH forwards
// anyway. No app with a fixed port gives "" (forward none), not the
// Vagrantfile's default.
func PortsSpec(apps []lab.App) string {
	var b strings.Builder
	for _, a := range apps {
		if a.Port == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(a.Name + "=" + strconv.Itoa(a.Port))
	}
	return b.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Up implements lab.Provider: vagrant up, then the VM over SSH.
func (p *Provider) Up(ctx context.Context) (lab.HostInfo, error) {
	// Whether the VM runs already (another run's): its teardown leaves it.
	// A status that fails counts as not running: vagrant up says why.
	before, _ := p.State(ctx)
	p.wasRunning, p.upRan = before.State == "running", true
	args := []string{"up"}
	if p.o.Provider != "" {
		args = append(args, "--provider", p.o.Provider)
	}
	if p.given != "" {
		p.env.Log("info", "vagrant", fmt.Sprintf("%s holds no Vagrantfile: using protolab's own, in %s", p.given, p.o.Dir))
	}
	p.env.Progress("up", "vagrant up (the first one downloads the box and provisions: minutes)", 0, 3)
	if _, err := p.vagrant(ctx, func(l string) { p.env.Log("info", "vagrant", l) }, args...); err != nil {
		return lab.HostInfo{}, err
	}
	vm, err := p.State(ctx)
	if err != nil {
		return lab.HostInfo{}, err
	}
	p.vm = vm
	if p.vm.State != "running" {
		return lab.HostInfo{}, fmt.Errorf("the VM %s is %s after vagrant up, not running", p.vm.Name, p.vm.State)
	}
	p.env.Progress("up", "reading vagrant ssh-config", 1, 3)
	sp, err := p.sshProvider(ctx)
	if err != nil {
		return lab.HostInfo{}, err
	}
	p.mu.Lock()
	p.ssh = sp
	p.mu.Unlock()
	p.env.Progress("up", "connecting to the VM over SSH", 2, 3)
	host, err := sp.Up(ctx)
	if err != nil {
		return lab.HostInfo{}, err
	}
	host.Provider = Name
	details := []lab.KV{{Key: "vm", Value: p.vm.Name + " " + p.vm.State}, {Key: "vagrant", Value: p.vm.Provider},
		{Key: "vagrantfile", Value: filepath.Join(p.o.Dir, "Vagrantfile")}}
	if box := BoxOf(p.dotfile(), p.vm.Name, p.vm.Provider); box != "" {
		details = append(details, lab.KV{Key: "box", Value: box})
	}
	host.Details = append(details, host.Details...)
	return host, nil
}

// sshProvider is the ssh provider of the running VM, from `vagrant
// ssh-config`.
func (p *Provider) sshProvider(ctx context.Context) (*ssh.Provider, error) {
	out, err := p.vagrant(ctx, nil, "ssh-config")
	if err != nil {
		return nil, err
	}
	sc, err := ParseSSHConfig(bytes.NewReader(out))
	if err != nil {
		return nil, err
	}
	cfg := sshrun.Config{
		Host: sc.HostName, Port: sc.Port, User: sc.User, IdentityFiles: sc.IdentityFiles, SSHConfig: "/dev/null",
		// Vagrant turns host-key checking off; protolab pins the VM's key in
		// the lab's state directory on first contact and refuses a change.
		KnownHosts:       []string{filepath.Join(p.env.Config.StateDir, "vagrant", p.env.Config.Name+"-known_hosts")},
		AcceptNewHostKey: true,
	}
	sp, err := ssh.New(cfg)(p.env)
	if err != nil {
		return nil, err
	}
	return sp.(*ssh.Provider), nil
}

// dotfile is Vagrant's state folder for the Vagrantfile.
func (p *Provider) dotfile() string {
	if d := os.Getenv("VAGRANT_DOTFILE_PATH"); d != "" {
		return d
	}
	return filepath.Join(p.o.Dir, ".vagrant")
}

// BoxOf reads the box a machine was made from (name and version), from
// Vagrant's box_meta file; "" when the machine has no box (the docker
// provider) or the file is missing.
func BoxOf(dotfile, machine, provider string) string {
	b, err := os.ReadFile(filepath.Join(dotfile, "machines", machine, provider, "box_meta"))
	if err != nil {
		return ""
	}
	var meta struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if json.Unmarshal(b, &meta) != nil || meta.Name == "" {
		return ""
	}
	if meta.Version != "" {
		return meta.Name + " " + meta.Version
	}
	return meta.Name
}

func (p *Provider) needUp() error {
	if p.ssh == nil {
		return errors.New("the Vagrant VM is not up")
	}
	return nil
}

// Deploy implements lab.Provider.
func (p *Provider) Deploy(ctx context.Context, apps []lab.App) ([]lab.AppStatus, error) {
	if err := p.needUp(); err != nil {
		return nil, err
	}
	return p.ssh.Deploy(ctx, apps)
}

// Redeploy implements lab.Provider.
func (p *Provider) Redeploy(ctx context.Context, apps []lab.App) ([]lab.AppStatus, error) {
	if err := p.needUp(); err != nil {
		return nil, err
	}
	return p.ssh.Redeploy(ctx, apps)
}

// Status implements lab.Provider.
func (p *Provider) Status(ctx context.Context) ([]lab.AppStatus, error) {
	if err := p.needUp(); err != nil {
		return nil, err
	}
	return p.ssh.Status(ctx)
}

// ShellActions implements lab.ShellActioner: the VM's docker, as the ssh
// provider has it.
func (p *Provider) ShellActions(selected string, apps []lab.AppStatus) []lab.ShellAction {
	p.mu.Lock()
	sp := p.ssh
	p.mu.Unlock()
	if sa, ok := sp.(lab.ShellActioner); ok {
		return sa.ShellActions(selected, apps)
	}
	return nil
}

// Runner implements lab.Provider.
func (p *Provider) Runner() lab.Runner {
	if p.ssh == nil {
		return lab.LocalRunner{}
	}
	return p.ssh.Runner()
}

// OpenCapture implements lab.CaptureOpener: tcpdump in the VM.
func (p *Provider) OpenCapture(ctx context.Context, ports wire.PortMap) (capture.Source, capture.Mode, wire.PortMap, error) {
	if err := p.needUp(); err != nil {
		return nil, "", nil, err
	}
	co, ok := p.ssh.(lab.CaptureOpener)
	if !ok {
		return nil, "", nil, errors.New("no capture in the VM")
	}
	return co.OpenCapture(ctx, ports)
}

// Teardown implements lab.Provider: the containers this run created go,
// then the VM (vagrant destroy -f, or halt) — unless the VM was running
// before this run's `vagrant up` (another run brought it up, and may run
// a lab in it): then it is left running. A run that never came up leaves
// everything.
func (p *Provider) Teardown(ctx context.Context) error {
	var errs []error
	if p.ssh != nil {
		if err := p.ssh.Teardown(ctx); err != nil {
			errs = append(errs, err)
		}
		p.mu.Lock()
		p.ssh = nil
		p.mu.Unlock()
	}
	if !p.upRan {
		return errors.Join(errs...) // this run did not get as far as vagrant up
	}
	p.upRan = false
	if p.wasRunning {
		p.env.Log("info", "vagrant", fmt.Sprintf("the VM was running before this lab came up: left running (vagrant destroy -f in %s removes it)", p.o.Dir))
		return errors.Join(errs...)
	}
	return errors.Join(append(errs, p.downVM(ctx))...)
}

// downVM destroys the VM (or halts it, with KeepVM).
func (p *Provider) downVM(ctx context.Context) error {
	args := []string{"destroy", "-f"}
	if p.o.KeepVM {
		args = []string{"halt"}
	}
	p.env.Progress("teardown", "vagrant "+strings.Join(args, " "), 0, 1)
	_, err := p.vagrant(ctx, func(l string) { p.env.Log("info", "vagrant", l) }, args...)
	return err
}

// RemoveLab implements lab.LabRemover (--teardown): the lab's containers
// in the VM, whichever run made them, when it runs; then the VM (vagrant
// destroy -f, or halt with KeepVM).
func (p *Provider) RemoveLab(ctx context.Context) error {
	vm, err := p.State(ctx)
	if err != nil {
		return err
	}
	var errs []error
	if vm.State == "running" {
		sp, err := p.sshProvider(ctx)
		if err == nil {
			err = sp.RemoveLab(ctx)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("removing the lab's containers in the VM: %w", err))
		}
	}
	return errors.Join(append(errs, p.downVM(ctx))...)
}

// FindLab implements lab.LabFinder: the lab of this name in the VM, when
// the VM runs (nil otherwise).
func (p *Provider) FindLab(ctx context.Context) (*lab.RunningLab, error) {
	vm, err := p.State(ctx)
	if err != nil || vm.State != "running" {
		return nil, err
	}
	sp, err := p.sshProvider(ctx)
	if err != nil {
		return nil, err
	}
	return sp.FindLab(ctx)
}

// State reads the VM's state (vagrant status --machine-readable).
func (p *Provider) State(ctx context.Context) (MachineState, error) {
	out, err := p.vagrant(ctx, nil, "status", "--machine-readable")
	if err != nil {
		return MachineState{}, err
	}
	ms := ParseStatus(bytes.NewReader(out))
	if len(ms) == 0 {
		return MachineState{}, errors.New("vagrant status named no machine")
	}
	return ms[0], nil
}

// MachineState is one machine of `vagrant status --machine-readable`.
type MachineState struct {
	Name     string
	Provider string
	State    string // not_created, running, poweroff, saved, …
	Human    string
}

// unescape undoes the machine-readable format's escapes.
func unescape(s string) string {
	s = strings.ReplaceAll(s, "%!(VAGRANT_COMMA)", ",")
	return strings.ReplaceAll(s, `\n`, "\n")
}

// ParseStatus reads `vagrant status --machine-readable`: lines of
// timestamp,target,type,data… with commas and newlines escaped in the data.
func ParseStatus(r io.Reader) []MachineState {
	var order []string
	m := map[string]*MachineState{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), ",", 4)
		if len(f) < 4 || f[1] == "" {
			continue
		}
		if _, err := strconv.ParseInt(f[0], 10, 64); err != nil {
			continue
		}
		ms := m[f[1]]
		if ms == nil {
			ms = &MachineState{Name: f[1]}
			m[f[1]] = ms
			order = append(order, f[1])
		}
		data := unescape(f[3])
		switch f[2] {
		case "provider-name":
			ms.Provider = data
		case "state":
			ms.State = data
		case "state-human-short":
			ms.Human = data
		}
	}
	out := make([]MachineState, 0, len(order))
	for _, n := range order {
		out = append(out, *m[n])
	}
	return out
}

// SSHConfig is what protolab takes from `vagrant ssh-config`.
type SSHConfig struct {
	Host          string
	HostName      string
	User          string
	Port          int
	IdentityFiles []string
}

// ParseSSHConfig reads `vagrant ssh-config` output.
func ParseSSHConfig(r io.Reader) (SSHConfig, error) {
	var c SSHConfig
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok {
			continue
		}
		v = strings.Trim(strings.TrimSpace(v), `"`)
		switch strings.ToLower(k) {
		case "host":
			c.Host = v
		case "hostname":
			c.HostName = v
		case "user":
			c.User = v
		case "port":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65535 {
				return c, fmt.Errorf("vagrant ssh-config: bad Port %q (want 1–65535): check the Vagrantfile's forwarded SSH port", v)
			}
			c.Port = n
		case "identityfile":
			c.IdentityFiles = append(c.IdentityFiles, v)
		}
	}
	if c.HostName == "" || c.Port == 0 {
		return c, errors.New("vagrant ssh-config gave no HostName or Port")
	}
	return c, nil
}
