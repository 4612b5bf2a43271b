package docker_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/providers/docker"
	"github.com/protolab/protolab-tui/protocol"
)

// BenchmarkStartToVerified: the docker lab from nothing to four protocols
// verified (one echo each) and torn down, images cached ("protolab"), vs
// `docker-compose up -d` of apps/docker-compose.yaml, the same checks and
// `docker-compose down` ("compose"), in the same run. bench/run.sh prints
// the ratio (target ≤ 1.2, and ≤ 10 s).
func BenchmarkStartToVerified(b *testing.B) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		b.Skip("no Docker client")
	}
	if _, err := cli.Ping(context.Background(), client.PingOptions{}); err != nil {
		b.Skip("no Docker engine: " + err.Error())
	}
	state := b.TempDir()
	newLab := func() *lab.Lab {
		l, err := lab.New(lab.Config{Name: "bench", Provider: "docker", StateDir: state, Apps: anyPorts,
			Probe: probe.Options{Count: 1}, Capture: lab.CaptureConfig{Mode: "off"}}, docker.New)
		if err != nil {
			b.Fatal(err)
		}
		return l
	}
	ctx := context.Background()
	// Warm the image cache, and tag the image for compose.
	warm := newLab()
	if err := warm.Up(ctx).Wait(ctx); err != nil {
		b.Fatal(err)
	}
	_ = warm.Teardown(ctx).Wait(ctx)
	imgs, _ := cli.ImageList(ctx, client.ImageListOptions{Filters: client.Filters{}.Add("label", docker.LabelImage+"=app")})
	if len(imgs.Items) == 0 {
		b.Fatal("no image")
	}
	_, _ = cli.ImageTag(ctx, client.ImageTagOptions{Source: imgs.Items[0].ID, Target: "protolab-app:latest"})

	b.Run("protolab", func(b *testing.B) {
		for range b.N {
			l := newLab()
			probeAll := func(ctx context.Context) *lab.Job { return l.Probe(ctx) }
			for _, step := range []func(context.Context) *lab.Job{l.Up, l.Deploy, probeAll, l.Teardown} {
				if err := step(ctx).Wait(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("compose", func(b *testing.B) {
		file, _ := filepath.Abs("../../../apps/docker-compose.yaml")
		compose := func(args ...string) {
			cmd := exec.Command("docker-compose", append([]string{"-p", "protolabbench", "-f", file}, args...)...)
			cmd.Env = append(os.Environ(), "PROTOLAB_PKI="+filepath.Join(state, "pki"), "PROTOLAB_UID=0", "PROTOLAB_GID=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("docker-compose %v: %v %s", args, err, out)
			}
		}
		warm := newLab() // the lab CA for the checks
		for range b.N {
			compose("up", "-d")
			for _, p := range protocol.Seed() {
				tg := probe.Target{Protocol: p, Addr: fmt.Sprintf("127.0.0.1:%d", p.DefaultPort()), ServerName: "localhost", RootCAs: warm.PKI().Pool()}
				var err error
				for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					if _, err = probe.Run(ctx, tg, probe.Options{Count: 1}); err == nil {
						break
					}
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			compose("down")
		}
	})
}
