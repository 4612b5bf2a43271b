package lab

import (
	"os"
	"testing"

	"github.com/protolab/protolab-tui/lab/probe"
)

// TestMain lets this test binary be the probe worker the lab re-executes.
func TestMain(m *testing.M) {
	probe.ServeWorker()
	os.Exit(m.Run())
}
