package headless_test

import (
	"bytes"
	"context"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/moby/moby/client"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/headless"
	"github.com/protolab/protolab-tui/lab/providers/docker"
	"github.com/protolab/protolab-tui/lab/providers/local"
	"github.com/protolab/protolab-tui/lab/wire"
)

// runExample runs an example lab file headless on the embedded provider,
// every app on a free port, capture on when root can capture (then
// exported to pcap, when given).
func runExample(t *testing.T, file, pcap string) (*lab.Lab, lab.Report, string) {
	return runExampleOn(t, file, pcap, "local", local.New)
}

// runExampleOn runs it on the named provider.
func runExampleOn(t *testing.T, file, pcap, provider string, newProv func(lab.Env) (lab.Provider, error)) (*lab.Lab, lab.Report, string) {
	t.Helper()
	lf, err := lab.LoadLabFile("../../examples/" + file)
	if err != nil {
		t.Fatal(err)
	}
	cfg := lf.Config
	cfg.Provider = provider
	if provider != "local" {
		cfg.Name = "t-" + strings.TrimSuffix(file, ".yaml")
	}
	cfg.StateDir = t.TempDir()
	cfg.Apps = lab.OnFreePorts(cfg.Apps)
	cfg.Probe.Count = 30
	cfg.Capture.Mode = "off"
	if os.Geteuid() == 0 {
		cfg.Capture.Mode = "on"
	}
	l, err := lab.New(cfg, newProv)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	o := headless.Options{Out: &out}
	if cfg.Capture.Mode == "on" {
		o.Pcap = pcap
	}
	rep, err := headless.Run(ctx, l, o)
	if err != nil || !rep.OK {
		t.Fatalf("%s: %v\n%s", file, err, out.String())
	}
	return l, rep, out.String()
}

// TestProductionPath: wss → tls-front → balancer (affinity) → 2 ws hubs.
// Every app ok, the hop breakdown present and naming the replica that served
// the probe, and — with capture — each inside leg carrying exactly the
// frames of the outside leg on top of its own probe's.
func TestProductionPath(t *testing.T) {
	pcap := filepath.Join(t.TempDir(), "production.pcapng")
	_, rep, out := runExample(t, "production.yaml", pcap)
	checkProduction(t, rep, out, pcap, nil)
}

// TestProductionPathOnDocker: the same path, each app a container, the
// inside legs crossing the lab network — whose bridge the capture reads
// beside lo, so the counts and tshark's are the same as in-process.
func TestProductionPathOnDocker(t *testing.T) {
	needEngine(t)
	pcap := filepath.Join(t.TempDir(), "production.pcapng")
	l, rep, out := runExampleOn(t, "production.yaml", pcap, "docker", docker.New)
	checkProduction(t, rep, out, pcap, docker.InnerPorts(l.Config().Apps))
}

