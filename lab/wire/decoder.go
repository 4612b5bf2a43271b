package wire

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/protolab/protolab-tui/protocol"
)

// Decoder turns packets (or, in socket-level mode, socket reads and writes)
// into records in a Store. It is not safe for concurrent use: one goroutine
// feeds it.
type Decoder struct {
	ports   PortMap
	portIdx *[1 << 16]uint16 // port → 1 + the app's index in the store, 0 for none (no map lookup per packet)
	keys    *KeyLog
	store   *Store

	linkType layers.LinkType
	parser   *gopacket.DecodingLayerParser
	parser6  *gopacket.DecodingLayerParser // raw-IP links: for IPv6 packets
	eth      layers.Ethernet
	lo       layers.Loopback
	sll      layers.LinuxSLL
	sll2     layers.LinuxSLL2
	ip4      layers.IPv4
	ip6      layers.IPv6
	tcp      layers.TCP
	payload  gopacket.Payload
	decoded  []gopacket.LayerType

	flows      map[flowKey]*flowState
	closed     []flowKey // finished flows, oldest at closedAt once full
	closedAt   int
	keyVersion uint64
	waiting    map[*tlsConn]*flowState // connections with records queued for keys
	tallies    tallies                 // what was taken in of each connection (Taken)
	batch      batch                   // BeginBatch … EndBatch (batch.go)

	// Undecodable counts packets the link/IP/TCP layers could not decode;
	// Ignored counts packets that are not TCP to or from a lab port.
	Undecodable, Ignored uint64
}

type flowKey struct{ client, server netip.AddrPort }

// maxFlows bounds the flow table; the oldest flows go first.
const maxFlows = 1 << 16

// NewDecoder decodes packets of the given link type. ports maps the lab's
// server ports to their apps (each gets its ring and counters in store);
// keys (may be nil) holds TLS secrets.
func NewDecoder(linkType layers.LinkType, ports PortMap, keys *KeyLog, store *Store) (*Decoder, error) {
	d := &Decoder{ports: ports, keys: keys, store: store, linkType: linkType,
		flows: make(map[flowKey]*flowState), waiting: make(map[*tlsConn]*flowState)}
	d.portIdx = new([1 << 16]uint16)
	for port, a := range ports {
		if !a.Protocol.Known() {
			return nil, fmt.Errorf("port %d: app %s has unknown protocol %q", port, a.Name, a.Protocol)
		}
		d.portIdx[port] = uint16(store.Add(a) + 1)
	}
	var first gopacket.LayerType
	switch linkType {
	case layers.LinkTypeEthernet:
		first = layers.LayerTypeEthernet
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		first = layers.LayerTypeLoopback
	case layers.LinkTypeLinuxSLL:
		first = layers.LayerTypeLinuxSLL
	case layers.LinkTypeLinuxSLL2:
		first = layers.LayerTypeLinuxSLL2
	case layers.LinkTypeRaw, layers.LinkTypeIPv4:
		first = layers.LayerTypeIPv4 // corrected per packet from the version nibble
	case layers.LinkTypeIPv6:
		first = layers.LayerTypeIPv6
	default:
		return nil, fmt.Errorf("link type %s (%d) is not one protolab decodes: want Ethernet, Linux SLL/SLL2, loopback or raw IP", linkType, int(linkType))
	}
	newParser := func(first gopacket.LayerType) *gopacket.DecodingLayerParser {
		p := gopacket.NewDecodingLayerParser(first, &d.eth, &d.lo, &d.sll, &d.sll2, &d.ip4, &d.ip6, &d.tcp, &d.payload)
		p.IgnoreUnsupported = true
		return p
	}
	d.parser = newParser(first)
	if first == layers.LayerTypeIPv4 {
		d.parser6 = newParser(layers.LayerTypeIPv6)
	}
	return d, nil
}

// Store returns the decoder's store.
func (d *Decoder) Store() *Store { return d.store }

