package conformance_test

import (
	"context"
	"crypto/tls"
	"flag"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/apps/webapp"
	"github.com/protolab/protolab-tui/conformance"
	"github.com/protolab/protolab-tui/internal/wsraw"
	"github.com/protolab/protolab-tui/lab/pki"
	"github.com/protolab/protolab-tui/protocol"
)

var update = flag.Bool("update", false, "rewrite docs/websocket-conformance.md from this run")

const docFile = "../docs/websocket-conformance.md"

// start runs one app of kind k speaking p on a free loopback port, with a
// lab CA's leaf for TLS, until the test ends.
func start(t *testing.T, auth *pki.Authority) func(protocol.Kind, protocol.Protocol) (wsraw.Target, int, error) {
	return func(k protocol.Kind, p protocol.Protocol) (wsraw.Target, int, error) {
		cfg := webapp.Config{Protocol: p, Kind: k.Name}
		if p.Secure() {
			cfg.TLS = auth.ServerTLS()
		}
		srv, err := webapp.New(cfg, nil)
		if err != nil {
			return wsraw.Target{}, 0, err
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return wsraw.Target{}, 0, err
		}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		})
		target := wsraw.Target{Addr: l.Addr().String()}
		if p.Secure() {
			target.TLS = &tls.Config{RootCAs: auth.Pool(), ServerName: "localhost"}
		}
		return target, int(srv.Config().ReadLimit), nil
	}
}

// TestConformance plays every case against every WebSocket app of the
// protocol table and checks docs/websocket-conformance.md says what it
// observed (-update rewrites it).
func TestConformance(t *testing.T) {
	auth, err := pki.Load(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	targets, err := conformance.Targets(start(t, auth))
	if err != nil {
		t.Fatal(err)
	}
	cases := conformance.Cases(webapp.DefaultReadLimit)
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.ID] {
			t.Fatalf("case %s is listed twice", c.ID)
		}
		seen[c.ID] = true
	}
	var mu sync.Mutex
	results := map[string]map[string]conformance.Result{}
	for _, tg := range targets {
		if tg.ReadLimit != webapp.DefaultReadLimit {
			t.Fatalf("%s reads up to %d bytes; the limits group is bounded by %d", tg.Name, tg.ReadLimit, webapp.DefaultReadLimit)
		}
		results[tg.Name] = map[string]conformance.Result{}
		t.Run(tg.Name, func(t *testing.T) {
			for _, c := range cases {
				if c.Chat && tg.Kind.Chat == "" {
					continue
				}
				t.Run(c.ID, func(t *testing.T) {
					if !c.Chat {
						t.Parallel() // chat cases share the room: one at a time, first
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					obs, err := c.Run(ctx, tg)
					r := conformance.Result{Observed: obs}
					if err != nil {
						r.Err = err.Error()
						t.Errorf("%s — expected %s: %v (observed: %s)", c.Sent, c.Expected, err, obs)
					}
					mu.Lock()
					results[tg.Name][c.ID] = r
					mu.Unlock()
				})
			}
		})
	}
	table := conformance.Table(cases, targets, results)
	if *update {
		if err := os.WriteFile(docFile, []byte(table), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	old, err := os.ReadFile(docFile)
	if err != nil {
		t.Fatalf("%v: go test ./conformance -update writes it", err)
	}
	if string(old) != table {
		oldLines, newLines := strings.Split(string(old), "\n"), strings.Split(table, "\n")
		for i := 0; i < max(len(oldLines), len(newLines)); i++ {
			var o, n string
			if i < len(oldLines) {
				o = oldLines[i]
			}
			if i < len(newLines) {
				n = newLines[i]
			}
			if o != n {
				t.Errorf("%s line %d:\n  file: %s\n  run:  %s", docFile, i+1, o, n)
				break
			}
		}
		t.Errorf("%s does not say what this run observed: go test ./conformance -update rewrites it", docFile)
	}
}
