package ui

import (
	"fmt"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/table"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/wire"
)

// legsRequest asks the explorer for a record's legs (l in the detail).
type legsRequest struct{ rec wire.Record }

// legsMsg carries a message's legs, gathered by fetchLegs: the record
// itself and the same message on each other hop, in time order.
type legsMsg struct {
	of   wire.Record
	legs []wire.Record
	apps []lab.App // the hops looked in
}

// jumpMsg asks the explorer to show one record of an app, selected.
type jumpMsg struct {
	app string
	seq uint64
}

// fetchLegs finds r's message on the other hops of its way through the lab
// (lab.Config.Legs); a tea.Cmd (a scan of each hop's ring).
func fetchLegs(store *wire.Store, r wire.Record, apps []lab.App) tea.Cmd {
	names := make([]string, len(apps))
	for i, a := range apps {
		names[i] = a.Name
	}
	return func() tea.Msg { return legsMsg{of: r, legs: store.Legs(r, names), apps: apps} }
}

// legKeys are the legs view's own keys.
var legKeys = struct{ Jump, Close, Up, Down key.Binding }{
	Jump:  key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "show this leg in its app's list")),
	Close: key.NewBinding(key.WithKeys("esc", "l", "q"), key.WithHelp("esc/l", "close")),
	Up:    key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
	Down:  key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
}

// legsView is the hop view: one message's legs — the client's to the
// front, the front's to the balancer, the balancer's to a replica — each
// with its app, connection and time, and what each hop added.
type legsView struct {
	st    styles
	msg   legsMsg
	kinds map[string]string
	tbl   table.Model
	w, h  int
}

func newLegsView(st styles, msg legsMsg) *legsView {
	v := &legsView{st: st, msg: msg, kinds: map[string]string{},
		tbl: table.New(table.WithFocused(true), table.WithStyles(st.table))}
	for _, a := range msg.apps {
		v.kinds[a.Name] = a.Kind
	}
	return v
}

// SetSize implements overlay.
func (v *legsView) SetSize(w, h int) {
	v.w, v.h = w, h
	// The clock time only where there is room: the deltas are what a
	// reader compares.
	timed := w >= 110
	fixed := 3 + 11 + 10 + 8 + 8 + 12 // the other columns, and each one's padding
	if timed {
		fixed += 15 + 2
	}
	conn := max(20, w-fixed)
	cursor := max(0, v.tbl.Cursor())
	v.tbl.SetRows(nil)
	cols := []table.Column{{Title: "hop", Width: 3}, {Title: "app", Width: 11}, {Title: "kind", Width: 10}, {Title: "connection", Width: conn}}
	if timed {
		cols = append(cols, table.Column{Title: "time", Width: 15})
	}
	v.tbl.SetColumns(append(cols, table.Column{Title: "+first", Width: 8}, table.Column{Title: "+prev", Width: 8}))
	rows := make([]table.Row, len(v.msg.legs))
	for i, r := range v.msg.legs {
		prev := "—"
		if i > 0 {
			prev = shortDur(r.Time.Sub(v.msg.legs[i-1].Time))
		}
		app := r.App
		if r.App == v.msg.of.App && r.Seq == v.msg.of.Seq {
			app = "›" + app // the record the view was opened on
		}
		if r.Decrypted {
			app += " [dec]"
		}
		conn := r.Flow.Client.String() + " → " + r.Flow.Server.String()
		if r.Flow.Client.Addr() == r.Flow.Server.Addr() { // loopback: the ports tell the hops apart
			conn = fmt.Sprintf("%s → :%d", r.Flow.Client, r.Flow.Server.Port())
		}
		row := table.Row{fmt.Sprint(i + 1), app, v.kinds[r.App], conn}
		if timed {
			row = append(row, r.Time.Format("15:04:05.000000"))
		}
		rows[i] = append(row, shortDur(r.Time.Sub(v.msg.legs[0].Time)), prev)
	}
	v.tbl.SetRows(rows)
	v.tbl.SetWidth(w)
	v.tbl.SetHeight(max(3, h-3))
	v.tbl.SetCursor(min(cursor, len(rows)-1))
}

// whole implements overlay: the view takes the packets' box.
func (v *legsView) place() placement { return inBox }

// Keys implements overlay.
func (v *legsView) Keys() []key.Binding {
	return []key.Binding{legKeys.Up, legKeys.Down, legKeys.Jump, legKeys.Close}
}

// Update implements overlay.
func (v *legsView) Update(msg tea.KeyMsg) (overlay, tea.Cmd) {
	switch {
	case key.Matches(msg, legKeys.Close):
		return nil, nil
	case key.Matches(msg, legKeys.Jump):
		i := v.tbl.Cursor()
		if i < 0 || i >= len(v.msg.legs) {
			return v, nil
		}
		r := v.msg.legs[i]
		return nil, func() tea.Msg { return jumpMsg{app: r.App, seq: r.Seq} }
	}
	var cmd tea.Cmd
	v.tbl, cmd = v.tbl.Update(msg)
	return v, cmd
}

// View implements overlay.
func (v *legsView) View() string {
	of := v.msg.of
	head := fmt.Sprintf("Legs of %s record %d: %s", of.App, of.Seq+1, of.Text())
	sub := fmt.Sprintf("the same message on %d of the %d hops it may cross (same layer, direction and payload, within %s)",
		len(v.msg.legs), len(v.msg.apps), wire.LegWindow)
	if len(v.msg.legs) < 2 {
		sub = fmt.Sprintf("not found on the other hops (%d looked in): it may not have crossed them, or their rings no longer hold it",
			len(v.msg.apps)-1)
	}
	return v.st.title.Render(truncate(head, v.w)) + "\n" + v.st.dim.Render(truncate(sub, v.w)) + "\n" + v.tbl.View()
}
