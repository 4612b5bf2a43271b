// Command honesty compares the lab report's figures with an independent
// client's on the same apps: it brings the embedded lab up (capture off),
// then, in interleaved rounds, measures each app three ways — the lab's
// probe as the report carries it (the probe worker, a separate process),
// the same probe in the lab's own process (how reports were made before the
// worker), and bench/extclient (plain net/http or gorilla, a separate
// process) — and prints the medians with their ratios to the external client,
// and each round's ratio to the external client's in the same round (paired).
// Use a multiple of 6 rounds (24 with -smallworker): each round runs the
// ways in another order. -smallworker adds a fourth way: the probe worker
// in a binary that links only lab/probe (bench/smallworker).
//
//	go run ./bench/honesty -extclient /path/to/extclient -rounds 5 -n 2000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/pki"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/providers/local"
)

type figures struct{ p50, p99, rate float64 } // µs, µs, msgs/s

func main() {
	probe.ServeWorker()
	ext := flag.String("extclient", "", "the independent client binary (go build ./bench/extclient)")
	small := flag.String("smallworker", "", "also measure with the probe worker in a binary of its own (go build ./bench/smallworker)")
	rounds := flag.Int("rounds", 5, "interleaved rounds")
	n := flag.Int("n", 2000, "measured round trips per measurement")
	warmup := flag.Int("warmup", 200, "unmeasured round trips first")
	flag.Parse()
	if err := run(*ext, *small, *rounds, *n, *warmup); err != nil {
		fmt.Fprintln(os.Stderr, "honesty:", err)
		os.Exit(1)
	}
}

func run(ext, small string, rounds, n, warmup int) error {
	if ext == "" {
		return fmt.Errorf("-extclient is required")
	}
	state, err := os.MkdirTemp("", "protolab-honesty-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)
	opts := probe.Options{Count: n, Warmup: warmup}
	l, err := lab.New(lab.Config{StateDir: state, Apps: lab.OnFreePorts(lab.SeedApps()), Probe: opts,
		Capture: lab.CaptureConfig{Mode: "off"}}, local.New)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := l.Up(ctx).Wait(ctx); err != nil {
		return err
	}
	defer func() { _ = l.Teardown(ctx).Wait(ctx) }()
	if err := l.Deploy(ctx).Wait(ctx); err != nil {
		return err
	}
	ca := filepath.Join(l.PKI().Dir, pki.CAFile)
	names := l.Config().AppNames()
	got := map[string]map[string][]figures{} // app → way → rounds
	for _, name := range names {
		got[name] = map[string][]figures{}
	}
	for round := range rounds {
		for _, name := range names {
			t, err := l.Target(name)
			if err != nil {
				return err
			}
			ways := []func() (string, figures, error){
				func() (string, figures, error) { // what the report carries
					_ = l.Probe(ctx, name).Wait(ctx) // fails while other apps are not yet measured
					r := l.Report().Apps[name].Result
					if !r.OK {
						return "", figures{}, fmt.Errorf("%s: %s", name, r.Error)
					}
					return "report (" + r.Client + ")", figures{r.RTTP50Ms * 1e3, r.RTTP99Ms * 1e3, r.MsgsPerS}, nil
				},
				func() (string, figures, error) {
					r, err := probe.Run(ctx, t, opts)
					return "in-process probe", figures{r.RTTP50Ms * 1e3, r.RTTP99Ms * 1e3, r.MsgsPerS}, err
				},
				func() (string, figures, error) {
					out, err := exec.Command(ext, "-proto", string(t.Protocol), "-addr", t.Addr, "-ca", ca,
						"-n", fmt.Sprint(n), "-warmup", fmt.Sprint(warmup)).Output()
					if err != nil {
						return "", figures{}, fmt.Errorf("extclient on %s: %w", name, err)
					}
					var v map[string]float64
					if err := json.Unmarshal(out, &v); err != nil {
						return "", figures{}, fmt.Errorf("extclient said %q: %w", out, err)
					}
					return "external client", figures{v["p50_us"], v["p99_us"], v["msgs_per_s"]}, nil
				},
			}
			if small != "" {
				ways = append(ways, func() (string, figures, error) {
					r, err := probe.Worker{Path: small}.Run(ctx, t, opts)
					return "small worker", figures{r.RTTP50Ms * 1e3, r.RTTP99Ms * 1e3, r.MsgsPerS}, err
				})
			}
			// Each round its own order, every one in turn: a rotation
			// keeps the cycle (the external client always ran right after
			// the in-process probe), so an order effect is spread over
			// every way alike only when each way follows each other as
			// often.
			orders := permutations(len(ways))
			for _, i := range orders[round%len(orders)] {
				way, f, err := ways[i]()
				if err != nil {
					return err
				}
				got[name][way] = append(got[name][way], f)
			}
		}
	}
	fmt.Printf("%d interleaved rounds, %d measured round trips after %d warm-up each; medians; ratio = figure / external client's\n", rounds, n, warmup)
	fmt.Printf("(paired: the median, and the range between the 2nd-lowest and 2nd-highest, of each round's figure / the external client's in that round)\n")
	for _, name := range names {
		ext := got[name]["external client"]
		ref := median(ext)
		fmt.Printf("%-5s external client: p50 %.1f µs, p99 %.1f µs, %.0f msgs/s\n", name, ref.p50, ref.p99, ref.rate)
		ways := make([]string, 0, len(got[name]))
		for way := range got[name] {
			if way != "external client" {
				ways = append(ways, way)
			}
		}
		slices.Sort(ways)
		for _, way := range ways {
			m := median(got[name][way])
			fmt.Printf("      %-28s p50 %.1f µs (%.2f), p99 %.1f µs (%.2f), %.0f msgs/s (%.2f)\n", way+":",
				m.p50, m.p50/ref.p50, m.p99, m.p99/ref.p99, m.rate, m.rate/ref.rate)
			fs := got[name][way]
			paired := func(get func(figures) float64) string {
				r := make([]float64, len(fs))
				for i := range fs {
					r[i] = get(fs[i]) / get(ext[i])
				}
				slices.Sort(r)
				k := min(1, len(r)/2)
				return fmt.Sprintf("%.2f [%.2f–%.2f]", r[len(r)/2], r[k], r[len(r)-1-k])
			}
			fmt.Printf("      %-28s p50 %s, p99 %s, msgs/s %s\n", "  paired:",
				paired(func(f figures) float64 { return f.p50 }), paired(func(f figures) float64 { return f.p99 }),
				paired(func(f figures) float64 { return f.rate }))
		}
	}
	return nil
}

// permutations lists every order of 0…n-1.
func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for at := range n {
			q := append(append(append([]int{}, p[:at]...), n-1), p[at:]...)
			out = append(out, q)
		}
	}
	return out
}

func median(fs []figures) figures {
	pick := func(get func(figures) float64) float64 {
		v := make([]float64, len(fs))
		for i, f := range fs {
			v[i] = get(f)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return figures{pick(func(f figures) float64 { return f.p50 }), pick(func(f figures) float64 { return f.p99 }),
		pick(func(f figures) float64 { return f.rate })}
}