// Packet decodes one packet. An error means the packet could not be decoded;
// it is counted, and nothing decoded earlier is affected.
func (d *Decoder) Packet(data []byte, ci gopacket.CaptureInfo) error {
	d.checkKeys()
	parser := d.parser
	if d.parser6 != nil && len(data) > 0 && data[0]>>4 == 6 {
		parser = d.parser6
	}
	d.decoded = d.decoded[:0]
	err := parser.DecodeLayers(data, &d.decoded)
	var src, dst netip.Addr
	haveTCP := false
	for _, lt := range d.decoded {
		switch lt {
		case layers.LayerTypeIPv4:
			src, _ = netip.AddrFromSlice(d.ip4.SrcIP.To4())
			dst, _ = netip.AddrFromSlice(d.ip4.DstIP.To4())
		case layers.LayerTypeIPv6:
			src, _ = netip.AddrFromSlice(d.ip6.SrcIP)
			dst, _ = netip.AddrFromSlice(d.ip6.DstIP)
		case layers.LayerTypeTCP:
			haveTCP = true
		}
	}
	if err != nil && !haveTCP {
		d.Undecodable++
		return fmt.Errorf("packet of %d bytes: %w", len(data), err)
	}
	if !haveTCP || !src.IsValid() {
		d.Ignored++
		return nil
	}
	sp, dp := uint16(d.tcp.SrcPort), uint16(d.tcp.DstPort)
	var key flowKey
	var dir Dir
	var app int
	if i := d.portIdx[dp]; i != 0 {
		key, dir, app = flowKey{netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)}, ClientToServer, int(i-1)
	} else if i := d.portIdx[sp]; i != 0 {
		key, dir, app = flowKey{netip.AddrPortFrom(dst, dp), netip.AddrPortFrom(src, sp)}, ServerToClient, int(i-1)
	} else {
		d.Ignored++
		return nil
	}
	f := d.flow(key, app)
	if f.closed && d.tcp.SYN && !d.tcp.ACK { // the same ports, a new connection
		if f.conv != nil && f.conv.tls != nil {
			f.conv.tls.giveUp(ci.Timestamp)
		}
		d.drop(key, f)
		f = d.flow(key, app)
	}
	length := ci.Length
	if length == 0 {
		length = len(data)
	}
	t := ci.Timestamp
	var flags uint8
	tcp := &d.tcp
	if tcp.FIN {
		flags |= FlagFIN
	}
	if tcp.SYN {
		flags |= FlagSYN
	}
	if tcp.RST {
		flags |= FlagRST
	}
	if tcp.PSH {
		flags |= FlagPSH
	}
	if tcp.ACK {
		flags |= FlagACK
	}
	h := &f.half[dir]
	if tcp.SYN {
		h.wscale = 0
		for _, o := range tcp.Options {
			if o.OptionType == layers.TCPOptionKindWindowScale && len(o.OptionData) == 1 {
				h.wscale = min(o.OptionData[0], 14)
			}
		}
	}
	window := uint32(tcp.Window)
	if !tcp.SYN {
		window <<= h.wscale
	}
	payload := tcp.Payload
	retrans := h.isRetransmit(tcp.Seq, len(payload), tcp.SYN)
	f.packets++
	rel := func(seq, isn uint32) uint32 { return seq - isn }
	var ack uint32
	if tcp.ACK {
		ack = rel(tcp.Ack, f.half[1-dir].isn)
	}
	rec, c := d.store.slot(app, f.aside)
	rec.Time, rec.Flow, rec.Dir, rec.Kind, rec.Layer = t, f.flow, dir, KindPacket, "tcp"
	rec.Len, rec.Payload = length, len(payload)
	rec.TCP = TCPInfo{Seq: rel(tcp.Seq, h.isnFor(tcp.Seq)), Ack: ack, Flags: flags, Window: window, Retrans: retrans}
	rec.Data = append(rec.Data, payload[:min(len(payload), PreviewBytes)]...)
	c.Packets++
	c.Bytes += uint64(length)
	if retrans {
		c.Retransmits++
	}
	d.store.mu.Unlock()
	if err != nil {
		f.failure(dir, t, fmt.Errorf("packet partly decoded: %w", err))
	}
	if f.closed {
		if tcp.RST {
			f.took(dir, true)
		}
		return nil // the last ACKs of a finished connection
	}
	if tcp.ACK {
		// The peer acknowledged bytes the capture never saw: they are lost
		// for good, and what was captured after them is decoded now.
		f.ackedGap(1-dir, tcp.Ack, t)
	}
	h.segment(tcp.Seq, tcp.SYN, tcp.FIN, payload, f.deliver(dir, t), f.lost(dir, t))
	f.took(dir, tcp.RST)
	f.checkEnd(dir, t)
	if tcp.RST || (f.ended[0] && f.ended[1]) {
		f.flushGaps(t)
		for dd := range 2 {
			if !f.ended[dd] {
				f.conv.end(Dir(dd), t)
			}
		}
		if t := f.conv.tls; t != nil && len(t.queue) > 0 {
			// Finished, but records wait for keys: retired once they
			// decrypt (checkKeys) or at Flush.
			f.closed = true
			d.watch(f)
			return nil
		}
		d.unwatch(f)
		d.retire(key, f)
		return nil
	}
	d.watch(f)
	return nil
}

