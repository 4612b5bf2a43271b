package capture

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gopacket/gopacket"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ring is an AF_PACKET TPACKET_V3 receive ring. The kernel writes packets
// into blocks of a mapping it shares with this process and hands a block
// over (TP_STATUS_USER) when it is full or after its timeout; the block is
// this process's until it gives it back (TP_STATUS_KERNEL). So a block's
// packets can be decoded where they lie, with no copy, and the block is
// given back once they are: see Live.EachBlock.
//
// Its capacity is in blocks as much as in bytes: a block is handed over at
// its timeout however little it holds, so a reader that stalls for longer
// than blocks × timeout loses packets even when the ring's bytes are mostly
// free (32 blocks of 1 MiB with a 10 ms timeout held 320 ms of a flood of
// large loopback segments; see docs/benchmarks.md).
type ring struct {
	fd, wake  int // the packet socket; an eventfd that interrupts a wait
	mem       []byte
	blockSize int
	blocks    int
	next      int // the block the kernel hands over next

	// the block being read (nil: none), its packets left and the offset
	// of the next one
	cur  []byte
	left int
	off  int

	drops atomic.Uint64 // PACKET_STATISTICS resets at each read: the sum
}

// Offsets in struct tpacket_block_desc (the block header) and struct
// tpacket3_hdr (each packet's), from linux/if_packet.h.
const (
	blockStatus      = 8  // hdr.bh1.block_status
	blockNumPkts     = 12 // hdr.bh1.num_pkts
	blockFirstPacket = 16 // hdr.bh1.offset_to_first_pkt
	pktNextOffset    = 0  // tp_next_offset
	pktSec           = 4  // tp_sec
	pktNsec          = 8  // tp_nsec
	pktSnaplen       = 12 // tp_snaplen
	pktLen           = 16 // tp_len
	pktMac           = 24 // tp_mac (u16)
)

// errPoll is the socket reporting an error: its interface went down or
// away.
var errPoll = errors.New("the packet socket reports an error")

// openRing opens a ring of blocks × blockSize bytes on the interface
// ifindex. The filter is attached before the socket is bound, so no packet
// it would refuse ever reaches the ring.
func openRing(ifindex int, filter []bpf.RawInstruction, promisc bool, blockSize, blocks int, timeout time.Duration) (_ *ring, err error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0) // protocol 0: nothing until bound
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	r := &ring{fd: fd, wake: -1, blockSize: blockSize, blocks: blocks}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	prog := make([]unix.SockFilter, len(filter))
	for i, ins := range filter {
		prog[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	if len(prog) > 0 {
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}); err != nil {
			return nil, fmt.Errorf("attaching the BPF filter: %w", err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return nil, fmt.Errorf("TPACKET_V3: %w", err)
	}
	const frameSize = 2048 // V3 packs packets of any size into blocks; the kernel only checks the arithmetic
	req := unix.TpacketReq3{
		Block_size: uint32(blockSize), Block_nr: uint32(blocks),
		Frame_size: frameSize, Frame_nr: uint32(blockSize / frameSize * blocks),
		Retire_blk_tov: uint32(timeout / time.Millisecond),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("setting up the ring (%d blocks of %d bytes): %w", blocks, blockSize, err)
	}
	if r.mem, err = unix.Mmap(fd, 0, blockSize*blocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		return nil, fmt.Errorf("mapping the ring: %w", err)
	}
	if promisc {
		mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return nil, fmt.Errorf("promiscuous mode: %w", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return nil, fmt.Errorf("binding to the interface: %w", err)
	}
	if r.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	return r, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (r *ring) u32(b []byte, off int) uint32 { return *(*uint32)(unsafe.Pointer(&b[off])) }

// status reads a block's status as the kernel publishes it.
func (r *ring) status(b []byte) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&b[blockStatus])))
}

// await makes the next block the current one, waiting for it at most
// timeout; false when none came (or Interrupt was called).
func (r *ring) await(timeout time.Duration) (bool, error) {
	b := r.mem[r.next*r.blockSize : (r.next+1)*r.blockSize]
	for r.status(b)&unix.TP_STATUS_USER == 0 {
		fds := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN}, {Fd: int32(r.wake), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(timeout/time.Millisecond))
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return false, fmt.Errorf("poll: %w", err)
		case fds[0].Revents&unix.POLLERR != 0:
			return false, errPoll
		case n == 0:
			return false, nil
		case fds[1].Revents&unix.POLLIN != 0:
			var buf [8]byte
			_, _ = unix.Read(r.wake, buf[:])
			return r.status(b)&unix.TP_STATUS_USER != 0 && r.take(b), nil
		}
	}
	return r.take(b), nil
}

// take makes b, handed over by the kernel, the current block.
func (r *ring) take(b []byte) bool {
	r.cur, r.left, r.off = b, int(r.u32(b, blockNumPkts)), int(r.u32(b, blockFirstPacket))
	r.next = (r.next + 1) % r.blocks
	if r.left == 0 {
		r.release()
		return false
	}
	return true
}

// packet returns the current block's next packet, where it lies.
func (r *ring) packet() ([]byte, gopacket.CaptureInfo) {
	b, off := r.cur, r.off
	snap, mac := int(r.u32(b, off+pktSnaplen)), int(*(*uint16)(unsafe.Pointer(&b[off+pktMac])))
	ci := gopacket.CaptureInfo{
		Timestamp:     time.Unix(int64(r.u32(b, off+pktSec)), int64(r.u32(b, off+pktNsec))),
		CaptureLength: snap, Length: int(r.u32(b, off+pktLen)),
	}
	data := b[off+mac : off+mac+snap : off+mac+snap]
	r.off += int(r.u32(b, off+pktNextOffset))
	r.left--
	return data, ci
}

// release gives the current block back to the kernel.
func (r *ring) release() {
	if r.cur != nil {
		atomic.StoreUint32((*uint32)(unsafe.Pointer(&r.cur[blockStatus])), unix.TP_STATUS_KERNEL)
		r.cur, r.left = nil, 0
	}
}

// interrupt ends a wait at once (from any goroutine).
func (r *ring) interrupt() {
	one := [8]byte{1}
	_, _ = unix.Write(r.wake, one[:])
}

// kernelDrops is how many packets the kernel dropped for want of a free
// block (safe from any goroutine while the ring is open).
func (r *ring) kernelDrops() uint64 {
	if st, err := unix.GetsockoptTpacketStatsV3(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
		return r.drops.Add(uint64(st.Drops))
	}
	return r.drops.Load()
}

func (r *ring) close() {
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
		r.mem, r.cur = nil, nil
	}
	unix.Close(r.fd)
	if r.wake >= 0 {
		unix.Close(r.wake)
	}
}
