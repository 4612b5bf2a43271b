package ui

import (
	"slices"
	"testing"

	"github.com/protolab/protolab-tui/lab/wire"
)

// TestFilterIndexMatchesAScan: the index's window equals what a scan of
// the whole ring finds, as records arrive, as the ring evicts the oldest,
// when the filter changes, paused mid-list and following, and on a new
// store (a lab started again).
func TestFilterIndexMatchesAScan(t *testing.T) {
	idx := newFilterIndex()
	check := func(store *wire.Store, r listRequest) {
		t.Helper()
		var d listData
		d.first, d.next = store.Span(r.app)
		idx.window(store, r, &d)
		match, err := compileFilter(r.filter)
		if err != nil {
			t.Fatal(err)
		}
		all := store.Matching(r.app, match)
		start := max(0, len(all)-r.n)
		if !r.follow {
			start = 0
			for start < len(all) && all[start].Seq < r.from {
				start++
			}
			start = max(0, min(start+r.shift, len(all)-r.n))
		}
		want := all[start:min(len(all), start+r.n)]
		if d.total != len(all) || d.start != start || !slices.EqualFunc(d.rows, want, func(a, b wire.Record) bool { return a.Seq == b.Seq }) {
			t.Fatalf("%+v: got total %d start %d %d rows; a scan finds total %d start %d %d rows", r, d.total, d.start, len(d.rows), len(all), start, len(want))
		}
		if len(all) > 0 && !d.base.Equal(all[0].Time) {
			t.Errorf("base %v, want the first match's %v", d.base, all[0].Time)
		}
	}
	store, more := numberedFeed(t, 40)
	more(50) // the ring holds the newest 40 records already
	for _, r := range []listRequest{
		{app: "ws", filter: "frame-00004", follow: true, n: 5},
		{app: "ws", filter: "frame-00004", n: 3, from: 0},
		{app: "ws", filter: "frame-00004", n: 3, from: 45, shift: 2},
		{app: "ws", filter: "s>c and not packet", follow: true, n: 8},
		{app: "ws", filter: "s>c and not packet", n: 8, from: 20, shift: -3},
	} {
		check(store, r)
	}
	// More arrive, evicting what the index held.
	more(70)
	check(store, listRequest{app: "ws", filter: "s>c and not packet", follow: true, n: 8})
	check(store, listRequest{app: "ws", filter: "frame-0001", follow: true, n: 4})
	more(5)
	check(store, listRequest{app: "ws", filter: "frame-0001", n: 4, from: 100})
	// A new store on the same index starts over.
	check(numberedRing(t, 10, 100), listRequest{app: "ws", filter: "frame-0001", follow: true, n: 4})
}