// checkProduction checks a run of the production path: every app ok, the
// hop breakdown present and naming the replica that served the probe,
// and — with capture — each inside leg carrying exactly the frames of the
// outside leg on top of its own probe's, as tshark counts them too. inner
// holds the ports the apps listen on inside their containers, when they
// are not the published ones: tshark counts an app's frames on both.
func checkProduction(t *testing.T, rep lab.Report, out, pcap string, inner map[string]int) {
	t.Helper()
	edge := rep.Apps["edge"]
	// The path the probe took: the front, the balancer, and the one hub
	// the affinity cookie kept it on (the hop table lists no other).
	if len(edge.Hops) != 3 || edge.Hops[0].App != "edge" || edge.Hops[1].App != "lb" || edge.Hops[0].AddedSetupMs == 0 ||
		edge.Hops[1].Replicas[edge.Hops[2].App] == 0 {
		t.Fatalf("edge's hops: %+v", edge.Hops)
	}
	if n := len(edge.Replicas); n != 1 {
		t.Errorf("the probe through the front saw replicas %v, want exactly one", edge.Replicas)
	}
	if !strings.Contains(out, "Through edge, hop by hop") {
		t.Errorf("the text report has no hop table:\n%s", out)
	}
	if rep.Capture == nil {
		t.Log("capture off (not root): the legs' counts are not checked")
		return
	}
	e, lb := rep.Apps["edge"].Wire, rep.Apps["lb"].Wire
	if e.Decrypted == 0 || e.Messages == 0 {
		t.Fatalf("the outside leg was not decrypted: %+v", e)
	}
	// lb's port sees its own probe and the front's inside leg; the probes
	// are alike (same count and payload), so twice the outside's frames.
	if lb.Messages != 2*e.Messages {
		t.Errorf("inside leg (lb) %d WebSocket frames, outside leg (edge) %d: want %d", lb.Messages, e.Messages, 2*e.Messages)
	}
	hubs := rep.Apps["hub-1"].Wire.Messages + rep.Apps["hub-2"].Wire.Messages
	// The hubs: their own two probes, the balancer's and the front's.
	if hubs != 4*e.Messages {
		t.Errorf("the hubs carried %d frames, want %d (their own probes, the balancer's and the front's)", hubs, 4*e.Messages)
	}
	// Wireshark's count on each app's port is the report's (the front's
	// decrypted with the keys the export carries), so the inside leg's
	// frames equal the outside's twice over here too.
	port := map[string]uint16{}
	var ports []uint16
	for name, a := range rep.Apps {
		ap, err := netip.ParseAddrPort(a.Addr)
		if err != nil {
			t.Fatalf("%s: address %q: %v", name, a.Addr, err)
		}
		port[name] = ap.Port()
		ports = append(ports, ap.Port())
		if p, ok := inner[name]; ok && uint16(p) != ap.Port() {
			ports = append(ports, uint16(p))
		}
	}
	byPort := testenv.TsharkWSFrames(t, pcap, ports, map[uint16]bool{port["edge"]: true, uint16(inner["edge"]): true})
	frames := map[uint16]int{} // by published port: the app's on both
	for name, p := range port {
		frames[p] = byPort[p]
		if q, ok := inner[name]; ok && uint16(q) != p {
			frames[p] += byPort[uint16(q)]
		}
	}
	t.Logf("tshark: WebSocket frames per app port %v (published %v, inner %v); capture from %s", frames, port, inner, rep.Capture.Source)
	for name, a := range rep.Apps {
		if got := frames[port[name]]; uint64(got) != a.Wire.Messages {
			t.Errorf("%s (port %d): tshark decodes %d WebSocket frames, the report counts %d", name, port[name], got, a.Wire.Messages)
		}
	}
	if frames[port["lb"]] != 2*frames[port["edge"]] || frames[port["edge"]] == 0 {
		t.Errorf("tshark: %d frames on the inside port (lb), %d on the outside (edge): want twice", frames[port["lb"]], frames[port["edge"]])
	}
}

