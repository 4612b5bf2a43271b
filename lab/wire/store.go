package wire

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/protolab/protolab-tui/protocol"
)

// DefaultRingSize is how many records each app keeps by default.
const DefaultRingSize = 10000

// Counters are one app's running totals. They count everything seen,
// not only what the ring still holds.
type Counters struct {
	Packets    uint64 `json:"packets"`
	Bytes      uint64 `json:"bytes"`    // packet lengths on the wire
	Messages   uint64 `json:"messages"` // the protocol's messages (its descriptor's Message unit)
	Payload    uint64 `json:"payload"`  // payload bytes of those messages
	HTTPReqs   uint64 `json:"http_requests"`
	HTTPResps  uint64 `json:"http_responses"`
	WSFrames   uint64 `json:"ws_frames"`
	WSControl  uint64 `json:"ws_control_frames"`
	TLSRecords uint64 `json:"tls_records"`
	TLSHellos  uint64 `json:"tls_handshakes"` // ClientHellos
	Decrypted  uint64 `json:"decrypted"`      // records recovered with the lab's keys
	// SSEEvents counts server-sent events dispatched (Layer "sse").
	SSEEvents uint64 `json:"sse_events"`
	// H2Frames counts HTTP/2 frames, every type, both ways; H2Messages the
	// HTTP/2 requests and responses (one stream's way, ended).
	H2Frames   uint64 `json:"h2_frames"`
	H2Messages uint64 `json:"h2_messages"`
	// GRPCMessages counts length-prefixed gRPC messages, both ways.
	GRPCMessages uint64 `json:"grpc_messages"`
	// WSCompressed counts WebSocket messages sent compressed
	// (permessage-deflate); WSCompressedBytes sums their payloads as sent,
	// WSInflated the same payloads inflated.
	WSCompressed      uint64 `json:"ws_compressed"`
	WSCompressedBytes uint64 `json:"ws_compressed_bytes"`
	WSInflated        uint64 `json:"ws_inflated_bytes"`
	Retransmits       uint64 `json:"retransmits"`
	Errors            uint64 `json:"errors"`
	// Gaps counts spans of a stream missing from the capture (each is an
	// error record, Layer "gap"); Lost sums their bytes, where known.
	Gaps  uint64 `json:"gaps"`
	Lost  uint64 `json:"lost_bytes"`
	Flows uint64 `json:"flows"`
	// SetupPackets sums, over the flows that carried an application
	// message, the packets before the first one; SetupFlows counts them.
	SetupPackets uint64 `json:"-"`
	SetupFlows   uint64 `json:"-"`
	Evicted      uint64 `json:"evicted"` // records pushed out of the ring
	// Aside counts the records of connections set aside (Store.SetAside:
	// the lab's own scrapes of the apps' /metrics): they are in the ring,
	// but in none of the counters above, so they do not skew the figures.
	Aside uint64 `json:"aside"`
	// Dropped counts the app's packets the capture dropped before decoding
	// them (its queue was full; Store.AddDropped): they are in none of the
	// counters above. The kernel's drops name no app: a lost segment shows
	// here only as a gap.
	Dropped uint64 `json:"dropped"`
}

