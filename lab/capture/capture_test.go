package capture

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/apps/webapp"
	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab/pki"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/proto"
	"github.com/protolab/protolab-tui/lab/wire"
)

// apps starts the four lab apps on free loopback ports and returns a probe
// target for each (keys, when not nil, receives the TLS secrets) and the
// port map.
func apps(t testing.TB, keys *wire.KeyLog) (map[proto.Protocol]probe.Target, map[uint16]proto.Protocol) {
	t.Helper()
	auth, err := pki.Load(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[proto.Protocol]probe.Target{}
	ports := map[uint16]proto.Protocol{}
	for _, p := range proto.All {
		cfg := webapp.Config{Mode: webapp.Mode(p)}
		if p.Secure() {
			cfg.TLS = auth.ServerTLS()
		}
		srv, err := webapp.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		})
		tg := probe.Target{Protocol: p, Addr: l.Addr().String(), ServerName: "localhost", RootCAs: auth.Pool()}
		if keys != nil {
			tg.KeyLog = keys
		}
		targets[p] = tg
		ports[uint16(l.Addr().(*net.TCPAddr).Port)] = p
	}
	return targets, ports
}

func portList(m map[uint16]proto.Protocol) []int {
	var out []int
	for p := range m {
		out = append(out, int(p))
	}
	return out
}

// runProbes runs every protocol's probe with n round trips.
func runProbes(t testing.TB, targets map[proto.Protocol]probe.Target, n int) {
	t.Helper()
	for _, p := range proto.All {
		if _, err := probe.Run(context.Background(), targets[p], probe.Options{Count: n}); err != nil {
			t.Fatal(err)
		}
	}
}

// wantExact is what one probe run of n round trips puts on the wire: http
// and https: GET / and n POSTs, each answered; ws and wss: n text frames each
// way and a close frame each way.
func wantMessages(n int) uint64 { return uint64(2*n + 2) }

func TestLiveCaptureCountsExactly(t *testing.T) {
	testenv.NeedRoot(t)
	keys := wire.NewKeyLog(nil)
	targets, ports := apps(t, keys)
	src, err := OpenLive("lo", portList(ports))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(src, ModeLive, Options{Ports: ports, Keys: keys, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 25
	runProbes(t, targets, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Sync(ctx, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Drops() != 0 {
		t.Errorf("drops: %+v", st)
	}
	for _, p := range proto.All {
		cn := c.Store().Counters(p)
		t.Logf("%s: %+v", p, cn)
		if cn.Messages != wantMessages(n) {
			t.Errorf("%s: %d messages on the wire, want %d", p, cn.Messages, wantMessages(n))
		}
		if cn.Errors != 0 {
			for _, r := range c.Store().All(p) {
				if r.Kind == wire.KindError {
					t.Errorf("%s: %s", p, r.Err)
				}
			}
		}
		if cn.Flows != 1 || cn.SetupFlows != 1 {
			t.Errorf("%s: %d flows, %d with an application message; want 1 and 1", p, cn.Flows, cn.SetupFlows)
		}
		if p.Secure() {
			if cn.TLSHellos != 1 || cn.Decrypted == 0 {
				t.Errorf("%s: %d ClientHellos, %d decrypted records", p, cn.TLSHellos, cn.Decrypted)
			}
		}
		if p.WebSocket() {
			if cn.HTTPReqs != 1 || cn.HTTPResps != 1 || cn.WSControl != 2 {
				t.Errorf("%s: upgrade %d/%d, %d control frames", p, cn.HTTPReqs, cn.HTTPResps, cn.WSControl)
			}
		} else if cn.HTTPReqs != n+1 || cn.HTTPResps != n+1 {
			t.Errorf("%s: %d requests, %d responses; want %d each", p, cn.HTTPReqs, cn.HTTPResps, n+1)
		}
	}
}
