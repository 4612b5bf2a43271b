// Package capture gets the lab's packets: live from an interface of this host
// (AF_PACKET, pure Go, with a BPF filter built from the lab's ports), from a
// command's pcap stream (`tcpdump -U -w -`, run through the provider's runner,
// so a remote lab host works the same), from a pcap or pcapng file, or — for
// a user who may not capture — from the lab's own sockets. A Capture feeds
// the packets through wire's decoder into its store, keeps a raw copy for a
// pcapng export with the TLS keys in it, and counts what it drops.
package capture

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/protolab/protolab-tui/lab/wire"
)

// Mode says how packets are being captured; the UI and the report show it.
type Mode string

// Capture modes.
const (
	ModeLive      Mode = "live"      // AF_PACKET on this host
	ModeNamespace Mode = "namespace" // AF_PACKET inside a private user+network namespace
	ModeSocket    Mode = "socket"    // the lab's own connections: payload bytes, no TCP header
	ModeStream    Mode = "stream"    // a command's pcap stream (tcpdump, locally or over SSH)
	ModeFile      Mode = "file"      // a pcap or pcapng file
	ModeOff       Mode = "off"
)

// Source is where packets come from.
type Source interface {
	// LinkType is the link layer of every packet.
	LinkType() layers.LinkType
	// ReadPacketData returns the next packet; io.EOF at the end.
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	// Close stops the source; a blocked ReadPacketData returns.
	Close() error
	// Describe names the source for people ("AF_PACKET on lo").
	Describe() string
}

// dropCounter is implemented by sources that know how many packets the
// kernel dropped.
type dropCounter interface{ KernelDrops() uint64 }

// SnapLen is the most bytes kept of a packet.
const SnapLen = 262144

// Live captures on a network interface of this host through an AF_PACKET
// TPACKET_V3 ring (ring.go): the kernel fills a shared ring, so bursts are
// absorbed without a system call per packet, and a block's packets can be
// decoded where the kernel put them (EachBlock) before the block is given
// back.
type Live struct {
	r      *ring
	iface  string
	mu     sync.Mutex   // held while the ring is read, so Close never unmaps it under a reader
	life   sync.RWMutex // held to close the socket, so KernelDrops never asks a closed one
	closed atomic.Bool
	drops  uint64 // the kernel's drops when closed
}

// Ring geometry: 256 blocks of 128 KiB (32 MiB); a block goes to the reader
// when full or after 10 ms, so a quiet link still shows packets promptly.
// A block is handed over at its timeout however little it holds, so the
// ring holds at least blocks × timeout (2.56 s) of traffic however sparse,
// and 32 MiB of it however dense; 128 KiB still holds the largest loopback
// packet (64 KiB) whole.
const (
	ringBlock   = 128 << 10
	ringBlocks  = 256
	ringTimeout = 10 * time.Millisecond
	pollTimeout = 20 * time.Millisecond // a reader waits at most this before it looks again
)

// OpenLive opens AF_PACKET capture on iface for TCP to or from ports. On the
// loopback interface the outgoing copy of each packet is filtered out; any
// other is captured in promiscuous mode (as tcpdump: a bridge passes up the
// frames it forwards between its ports, container to container, only in
// promiscuous mode; the membership ends with the socket). It fails with
// ErrNoPrivilege when the process may not capture.
func OpenLive(iface string, ports []int) (*Live, error) {
	if !CanCapture() {
		return nil, fmt.Errorf("capturing on %s: %w", iface, ErrNoPrivilege)
	}
	// A socket bound to an interface that is down fails at its first read:
	// say so now instead.
	if err := interfaceUp(iface); err != nil {
		return nil, fmt.Errorf("capturing on %s: %w", iface, err)
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("capturing on %s: %w", iface, err)
	}
	filter, err := Filter(ports, SnapLen, iface == "lo")
	if err != nil {
		return nil, fmt.Errorf("capturing on %s: %w", iface, err)
	}
	r, err := openRing(ifi.Index, filter, iface != "lo", ringBlock, ringBlocks, ringTimeout)
	if err != nil {
		if isPermission(err) {
			return nil, fmt.Errorf("capturing on %s: %w", iface, ErrNoPrivilege)
		}
		return nil, fmt.Errorf("capturing on %s: %w", iface, err)
	}
	return &Live{r: r, iface: iface}, nil
}

