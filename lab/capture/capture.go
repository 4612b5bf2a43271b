package capture

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/protolab/protolab-tui/lab/wire"
)

// Options configures a Capture.
type Options struct {
	// Ports maps the lab's server ports to their apps.
	Ports wire.PortMap
	// Keys receives the lab clients' TLS secrets (and a pcapng file's).
	Keys *wire.KeyLog
	// Store receives the records; a new one of DefaultRingSize if nil.
	Store *wire.Store
	// SpoolDir holds the raw packets kept for export; "" keeps none.
	SpoolDir string
	// MaxSpool bounds the spool file (default 1 GiB); packets past it are
	// decoded but not exported, and counted.
	MaxSpool int64
	// Queue is how many packets may wait between reading and decoding
	// (default 65536); past it packets are dropped — and counted.
	Queue int
	// Block makes the reader wait for the decoder instead of dropping (for
	// files, where nothing is lost by waiting).
	Block bool
}

// Stats are a capture's own counters.
type Stats struct {
	Mode        Mode   `json:"mode"`
	Source      string `json:"source"`
	Packets     uint64 `json:"packets"`      // read from the source
	Undecodable uint64 `json:"undecodable"`  // not decodable as link/IP/TCP
	Ignored     uint64 `json:"ignored"`      // not TCP of a lab port (let through before the source's filter was set): neither listed nor exported
	QueueDrops  uint64 `json:"queue_drops"`  // dropped because decoding lagged (by app: wire.Counters.Dropped)
	KernelDrops uint64 `json:"kernel_drops"` // dropped by the kernel before reading (the kernel names no app)
	SpoolDrops  uint64 `json:"spool_drops"`  // decoded but not kept for export
	// NoSpool says why no packet is kept for export (the state directory
	// not writable).
	NoSpool string `json:"no_spool,omitempty"`
	Err     string `json:"error,omitempty"`
	// Sync says how the last wait for the decoder ended: "exact" (the
	// probes' connections, byte for byte, SyncConns) or "quiet" (no packet
	// for a while, Sync).
	Sync string `json:"sync,omitempty"`
}

// Drops sums every kind of drop.
func (s Stats) Drops() uint64 { return s.QueueDrops + s.KernelDrops }

type item struct {
	data []byte
	ci   gopacket.CaptureInfo
	// socket-level chunks
	stream bool
	end    bool
	flow   wire.Flow
	app    wire.AppRef
	dir    wire.Dir
	// done, when set, marks a nudge: the decoder retries TLS records that
	// wait for keys, then closes it
	done chan struct{}
}

// Capture runs one source through the decoder until Stop.
type Capture struct {
	mode  Mode
	src   Source
	store *wire.Store
	keys  *wire.KeyLog
	dec   *wire.Decoder
	queue chan item
	ports wire.PortMap

	spoolErr  error    // why there is no spool
	spoolFile *os.File // unnamed: it ends with the process, however that ends
	spoolMu   sync.Mutex
	spoolBuf  *bufio.Writer // the packets not yet in the file (spoolMu)
	spooled   int           // how many
	spool     *pcapgo.Writer
	spoolSize int64
	index     spoolIndex // where in the spool packets start (Packet)
	maxSpool  int64
	linkType  layers.LinkType

	// dropped counts, by app, the packets the queue had no room for, until
	// the decoder adds them to the store's counters (publishDrops).
	dropped map[string]*atomic.Uint64
	// interrupt, for a source read in place, has its reader look at the
	// queue (a nudge waits there).
	interrupt func()

	started time.Time

	packets, queueDrops, spoolDrops atomic.Uint64
	undecodable, ignored            atomic.Uint64 // of the packets decoded
	chunks                          atomic.Uint64 // socket-level reads and writes decoded
	stopping                        atomic.Bool
	lastPacket                      atomic.Int64 // unix nanos of the last item decoded
	pending                         atomic.Int64 // items queued, not yet decoded

	qmu      sync.RWMutex // guards closing queue against late socket-level writers
	qclosed  bool
	mu       sync.Mutex
	err      error
	sync     string // how the last sync ended (Stats.Sync)
	stopOnce sync.Once
	readDone chan struct{}
	decDone  chan struct{}
}

