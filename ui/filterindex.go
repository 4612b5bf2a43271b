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
	d.total = len(all)
	start := 0
	if r.follow {
		start = max(0, len(all)-r.n)
	} else {
		start = sort.Search(len(all), func(i int) bool { return all[i] >= r.from })
		start = max(0, min(start+r.shift, len(all)-r.n))
	}
	d.start = start
	d.rows = store.Pick(r.app, all[start:min(len(all), start+r.n)])
	if len(all) > 0 {
		if first := store.Pick(r.app, all[:1]); len(first) == 1 {
			d.base = first[0].Time
		}
	}
}