// TestOrchestratorPath: the ws-proxy relays for a token the lab mints, and
// refuses forged, expired and wrong-target ones before the upgrade.
func TestOrchestratorPath(t *testing.T) {
	_, rep, _ := runExample(t, "orchestrator.yaml", "")
	if !rep.Apps["gateway"].OK || len(rep.Apps["gateway"].Hops) != 2 {
		t.Fatalf("gateway: %+v", rep.Apps["gateway"])
	}
	// Up again, kept up, for clients of the test's own.
	lf, err := lab.LoadLabFile("../../examples/orchestrator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := lf.Config
	cfg.StateDir, cfg.Apps, cfg.Capture.Mode = t.TempDir(), lab.OnFreePorts(cfg.Apps), "off"
	l, gw := upOrchestrator(t, context.Background(), cfg, local.New)
	good, err := l.MintToken([]string{"ws"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := l.MintToken([]string{"ws"}, time.Nanosecond)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/" + good + "/ws/echo", http.StatusSwitchingProtocols},
		{"/" + good + "/wss/echo", http.StatusForbidden},
		{"/" + expired + "/ws/echo", http.StatusUnauthorized},
		{"/" + good[:len(good)-2] + "AA/ws/echo", http.StatusUnauthorized},
	} {
		c, res, err := websocket.DefaultDialer.Dial("ws://"+gw+tc.path, nil)
		if res == nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if res.StatusCode != tc.status {
			t.Errorf("%s: %s, want %d", tc.path[len(tc.path)-8:], res.Status, tc.status)
		}
		if c != nil {
			c.Close()
		}
	}
}

// TestProxiedWSSLegIsDecrypted: through the ws-proxy to the wss app, the
// inside leg is TLS the proxy makes; its secrets reach the lab's key log
// (in-process directly, from a container through its log), so the capture
// shows that leg's frames decrypted — on each provider.
func TestProxiedWSSLegIsDecrypted(t *testing.T) {
	testenv.NeedRoot(t) // packets, not sockets: the proxy's own connection is captured
	for _, tc := range []struct {
		provider string
		newProv  func(lab.Env) (lab.Provider, error)
	}{{"local", local.New}, {"docker", docker.New}} {
		t.Run(tc.provider, func(t *testing.T) {
			if tc.provider == "docker" {
				needEngine(t)
			}
			lf, err := lab.LoadLabFile("../../examples/orchestrator.yaml")
			if err != nil {
				t.Fatal(err)
			}
			cfg := lf.Config
			cfg.Name, cfg.Provider, cfg.StateDir, cfg.Apps, cfg.Capture.Mode = "t-proxied", tc.provider, t.TempDir(), lab.OnFreePorts(cfg.Apps), "on"
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			l, gw := upOrchestrator(t, ctx, cfg, tc.newProv)
			token, err := l.MintToken([]string{"wss"}, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			c, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+gw+"/"+token+"/wss/echo", nil)
			if err != nil {
				t.Fatal(err)
			}
			const n, text = 5, "through the proxy, over TLS inside"
			for range n {
				if err := c.WriteMessage(websocket.TextMessage, []byte(text)); err != nil {
					t.Fatal(err)
				}
				if _, b, err := c.ReadMessage(); err != nil || string(b) != text {
					t.Fatalf("echo %q %v", b, err)
				}
			}
			c.Close()
			// Each message twice on the wss app's port (to it and back),
			// decrypted; the proxy's keys may come a moment after the
			// packets.
			var got int
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				got = 0
				for _, r := range l.Wire().All("wss") {
					if r.Kind == wire.KindMessage && r.Decrypted && r.Layer == "ws" && string(r.Data) == text {
						got++
					}
				}
				if got >= 2*n {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if got != 2*n {
				t.Errorf("the wss app's list holds %d decrypted frames carrying the text, want %d (the proxy's inside leg):\n%s", got, 2*n, l.Wire())
			}
		})
	}
}

// upOrchestrator brings the orchestrator lab up (and its capture, when
// on), torn down at the test's end, and returns it with the gateway's
// endpoint.
func upOrchestrator(t *testing.T, ctx context.Context, cfg lab.Config, newProv func(lab.Env) (lab.Provider, error)) (*lab.Lab, string) {
	t.Helper()
	l, err := lab.New(cfg, newProv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Teardown(context.Background()).Wait(context.Background()) })
	steps := []func(context.Context) *lab.Job{l.Up, l.Deploy}
	if cfg.Capture.Mode != "off" {
		steps = append(steps, l.StartCapture)
	}
	for _, step := range steps {
		if err := step(ctx).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range l.Snapshot().Apps {
		if a.Name == "gateway" {
			return l, a.Endpoint
		}
	}
	t.Fatal("the lab has no gateway")
	return nil, ""
}

// needEngine skips (or fails, under the test command) without a Docker
// engine.
func needEngine(t *testing.T) {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err = cli.Ping(ctx, client.PingOptions{})
		cancel()
		cli.Close()
	}
	if err != nil {
		testenv.Missing(t, "no Docker engine answers: "+err.Error())
	}
}
