package headless_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/joshdk/go-junit"

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
	// The JUnit report of the run, read back by a JUnit parser: one case
	// per app and one for the flow; only wss failed, saying why.
	var x bytes.Buffer
	if err := headless.WriteJUnit(&x, rep, err, time.Second); err != nil {
		t.Fatal(err)
	}
	suites, perr := junit.Ingest(x.Bytes())
	if perr != nil || len(suites) != 1 {
		t.Fatalf("a JUnit parser reads %d suites (%v) from:\n%s", len(suites), perr, x.String())
	}
	st := suites[0]
	if st.Totals.Tests != 5 || st.Totals.Failed != 1 {
		t.Errorf("JUnit totals %+v, want 5 cases (the flow and four apps), 1 failed:\n%s", st.Totals, x.String())
	}
	for _, c := range st.Tests {
		failed := c.Status == junit.StatusFailed
		if want := strings.HasPrefix(c.Name, "wss "); failed != want {
			t.Errorf("case %q: failed %v, want %v", c.Name, failed, want)
		}
		if failed && (c.Error == nil || !strings.Contains(c.Error.Error(), "connecting to "+dead)) {
			t.Errorf("case %q does not say why: %v", c.Name, c.Error)
		}
	}
}
