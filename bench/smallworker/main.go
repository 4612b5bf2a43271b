// Command smallworker is the probe worker alone: a binary that links only
// lab/probe, for bench/honesty's "small worker" way — the probe's own code,
// in a process the size of an ordinary client, beside the worker the lab
// runs (the whole protolab binary re-executed).
package main

import (
	"fmt"
	"os"

	"github.com/protolab/protolab-tui/lab/probe"
)

func main() {
	probe.ServeWorker() // serves the request and exits when started as the worker
	fmt.Fprintln(os.Stderr, "smallworker: start it as the probe worker (bench/honesty -smallworker does)")
	os.Exit(2)
}