// Stream feeds bytes read from or written to a socket of app (socket-level
// capture: no packets, no TCP header). Each call counts as one "packet".
func (d *Decoder) Stream(flow Flow, app AppRef, dir Dir, data []byte, t time.Time) {
	d.checkKeys()
	key := flowKey{flow.Client, flow.Server}
	f := d.flow(key, d.store.Add(app))
	f.packets++
	r, c := d.store.slot(f.app, f.aside)
	r.Time, r.Flow, r.Dir, r.Kind, r.Layer = t, f.flow, dir, KindPacket, "socket"
	r.Len, r.Payload = len(data), len(data)
	r.Data = append(r.Data[:0], data[:min(len(data), PreviewBytes)]...)
	c.Packets++
	c.Bytes += uint64(len(data))
	d.store.mu.Unlock()
	f.conv.data(dir, data, t)
	f.tally.bytes[dir].Add(int64(len(data)))
	d.watch(f)
}

// StreamEnd ends a socket-level flow.
func (d *Decoder) StreamEnd(flow Flow, t time.Time) {
	key := flowKey{flow.Client, flow.Server}
	if f, ok := d.flows[key]; ok {
		f.conv.end(ClientToServer, t)
		f.conv.end(ServerToClient, t)
		f.tally.ended[0].Store(true)
		f.tally.ended[1].Store(true)
		if tc := f.conv.tls; tc != nil && len(tc.queue) > 0 {
			f.closed = true
			d.watch(f)
			return
		}
		d.drop(key, f)
	}
}

// Flush ends every open flow (end of a capture or a file): messages still in
// progress are reported as truncated, queued TLS records are decrypted if
// their keys have arrived by now.
func (d *Decoder) Flush(t time.Time) {
	d.checkKeys()
	for tc := range d.waiting { // finished flows still waiting for keys
		tc.giveUp(t)
	}
	d.waiting = make(map[*tlsConn]*flowState)
	for key, f := range d.flows {
		if f.conv != nil {
			if !f.closed {
				f.flushGaps(t)
				for dd := range 2 {
					if !f.ended[dd] {
						f.conv.end(Dir(dd), t)
					}
				}
			}
			if f.conv.tls != nil {
				f.conv.tls.giveUp(t)
			}
		}
		d.drop(key, f)
	}
}

func (d *Decoder) flow(key flowKey, app int) *flowState {
	if f, ok := d.flows[key]; ok {
		return f
	}
	if len(d.flows) >= maxFlows {
		for k, f := range d.flows {
			if f.closed {
				delete(d.flows, k)
			}
		}
	}
	if len(d.flows) >= maxFlows {
		var oldest flowKey
		var ot time.Time
		for k, f := range d.flows {
			if ot.IsZero() || f.created.Before(ot) {
				oldest, ot = k, f.created
			}
		}
		d.drop(oldest, d.flows[oldest])
	}
	f := &flowState{d: d, key: key, flow: Flow{Client: key.client, Server: key.server}, app: app, created: time.Now(),
		tally: d.tallies.add(key)}
	d.store.mu.Lock()
	desc := d.store.apps[app].ref.Protocol.Desc()
	for class := range countedAs[desc.Message] {
		f.counts[class] = true
	}
	if f.aside = d.store.asideLocked(key.client, key.server); !f.aside {
		d.store.apps[app].counters.Flows++
	}
	d.store.mu.Unlock()
	f.conv = newConv(f, d.keys, false)
	f.conv.want = desc
	d.flows[key] = f
	return f
}

