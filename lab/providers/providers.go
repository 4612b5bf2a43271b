// Package providers maps provider names to their constructors, so the command
// line (and a lab file) can pick where the lab host comes from.
package providers

import (
	"fmt"
	"sort"
	"strings"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/providers/docker"
	"github.com/protolab/protolab-tui/lab/providers/local"
	"github.com/protolab/protolab-tui/lab/providers/ssh"
	"github.com/protolab/protolab-tui/lab/providers/vagrant"
	"github.com/protolab/protolab-tui/lab/sshrun"
)

// Constructor builds a provider from the Lab's environment.
type Constructor func(lab.Env) (lab.Provider, error)

var registry = map[string]Constructor{
	local.Name:   local.New,
	docker.Name:  docker.New,
	ssh.Name:     ssh.New(sshrun.Config{}), // the command line gives it its host: SSH
	vagrant.Name: vagrant.New(vagrant.Options{}),
}

// Vagrant is the vagrant provider for a Vagrantfile folder and a Vagrant
// provider (virtualbox, libvirt, docker; "" lets Vagrant choose).
func Vagrant(dir, provider string, keepVM bool) Constructor {
	return vagrant.New(vagrant.Options{Dir: dir, Provider: provider, KeepVM: keepVM})
}

// SSH is the ssh provider for a host; priv is --remote-priv.
func SSH(cfg sshrun.Config, priv string) Constructor {
	return ssh.NewWithPrivilege(cfg, ssh.Privilege(priv))
}

// Purge makes the docker provider remove its images at teardown.
func Purge() Constructor {
	return func(env lab.Env) (lab.Provider, error) { return docker.NewWith(env, docker.Options{Purge: true}) }
}

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
