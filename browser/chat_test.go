package browser_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/providers/local"
	"github.com/protolab/protolab-tui/lab/wire"
)

// needChromium is what the Go driver needs: the browser alone.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		testenv.Missing(t, "Debian's chromium (/usr/bin/chromium) is not installed: scripts/test.sh installs it")
	}
}

// TestBrowserStep runs a lab file's script with browser steps — the
// product's own Chromium driver (chromedp, no Node) — on the ws app and on
// the production path's TLS front (wss → front → balancer with affinity →
// two hubs): two people chat, a taken name is refused, and, with capture
// on, the browser's wss frames are decrypted in the capture by the keys it
// wrote while it ran (no key file fed afterwards).
func TestBrowserStep(t *testing.T) {
	needChromium(t)
	testenv.NeedRoot(t) // packets, so decryption is the capture's, not the socket's
	file := filepath.Join(t.TempDir(), "lab.yaml")
	src := `name: t13-browser-step
apps:
  - {name: ws, kind: chat-ws, protocol: ws, port: 0}
  - {name: edge, kind: tls-front, protocol: wss, port: 0, upstream: [lb]}
  - {name: lb, kind: balancer, protocol: ws, port: 0, upstream: [hub-1, hub-2], affinity: cookie}
  - {name: hub-1, kind: chat-ws, protocol: ws, port: 0}
  - {name: hub-2, kind: chat-ws, protocol: ws, port: 0}
steps:
  - up
  - deploy
  - capture on
  - browser ws
  - browser edge
  - down
`
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	lf, err := lab.LoadLabFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cfg := lf.Config
	cfg.StateDir = t.TempDir()
	steps, err := cfg.ParsedSteps()
	if err != nil {
		t.Fatal(err)
	}
	// The wire is read before the down step: run all but it, look, then down.
	l, err := lab.New(cfg, local.New)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t.Cleanup(func() { _ = l.Teardown(context.Background()).Wait(context.Background()); _ = l.Close() })
	res, err := l.RunSteps(ctx, steps[:len(steps)-1])
	if err != nil {
		t.Fatalf("%v\n%+v", err, res)
	}
	for _, r := range res[3:] {
		if r.State != lab.StepOK || !strings.Contains(r.Detail, "two people chatted in Chromium (alice, bob)") {
			t.Errorf("step %d %s: %s %q %s", r.Index, r.Step, r.State, r.Detail, r.Error)
		}
	}
	want := "hello bob, from the browser"
	deadline := time.Now().Add(10 * time.Second)
	for {
		dec := l.Wire().Matching("edge", func(r *wire.Record) bool {
			return r.Layer == "ws" && r.Decrypted && strings.Contains(string(r.Data), want)
		})
		inside := l.Wire().Matching("lb", func(r *wire.Record) bool { return r.Layer == "ws" && strings.Contains(string(r.Data), want) })
		if len(dec) >= 2 && len(inside) >= 2 { // alice's frame to the front, and bob's copy from it; the same inside
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the capture has %d decrypted frames with %q at the front and %d inside: the browser's keys did not arrive while it ran", len(dec), want, len(inside))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := l.Teardown(ctx).Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserStepErrors: a browser step on an app with no chat page is
// refused at its line before anything runs.
func TestBrowserStepErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"apps: [{name: api, kind: echo-http, protocol: http}]\nsteps: [browser api]\n", "api serves no chat page"},
		{"apps: [{name: ws, protocol: ws}]\nsteps: [browser]\n", "step browser takes one app"},
		{"apps: [{name: ws, protocol: ws}]\nsteps: [browser nope]\n", `no app named "nope"`},
	} {
		lf, err := lab.ParseLabFile("lab.yaml", []byte(tc.src))
		if err == nil {
			lf.Config.StateDir = t.TempDir()
			_, err = lf.Config.WithDefaults()
			err = lf.Explain(err)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "lab.yaml:") {
			t.Errorf("%q: %v, want %q at a line", tc.src, err, tc.want)
		}
	}
}