// maxClosed bounds the finished flows remembered (so that their last ACKs
// do not look like new connections).
const maxClosed = 4096

// retire marks a flow finished and frees its decoding state; the flow stays
// in the table (its last ACKs still belong to it) until maxClosed newer
// flows have finished.
func (d *Decoder) retire(key flowKey, f *flowState) {
	f.closed = true
	f.conv = nil
	for i := range f.half { // keep the sequence bases: the last ACKs still show relative numbers
		f.half[i].ooo, f.half[i].oooSize = nil, 0
	}
	if len(d.closed) == maxClosed {
		old := d.closed[d.closedAt]
		if of, ok := d.flows[old]; ok && of.closed {
			delete(d.flows, old)
		}
		d.closed[d.closedAt] = key
		d.closedAt = (d.closedAt + 1) % maxClosed
		return
	}
	d.closed = append(d.closed, key)
}

func (d *Decoder) drop(key flowKey, f *flowState) {
	delete(d.flows, key)
	d.unwatch(f)
}

func (d *Decoder) unwatch(f *flowState) {
	if f != nil && f.conv != nil && f.conv.tls != nil {
		delete(d.waiting, f.conv.tls)
	}
}

// watch remembers a flow whose TLS records wait for keys.
func (d *Decoder) watch(f *flowState) {
	if f.conv == nil {
		return
	}
	if t := f.conv.tls; t != nil && len(t.queue) > 0 {
		d.waiting[t] = f
	}
}

// CheckKeys retries TLS records queued for keys, if the key log has grown
// since the last try (Packet and Stream do this first).
func (d *Decoder) CheckKeys() { d.checkKeys() }

// checkKeys retries queued TLS records when the key log has grown.
func (d *Decoder) checkKeys() {
	if d.keys == nil || len(d.waiting) == 0 {
		return
	}
	v := d.keys.Version()
	if v == d.keyVersion {
		return
	}
	d.keyVersion = v
	for t, f := range d.waiting {
		t.retry()
		if len(t.queue) == 0 {
			delete(d.waiting, t)
			if f.closed && f.conv != nil {
				d.retire(f.key, f)
			}
		}
	}
}

// flowState is one TCP connection being decoded.
type flowState struct {
	d         *Decoder
	key       flowKey
	flow      Flow
	app       int              // the app's index in the store
	counts    [classCount]bool // the decoded classes that count as the app's messages
	created   time.Time
	half      [2]tcpHalf
	conv      *conv
	ended     [2]bool
	closed    bool // both sides finished, or reset
	packets   int
	setupDone bool
	tally     *connTally
	aside     bool // the lab's own (Store.SetAside): recorded, not counted
}

// message implements sink.
func (f *flowState) message(dir Dir, t time.Time, decrypted bool, class msgClass, fill func(*Record)) {
	counted := f.counts[class]
	app := counted && class != classWSControl // an application message: setup ends before it
	r, c := f.d.store.slot(f.app, f.aside)
	r.Time, r.Flow, r.Dir, r.Kind, r.Decrypted = t, f.flow, dir, KindMessage, decrypted
	fill(r) // r.Data, when set, is the message's own preview: no copy needed
	if len(r.Data) > PreviewBytes {
		r.Data = r.Data[:PreviewBytes]
	}
	switch class {
	case classHTTPRequest:
		c.HTTPReqs++
	case classHTTPResponse:
		c.HTTPResps++
	case classWSData:
		c.WSFrames++
	case classWSControl:
		c.WSFrames++
		c.WSControl++
	case classTLS:
		c.TLSRecords++
	case classClientHello:
		c.TLSRecords++
		c.TLSHellos++
	case classSSEEvent:
		c.SSEEvents++
	case classH2Frame:
		c.H2Frames++
	case classH2Message:
		c.H2Messages++
	case classGRPCMessage:
		c.GRPCMessages++
	}
	if counted {
		c.Messages++
		c.Payload += uint64(r.Payload)
	}
	if decrypted {
		c.Decrypted++
	}
	if app && !f.setupDone {
		f.setupDone = true
		c.SetupPackets += uint64(f.packets - 1)
		c.SetupFlows++
	}
	f.d.store.mu.Unlock()
}

