package wire

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// connTally is what the decoder has taken in of one connection, readable
// from other goroutines while it decodes: the stream bytes delivered in order
// each way, and whether each way has ended (FIN taken in, or a reset).
type connTally struct {
	bytes [2]atomic.Int64
	ended [2]atomic.Bool
}

// tallies remembers the tally of the maxTallies newest connections, so a
// caller can ask about a connection the decoder has already retired.
type tallies struct {
	mu    sync.Mutex
	by    map[flowKey]*connTally
	order []flowKey // oldest first
}

const maxTallies = 4096

func (t *tallies) add(key flowKey) *connTally {
	ct := new(connTally)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.by == nil {
		t.by = make(map[flowKey]*connTally)
	}
	if _, again := t.by[key]; !again {
		if len(t.order) >= maxTallies {
			delete(t.by, t.order[0])
			t.order = t.order[1:]
		}
		t.order = append(t.order, key)
	}
	t.by[key] = ct
	return ct
}

// Taken says how much of the TCP connection client→server the decoder has
// taken in: stream bytes in order each way (client to server, server to
// client) and whether both ways have ended. ok is false when the decoder has
// not seen the connection (or has forgotten it, maxTallies connections
// later). Safe to call while the decoder runs.
func (d *Decoder) Taken(client, server netip.AddrPort) (sent, recv int64, ended, ok bool) {
	d.tallies.mu.Lock()
	ct := d.tallies.by[flowKey{client, server}]
	d.tallies.mu.Unlock()
	if ct == nil {
		return 0, 0, false, false
	}
	return ct.bytes[ClientToServer].Load(), ct.bytes[ServerToClient].Load(),
		ct.ended[0].Load() && ct.ended[1].Load(), true
}

// took records, after a segment of dir, the bytes delivered in order so far.
func (f *flowState) took(dir Dir, rst bool) {
	h := &f.half[dir]
	n := int64(h.next - h.isn)
	if h.syn {
		n-- // the SYN takes one sequence number
	}
	if h.finished() {
		n-- // and so does the FIN
		f.tally.ended[dir].Store(true)
	}
	f.tally.bytes[dir].Store(n)
	if rst {
		f.tally.ended[0].Store(true)
		f.tally.ended[1].Store(true)
	}
}