// Summary is an app's wire figures as the report shows them.
type Summary struct {
	Counters
	// SetupPacketsPerConn is the mean number of packets a connection
	// needed (TCP, TLS, upgrade) before its first application message.
	SetupPacketsPerConn float64 `json:"setup_packets"`
	// BytesPerMessage is wire bytes per message; PayloadPerMessage is
	// payload bytes per message: the gap is the protocol's overhead.
	BytesPerMessage   float64 `json:"bytes_per_message"`
	PayloadPerMessage float64 `json:"payload_bytes_per_message"`
	// CompressedPerMessage and InflatedPerMessage are, over the WebSocket
	// messages sent compressed, the payload bytes per message as sent and
	// once inflated (0 with none).
	CompressedPerMessage float64 `json:"compressed_bytes_per_message,omitempty"`
	InflatedPerMessage   float64 `json:"inflated_bytes_per_message,omitempty"`
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
	if c.WSCompressed > 0 {
		s.CompressedPerMessage = float64(c.WSCompressedBytes) / float64(c.WSCompressed)
		s.InflatedPerMessage = float64(c.WSInflated) / float64(c.WSCompressed)
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

// AppRef names the app a server port belongs to: its name and protocol.
type AppRef struct {
	Name     string            `json:"name"`
	Protocol protocol.Protocol `json:"protocol"`
}

// PortMap maps the lab's server ports to their apps.
type PortMap map[uint16]AppRef

// appData is one app's ring and counters.
type appData struct {
	ref      AppRef
	ring     ring
	counters Counters
	aside    Counters // what set-aside connections would have counted (dropped)
}

// Store keeps each app's newest records and its counters, found by the app's
// name (front ends) or by its index (the decoder, once per flow). It is safe
// for concurrent use: the decoder writes while front ends read. (A field
// added here must be carried over in batch.go.)
type Store struct {
	mu      sync.Mutex
	size    int
	apps    []*appData
	index   map[string]int
	nextID  uint64
	version uint64
	// aside are the connections whose records are kept but not counted,
	// by server address and client port (see SetAside).
	aside map[asideKey]bool
}

type asideKey struct {
	server netip.AddrPort
	port   uint16
}

// maxAside bounds the connections set aside (the lab keeps one alive per
// app; more are a leak, and the oldest are forgotten).
const maxAside = 1024

// SetAside says the connection from client port port to server (as the
// capture sees the server) is the lab's own bookkeeping — a scrape of an
// app's /metrics — and must not count in the app's figures: its records
// still go to the ring (it is on the wire), but its packets, bytes and
// messages count only in Counters.Aside. Call it before the connection's
// first packet (the lab binds its port, then calls this, then connects):
// a flow is classed when it starts.
func (s *Store) SetAside(server netip.AddrPort, port uint16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aside == nil || len(s.aside) >= maxAside {
		s.aside = map[asideKey]bool{}
	}
	s.aside[asideKey{netip.AddrPortFrom(server.Addr().Unmap(), server.Port()), port}] = true
}

// asideLocked reports whether a flow from client to server is set aside.
func (s *Store) asideLocked(client, server netip.AddrPort) bool {
	return s.aside[asideKey{netip.AddrPortFrom(server.Addr().Unmap(), server.Port()), client.Port()}]
}

// NewStore keeps size records per app (DefaultRingSize when size ≤ 0) for
// the apps given; more can be added with Add.
func NewStore(size int, apps ...AppRef) *Store {
	if size <= 0 {
		size = DefaultRingSize
	}
	s := &Store{size: size, index: map[string]int{}}
	for _, a := range apps {
		s.Add(a)
	}
	return s
}

// Add registers an app (once: adding a known name again changes nothing)
// and returns its index.
func (s *Store) Add(a AppRef) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addLocked(a)
}

func (s *Store) addLocked(a AppRef) int {
	if i, ok := s.index[a.Name]; ok {
		return i
	}
	s.apps = append(s.apps, &appData{ref: a, ring: ring{recs: make([]Record, s.size)}})
	s.index[a.Name] = len(s.apps) - 1
	return len(s.apps) - 1
}

// Apps lists the apps the store keeps, in the order they were added.
func (s *Store) Apps() []AppRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]AppRef, len(s.apps))
	for i, a := range s.apps {
		out[i] = a.ref
	}
	return out
}

func (s *Store) byName(name string) *appData {
	if i, ok := s.index[name]; ok {
		return s.apps[i]
	}
	return nil
}