// countedAs says, for each protocol's message unit, which decoded classes
// count as its messages.
var countedAs = map[protocol.Unit]map[msgClass]bool{
	protocol.UnitHTTPMessage: {classHTTPRequest: true, classHTTPResponse: true},
	protocol.UnitWSFrame:     {classWSData: true, classWSControl: true},
	// An SSE app's messages are its events and the requests that talk
	// back (an echo is a POST and the event it causes); the response that
	// carries the stream is not one.
	protocol.UnitSSEEvent:     {classSSEEvent: true, classHTTPRequest: true},
	protocol.UnitHTTP2Message: {classH2Message: true},
	protocol.UnitGRPCMessage:  {classGRPCMessage: true},
}

// count implements sink.
func (f *flowState) count(add func(*Counters)) {
	f.d.store.mu.Lock()
	a := f.d.store.apps[f.app]
	if f.aside {
		add(&a.aside)
	} else {
		add(&a.counters)
	}
	f.d.store.mu.Unlock()
}

// failure implements sink: an error record, and the counters say so.
func (f *flowState) failure(dir Dir, t time.Time, err error) {
	r, c := f.d.store.slot(f.app, f.aside)
	r.Time, r.Flow, r.Dir, r.Kind, r.Layer = t, f.flow, dir, KindError, "decode"
	r.Err = err.Error()
	r.Summary = "decode error: " + err.Error()
	c.Errors++
	f.d.store.mu.Unlock()
}

func (f *flowState) deliver(dir Dir, t time.Time) func([]byte) {
	return func(b []byte) {
		if !f.half[dir].syn { // the capture began after this direction's start
			f.conv.midstream[dir] = true
		}
		f.conv.data(dir, b, t)
	}
}

func (f *flowState) lost(dir Dir, t time.Time) func(int) {
	return func(n int) { f.conv.gap(dir, n, t) }
}

// ackedGap skips the hole before dir's buffered segments when the other
// side has acknowledged past it.
func (f *flowState) ackedGap(dir Dir, ack uint32, t time.Time) {
	h := &f.half[dir]
	if !h.started || len(h.ooo) == 0 || int32(ack-h.next) <= 0 {
		return
	}
	h.skipTo(ack, f.deliver(dir, t), f.lost(dir, t))
	f.checkEnd(dir, t)
}

// flushGaps decodes what waits behind holes when no more packets come
// (the end of the capture, a reset).
func (f *flowState) flushGaps(t time.Time) {
	for dir := range Dir(2) {
		h := &f.half[dir]
		if len(h.ooo) == 0 {
			continue
		}
		last := h.next
		for seq, b := range h.ooo {
			if end := seq + uint32(len(b)); int32(end-last) > 0 {
				last = end
			}
		}
		h.skipTo(last, f.deliver(dir, t), f.lost(dir, t))
		f.checkEnd(dir, t)
	}
}

// checkEnd ends dir once its FIN is in order.
func (f *flowState) checkEnd(dir Dir, t time.Time) {
	if !f.ended[dir] && f.half[dir].finished() {
		f.conv.end(dir, t)
		f.ended[dir] = true
	}
}

// gap implements sink: a record of its own for bytes lost from the stream,
// saying how many and what decoding did about it; a note with lost == 0
// (resumed after a search) is a record but not another gap.
func (f *flowState) gap(dir Dir, t time.Time, lost int, what string) {
	r, c := f.d.store.slot(f.app, f.aside)
	r.Time, r.Flow, r.Dir, r.Kind, r.Layer = t, f.flow, dir, KindError, "gap"
	switch {
	case lost > 0:
		r.Err = fmt.Sprintf("%d bytes missing from the stream (not captured): %s", lost, what)
		c.Gaps++
		c.Lost += uint64(lost)
	case lost < 0:
		r.Err = "bytes missing from the stream (not captured): " + what
		c.Gaps++
	default:
		r.Err = what
	}
	r.Summary = "gap: " + r.Err
	c.Errors++
	f.d.store.mu.Unlock()
}