// LinkType implements Source: AF_PACKET raw sockets give Ethernet framing
// (lo included).
func (l *Live) LinkType() layers.LinkType { return layers.LinkTypeEthernet }

// ReadPacketData implements Source; the data is a fresh copy. It returns
// io.EOF once the source is closed.
func (l *Live) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if l.closed.Load() {
			return nil, gopacket.CaptureInfo{}, io.EOF
		}
		if l.r.cur != nil {
			data, ci := l.r.packet()
			data = append([]byte(nil), data...)
			if l.r.left == 0 {
				l.r.release()
			}
			return data, ci, nil
		}
		if _, err := l.r.await(pollTimeout); err != nil {
			return nil, gopacket.CaptureInfo{}, l.failed(err)
		}
	}
}

// EachBlock waits for the next block of packets (at most the poll timeout,
// or until Interrupt) and calls each for every packet in it, in order,
// where the kernel wrote it: data is valid only during the call. The block
// goes back to the kernel after the last call. n is the packets passed to
// each (0: none came); io.EOF once the source is closed.
func (l *Live) EachBlock(each func(data []byte, ci gopacket.CaptureInfo)) (n int, err error) {
	return l.eachBlock(pollTimeout, each)
}

// EachReady is EachBlock for a block the kernel has handed over already:
// it never waits (0: none is ready).
func (l *Live) EachReady(each func(data []byte, ci gopacket.CaptureInfo)) (n int, err error) {
	return l.eachBlock(0, each)
}

func (l *Live) eachBlock(wait time.Duration, each func(data []byte, ci gopacket.CaptureInfo)) (n int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed.Load() {
		return 0, io.EOF
	}
	if l.r.cur == nil {
		if ok, err := l.r.await(wait); err != nil || !ok {
			return 0, l.failed(err)
		}
	}
	for l.r.left > 0 {
		data, ci := l.r.packet()
		each(data, ci)
		n++
	}
	l.r.release()
	return n, nil
}

// Interrupt has a reader waiting in EachBlock return at once (from any
// goroutine): the capture's decoder has other work (a sync asks it to
// retry records waiting for TLS keys).
func (l *Live) Interrupt() { l.r.interrupt() }

// failed says what a failed wait means: the interface went down or away.
func (l *Live) failed(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, errPoll) {
		why := "the socket reports an error"
		if ierr := interfaceUp(l.iface); ierr != nil {
			why = ierr.Error()
		}
		return fmt.Errorf("AF_PACKET on %s: %s (%w)", l.iface, why, err)
	}
	return fmt.Errorf("AF_PACKET on %s: %w", l.iface, err)
}

// interfaceUp says whether iface exists and is up.
func interfaceUp(iface string) error {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return fmt.Errorf("no interface %s: %w", iface, err)
	}
	if ifi.Flags&net.FlagUp == 0 {
		return fmt.Errorf("interface %s is down (ip link set %s up)", iface, iface)
	}
	return nil
}

// Close implements Source: a blocked reader returns at once.
func (l *Live) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.r.interrupt()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.life.Lock()
	defer l.life.Unlock()
	l.drops = l.r.kernelDrops()
	l.r.close()
	return nil
}

// Describe implements Source.
func (l *Live) Describe() string { return "AF_PACKET on " + l.iface }

// KernelDrops is how many packets the kernel dropped because the ring had
// no free block.
func (l *Live) KernelDrops() uint64 {
	l.life.RLock()
	defer l.life.RUnlock()
	if l.r.mem == nil { // closed
		return l.drops
	}
	return l.r.kernelDrops()
}

// reader is a pcap or pcapng reader.
type reader interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	LinkType() layers.LinkType
}

// zeroCopier is a source that can lend its buffer: the data is valid until
// the next read.
type zeroCopier interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// pcapngMagic is the block type of a pcapng section header.
const pcapngMagic = 0x0A0D0D0A

