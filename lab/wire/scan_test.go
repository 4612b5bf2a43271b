package wire

import (
	"slices"
	"testing"

	"github.com/protolab/protolab-tui/protocol"
)

// TestScanAndPick: Scan visits the held records from a Seq on, oldest
// first, stops when told and says where to go on; Pick copies the records
// of the Seqs asked that the ring still holds.
func TestScanAndPick(t *testing.T) {
	s := NewStore(4, AppRef{Name: "ws", Protocol: protocol.WS})
	for i := range 10 { // Seqs 0–9; the ring keeps 6–9
		r, _ := s.slot(0, false)
		r.Len = i
		s.mu.Unlock()
	}
	seen := func(from uint64, stopAt int) ([]int, uint64) {
		var lens []int
		next := s.Scan("ws", from, func(r *Record) bool {
			lens = append(lens, r.Len)
			return r.Len != stopAt
		})
		return lens, next
	}
	for _, c := range []struct {
		from   uint64
		stopAt int
		want   []int
		next   uint64
	}{
		{0, -1, []int{6, 7, 8, 9}, 10}, // evicted Seqs are skipped
		{8, -1, []int{8, 9}, 10},
		{6, 7, []int{6, 7}, 8}, // stopped: on from the one after
		{10, -1, nil, 10},
	} {
		if got, next := seen(c.from, c.stopAt); !slices.Equal(got, c.want) || next != c.next {
			t.Errorf("Scan from %d stopping at %d: %v next %d, want %v next %d", c.from, c.stopAt, got, next, c.want, c.next)
		}
	}
	if got := s.Scan("nope", 3, func(*Record) bool { return true }); got != 3 {
		t.Errorf("Scan of an unknown app returns %d, want from", got)
	}
	var lens []int
	for _, r := range s.Pick("ws", []uint64{2, 5, 7, 9, 12}) {
		lens = append(lens, r.Len)
	}
	if !slices.Equal(lens, []int{7, 9}) {
		t.Errorf("Pick gave %v, want the held 7 and 9", lens)
	}
}
