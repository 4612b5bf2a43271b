// Package providers maps provider names to their constructors, so the command
// line (and a lab file) can pick where the lab host comes from.
package providers

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/providers/docker"
	"github.com/protolab/protolab-tui/lab/providers/local"
	"github.com/protolab/protolab-tui/lab/providers/ssh"
	"github.com/protolab/protolab-tui/lab/providers/vagrant"
	"github.com/protolab/protolab-tui/lab/sshrun"
)

// Constructor builds a provider from the Lab's environment; its options
// are the configuration's section for it (Config.Docker, .SSH, .Vagrant).
type Constructor func(lab.Env) (lab.Provider, error)

var registry = map[string]Constructor{
	local.Name: local.New,
	docker.Name: func(env lab.Env) (lab.Provider, error) {
		return docker.NewWith(env, docker.Options{Purge: env.Config.Docker.Purge})
	},
	ssh.Name: func(env lab.Env) (lab.Provider, error) {
		cfg, err := SSHConfig(env.Config.SSH)
		if err != nil {
			return nil, err
		}
		return ssh.NewWithPrivilege(cfg, ssh.Privilege(env.Config.SSH.RemotePriv))(env)
	},
	vagrant.Name: func(env lab.Env) (lab.Provider, error) {
		o := env.Config.Vagrant
		return vagrant.New(vagrant.Options{Dir: o.Dir, Provider: o.Provider, KeepVM: o.Halt})(env)
	},
}

// SSHConfig turns the lab file's ssh section into the SSH runner's
// configuration.
func SSHConfig(o lab.SSHOptions) (sshrun.Config, error) {
	var cfg sshrun.Config
	if o.Host == "" {
		return cfg, errors.New("the ssh provider needs a host: --host user@host[:port] (or ssh.host in the lab file)")
	}
	var err error
	if cfg.User, cfg.Host, cfg.Port, err = sshrun.ParseTarget(o.Host); err != nil {
		return cfg, err
	}
	home, _ := os.UserHomeDir()
	for _, id := range o.Identity {
		if rest, ok := strings.CutPrefix(id, "~/"); ok && home != "" {
			id = filepath.Join(home, rest)
		}
		cfg.IdentityFiles = append(cfg.IdentityFiles, id)
	}
	cfg.AcceptNewHostKey = o.AcceptNewHostKey
	return cfg, nil
}

// Check says whether cfg (defaults applied) names a known provider and
// gives it what it needs, before anything starts; its errors are
// *lab.ConfigError so a lab file's line can be named.
func Check(cfg lab.Config) error {
	if _, ok := registry[cfg.Provider]; !ok {
		return &lab.ConfigError{Path: "provider", Msg: fmt.Sprintf("unknown provider %q: use one of %s", cfg.Provider, strings.Join(Names(), ", "))}
	}
	if cfg.Provider == ssh.Name {
		if _, err := SSHConfig(cfg.SSH); err != nil {
			return &lab.ConfigError{Path: "ssh.host", Msg: err.Error()}
		}
	}
	return nil
}

// VagrantDir is the folder the vagrant provider runs vagrant in for c:
// its vagrant.dir when that holds a Vagrantfile, else the one in the
// state directory where protolab writes its own.
func VagrantDir(c lab.Config) string { return vagrant.Dir(c.Vagrant.Dir, c.StateDir, c.Name) }

// InProcess reports whether the named provider runs the apps inside this
// process (the embedded lab), where this process's own loopback carries
// their traffic.
func InProcess(name string) bool { return name == local.Name }

// Names lists the known providers.
func Names() []string {
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Lookup returns the constructor of the named provider.
func Lookup(name string) (Constructor, error) {
	c, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("unknown provider %q: use one of %s", name, strings.Join(Names(), ", "))
	}
	return c, nil
}
