package docker

import (
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// termEngineSocket is where a term app's container finds the engine's
// socket.
const termEngineSocket = "/var/run/docker.sock"

// engineSocket is the path, on the engine's host, of the unix socket the
// provider reaches the engine through ("" for a TCP engine: nothing to
// mount).
func engineSocket(daemonHost string) string {
	if path, ok := strings.CutPrefix(daemonHost, "unix://"); ok && strings.HasPrefix(path, "/") {
		return path
	}
	return ""
}

// termBridge makes a term app's container a bridge to itself: the engine's
// socket is mounted in, and the app is told (PROTOLAB_TERM_CONTAINER) to
// run each session's shell as an exec in its own container through the
// Engine API (see webapp.TermExec), as nobody (the app's default
// --term-user). The app runs as root there to open the socket, which is
// root on the engine's host: whoever reaches the term port gets a shell,
// and a bridge that holds the engine. The shell itself, as nobody, cannot
// open the socket. SELinux labelling is off for the container (the socket
// is the engine's, labelled for it; confinement adds nothing to a
// container that holds it). Over a TCP engine there is no socket to mount:
// the app keeps its own pty, and the reason is logged.
func (p *Provider) termBridge(name string, cfg *container.Config, hc *container.HostConfig) {
	p.mu.Lock()
	engine := p.engine
	p.mu.Unlock()
	sock := engineSocket(engine)
	if sock == "" {
		p.env.Log("info", "docker", "the term app "+name+" runs its shells on a pty of its own: the engine is at "+engine+", no unix socket to mount for an exec bridge")
		return
	}
	cfg.Env = append(cfg.Env, "PROTOLAB_TERM_CONTAINER="+name, "PROTOLAB_TERM_ENGINE=unix://"+termEngineSocket)
	cfg.User = "0:0"
	hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: sock, Target: termEngineSocket})
	hc.SecurityOpt = append(hc.SecurityOpt, "label=disable")
}
