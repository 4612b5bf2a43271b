package ui

import (
	"fmt"
	"sort"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/table"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/protolab/protolab-tui/lab/wire"
)

// conn is one connection of an app as its held records tell it: Wireshark's
// Conversations, one row.
type conn struct {
	flow              wire.Flow
	packets, messages int
	bytes             int // on the wire: the packets' lengths
	errors            int
	first, last       time.Time
	ended             string // "FIN", "RST" or "" (open, or its end is not held)
}

// connsMsg carries an app's connections, gathered by fetchConns.
type connsMsg struct {
	app   string
	conns []conn
	held  int // the records they come from
}

// followMsg asks the explorer to follow a connection (as f does on a row).
type followMsg struct{ flow wire.Flow }

// fetchConns gathers the app's connections from the records the store
// holds, in one pass; a tea.Cmd.
func fetchConns(store *wire.Store, app string) tea.Cmd {
	return func() tea.Msg {
		byFlow := map[wire.Flow]*conn{}
		held := 0
		store.Scan(app, 0, func(r *wire.Record) bool {
			held++
			c := byFlow[r.Flow]
			if c == nil {
				c = &conn{flow: r.Flow, first: r.Time}
				byFlow[r.Flow] = c
			}
			c.last = r.Time
			switch r.Kind {
			case wire.KindPacket:
				c.packets++
				c.bytes += r.Len
				if r.TCP.Flags&wire.FlagRST != 0 {
					c.ended = "RST"
				} else if r.TCP.Flags&wire.FlagFIN != 0 && c.ended == "" {
					c.ended = "FIN"
				}
			case wire.KindMessage:
				c.messages++
			case wire.KindError:
				c.errors++
			}
			return true
		})
		out := make([]conn, 0, len(byFlow))
		for _, c := range byFlow {
			out = append(out, *c)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].first.Before(out[j].first) })
		return connsMsg{app: app, conns: out, held: held}
	}
}

// connKeys are the connections list's own keys.
var connKeys = struct{ Follow, Close, Up, Down key.Binding }{
	Follow: key.NewBinding(key.WithKeys("enter", "f"), key.WithHelp("enter/f", "follow the connection")),
	Close:  key.NewBinding(key.WithKeys("esc", "o", "q"), key.WithHelp("esc/o", "close")),
	Up:     key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
	Down:   key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
}

// connsView lists an app's connections: client, server, packets, bytes,
// messages, duration and how it ended.
type connsView struct {
	st    styles
	app   string
	conns []conn
	held  int
	tbl   table.Model
	w, h  int
}

func newConnsView(st styles, msg connsMsg) *connsView {
	c := &connsView{st: st, app: msg.app, conns: msg.conns, held: msg.held,
		tbl: table.New(table.WithFocused(true), table.WithStyles(st.table))}
	return c
}

// SetSize implements overlay.
func (c *connsView) SetSize(w, h int) {
	c.w, c.h = w, h
	addr := max(15, (w-50)/2)
	cursor := max(0, c.tbl.Cursor()) // SetRows(nil) leaves it at -1
	c.tbl.SetRows(nil)
	c.tbl.SetColumns([]table.Column{{Title: "client", Width: addr}, {Title: "server", Width: addr}, {Title: "pkts", Width: 6},
		{Title: "bytes", Width: 7}, {Title: "msgs", Width: 6}, {Title: "duration", Width: 10}, {Title: "end", Width: 4}})
	rows := make([]table.Row, len(c.conns))
	for i, k := range c.conns {
		end := k.ended
		if k.errors > 0 {
			end += fmt.Sprintf(" %d err", k.errors)
		}
		rows[i] = table.Row{k.flow.Client.String(), k.flow.Server.String(), fmt.Sprint(k.packets), human(uint64(k.bytes)),
			fmt.Sprint(k.messages), shortDur(k.last.Sub(k.first)), end}
	}
	c.tbl.SetRows(rows)
	c.tbl.SetWidth(w)
	c.tbl.SetHeight(max(3, h-2))
	c.tbl.SetCursor(min(cursor, len(rows)-1))
}

// place implements overlay: the list covers the body (its columns need
// the width).
func (c *connsView) place() placement { return overBody }

// Keys implements overlay.
func (c *connsView) Keys() []key.Binding {
	return []key.Binding{connKeys.Up, connKeys.Down, connKeys.Follow, connKeys.Close}
}

// Update implements overlay.
func (c *connsView) Update(msg tea.KeyMsg) (overlay, tea.Cmd) {
	switch {
	case key.Matches(msg, connKeys.Close):
		return nil, nil
	case key.Matches(msg, connKeys.Follow):
		i := c.tbl.Cursor()
		if i < 0 || i >= len(c.conns) {
			return c, nil
		}
		flow := c.conns[i].flow
		return nil, func() tea.Msg { return followMsg{flow: flow} }
	}
	var cmd tea.Cmd
	c.tbl, cmd = c.tbl.Update(msg)
	return c, cmd
}

// View implements overlay.
func (c *connsView) View() string {
	head := fmt.Sprintf("Connections of %s: %d, from the %d records held", c.app, len(c.conns), c.held)
	if len(c.conns) == 0 {
		return c.st.title.Render(truncate(head, c.w)) + "\n\n" + c.st.dim.Render("no connection yet: send something (s, w, h, H) or run the comparison (C)")
	}
	return c.st.title.Render(truncate(head, c.w)) + "\n" + c.tbl.View()
}
