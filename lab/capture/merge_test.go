package capture_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab/capture"
)

// TestMergeReadsEverySource: two live captures of lo, each for the port of
// one listener, merged: a connection to each shows up, each packet marked
// with the source it came from, and Close ends the reader with io.EOF.
func TestMergeReadsEverySource(t *testing.T) {
	testenv.NeedRoot(t)
	var ports []int
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	var srcs []capture.Source
	for _, p := range ports {
		s, err := capture.OpenLive("lo", []int{p})
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, s)
	}
	m, err := capture.Merge(srcs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", itoa(p)))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	seen := map[int]map[int]bool{} // source → server port
	deadline := time.Now().Add(5 * time.Second)
	for len(seen[0]) == 0 || len(seen[1]) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after 5s the merged capture has %v (source → port)", seen)
		}
		data, ci, err := m.ReadPacketData()
		if err != nil {
			t.Fatal(err)
		}
		pkt := gopacket.NewPacket(data, m.LinkType(), gopacket.Default)
		tcp, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !ok {
			continue
		}
		if seen[ci.InterfaceIndex] == nil {
			seen[ci.InterfaceIndex] = map[int]bool{}
		}
		for _, p := range []int{int(tcp.SrcPort), int(tcp.DstPort)} {
			if p == ports[0] || p == ports[1] {
				seen[ci.InterfaceIndex][p] = true
			}
		}
		if ci.InterfaceIndex != 0 && ci.InterfaceIndex != 1 {
			t.Fatalf("a packet from source %d", ci.InterfaceIndex)
		}
	}
	for i, p := range ports {
		if !seen[i][p] || len(seen[i]) != 1 {
			t.Errorf("source %d (port %d) gave ports %v", i, p, seen[i])
		}
	}
	if got := m.Describe(); got != "AF_PACKET on lo + AF_PACKET on lo" {
		t.Errorf("Describe = %q", got)
	}
	m.Close()
	if _, _, err := m.ReadPacketData(); !errors.Is(err, io.EOF) {
		t.Errorf("after Close: %v, want io.EOF", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// frames is a source of fixed Ethernet frames.
type frames struct{ list [][]byte }

func (f *frames) LinkType() layers.LinkType { return layers.LinkTypeEthernet }
func (f *frames) Close() error              { return nil }
func (f *frames) Describe() string          { return "frames" }
func (f *frames) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	if len(f.list) == 0 {
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	d := f.list[0]
	f.list = f.list[1:]
	return d, gopacket.CaptureInfo{CaptureLength: len(d), Length: len(d)}, nil
}

// ipFrame is an Ethernet frame holding an IP header from src to dst (the
// rest zero).
func ipFrame(src, dst netip.Addr) []byte {
	if src.Is4() {
		b := make([]byte, 14+20)
		binary.BigEndian.PutUint16(b[12:], 0x0800)
		copy(b[26:30], src.AsSlice())
		copy(b[30:34], dst.AsSlice())
		return b
	}
	b := make([]byte, 14+40)
	binary.BigEndian.PutUint16(b[12:], 0x86dd)
	copy(b[22:38], src.AsSlice())
	copy(b[38:54], dst.AsSlice())
	return b
}

// TestExcludeLeavesOutTheGateway: the frames to or from the excluded
// addresses are left out, every other one (short and non-IP ones too)
// passes, in order.
func TestExcludeLeavesOutTheGateway(t *testing.T) {
	gw, gw6 := netip.MustParseAddr("172.18.0.1"), netip.MustParseAddr("fd00::1")
	a, b := netip.MustParseAddr("172.18.0.2"), netip.MustParseAddr("172.18.0.3")
	a6 := netip.MustParseAddr("fd00::2")
	arp := make([]byte, 42)
	binary.BigEndian.PutUint16(arp[12:], 0x0806)
	in := [][]byte{ipFrame(a, b), ipFrame(gw, a), ipFrame(b, gw), arp, {1, 2, 3}, ipFrame(a6, gw6), ipFrame(a6, a6), ipFrame(b, a)}
	want := []int{0, 3, 4, 6, 7}
	src := capture.Exclude(&frames{list: in}, gw, gw6)
	var got []int
	for {
		d, _, err := src.ReadPacketData()
		if err != nil {
			break
		}
		for i, f := range in {
			if &f[0] == &d[0] {
				got = append(got, i)
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("passed frames %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("passed frames %v, want %v", got, want)
		}
	}
}
