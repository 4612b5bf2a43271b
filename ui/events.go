package ui

import (
	"fmt"
	"net"

	"github.com/protolab/protolab-tui/lab"
)

// This file mirrors the lab's events in the model: what the panes show,
// the alerts, the comparison's figures. The words said of an event are
// lab.Describe's, which headless prints (lab.Brief: the log line).

// apply mirrors one lab event.
func (m *Model) apply(e lab.Event) {
	m.cmp.apply(e)
	if _, ok := e.(lab.ReportEvent); ok && !m.touched && m.opt.AutoStart {
		if !m.comparing() {
			m.push(m.cmp) // the first start's figures, until a key is pressed
		}
	}
	switch e := e.(type) {
	case lab.StateEvent:
		if m.state == lab.Down && e.To != lab.Down {
			m.upSince = e.Time
		}
		m.state = e.To
		m.hostP.set(e.To, e.Reason)
		if e.To != lab.Running && m.appsP.clearLive() {
			m.layout() // the numbers of a lab that is not running go
		}
		m.logLine = lab.Brief(e)
	case lab.HostEvent:
		m.hostP.host = e.Host
		m.appsP.hostAddr = e.Host.Address
	case lab.AppEvent:
		m.appsP.apps[e.App.Name] = e.App
		switch {
		case e.App.State == lab.AppRunning:
			delete(m.alerts, e.App.Name)
		case m.state == lab.Running && e.App.State != lab.AppStopped:
			// An app died under a running lab: say so until it is back.
			a := e.App
			why := a.State
			if a.Detail != "" {
				why += " (" + a.Detail + ")"
			}
			if a.Restarts > 0 {
				why += ", " + plural(a.Restarts, "restart")
			}
			m.alerts[a.Name] = fmt.Sprintf("app %s %s: r redeploys, x opens a shell on the lab host", a.Name, why)
		}
		m.hostP.endpoints = m.hostP.endpoints[:0]
		for _, a := range m.opt.Apps {
			if st, ok := m.appsP.apps[a.Name]; ok && st.Endpoint != "" {
				ep := st.Endpoint
				if host, port, err := net.SplitHostPort(ep); err == nil && host == m.hostP.host.Address {
					ep = ":" + port // the address is the line above
				}
				m.hostP.endpoints = append(m.hostP.endpoints, a.Name+" "+ep)
			}
		}
	case lab.EarlierLabEvent:
		m.earlier = &e
		m.layout() // the warning takes lines from the body
	case lab.LogEvent:
		m.appsP.log(e.Source, fmt.Sprintf("%s %s %s", e.Time.Format("15:04:05"), e.Level, e.Message))
		switch e.Source {
		case "vagrant", "provision", "docker build":
			m.hostP.log(e.Message) // the host pane streams provisioning
		}
		if e.Level == "warn" || e.Level == "error" {
			m.logLine = lab.Brief(e) // e.g. "ssh link … lost: reconnecting"
		}
	case lab.ProgressEvent, lab.ProbeEvent:
		m.logLine = lab.Brief(e) // the words headless prints
	case lab.SendEvent:
		if e.Error != "" {
			m.showError(fmt.Sprintf("send over %s failed: %s", e.App, e.Error))
		}
		m.logLine = lab.Brief(e)
	case lab.PromptEvent:
		q := e
		m.question = &q
	case lab.PromptClosedEvent:
		// Answered elsewhere (another session), or given up on.
		if m.question != nil && m.question.ID == e.ID {
			m.question = nil
			if m.prompting() == inputAnswer {
				m.dropPrompt()
				m.logLine = "the question was answered or withdrawn"
			}
		}
	case lab.ErrorEvent:
		m.showError(fmt.Sprintf("%s: %s", e.Op, e.Error))
		m.logLine = lab.Brief(e)
	case lab.CaptureEvent:
		m.capturing = e.State == "on"
		m.capture = e.Stats
		m.logLine = lab.Brief(e)
	case lab.ExportEvent:
		m.logLine = lab.Brief(e)
		if e.Error != "" {
			m.showError("export failed: " + e.Error)
		} else if e.Note != "" {
			m.showError("exported, but: " + e.Note) // what the file leaves out
		}
	}
}