// newReader detects pcap or pcapng from the first bytes of r.
func newReader(r *bufio.Reader) (reader, error) {
	head, err := r.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("reading the capture header: %w", err)
	}
	if binary.LittleEndian.Uint32(head) == pcapngMagic {
		ng, err := pcapgo.NewNgReader(r, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, fmt.Errorf("pcapng: %w", err)
		}
		return ng, nil
	}
	pr, err := pcapgo.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("pcap: %w", err)
	}
	return pr, nil
}

// File reads a pcap or pcapng file.
type File struct {
	f    *os.File
	r    reader
	path string
}

// OpenFile opens a pcap or pcapng capture. TLS secrets embedded in a pcapng
// file (Decryption Secrets Blocks) are loaded into keys when it is not nil.
func OpenFile(path string, keys *wire.KeyLog) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening capture %s: %w", path, err)
	}
	if keys != nil {
		if err := LoadSecrets(f, keys); err != nil {
			f.Close()
			return nil, fmt.Errorf("capture %s: %w", path, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("capture %s: %w", path, err)
		}
	}
	r, err := newReader(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("capture %s is not a pcap or pcapng file: %w", path, err)
	}
	return &File{f: f, r: r, path: path}, nil
}

// LinkType implements Source.
func (f *File) LinkType() layers.LinkType { return f.r.LinkType() }

// ReadPacketData implements Source.
func (f *File) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) { return f.r.ReadPacketData() }

// ZeroCopyReadPacketData reads the next packet into the reader's buffer.
func (f *File) ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	return f.r.ZeroCopyReadPacketData()
}

// Comment is a pcapng file's section comment ("" for pcap files and files
// without one): protolab's exports of an interrupted run say there that
// they were cut short.
func (f *File) Comment() string {
	if ng, ok := f.r.(*pcapgo.NgReader); ok {
		return ng.SectionInfo().Comment
	}
	return ""
}

// Close implements Source.
func (f *File) Close() error { return f.f.Close() }

// Describe implements Source.
func (f *File) Describe() string { return "file " + f.path }

// secretsTLSKeyLog is the pcapng Decryption Secrets Block type for a TLS key
// log ("TLSK").
const secretsTLSKeyLog = 0x544c534b

// LoadSecrets walks a pcapng file's blocks and loads the TLS key logs of its
// Decryption Secrets Blocks. A pcap (not pcapng) file has none: no error.
func LoadSecrets(r io.Reader, keys *wire.KeyLog) error {
	br := bufio.NewReader(r)
	var hdr [12]byte
	if _, err := io.ReadFull(br, hdr[:8]); err != nil {
		return nil // too short for pcapng; the reader will say what is wrong
	}
	if binary.LittleEndian.Uint32(hdr[:]) != pcapngMagic {
		return nil
	}
	if _, err := io.ReadFull(br, hdr[8:12]); err != nil {
		return fmt.Errorf("pcapng section header: %w", err)
	}
	var order binary.ByteOrder
	switch binary.LittleEndian.Uint32(hdr[8:]) {
	case 0x1A2B3C4D:
		order = binary.LittleEndian
	case 0x4D3C2B1A:
		order = binary.BigEndian
	default:
		return errors.New("pcapng section header has a bad byte-order magic")
	}
	length := order.Uint32(hdr[4:])
	if length < 12 || length%4 != 0 {
		return fmt.Errorf("pcapng block of length %d", length)
	}
	if _, err := br.Discard(int(length) - 12); err != nil {
		return fmt.Errorf("pcapng section header: %w", err)
	}
	for {
		if _, err := io.ReadFull(br, hdr[:8]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return nil // a truncated tail: the packet reader reports it
		}
		typ, length := order.Uint32(hdr[:]), order.Uint32(hdr[4:])
		if length < 12 || length%4 != 0 {
			return fmt.Errorf("pcapng block of length %d", length)
		}
		body := int(length) - 8
		if typ != 0x0000000A {
			if _, err := br.Discard(body); err != nil {
				return nil
			}
			continue
		}
		if body > 64<<20 {
			return fmt.Errorf("decryption secrets block of %d bytes", body)
		}
		buf := make([]byte, body)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil
		}
		if len(buf) < 8 {
			return errors.New("decryption secrets block too short")
		}
		st, sl := order.Uint32(buf), order.Uint32(buf[4:])
		if int(sl) > len(buf)-8 {
			return fmt.Errorf("decryption secrets block says %d bytes of secrets but holds %d", sl, len(buf)-8)
		}
		if st == secretsTLSKeyLog {
			if err := keys.Load(bytes.NewReader(buf[8 : 8+sl])); err != nil {
				return err
			}
		}
	}
}