// Start begins capturing from src (nil for socket-level capture, fed through
// Tap). mode is what the report shows.
func Start(src Source, mode Mode, o Options) (*Capture, error) {
	if o.Store == nil {
		o.Store = wire.NewStore(0)
	}
	if o.Keys == nil {
		o.Keys = wire.NewKeyLog(nil)
	}
	if o.MaxSpool == 0 {
		o.MaxSpool = 1 << 30
	}
	if o.Queue == 0 {
		o.Queue = 1 << 16
	}
	lt := layers.LinkTypeEthernet
	if src != nil {
		lt = src.LinkType()
	}
	dec, err := wire.NewDecoder(lt, o.Ports, o.Keys, o.Store)
	if err != nil {
		return nil, err
	}
	c := &Capture{mode: mode, src: src, store: o.Store, keys: o.Keys, dec: dec, ports: o.Ports,
		queue: make(chan item, o.Queue), maxSpool: o.MaxSpool, linkType: lt, started: time.Now(),
		readDone: make(chan struct{}), decDone: make(chan struct{}), dropped: map[string]*atomic.Uint64{}}
	for _, a := range o.Ports {
		c.dropped[a.Name] = new(atomic.Uint64)
	}
	if o.SpoolDir != "" && src != nil {
		// Without a spool (the state directory read-only or full) the
		// capture still decodes and lists everything: only export lacks it.
		if err := c.openSpool(o.SpoolDir, lt); err != nil {
			c.spoolErr = fmt.Errorf("packets are decoded but not kept for export: the spool in %s cannot be written (%w): make the state directory writable and restart capture", o.SpoolDir, err)
		}
	}
	switch {
	case src == nil: // socket-level: fed through Tap
		close(c.readDone)
		go c.decode()
	case o.Block: // a file: decode as it is read, nothing queued, nothing dropped
		go c.readAndDecode()
	case inPlace(src) != nil: // a ring: its blocks are the queue
		c.interrupt = inPlace(src).Interrupt
		go c.decodeInPlace(inPlace(src))
	default:
		go c.read()
		go c.decode()
	}
	return c, nil
}

func (c *Capture) openSpool(dir string, lt layers.LinkType) error {
	f, err := openSpool(dir) // unnamed (spool.go)
	if err != nil {
		return err
	}
	c.spoolBuf = bufio.NewWriterSize(f, spoolBuffer)
	w := pcapgo.NewWriterNanos(c.spoolBuf)
	if err := w.WriteFileHeader(SnapLen, lt); err == nil {
		err = c.spoolBuf.Flush()
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("capture spool: writing its header: %w", err)
	}
	c.spoolFile, c.spool = f, w
	return nil
}

// spoolBuffer is how many bytes of packets wait in memory before they are
// written to the spool in one system call (not two per packet). The
// buffer is written out whenever the decoder has nothing else to do, when
// an export reads the spool and when the capture stops.
const spoolBuffer = 1 << 20

// SpoolError says why the capture keeps no packets for export (nil when it
// does, or when it was not asked to).
func (c *Capture) SpoolError() error { return c.spoolErr }

// readAndDecode decodes each packet as it is read (files: the reader can
// wait, so no queue and no copy are needed).
func (c *Capture) readAndDecode() {
	defer close(c.decDone)
	defer close(c.readDone)
	read := c.src.ReadPacketData
	if zc, ok := c.src.(zeroCopier); ok {
		read = zc.ZeroCopyReadPacketData
	}
	for n := 0; !c.stopping.Load(); n++ {
		data, ci, err := read()
		if err != nil {
			if !c.stopping.Load() && !errors.Is(err, io.EOF) {
				c.setErr(err)
			}
			break
		}
		if n%batchMax == 0 { // a file is never waited for: batches of batchMax
			c.dec.EndBatch()
			c.dec.BeginBatch()
		}
		c.packets.Add(1)
		c.packet(data, ci)
	}
	c.dec.EndBatch()
	c.dec.Flush(time.Now())
	c.flushSpool()
}

