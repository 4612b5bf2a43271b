package wire

import "sort"

// Scan calls visit for each of the app's records still held whose Seq is
// from or later, oldest first, until visit returns false, and returns the
// Seq of the record after the last visited: where the next Scan picks up.
// It runs under the store's lock, so visit must be quick, must not keep
// the record and must not call the store. A front end that indexes the
// records (a filter's matches) scans each record once, not the whole ring
// at every frame.
func (s *Store) Scan(app string, from uint64, visit func(*Record) bool) (next uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rg, first := s.held(app)
	if rg == nil {
		return from
	}
	for seq := max(from, first); seq < rg.added; seq++ {
		if !visit(rg.at(int(seq - first))) {
			return seq + 1
		}
	}
	return rg.added
}

// Pick copies the app's records with the given Seqs (ascending), leaving
// out those the ring no longer holds.
func (s *Store) Pick(app string, seqs []uint64) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	rg, first := s.held(app)
	if rg == nil {
		return nil
	}
	i := sort.Search(len(seqs), func(i int) bool { return seqs[i] >= first })
	out := make([]Record, 0, len(seqs)-i)
	for _, seq := range seqs[i:] {
		if seq >= rg.added {
			break
		}
		out = append(out, rg.at(int(seq-first)).clone())
	}
	return out
}

// held is the app's ring and the Seq of its oldest record (nil for an app
// the store does not know); s.mu is held.
func (s *Store) held(app string) (*ring, uint64) {
	a := s.byName(app)
	if a == nil {
		return nil, 0
	}
	return &a.ring, a.ring.added - uint64(a.ring.n)
}
