package lab

import (
	"fmt"
	"strings"
)

// Describe renders an event as one line of text: its kind in a column of
// ten, then what happened. It is the one presenter of events: headless
// prints it, the explorer's log line says the same words (Brief).
func Describe(e Event) string {
	switch e := e.(type) {
	case StateEvent:
		s := fmt.Sprintf("state     %s → %s", e.From, e.To)
		if e.Reason != "" {
			s += ": " + e.Reason
		}
		return s
	case HostEvent:
		return fmt.Sprintf("host      %s %s (%s) at %s", e.Host.Provider, e.Host.Name, e.Host.OS, e.Host.Address)
	case AppEvent:
		a := e.App
		s := fmt.Sprintf("app       %-5s %s", a.Name, a.State)
		if a.Health != "" {
			s += " " + a.Health
		}
		if a.Endpoint != "" {
			s += " at " + a.Endpoint
		}
		if a.Detail != "" {
			s += " (" + a.Detail + ")"
		}
		return s
	case ProgressEvent:
		if e.Total > 0 {
			return fmt.Sprintf("progress  %s: %s (%d/%d)", e.Op, e.Step, e.Done+1, e.Total)
		}
		return fmt.Sprintf("progress  %s: %s", e.Op, e.Step)
	case ProbeEvent:
		r := e.Result
		if !r.OK {
			return fmt.Sprintf("probe     %-5s FAILED: %s", r.App, r.Error)
		}
		return fmt.Sprintf("probe     %-5s ok: setup %.2f ms, rtt p50 %.3f ms p99 %.3f ms, %.0f msgs/s over %d round trips (client %s)",
			r.App, r.SetupMs, r.RTTP50Ms, r.RTTP99Ms, r.MsgsPerS, r.Messages, r.Client)
	case SendEvent:
		if e.Error != "" {
			return fmt.Sprintf("send      %s %q FAILED: %s", e.App, e.Sent, e.Error)
		}
		return fmt.Sprintf("send      %s %q → %q in %.2f ms", e.App, e.Sent, e.Reply, e.RTTMs)
	case StepEvent:
		head := fmt.Sprintf("step      %d/%d %s", e.Index, e.Total, e.Step)
		switch e.State {
		case StepStarted:
			return head
		case StepOK:
			if e.Detail != "" {
				return fmt.Sprintf("%s: ok in %.0f ms (%s)", head, e.TookMs, e.Detail)
			}
			return fmt.Sprintf("%s: ok in %.0f ms", head, e.TookMs)
		case StepFailed:
			return fmt.Sprintf("%s: FAILED: %s", head, e.Error)
		}
		return head + ": " + e.State
	case EarlierLabEvent:
		return "warning   " + e.Message()
	case LogEvent:
		return fmt.Sprintf("log       [%s] %s: %s", e.Source, e.Level, e.Message)
	case ErrorEvent:
		return fmt.Sprintf("error     %s: %s", e.Op, e.Error)
	case ReportEvent:
		return fmt.Sprintf("report    provider %s ok=%v", e.Provider, e.OK)
	case CaptureEvent:
		s := fmt.Sprintf("capture   %s", e.State)
		if e.Stats.Mode != "" {
			s += fmt.Sprintf(" (%s: %s)", e.Stats.Mode, e.Stats.Source)
		}
		if e.State == "off" && e.Stats.Packets > 0 {
			s += fmt.Sprintf(": %d packets, %d dropped", e.Stats.Packets, e.Stats.Drops())
		}
		if e.Note != "" {
			s += ": " + e.Note
		}
		return s
	case ExportEvent:
		if e.Error != "" {
			return fmt.Sprintf("export    FAILED: %s", e.Error)
		}
		s := fmt.Sprintf("export    %d packets and %d TLS secrets to %s", e.Packets, e.Secrets, e.Path)
		if e.CutShort {
			s = "export    (cut short) " + strings.TrimPrefix(s, "export    ")
		}
		if e.Note != "" {
			s += " (" + e.Note + ")"
		}
		return s
	}
	return e.EventType()
}

// Brief is Describe without its columns' padding (quoted text kept as it
// is): what the explorer's log line says of an event.
func Brief(e Event) string {
	var b strings.Builder
	quoted, escaped, space := false, false, false
	for _, r := range strings.TrimSpace(Describe(e)) {
		switch {
		case quoted && escaped:
			escaped = false
		case quoted && r == '\\':
			escaped = true
		case r == '"':
			quoted = !quoted
		case !quoted && r == ' ':
			if space {
				continue
			}
			space = true
			b.WriteRune(r)
			continue
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}
