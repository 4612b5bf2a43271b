package ui

import (
	tea "github.com/charmbracelet/bubbletea"

	"github.com/protolab/protolab-tui/lab/wire"
)

// foundMsg is where a search landed.
type foundMsg struct {
	app     string
	seq     uint64
	found   bool
	wrapped bool // it went past the end (or the start) and on from the other
}

// findRecord looks for the first record after (forward) or before from in
// the app's ring that matches both the list's filter and what is searched,
// wrapping around once; a tea.Cmd (a scan of the ring, under its lock).
func findRecord(store *wire.Store, app, filter, search string, from uint64, forward bool) tea.Cmd {
	return func() tea.Msg {
		want, err := compileFilter(search)
		if err != nil {
			return foundMsg{app: app}
		}
		keep := func(*wire.Record) bool { return true }
		if filter != "" {
			if f, err := compileFilter(filter); err == nil {
				keep = f
			}
		}
		match := func(r *wire.Record) bool { return keep(r) && want(r) }
		first, next := store.Span(app)
		// scan returns the first (forward) or last match in [lo, hi).
		scan := func(lo, hi uint64) (uint64, bool) {
			var at uint64
			var ok bool
			store.Scan(app, lo, func(r *wire.Record) bool {
				if r.Seq >= hi {
					return false
				}
				if match(r) {
					at, ok = r.Seq, true
					return !forward // backward: the last one before hi
				}
				return true
			})
			return at, ok
		}
		if forward {
			if at, ok := scan(from+1, next); ok {
				return foundMsg{app: app, seq: at, found: true}
			}
			at, ok := scan(first, from+1)
			return foundMsg{app: app, seq: at, found: ok, wrapped: ok}
		}
		if at, ok := scan(first, from); ok {
			return foundMsg{app: app, seq: at, found: true}
		}
		at, ok := scan(from, next)
		return foundMsg{app: app, seq: at, found: ok, wrapped: ok}
	}
}
