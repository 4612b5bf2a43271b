package capture

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Merged reads several sources as one capture: a lab whose packets cross
// more than one interface (the published ports on lo, the containers'
// inside legs on their network's bridge). Each packet's CaptureInfo says
// which source it came from (InterfaceIndex: its index in the list). The
// sources must return fresh buffers (Live does) and share a link type.
type Merged struct {
	srcs []Source
	ch   chan mergedPacket
	done chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

type mergedPacket struct {
	data []byte
	ci   gopacket.CaptureInfo
	err  error
}

// Merge starts reading every source; the first error any of them returns
// (an interface gone) is the merged capture's.
func Merge(srcs ...Source) (*Merged, error) {
	if len(srcs) == 0 {
		return nil, fmt.Errorf("merging captures: no source")
	}
	for _, s := range srcs[1:] {
		if s.LinkType() != srcs[0].LinkType() {
			return nil, fmt.Errorf("merging captures: %s gives %s frames, %s gives %s", srcs[0].Describe(), srcs[0].LinkType(), s.Describe(), s.LinkType())
		}
	}
	m := &Merged{srcs: srcs, ch: make(chan mergedPacket, 256), done: make(chan struct{})}
	for i, s := range srcs {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			for {
				data, ci, err := s.ReadPacketData()
				ci.InterfaceIndex = i
				select {
				case m.ch <- mergedPacket{data, ci, err}:
				case <-m.done:
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
	return m, nil
}

// LinkType implements Source.
func (m *Merged) LinkType() layers.LinkType { return m.srcs[0].LinkType() }

// ReadPacketData implements Source: the next packet of any source, io.EOF
// once closed.
func (m *Merged) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	select {
	case <-m.done: // closed: what is still queued is not read
		return nil, gopacket.CaptureInfo{}, io.EOF
	default:
	}
	select {
	case p := <-m.ch:
		return p.data, p.ci, p.err
	case <-m.done:
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
}

// Close implements Source: every source is closed.
func (m *Merged) Close() error {
	m.once.Do(func() {
		close(m.done)
		for _, s := range m.srcs {
			_ = s.Close()
		}
	})
	m.wg.Wait()
	return nil
}

// Describe implements Source.
func (m *Merged) Describe() string {
	names := make([]string, len(m.srcs))
	for i, s := range m.srcs {
		names[i] = s.Describe()
	}
	return strings.Join(names, " + ")
}

// KernelDrops is the sources' drops together.
func (m *Merged) KernelDrops() uint64 {
	var n uint64
	for _, s := range m.srcs {
		if d, ok := s.(dropCounter); ok {
			n += d.KernelDrops()
		}
	}
	return n
}

// Excluding passes on src's packets but those to or from addrs: on a
// container network's bridge, the engine's proxy relays each published
// port's connections from the gateway address, a copy of what the capture
// on lo already holds.
type Excluding struct {
	Source
	addrs []netip.Addr
}

// Exclude wraps src (Ethernet frames) so that it leaves out the IP packets
// to or from addrs.
func Exclude(src Source, addrs ...netip.Addr) *Excluding {
	return &Excluding{Source: src, addrs: addrs}
}

// ReadPacketData implements Source.
func (e *Excluding) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	for {
		data, ci, err := e.Source.ReadPacketData()
		if err != nil || !e.excluded(data) {
			return data, ci, err
		}
	}
}

// KernelDrops passes on the source's.
func (e *Excluding) KernelDrops() uint64 {
	if d, ok := e.Source.(dropCounter); ok {
		return d.KernelDrops()
	}
	return 0
}

// excluded reads an Ethernet frame's IP addresses (no VLAN tags on a
// bridge the engine made).
func (e *Excluding) excluded(frame []byte) bool {
	if len(frame) < 14 {
		return false
	}
	var src, dst netip.Addr
	switch binary.BigEndian.Uint16(frame[12:14]) {
	case 0x0800:
		if len(frame) < 14+20 {
			return false
		}
		src, dst = netip.AddrFrom4([4]byte(frame[26:30])), netip.AddrFrom4([4]byte(frame[30:34]))
	case 0x86dd:
		if len(frame) < 14+40 {
			return false
		}
		src, dst = netip.AddrFrom16([16]byte(frame[22:38])), netip.AddrFrom16([16]byte(frame[38:54]))
	default:
		return false
	}
	for _, a := range e.addrs {
		if a == src || a == dst {
			return true
		}
	}
	return false
}
