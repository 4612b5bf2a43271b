package headless_test

import (
	"context"
	"io"
	"testing"

	"github.com/protolab/protolab-tui/internal/labapps"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/headless"
	"github.com/protolab/protolab-tui/lab/pki"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/providers/local"
	"github.com/protolab/protolab-tui/protocol"
)

var anyPort = lab.OnFreePorts(lab.SeedApps())

// BenchmarkStartToVerified measures the embedded lab from nothing to four
// protocols verified (one echo each) and torn down ("protolab"), against the
// same work done by hand with no lab around it ("bare"): four app servers
// started directly and one probe each. bench/run.sh prints the ratio; the
// target for "protolab" is ≤ 1 s.
func BenchmarkStartToVerified(b *testing.B) {
	state := b.TempDir()
	b.Run("protolab", func(b *testing.B) {
		for range b.N {
			l, err := lab.New(lab.Config{StateDir: state, Apps: anyPort, Probe: probe.Options{Count: 1}}, local.New)
			if err != nil {
				b.Fatal(err)
			}
			rep, err := headless.Run(context.Background(), l, headless.Options{Out: io.Discard})
			if err != nil || !rep.OK {
				b.Fatalf("%v %+v", err, rep)
			}
		}
	})
	b.Run("bare", func(b *testing.B) {
		for range b.N {
			auth, err := pki.Load(state+"/pki", nil)
			if err != nil {
				b.Fatal(err)
			}
			a, err := labapps.Start(auth)
			if err != nil {
				b.Fatal(err)
			}
			for _, p := range protocol.Seed() {
				t := probe.Target{Protocol: p, Addr: a.Addrs[p], ServerName: "localhost", RootCAs: auth.Pool()}
				if _, err := probe.Run(context.Background(), t, probe.Options{Count: 1}); err != nil {
					b.Fatal(err)
				}
			}
			a.Stop()
		}
	})
}
