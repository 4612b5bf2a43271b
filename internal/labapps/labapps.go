// Package labapps starts one app per protocol (protocol.All) in this process on free loopback
// ports, with a lab CA — for tests, benchmarks and tools that need real
// servers without a Lab around them.
package labapps

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/protolab/protolab-tui/apps/webapp"
	"github.com/protolab/protolab-tui/lab/pki"
	"github.com/protolab/protolab-tui/protocol"
)

// Apps are running servers and how to reach them.
type Apps struct {
	// Addrs are the apps' host:port on loopback (TLS name "localhost",
	// verified against the CA given to Start).
	Addrs map[protocol.Protocol]string
	// Ports maps each server port to its protocol (the capture's port map).
	Ports   map[uint16]protocol.Protocol
	servers []*webapp.Server
}

// Start runs one app per protocol; TLS apps present auth's leaf.
func Start(auth *pki.Authority) (*Apps, error) {
	a := &Apps{Addrs: map[protocol.Protocol]string{}, Ports: map[uint16]protocol.Protocol{}}
	for _, p := range protocol.All() {
		cfg := webapp.Config{Protocol: p}
		if p.Secure() {
			cfg.TLS = auth.ServerTLS()
		}
		srv, err := webapp.New(cfg, nil)
		if err != nil {
			a.Stop()
			return nil, err
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			a.Stop()
			return nil, fmt.Errorf("listening for the %s app: %w", p, err)
		}
		go func() { _ = srv.Serve(l) }()
		a.servers = append(a.servers, srv)
		a.Addrs[p] = l.Addr().String()
		a.Ports[uint16(l.Addr().(*net.TCPAddr).Port)] = p
	}
	return a, nil
}

// Stop shuts every app down.
func (a *Apps) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range a.servers {
		_ = s.Shutdown(ctx)
	}
}

// PortList lists the server ports.
func (a *Apps) PortList() []int {
	out := make([]int, 0, len(a.Ports))
	for p := range a.Ports {
		out = append(out, int(p))
	}
	return out
}