// blockSource is a source whose packets are decoded where they lie, a block
// at a time (Live: its ring's blocks).
type blockSource interface {
	EachBlock(each func(data []byte, ci gopacket.CaptureInfo)) (int, error)
	EachReady(each func(data []byte, ci gopacket.CaptureInfo)) (int, error)
	Interrupt()
}

// inPlace is src as a blockSource, or nil.
func inPlace(src Source) blockSource {
	if bs, ok := src.(blockSource); ok {
		return bs
	}
	return nil
}

// batchMax bounds the packets decoded under one lock of the store
// (wire.Decoder.BeginBatch): a front end reading the store waits for at
// most this many.
const batchMax = 256

// decodeInPlace decodes a ring's packets where the kernel wrote them, a
// block at a time, and gives each block back once its packets are decoded:
// no copy, no queue — the ring is the queue, and when it is full the
// kernel drops (and counts) what it cannot hold. Between blocks it serves
// the nudges waiting in the queue. Stopping, it decodes every block the
// kernel has handed over before it returns (Stop closes the source after).
func (c *Capture) decodeInPlace(src blockSource) {
	defer close(c.decDone)
	defer close(c.readDone)
	batched, drained := 0, false
	each := func(data []byte, ci gopacket.CaptureInfo) {
		if batched == 0 {
			c.dec.BeginBatch()
		}
		c.packet(data, ci)
		if batched++; batched == batchMax {
			c.dec.EndBatch()
			batched = 0
		}
	}
	for {
		read := src.EachBlock
		if c.stopping.Load() {
			read = src.EachReady
		}
		n, err := read(each)
		if batched > 0 {
			c.dec.EndBatch()
			batched = 0
		}
		if n > 0 {
			c.packets.Add(uint64(n))
			c.lastPacket.Store(time.Now().UnixNano())
		} else {
			c.flushSpool() // nothing came: the file catches up
		}
		c.serveQueue()
		if err != nil {
			if !c.stopping.Load() && !errors.Is(err, io.EOF) {
				c.setErr(err)
			}
			break
		}
		if c.stopping.Load() {
			if n == 0 && drained {
				break // every block handed over is decoded
			}
			drained = true // at least one more pass, without waiting
		}
	}
	c.qmu.Lock()
	c.qclosed = true // a nudge from now on finds nothing to wait for
	c.qmu.Unlock()
	c.serveQueue()
	c.dec.Flush(time.Now())
	c.flushSpool()
}

// serveQueue handles what waits in the queue, without waiting for more
// (in place, only nudges come through it).
func (c *Capture) serveQueue() {
	for {
		select {
		case it, ok := <-c.queue:
			if !ok {
				return
			}
			c.handle(it)
			c.pending.Add(-1)
		default:
			return
		}
	}
}

// Mode is how this capture gets its packets.
func (c *Capture) Mode() Mode { return c.mode }

// Started is when the capture started.
func (c *Capture) Started() time.Time { return c.started }

// Store holds the decoded records.
func (c *Capture) Store() *wire.Store { return c.store }

// Keys is the TLS key log the decoder uses.
func (c *Capture) Keys() *wire.KeyLog { return c.keys }

// Describe names the source.
func (c *Capture) Describe() string {
	if c.src == nil {
		return "the lab's own sockets"
	}
	return c.src.Describe()
}

func (c *Capture) read() {
	defer close(c.readDone)
	for {
		data, ci, err := c.src.ReadPacketData()
		if err != nil {
			if !c.stopping.Load() && !errors.Is(err, io.EOF) {
				c.setErr(err)
			}
			return
		}
		c.packets.Add(1)
		c.enqueue(item{data: data, ci: ci})
	}
}

func (c *Capture) enqueue(it item) {
	c.qmu.RLock()
	defer c.qmu.RUnlock()
	if c.qclosed {
		return
	}
	c.pending.Add(1)
	select {
	case c.queue <- it:
	default:
		c.pending.Add(-1)
		c.queueDrops.Add(1)
		name, ok := it.app.Name, it.stream
		if !ok {
			name, ok = c.dec.AppOf(it.data)
		}
		if n := c.dropped[name]; ok && n != nil {
			n.Add(1)
		}
	}
}

