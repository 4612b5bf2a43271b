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
		Time     string      `xml:"time,attr"`
		Cases    []junitCase `xml:"testcase"`
	}
	junitCase struct {
		Class   string        `xml:"classname,attr"`
		Name    string        `xml:"name,attr"`
		Time    string        `xml:"time,attr"`
		Failure *junitFailure `xml:"failure,omitempty"`
		Out     string        `xml:"system-out,omitempty"`
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
func WriteJUnit(w io.Writer, rep lab.Report, runErr error, took time.Duration) error {
	class := "protolab." + rep.Lab
	suite := junitSuite{Name: fmt.Sprintf("protolab lab %s (%s)", rep.Lab, rep.Provider), Time: secs(took)}
	flow := junitCase{Class: class, Name: "flow: up, deploy, capture, probe, teardown", Time: secs(took)}
	var appErr *AppError
	if runErr != nil && !errors.As(runErr, &appErr) {
		flow.Failure = &junitFailure{Message: runErr.Error(), Text: runErr.Error()}
	}
	suite.Cases = append(suite.Cases, flow)
	for _, a := range rep.Rows() {
		c := junitCase{Class: class, Name: fmt.Sprintf("%s (%s)", a.App, a.Protocol), Time: secs(time.Duration(a.SetupMs * float64(time.Millisecond)))}
		if a.OK {
			c.Out = fmt.Sprintf("setup %.2f ms, rtt p50 %.3f ms p99 %.3f ms, %.0f msgs/s over %d round trips",
				a.SetupMs, a.RTTP50Ms, a.RTTP99Ms, a.MsgsPerS, a.Messages)
		} else {
			c.Failure = &junitFailure{Message: a.App + " failed: " + a.Error, Text: a.Error}
		}
		suite.Cases = append(suite.Cases, c)
	}
	for _, c := range suite.Cases {
		suite.Tests++
		if c.Failure != nil {
			suite.Failures++
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
