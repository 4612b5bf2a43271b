package headless

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/protolab/protolab-tui/lab"
)

// The JUnit XML shapes CI systems read (Jenkins, GitLab, GitHub's test
// reporters): one suite for the run, one test case per app and one for the
// flow itself (up, deploy, capture, teardown).
type (
	junitSuites struct {
		XMLName xml.Name     `xml:"testsuites"`
		Suites  []junitSuite `xml:"testsuite"`
	}
	junitSuite struct {
		Name     string      `xml:"name,attr"`
		Tests    int         `xml:"tests,attr"`
		Failures int         `xml:"failures,attr"`
		Skipped  int         `xml:"skipped,attr"`
		Time     string      `xml:"time,attr"`
		Cases    []junitCase `xml:"testcase"`
	}
	junitCase struct {
		Class   string        `xml:"classname,attr"`
		Name    string        `xml:"name,attr"`
		Time    string        `xml:"time,attr"`
		Failure *junitFailure `xml:"failure,omitempty"`
		Skipped *junitSkipped `xml:"skipped,omitempty"`
		Out     string        `xml:"system-out,omitempty"`
	}
	junitSkipped struct {
		Message string `xml:"message,attr"`
	}
	junitFailure struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	}
)

// WriteJUnit writes the run as JUnit XML: a test case per app of rep (its
// probe's figures as output, its error as the failure) and one for the
// flow, failed when runErr is a failure of the flow rather than of apps
// (the lab did not come up, an export failed…). took is the run's time.
//
// A script's run (rep.Steps) has a test case per step instead of the
// flow's — a failed step is a failure with its error, the steps after it
// are skipped; a failure that is no step's (the teardown after the steps)
// is one more case.
//
// An app's case takes its probe's time. An app no probe measured is
// skipped, its message naming why (the run stopped before the probes, and
// on what error; no compare step measured it, or which step failed before
// one did) — the same in a plain run and a script's — except the app whose
// port was taken (a *lab.PortInUseError), whose case fails with it.
func WriteJUnit(w io.Writer, rep lab.Report, runErr error, took time.Duration) error {
	class := "protolab." + rep.Lab
	suite := junitSuite{Name: fmt.Sprintf("protolab lab %s (%s)", rep.Lab, rep.Provider), Time: secs(took)}
	var appErr *AppError
	var stepErr *lab.StepError
	switch {
	case len(rep.Steps) == 0:
		flow := junitCase{Class: class, Name: "flow: up, deploy, capture, probe, teardown", Time: secs(took)}
		if runErr != nil && !errors.As(runErr, &appErr) {
			flow.Failure = &junitFailure{Message: runErr.Error(), Text: runErr.Error()}
		}
		suite.Cases = append(suite.Cases, flow)
	default:
		for _, st := range rep.Steps {
			c := junitCase{Class: class + ".steps", Name: fmt.Sprintf("step %d: %s", st.Index, st.Step), Time: secs(time.Duration(st.TookMs * float64(time.Millisecond)))}
			switch st.State {
			case lab.StepOK:
				c.Out = st.Detail
			case lab.StepFailed:
				c.Failure = &junitFailure{Message: fmt.Sprintf("step %d (%s) failed: %s", st.Index, st.Step, st.Error), Text: st.Error}
			default:
				c.Skipped = &junitSkipped{Message: "not run: an earlier step failed, or the run was interrupted"}
			}
			suite.Cases = append(suite.Cases, c)
		}
		if runErr != nil && !errors.As(runErr, &stepErr) {
			suite.Cases = append(suite.Cases, junitCase{Class: class, Name: "after the steps: teardown", Time: secs(took),
				Failure: &junitFailure{Message: runErr.Error(), Text: runErr.Error()}})
		}
	}
	// Why an app no probe measured was not: the run stopped before the
	// probes (the lab did not come up), or no compare step measured it.
	var cause string
	switch {
	case len(rep.Steps) == 0 && runErr != nil && !errors.As(runErr, &appErr):
		cause = "the run stopped before the probes: " + runErr.Error()
	case len(rep.Steps) > 0 && errors.As(runErr, &stepErr):
		cause = "no compare step measured it before " + stepErr.Error()
	case len(rep.Steps) > 0:
		cause = "no compare step measured it"
	}
	// The app whose port was taken did not come up: its case fails.
	var taken *lab.PortInUseError
	errors.As(runErr, &taken)
	for _, a := range rep.Rows() {
		c := junitCase{Class: class, Name: fmt.Sprintf("%s (%s)", a.App, a.Protocol), Time: secs(time.Duration(a.TookMs * float64(time.Millisecond)))}
		switch {
		case a.OK:
			c.Out = fmt.Sprintf("setup %.2f ms, rtt p50 %.3f ms p99 %.3f ms, %.0f msgs/s over %d round trips",
				a.SetupMs, a.RTTP50Ms, a.RTTP99Ms, a.MsgsPerS, a.Messages)
		case a.Error == lab.NotMeasured && taken != nil && taken.App == a.App:
			c.Failure = &junitFailure{Message: a.App + " failed: " + taken.Error(), Text: runErr.Error()}
		case a.Error == lab.NotMeasured && cause != "":
			c.Skipped = &junitSkipped{Message: "not measured: " + cause}
		default:
			c.Failure = &junitFailure{Message: a.App + " failed: " + a.Error, Text: a.Error}
		}
		suite.Cases = append(suite.Cases, c)
	}
	for _, c := range suite.Cases {
		suite.Tests++
		if c.Failure != nil {
			suite.Failures++
		}
		if c.Skipped != nil {
			suite.Skipped++
		}
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("writing the JUnit report: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{suite}}); err != nil {
		return fmt.Errorf("writing the JUnit report: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("writing the JUnit report: %w", err)
	}
	return nil
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }
