package wire

import (
	"fmt"
	"sync"

	"github.com/protolab/protolab-tui/lab/proto"
)

// DefaultRingSize is how many records each protocol keeps by default.
const DefaultRingSize = 10000

// Counters are one protocol's running totals. They count everything seen,
// not only what the ring still holds.
type Counters struct {
	Packets     uint64 `json:"packets"`
	Bytes       uint64 `json:"bytes"`    // packet lengths on the wire
	Messages    uint64 `json:"messages"` // HTTP messages (http/https) or WS frames (ws/wss)
	Payload     uint64 `json:"payload"`  // payload bytes of those messages
	HTTPReqs    uint64 `json:"http_requests"`
	HTTPResps   uint64 `json:"http_responses"`
	WSFrames    uint64 `json:"ws_frames"`
	WSControl   uint64 `json:"ws_control_frames"`
	TLSRecords  uint64 `json:"tls_records"`
	TLSHellos   uint64 `json:"tls_handshakes"` // ClientHellos
	Decrypted   uint64 `json:"decrypted"`      // records recovered with the lab's keys
	Retransmits uint64 `json:"retransmits"`
	Errors      uint64 `json:"errors"`
	Flows       uint64 `json:"flows"`
	// SetupPackets sums, over the flows that carried an application
	// message, the packets before the first one; SetupFlows counts them.
	SetupPackets uint64 `json:"-"`
	SetupFlows   uint64 `json:"-"`
	Evicted      uint64 `json:"evicted"` // records pushed out of the ring
}

// Summary is a protocol's wire figures as the report shows them.
type Summary struct {
	Counters
	// SetupPacketsPerConn is the mean number of packets a connection
	// needed (TCP, TLS, upgrade) before its first application message.
	SetupPacketsPerConn float64 `json:"setup_packets"`
	// BytesPerMessage is wire bytes per message; PayloadPerMessage is
	// payload bytes per message: the gap is the protocol's overhead.
	BytesPerMessage   float64 `json:"bytes_per_message"`
	PayloadPerMessage float64 `json:"payload_bytes_per_message"`
}

// Summarize derives the report figures.
func (c Counters) Summarize() Summary {
	s := Summary{Counters: c}
	if c.SetupFlows > 0 {
		s.SetupPacketsPerConn = float64(c.SetupPackets) / float64(c.SetupFlows)
	}
	if c.Messages > 0 {
		s.BytesPerMessage = float64(c.Bytes) / float64(c.Messages)
		s.PayloadPerMessage = float64(c.Payload) / float64(c.Messages)
	}
	return s
}

// ring is a fixed-size circular buffer of records; slots are reused.
type ring struct {
	recs  []Record
	start int    // index of the oldest record
	n     int    // records held
	added uint64 // records ever added: the next record's Seq
}

func (r *ring) slot() (*Record, bool) {
	evicted := false
	var i int
	if r.n < len(r.recs) {
		i = (r.start + r.n) % len(r.recs)
		r.n++
	} else {
		i = r.start
		r.start = (r.start + 1) % len(r.recs)
		evicted = true
	}
	return &r.recs[i], evicted
}

func (r *ring) at(i int) *Record { return &r.recs[(r.start+i)%len(r.recs)] }

// Store keeps each protocol's newest records and its counters. It is safe
// for concurrent use: the decoder writes while front ends read.
type Store struct {
	mu       sync.Mutex
	rings    map[proto.Protocol]*ring
	counters map[proto.Protocol]*Counters
	nextID   uint64
	version  uint64
}

// NewStore keeps size records per protocol (DefaultRingSize when size ≤ 0).
func NewStore(size int) *Store {
	if size <= 0 {
		size = DefaultRingSize
	}
	s := &Store{rings: map[proto.Protocol]*ring{}, counters: map[proto.Protocol]*Counters{}}
	for _, p := range proto.All {
		s.rings[p] = &ring{recs: make([]Record, size)}
		s.counters[p] = &Counters{}
	}
	return s
}

// add appends a record built by fill, reusing an old slot's preview buffer.
// The caller holds no lock.
func (s *Store) add(p proto.Protocol, fill func(r *Record)) {
	r, _, unlock := s.slot(p)
	fill(r)
	unlock()
}

