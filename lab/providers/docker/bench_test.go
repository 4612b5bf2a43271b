package docker_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/providers/docker"
)

// BenchmarkStartToVerified: the docker lab from nothing to four protocols
// verified (one echo each) and torn down, images cached ("protolab"), vs
// `docker-compose up -d` of the seed lab's compose file (as
// apps/docker-compose.yaml, on free ports), the same checks and
// `docker-compose down` ("compose"), in the same run. bench/run.sh prints
// the ratio (target ≤ 1.2, and ≤ 10 s). The lab and the compose project
// have names of their own, so other labs on the engine are left alone.
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
		l, err := lab.New(lab.Config{Name: fmt.Sprintf("bench-%d", os.Getpid()), Provider: "docker", StateDir: state, Apps: anyPorts,
			Probe: probe.Options{Count: 1}, Capture: lab.CaptureConfig{Mode: "off"}}, docker.New)
		if err != nil {
			b.Fatal(err)
		}
		return l
	}
	ctx := context.Background()
	b.Cleanup(func() { _ = newLab().Teardown(ctx).Wait(ctx) }) // whatever a failed iteration left (by label)
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
		// The seed lab's compose file on ports free now.
		apps := lab.SeedApps()
		for i := range apps {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			apps[i].Port = l.Addr().(*net.TCPAddr).Port
			l.Close()
		}
		cfg, err := lab.Config{Apps: apps, Bind: "127.0.0.1"}.WithDefaults()
		if err != nil {
			b.Fatal(err)
		}
		yaml, err := docker.ComposeFile(cfg)
		if err != nil {
			b.Fatal(err)
		}
		file := filepath.Join(b.TempDir(), "docker-compose.yaml")
		if err := os.WriteFile(file, yaml, 0o600); err != nil {
			b.Fatal(err)
		}
		project := fmt.Sprintf("protolabbench%d", os.Getpid())
		b.Cleanup(func() { _ = exec.Command("docker-compose", "-p", project, "-f", file, "down").Run() })
		compose := func(args ...string) {
			cmd := exec.Command("docker-compose", append([]string{"-p", project, "-f", file}, args...)...)
			cmd.Env = append(os.Environ(), "PROTOLAB_PKI="+filepath.Join(state, "pki"), "PROTOLAB_UID=0", "PROTOLAB_GID=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("docker-compose %v: %v %s", args, err, out)
			}
		}
		warm := newLab() // the lab CA for the checks
		for range b.N {
			compose("up", "-d")
			for _, a := range cfg.Apps {
				tg := probe.Target{Protocol: a.Protocol, Addr: fmt.Sprintf("127.0.0.1:%d", a.Port), ServerName: "localhost", RootCAs: warm.PKI().Pool()}
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