// slot locks the store and returns the next record of app i (cleared, its
// preview buffer kept for reuse, its App and Protocol set) and i's counters
// (for a flow set aside, a scratch set that nothing reads);
// the caller fills both and unlocks s.mu. One lock per packet, no closure.
func (s *Store) slot(i int, aside bool) (*Record, *Counters) {
	s.mu.Lock()
	a := s.apps[i]
	r, evicted := a.ring.slot()
	if evicted {
		a.counters.Evicted++
	}
	counters := &a.counters
	if aside {
		a.counters.Aside++
		counters = &a.aside
	}
	// A packet record's preview buffer belongs to the ring and is reused; a
	// message's belongs to the message (its lazy text may still read it).
	var data []byte
	if r.Kind == KindPacket && !r.isLazy() {
		data = r.Data[:0]
	}
	*r = Record{Data: data, Seq: a.ring.added, App: a.ref.Name, Protocol: a.ref.Protocol}
	a.ring.added++
	s.nextID++
	r.ID = s.nextID
	s.version++
	return r, counters
}

// count updates app i's counters under the store's lock.
func (s *Store) count(i int, f func(c *Counters)) {
	s.mu.Lock()
	f(&s.apps[i].counters)
	s.mu.Unlock()
}

// AddDropped counts n packets of app that capture dropped before they
// could be decoded (Counters.Dropped).
func (s *Store) AddDropped(app string, n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.byName(app); a != nil {
		a.counters.Dropped += n
		s.version++
	}
}

// Counters returns a copy of an app's counters.
func (s *Store) Counters(app string) Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.byName(app); a != nil {
		return a.counters
	}
	return Counters{}
}

// Len is how many records the app's ring holds now.
func (s *Store) Len(app string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.byName(app); a != nil {
		return a.ring.n
	}
	return 0
}

// Version changes whenever a record is added (front ends redraw on change).
func (s *Store) Version() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// Records copies up to n records of the app starting at index from (0 is
// the oldest held). Only what is asked is copied, so a front end's cost
// follows its window, not the buffer.
func (s *Store) Records(app string, from, n int) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.byName(app)
	if a == nil || from < 0 || from >= a.ring.n || n <= 0 {
		return nil
	}
	rg := &a.ring
	n = min(n, rg.n-from)
	out := make([]Record, n)
	for i := range n {
		out[i] = rg.at(from + i).clone()
	}
	return out
}

// Span returns the Seq of the app's oldest record still held and the Seq
// the next one will get: the ring holds [first, next).
func (s *Store) Span(app string) (first, next uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.byName(app)
	if a == nil {
		return 0, 0
	}
	return a.ring.added - uint64(a.ring.n), a.ring.added
}

// Window copies up to n records of the app from sequence number from on
// (clamped to what the ring still holds). Its cost follows n, not the
// ring's size.
func (s *Store) Window(app string, from uint64, n int) []Record {
	first, next := s.Span(app)
	if from < first {
		from = first
	}
	if from >= next {
		return nil
	}
	return s.Records(app, int(from-first), n)
}

// Matching copies the app's records for which keep is true, oldest first
// (a scan of the ring: bounded by its size).
func (s *Store) Matching(app string, keep func(*Record) bool) []Record {
	s.mu.Lock()
	a := s.byName(app)
	if a == nil {
		s.mu.Unlock()
		return nil
	}
	rg := &a.ring
	held := make([]Record, rg.n)
	for i := range rg.n {
		held[i] = rg.at(i).clone()
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

// clone copies a held record, its preview bytes too (the ring reuses
// them).
func (r *Record) clone() Record {
	c := *r
	c.Data = append([]byte(nil), r.Data...)
	return c
}

// All copies every record of the app, oldest first.
func (s *Store) All(app string) []Record { return s.Records(app, 0, s.Len(app)) }

// String summarises the counters, for logs.
func (s *Store) String() string {
	var b strings.Builder
	for _, a := range s.Apps() {
		c := s.Counters(a.Name)
		fmt.Fprintf(&b, "%s: %d packets, %d messages; ", a.Name, c.Packets, c.Messages)
	}
	return b.String()
}

// SeedPorts is a port map whose apps are named after their protocols, as
// the seed lab's four are (and as --read names the apps of a capture file
// when no lab file says otherwise).
func SeedPorts(m map[uint16]protocol.Protocol) PortMap {
	out := make(PortMap, len(m))
	for port, p := range m {
		out[port] = AppRef{Name: string(p), Protocol: p}
	}
	return out
}
