package ui

import (
	"sort"
	"sync"

	"github.com/protolab/protolab-tui/lab/wire"
)

// filterIndex keeps, per app, the Seqs of the records a filter matches, so
// that a frame with a filter costs what it costs without one: each record
// is matched once, when it first arrives, and a frame copies only the rows
// on screen. It is a cache the fetch Cmds share (Update never touches it),
// hence the lock.
type filterIndex struct {
	mu    sync.Mutex
	lists map[string]*matchList
}

// matchList is one app's matches for one filter on one store.
type matchList struct {
	store   *wire.Store
	filter  string
	match   filterFunc
	seqs    []uint64 // ascending
	scanned uint64   // the Seq the next scan starts from
}

func newFilterIndex() *filterIndex { return &filterIndex{lists: map[string]*matchList{}} }

// window fetches r's window of the matching records into d: the rows, how
// many match (total), the window's index among them (start) and the first
// match's time (base).
func (x *filterIndex) window(store *wire.Store, r listRequest, d *listData) {
	x.mu.Lock()
	defer x.mu.Unlock()
	ml := x.lists[r.app]
	if ml == nil || ml.store != store || ml.filter != r.filter || ml.scanned > d.next {
		match, err := compileFilter(r.filter)
		if err != nil { // the prompt refuses such filters: keep nothing
			match = func(*wire.Record) bool { return false }
		}
		ml = &matchList{store: store, filter: r.filter, match: match}
		x.lists[r.app] = ml
	}
	// What the ring evicted goes; what arrived since the last scan is matched.
	if i := sort.Search(len(ml.seqs), func(i int) bool { return ml.seqs[i] >= d.first }); i > 0 {
		ml.seqs = ml.seqs[i:]
	}
	ml.scanned = store.Scan(r.app, ml.scanned, func(rec *wire.Record) bool {
		if ml.match(rec) {
			ml.seqs = append(ml.seqs, rec.Seq)
		}
		return true
	})
	all := ml.seqs
	// A connection followed (f): its setup folds into its first row, a
	// stable part of the list wherever the window is; row i ≥ 1 is then
	// the match n+i-1.
	var fold *wire.Record
	n := 0
	if r.fold && len(all) > 0 {
		head := store.Pick(r.app, all[:min(len(all), foldLook)])
		if n = setupLen(head); n >= 2 {
			f := foldRecord(head[:n])
			fold = &f
		} else {
			n = 0
		}
	}
	total, at := len(all), func(row int) int { return row } // row → index in all
	if fold != nil {
		total, at = len(all)-n+1, func(row int) int { return n + row - 1 }
	}
	d.total = total
	start := 0
	if r.follow {
		start = max(0, total-r.n)
	} else {
		i := sort.Search(len(all), func(i int) bool { return all[i] >= r.from })
		if fold != nil {
			i = max(0, i-n+1)
		}
		start = max(0, min(i+r.shift, total-r.n))
	}
	d.start = start
	end := min(total, start+r.n)
	lo := start
	if fold != nil && start == 0 {
		lo = 1
	}
	var seqs []uint64
	if lo < end {
		seqs = all[at(lo) : at(end-1)+1]
	}
	d.rows = store.Pick(r.app, seqs)
	if fold != nil && start == 0 {
		d.rows = append([]wire.Record{*fold}, d.rows...)
	}
	if len(all) > 0 {
		if first := store.Pick(r.app, all[:1]); len(first) == 1 {
			d.base = first[0].Time
		}
	}
	// The record before the window (for the top row's Δ) and, in a
	// conversation, the messages before it that rows may answer.
	if i := at(lo) - 1; i >= 0 && i < len(all) && len(d.rows) > 0 {
		back := 1 // the record before: its time
		if r.fold || r.conv {
			back = foldLook // and the messages a row may answer
		}
		ctx := store.Pick(r.app, all[max(0, i+1-back):i+1])
		if len(ctx) > 0 && start > 0 { // (row 0, a fold, has nothing before it)
			d.prev = ctx[len(ctx)-1].Time
		}
		if r.fold || r.conv {
			d.answers = answers(ctx, d.rows)
		}
	} else if r.fold || r.conv {
		d.answers = answers(nil, d.rows)
	}
}

// foldLook bounds how far a fetch looks back: the records a setup may
// take, and those before a window a reply may answer.
const foldLook = 64