// Runner runs a command on the lab host (the provider's runner).
type Runner interface {
	Run(ctx context.Context, argv []string, stdout, stderr io.Writer) error
}

// Stream reads a pcap stream from a command's standard output, e.g.
// `tcpdump -U -w - …`.
type Stream struct {
	r      reader
	pr     *io.PipeReader
	cancel context.CancelFunc
	done   chan error
	stderr *bytes.Buffer
	mu     sync.Mutex
	desc   string
}

// limitedBuffer keeps the first bytes written to it.
type limitedBuffer struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (l limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := 8192 - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// OpenStream starts argv through run and reads its standard output as pcap.
// It waits (bounded by ctx) for the pcap header, so a command that fails at
// once — tcpdump without permission, say — is an error here, with what the
// command printed.
func OpenStream(ctx context.Context, run Runner, argv []string, desc string) (*Stream, error) {
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	pr, pw := io.Pipe()
	s := &Stream{pr: pr, cancel: cancel, done: make(chan error, 1), stderr: &bytes.Buffer{}, desc: desc}
	go func() {
		err := run.Run(cctx, argv, pw, limitedBuffer{&s.mu, s.stderr})
		if err == nil {
			err = io.EOF
		}
		pw.CloseWithError(err)
		s.done <- err
	}()
	type opened struct {
		r   reader
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		r, err := newReader(bufio.NewReaderSize(pr, 1<<16))
		ch <- opened{r, err}
	}()
	select {
	case o := <-ch:
		if o.err != nil {
			cancel()
			return nil, fmt.Errorf("%s: %w%s", desc, o.err, s.said())
		}
		s.r = o.r
		return s, nil
	case <-ctx.Done():
		cancel()
		pr.Close()
		return nil, fmt.Errorf("%s: no pcap header before %w%s", desc, ctx.Err(), s.said())
	case <-time.After(15 * time.Second):
		cancel()
		pr.Close()
		return nil, fmt.Errorf("%s: no pcap header within 15s%s", desc, s.said())
	}
}

func (s *Stream) said() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if msg := bytes.TrimSpace(s.stderr.Bytes()); len(msg) > 0 {
		return ": " + strings.Join(strings.Fields(strings.ReplaceAll(string(msg), "\n", "; ")), " ")
	}
	return ""
}

// LinkType implements Source.
func (s *Stream) LinkType() layers.LinkType { return s.r.LinkType() }

// ReadPacketData implements Source.
func (s *Stream) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	data, ci, err := s.r.ReadPacketData()
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%s: %w%s", s.desc, err, s.said())
	}
	return data, ci, err
}

// Close implements Source: the command is stopped.
func (s *Stream) Close() error {
	s.cancel()
	s.pr.Close()
	<-s.done
	return nil
}

// Describe implements Source.
func (s *Stream) Describe() string { return s.desc }

// TcpdumpArgs is the tcpdump command line that streams the lab's ports as
// pcap on standard output: each packet as soon as it is seen
// (--immediate-mode: no kernel buffer timeout; -U: no output buffering),
// with a 64 MiB kernel buffer (-B): with whole-packet snapshots the ring's
// frames are as large as the snapshot, and the default 2 MiB (or even 16 MiB
// on "any") holds too few of them and drops bursts.
// iface "any" captures every interface.
func TcpdumpArgs(iface string, ports []int) []string {
	argv := []string{"tcpdump", "-i", iface, "--immediate-mode", "-B", "65536", "-U", "-n", "-s", "0", "-w", "-"}
	var expr []string
	for i, p := range ports {
		if i > 0 {
			expr = append(expr, "or")
		}
		expr = append(expr, "tcp", "port", fmt.Sprint(p))
	}
	return append(argv, expr...)
}