// tcpHalf reassembles one direction of a TCP connection.
type tcpHalf struct {
	wscale  uint8 // window scale from this side's SYN
	started bool
	syn     bool   // started at its SYN
	isn     uint32 // first sequence number (the SYN's, or the first seen)
	next    uint32
	fin     bool
	finSeq  uint32
	ooo     map[uint32][]byte
	oooSize int
}

// Bounds on out-of-order data held per direction.
const (
	maxOOOSegments = 256
	maxOOOBytes    = 4 << 20
)

// isnFor is the direction's first sequence number (seq itself for its
// first packet).
func (h *tcpHalf) isnFor(seq uint32) uint32 {
	if !h.started {
		return seq
	}
	return h.isn
}

func (h *tcpHalf) isRetransmit(seq uint32, n int, syn bool) bool {
	if !h.started || n == 0 || syn {
		return false
	}
	return int32(seq+uint32(n)-h.next) <= 0
}

func (h *tcpHalf) finished() bool { return h.fin && h.next == h.finSeq+1 }

// segment accepts one segment and delivers in-order bytes; gap is called when
// data is lost for good (the out-of-order buffer overflowed).
func (h *tcpHalf) segment(seq uint32, syn, fin bool, payload []byte, deliver func([]byte), gap func(int)) {
	if syn {
		h.started, h.syn, h.isn, h.next = true, true, seq, seq+1
		seq++
	}
	if !h.started {
		h.started, h.isn, h.next = true, seq, seq
	}
	if fin && !h.fin {
		h.fin, h.finSeq = true, seq+uint32(len(payload))
	}
	if len(payload) > 0 {
		diff := int32(seq - h.next)
		switch {
		case diff < 0:
			if int(-diff) >= len(payload) {
				break // a retransmission of data already delivered
			}
			payload = payload[-diff:]
			fallthrough
		case diff == 0:
			deliver(payload)
			h.next += uint32(len(payload))
			h.drain(deliver)
		default:
			if _, dup := h.ooo[seq]; !dup {
				if h.ooo == nil {
					h.ooo = make(map[uint32][]byte)
				}
				h.ooo[seq] = append([]byte(nil), payload...)
				h.oooSize += len(payload)
			}
			if len(h.ooo) > maxOOOSegments || h.oooSize > maxOOOBytes {
				h.skipGap(deliver, gap)
			}
		}
	}
	if h.fin && h.next == h.finSeq {
		h.next++ // the FIN takes one sequence number
	}
}

// drain delivers buffered segments that have become in order.
func (h *tcpHalf) drain(deliver func([]byte)) {
	for len(h.ooo) > 0 {
		progressed := false
		for seq, b := range h.ooo {
			diff := int32(seq - h.next)
			if diff > 0 {
				continue
			}
			delete(h.ooo, seq)
			h.oooSize -= len(b)
			if int(-diff) < len(b) {
				b = b[-diff:]
				deliver(b)
				h.next += uint32(len(b))
			}
			progressed = true
		}
		if !progressed {
			return
		}
	}
}

// skipTo skips the holes before the buffered segments that start at or
// before limit (data the peer acknowledged, so never to be retransmitted).
func (h *tcpHalf) skipTo(limit uint32, deliver func([]byte), gap func(int)) {
	for len(h.ooo) > 0 && int32(limit-h.next) > 0 {
		first, found := uint32(0), false
		for seq := range h.ooo {
			if !found || int32(seq-first) < 0 {
				first, found = seq, true
			}
		}
		if int32(first-limit) > 0 {
			return
		}
		gap(int(int32(first - h.next)))
		h.next = first
		h.drain(deliver)
	}
	if h.fin && h.next == h.finSeq {
		h.next++
	}
}

// skipGap gives up on missing data: it jumps to the earliest buffered
// segment and reports how much was lost.
func (h *tcpHalf) skipGap(deliver func([]byte), gap func(int)) {
	first, found := uint32(0), false
	for seq := range h.ooo {
		if !found || int32(seq-first) < 0 {
			first, found = seq, true
		}
	}
	if !found {
		return
	}
	gap(int(int32(first - h.next)))
	h.next = first
	h.drain(deliver)
}
