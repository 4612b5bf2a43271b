package headless_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/headless"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/providers/local"
	"github.com/protolab/protolab-tui/protocol"
)

// brokenWSS is the embedded provider with the wss app's endpoint pointing at
// a port nobody listens on, as when a container's port mapping is wrong.
type brokenWSS struct {
	lab.Provider
	dead string
}

func (b brokenWSS) Deploy(ctx context.Context, apps []lab.App) ([]lab.AppStatus, error) {
	st, err := b.Provider.Deploy(ctx, apps)
	for i := range st {
		if st[i].Protocol == protocol.WSS {
			st[i].Endpoint = b.dead
		}
	}
	return st, err
}

func TestFailingProtocolIsNamed(t *testing.T) {
	l0, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l0.Addr().String()
	l0.Close()
	newProv := func(env lab.Env) (lab.Provider, error) {
		p, err := local.New(env)
		return brokenWSS{Provider: p, dead: dead}, err
	}
	l, err := lab.New(lab.Config{StateDir: t.TempDir(), Apps: anyPort, Probe: probe.Options{Count: 3}}, newProv)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep, err := headless.Run(context.Background(), l, headless.Options{Out: &out})
	var pe *headless.AppError
	if !errors.As(err, &pe) || len(pe.Failed) != 1 || pe.Failed[0] != "wss" {
		t.Fatalf("err = %v, want wss named as failed", err)
	}
	if !strings.Contains(err.Error(), "wss failed: wss: connecting to "+dead) {
		t.Errorf("error %q does not say why wss failed", err)
	}
	if rep.OK || !rep.Apps["http"].OK {
		t.Errorf("report %+v", rep)
	}
	s := out.String()
	if !strings.Contains(s, "wss       wss  FAILED") || !strings.Contains(s, "probe     wss   FAILED") {
		t.Errorf("output does not show the failure:\n%s", s)
	}
	if st := l.Snapshot().State; st != lab.Down {
		t.Errorf("lab left %s after a failed run", st)
	}
}
