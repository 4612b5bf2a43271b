package headless_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/joshdk/go-junit"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/headless"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/protocol"
)

// notMeasured is a report of the seed's four apps, none measured.
func notMeasured(steps []lab.StepResult) lab.Report {
	rep := lab.Report{Lab: "t", Provider: "local", Apps: map[string]lab.AppReport{}, Steps: steps}
	for _, a := range lab.SeedApps() {
		rep.Order = append(rep.Order, a.Name)
		rep.Apps[a.Name] = lab.AppReport{Kind: a.Kind, Result: probe.Result{App: a.Name, Protocol: a.Protocol, Error: lab.NotMeasured}}
	}
	return rep
}

func ingest(t *testing.T, rep lab.Report, runErr error) map[string]junit.Test {
	t.Helper()
	var x bytes.Buffer
	if err := headless.WriteJUnit(&x, rep, runErr, time.Second); err != nil {
		t.Fatal(err)
	}
	suites, err := junit.Ingest(x.Bytes())
	if err != nil || len(suites) != 1 {
		t.Fatalf("a JUnit parser reads %d suites (%v) from:\n%s", len(suites), err, x.String())
	}
	cases := map[string]junit.Test{}
	for _, c := range suites[0].Tests {
		cases[c.Name] = c
	}
	return cases
}

// When the lab did not come up (the ws app's port taken), the plain run
// and the scripted run say the same of the apps: the app whose port was
// taken failed, naming why; the others were not measured (skipped), and
// their message names the cause.
func TestJUnitNamesWhyAppsWereNotMeasured(t *testing.T) {
	taken := &lab.PortInUseError{App: "ws", Addr: "127.0.0.1:3002", Err: errors.New("bind: address already in use")}
	deployErr := fmt.Errorf("deploy: %w", taken)
	for _, tc := range []struct {
		name   string
		rep    lab.Report
		runErr error
		cause  string
	}{
		{"plain", notMeasured(nil), deployErr, "the run stopped before the probes: deploy: port for app ws"},
		{"scripted", notMeasured([]lab.StepResult{{Index: 1, Step: "up", State: lab.StepOK}, {Index: 2, Step: "deploy", State: lab.StepFailed, Error: deployErr.Error()},
			{Index: 3, Step: "compare", State: lab.StepSkipped}}), &lab.StepError{Index: 2, Step: "deploy", Err: deployErr}, "step 2 (deploy) failed: deploy: port for app ws"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cases := ingest(t, tc.rep, tc.runErr)
			for _, a := range lab.SeedApps() {
				c, ok := cases[fmt.Sprintf("%s (%s)", a.Name, a.Protocol)]
				if !ok {
					t.Fatalf("no case for %s: %v", a.Name, cases)
				}
				if a.Protocol == protocol.WS {
					if c.Status != junit.StatusFailed || c.Error == nil || !strings.Contains(c.Error.Error(), "port for app ws (127.0.0.1:3002) is already in use") {
						t.Errorf("%s: %s %v, want failed naming its taken port", c.Name, c.Status, c.Error)
					}
					continue
				}
				if c.Status != junit.StatusSkipped || !strings.Contains(c.Message, "not measured") || !strings.Contains(c.Message, tc.cause) {
					t.Errorf("%s: %s %q, want skipped: not measured, naming %q", c.Name, c.Status, c.Message, tc.cause)
				}
			}
		})
	}
}

// An app case's time is how long its probe took, not its setup time.
func TestJUnitAppTimeIsTheProbes(t *testing.T) {
	rep := notMeasured(nil)
	for _, name := range rep.Order {
		a := rep.Apps[name]
		a.OK, a.Error, a.SetupMs, a.TookMs = true, "", 1.5, 250
		rep.Apps[name] = a
	}
	for name, c := range ingest(t, rep, nil) {
		if strings.HasPrefix(name, "flow") {
			continue
		}
		if c.Duration != 250*time.Millisecond {
			t.Errorf("%s: time %v, want the probe's 250ms (not the setup's 1.5ms)", name, c.Duration)
		}
	}
}