// publishDrops adds the packets dropped since the last call to their apps'
// counters in the store (wire.Counters.Dropped).
func (c *Capture) publishDrops() {
	for name, n := range c.dropped {
		if v := n.Swap(0); v > 0 {
			c.store.AddDropped(name, v)
		}
	}
}

// nudge has the decoder retry records waiting for TLS keys, and waits for it.
func (c *Capture) nudge(ctx context.Context) error {
	done := make(chan struct{})
	c.qmu.RLock()
	if c.qclosed {
		c.qmu.RUnlock()
		return nil
	}
	c.pending.Add(1)
	select {
	case c.queue <- item{done: done}:
		if c.interrupt != nil {
			c.interrupt()
		}
	case <-ctx.Done():
		c.pending.Add(-1)
	}
	c.qmu.RUnlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the decoder to retry TLS records: %w", ctx.Err())
	}
}

func (c *Capture) setErr(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

// decode takes what the queue holds, up to batchMax items under one lock
// of the store, until the queue is closed.
func (c *Capture) decode() {
	defer close(c.decDone)
	for it := range c.queue {
		c.dec.BeginBatch()
		c.handle(it)
		c.pending.Add(-1)
	batch:
		for range batchMax - 1 {
			select {
			case it, ok := <-c.queue:
				if !ok {
					break batch
				}
				c.handle(it)
				c.pending.Add(-1)
			default:
				break batch
			}
		}
		c.dec.EndBatch()
		c.lastPacket.Store(time.Now().UnixNano())
		c.publishDrops()
		if len(c.queue) == 0 {
			c.flushSpool() // nothing waits: the file catches up
		}
	}
	c.dec.Flush(time.Now())
	c.publishDrops()
	c.flushSpool()
}

// handle decodes one queued item.
func (c *Capture) handle(it item) {
	switch {
	case it.done != nil:
		c.dec.CheckKeys()
		close(it.done)
	case it.stream && it.end:
		c.dec.StreamEnd(it.flow, it.ci.Timestamp)
	case it.stream:
		c.dec.Stream(it.flow, it.app, it.dir, it.data, it.ci.Timestamp)
		c.chunks.Add(1)
	default:
		c.packet(it.data, it.ci)
	}
}

// packet decodes one packet and keeps it for export unless it is not the
// lab's traffic, so the export holds exactly the packets the store counts
// (and those that could not be decoded, for a closer look in Wireshark).
func (c *Capture) packet(data []byte, ci gopacket.CaptureInfo) {
	ignored, undecodable := c.dec.Ignored, c.dec.Undecodable
	_ = c.dec.Packet(data, ci) // counted as undecodable; never fatal
	switch {
	case c.dec.Ignored != ignored:
		// Not TCP to or from a lab port: a live source lets other traffic
		// through until its filter is attached.
		c.ignored.Add(1)
	case c.dec.Undecodable != undecodable:
		c.undecodable.Add(1)
		c.keep(data, ci)
	default:
		c.keep(data, ci)
	}
}

// keep writes a packet to the spool for export (to its buffer: see
// spoolBuffer).
func (c *Capture) keep(data []byte, ci gopacket.CaptureInfo) {
	if c.spool == nil {
		return
	}
	if c.spoolSize+int64(len(data))+16 > c.maxSpool {
		c.spoolDrops.Add(1)
		return
	}
	ci.CaptureLength = len(data)
	if ci.Length < ci.CaptureLength {
		ci.Length = ci.CaptureLength
	}
	c.spoolMu.Lock()
	defer c.spoolMu.Unlock()
	if c.spoolBuf.Available() < len(data)+16 {
		c.flushSpoolLocked()
	}
	if err := c.spool.WritePacket(ci, data); err != nil {
		c.spoolDrops.Add(1)
		c.setErr(fmt.Errorf("capture spool: %w", err))
		return
	}
	c.spooled++
	c.index.note(ci.Timestamp, c.spoolSize) // for Packet (packet.go)
	c.spoolSize += int64(len(data)) + 16
}

// flushSpool writes the buffered packets to the spool file.
func (c *Capture) flushSpool() {
	if c.spool == nil {
		return
	}
	c.spoolMu.Lock()
	defer c.spoolMu.Unlock()
	c.flushSpoolLocked()
}

func (c *Capture) flushSpoolLocked() {
	if c.spooled == 0 {
		return
	}
	if err := c.spoolBuf.Flush(); err != nil {
		// The buffer is lost, and every packet after it (the error
		// sticks): the export lacks them, and says so.
		c.spoolDrops.Add(uint64(c.spooled))
		c.setErr(fmt.Errorf("capture spool: %w", err))
	}
	c.spooled = 0
}

// Sync waits until everything captured so far is decoded: the queue is empty
// and no packet has arrived for quiet, counted from the call at the earliest
// (bounded by ctx).
func (c *Capture) Sync(ctx context.Context, quiet time.Duration) error {
	t := time.NewTicker(quiet / 4)
	defer t.Stop()
	start := time.Now().UnixNano()
	for {
		idle := time.Since(time.Unix(0, max(start, c.lastPacket.Load()))) >= quiet
		if c.pending.Load() == 0 && idle {
			// As in SyncConns: records that waited for TLS keys the probe
			// worker sent after the bytes are decoded now that it is done.
			if err := c.nudge(ctx); err != nil {
				return err
			}
			c.mu.Lock()
			c.sync = fmt.Sprintf("quiet (%v without a packet)", quiet)
			c.mu.Unlock()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the capture to catch up: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// Conn is one connection a capture should have taken in: its ends as the
// wire shows them and the stream bytes each way.
type Conn struct {
	Client, Server netip.AddrPort
	Sent, Recv     int64
}

// SyncConns waits until the decoder has taken in exactly what crossed conns
// — every byte each way, in order, and both ends closed — so nothing they
// carried is still on its way to the records; no timer guesses at it.
// Where the capture does not see conns as their client did (an address
// translated, a tunnel, a remote host's capture) or a packet of theirs was
// lost, they never complete: when the capture has then been quiet for
// quiet (nothing queued, no packet decoded), it ends as Sync does, and
// Stats.Sync says so. quiet 0 waits for the exact bytes only. Bounded by
// ctx, whose error names what is missing.
func (c *Capture) SyncConns(ctx context.Context, conns []Conn, quiet time.Duration) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	start := time.Now().UnixNano()
	for {
		missing, unseen := "", 0
		for _, cn := range conns {
			sent, recv, ended, ok := c.dec.Taken(cn.Client, cn.Server)
			if !ok {
				unseen++
			}
			if (!ok || sent < cn.Sent || recv < cn.Recv || !ended) && missing == "" {
				missing = fmt.Sprintf("%s→%s: %d of %d bytes sent, %d of %d received, ended %v (seen %v)",
					cn.Client, cn.Server, sent, cn.Sent, recv, cn.Recv, ended, ok)
			}
		}
		how := fmt.Sprintf("exact (%d connections)", len(conns))
		if missing != "" && quiet > 0 && c.pending.Load() == 0 &&
			time.Since(time.Unix(0, max(start, c.lastPacket.Load()))) >= quiet {
			how = fmt.Sprintf("quiet (%v without a packet; %d of the %d probe connections not seen as their client made them)", quiet, unseen, len(conns))
			if unseen == 0 {
				how = fmt.Sprintf("quiet (%v without a packet; a probe connection incomplete: %s)", quiet, missing)
			}
			missing = ""
		}
		if missing == "" {
			// Their bytes are in; records of theirs may wait for TLS keys
			// that came (from the probe worker) after the bytes: one
			// retry after the keys are all in decodes them.
			if err := c.nudge(ctx); err != nil {
				return err
			}
			c.mu.Lock()
			c.sync = how
			c.mu.Unlock()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the capture to take in %s: %w", missing, ctx.Err())
		case <-t.C:
		}
	}
}

// Stop ends the capture: the source is closed, what was read is decoded, and
// open flows are flushed. It is safe to call more than once.
func (c *Capture) Stop() error {
	c.stopOnce.Do(func() {
		c.stopping.Store(true)
		if c.interrupt != nil {
			// Read in place: the reader decodes what the kernel has
			// handed over, then the source closes.
			c.interrupt()
			<-c.readDone
		}
		if c.src != nil {
			_ = c.src.Close()
		}
		<-c.readDone
		c.qmu.Lock()
		c.qclosed = true
		close(c.queue) // unused in block mode; closing it is harmless
		c.qmu.Unlock()
		<-c.decDone
		if c.spoolFile != nil {
			_ = c.spoolFile.Sync()
		}
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// HasSource reports whether the capture reads a source (socket-level
// capture has none: it is fed through Tap and never ends by itself).
func (c *Capture) HasSource() bool { return c.src != nil }

// Done is closed when the source has ended by itself (end of a file or
// stream) or after Stop.
func (c *Capture) Done() <-chan struct{} { return c.readDone }

// Close stops the capture and frees its spool.
func (c *Capture) Close() error {
	err := c.Stop()
	if c.spoolFile != nil {
		c.spoolFile.Close()
	}
	return err
}

// Stats returns the capture's counters.
func (c *Capture) Stats() Stats {
	s := Stats{Mode: c.mode, Source: c.Describe(), Packets: c.packets.Load(),
		Undecodable: c.undecodable.Load(), Ignored: c.ignored.Load(),
		QueueDrops: c.queueDrops.Load(), SpoolDrops: c.spoolDrops.Load()}
	if dc, ok := c.src.(dropCounter); ok {
		s.KernelDrops = dc.KernelDrops()
	}
	if c.spoolErr != nil {
		s.NoSpool = c.spoolErr.Error()
	}
	c.mu.Lock()
	if c.err != nil {
		s.Err = c.err.Error()
	}
	s.Sync = c.sync
	c.mu.Unlock()
	return s
}

// Undecodable is how many packets the decoder could not decode.
func (c *Capture) Undecodable() uint64 { return c.undecodable.Load() }

// Export writes a pcapng file of this capture alone: see ExportAll.
func (c *Capture) Export(path string) (packets int, err error) {
	res, err := ExportAll(path, c.keys, c)
	return res.Packets, err
}

// Tap is socket-level capture: it wraps the lab's own connections and feeds
// what crosses them to the decoder.
func (c *Capture) Tap(app wire.AppRef, conn net.Conn) net.Conn {
	client, _ := netip.ParseAddrPort(conn.LocalAddr().String())
	server, _ := netip.ParseAddrPort(conn.RemoteAddr().String())
	return &tapConn{Conn: conn, c: c, flow: wire.Flow{Client: client, Server: server}, app: app}
}

// CloseWrite half-closes the tapped connection when it can (a relay passes
// its peer's FIN on).
func (t *tapConn) CloseWrite() error {
	if cw, ok := t.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("the tapped connection cannot half-close")
}

type tapConn struct {
	net.Conn
	c    *Capture
	flow wire.Flow
	app  wire.AppRef
	once sync.Once
}

func (t *tapConn) chunk(dir wire.Dir, b []byte) {
	t.c.enqueue(item{stream: true, flow: t.flow, app: t.app, dir: dir,
		data: append([]byte(nil), b...), ci: gopacket.CaptureInfo{Timestamp: time.Now(), Length: len(b)}})
}

func (t *tapConn) Read(b []byte) (int, error) {
	n, err := t.Conn.Read(b)
	if n > 0 {
		t.chunk(wire.ServerToClient, b[:n])
	}
	return n, err
}

// Write records b before sending it: recorded after, the server's answer
// (read, and recorded, by another goroutine) could be queued before the
// request it answers, and the decoder would see a 101 before its upgrade
// request. A write that fails part way has then recorded bytes that never
// left; the connection is broken by then, and the error says so.
func (t *tapConn) Write(b []byte) (int, error) {
	if len(b) > 0 {
		t.chunk(wire.ClientToServer, b)
	}
	return t.Conn.Write(b)
}

func (t *tapConn) Close() error {
	t.once.Do(func() {
		t.c.enqueue(item{stream: true, end: true, flow: t.flow, ci: gopacket.CaptureInfo{Timestamp: time.Now()}})
	})
	return t.Conn.Close()
}