// slot locks the store and returns the next record of p (cleared, its
// preview buffer kept for reuse) and p's counters; the caller fills both
// and calls unlock. One lock per packet, no closure.
func (s *Store) slot(p proto.Protocol) (*Record, *Counters, func()) {
	s.mu.Lock()
	rg, ok := s.rings[p]
	if !ok {
		s.mu.Unlock()
		return &Record{}, &Counters{}, func() {}
	}
	r, evicted := rg.slot()
	if evicted {
		s.counters[p].Evicted++
	}
	// A packet record's preview buffer belongs to the ring and is reused; a
	// message's belongs to the message (its lazy text may still read it).
	var data []byte
	if r.Kind == KindPacket && r.lazy == nil {
		data = r.Data[:0]
	}
	*r = Record{Data: data, Seq: rg.added}
	rg.added++
	s.nextID++
	r.ID = s.nextID
	s.version++
	return r, s.counters[p], s.mu.Unlock
}

// count updates a protocol's counters under the store's lock.
func (s *Store) count(p proto.Protocol, f func(c *Counters)) {
	s.mu.Lock()
	if c, ok := s.counters[p]; ok {
		f(c)
	}
	s.mu.Unlock()
}

// Counters returns a copy of a protocol's counters.
func (s *Store) Counters(p proto.Protocol) Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.counters[p]; ok {
		return *c
	}
	return Counters{}
}

// Len is how many records the protocol's ring holds now.
func (s *Store) Len(p proto.Protocol) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.rings[p]; ok {
		return r.n
	}
	return 0
}

// Version changes whenever a record is added (front ends redraw on change).
func (s *Store) Version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// Records copies up to n records of protocol p starting at index from
// (0 is the oldest held). Only what is asked is copied, so a front end's cost
// follows its window, not the buffer.
func (s *Store) Records(p proto.Protocol, from, n int) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	rg, ok := s.rings[p]
	if !ok || from < 0 || from >= rg.n || n <= 0 {
		return nil
	}
	n = min(n, rg.n-from)
	out := make([]Record, n)
	for i := range n {
		r := rg.at(from + i)
		out[i] = *r
		out[i].Data = append([]byte(nil), r.Data...)
	}
	return out
}

// Span returns the Seq of the oldest record of p still held and the Seq the
// next one will get: the ring holds [first, next).
func (s *Store) Span(p proto.Protocol) (first, next uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rg, ok := s.rings[p]
	if !ok {
		return 0, 0
	}
	return rg.added - uint64(rg.n), rg.added
}

// Window copies up to n records of p from sequence number from on (clamped
// to what the ring still holds). Its cost follows n, not the ring's size.
func (s *Store) Window(p proto.Protocol, from uint64, n int) []Record {
	first, next := s.Span(p)
	if from < first {
		from = first
	}
	if from >= next {
		return nil
	}
	return s.Records(p, int(from-first), n)
}

// Matching copies the records of p for which keep is true, oldest first
// (a scan of the ring: bounded by its size).
func (s *Store) Matching(p proto.Protocol, keep func(*Record) bool) []Record {
	s.mu.Lock()
	rg, ok := s.rings[p]
	if !ok {
		s.mu.Unlock()
		return nil
	}
	held := make([]Record, rg.n)
	for i := range rg.n {
		held[i] = *rg.at(i)
		held[i].Data = append([]byte(nil), held[i].Data...)
	}
	s.mu.Unlock()
	out := held[:0]
	for i := range held {
		if keep(&held[i]) {
			out = append(out, held[i])
		}
	}
	return out
}

// All copies every record of protocol p, oldest first.
func (s *Store) All(p proto.Protocol) []Record { return s.Records(p, 0, s.Len(p)) }

// String summarises the counters, for logs.
func (s *Store) String() string {
	out := ""
	for _, p := range proto.All {
		c := s.Counters(p)
		out += fmt.Sprintf("%s: %d packets, %d messages; ", p, c.Packets, c.Messages)
	}
	return out
}
