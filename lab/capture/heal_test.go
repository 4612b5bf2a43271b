package capture

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
)

// TestGapsHealAgainstTshark: a real ws and wss exchange is captured, then
// written again with chosen packets left out (1 in every `every` that
// carries data, each way, past the upgrade) — what a capture that dropped
// packets holds. Decoding the damaged file, protolab must decode at least
// the WebSocket frames tshark does on each port, lose no more than the
// frames the dropped packets carried and their neighbours, and show each
// loss as a gap.
func TestGapsHealAgainstTshark(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "tshark")
	const rounds, every = 200, 40
	keys := wire.NewKeyLog(nil)
	c, ports := probedCapture(t, keys, rounds)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole.pcapng")
	if _, err := c.Export(whole); err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(dir, "damaged.pcapng")
	dropped := dropPackets(t, whole, damaged, ports, every)

	r, err := OpenFile(damaged, keys)
	if err != nil {
		t.Fatal(err)
	}
	replay, err := Start(r, ModeFile, Options{Ports: wire.SeedPorts(ports), Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	<-replay.Done()
	replay.Stop()

	keyFile := filepath.Join(dir, "keys")
	if err := os.WriteFile(keyFile, keys.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	theirs := tsharkFrames(t, damaged, keyFile, ports)
	for _, p := range []protocol.Protocol{protocol.WS, protocol.WSS} {
		all := c.Store().Counters(string(p)).WSFrames
		got := replay.Store().Counters(string(p))
		port := portsOf(ports, p)[0]
		lost := dropped[port]
		t.Logf("%s: %d frames captured whole; %d packets dropped: protolab decodes %d frames (%d gaps), tshark %d",
			p, all, lost, got.WSFrames, got.Gaps, theirs[port])
		if lost == 0 {
			t.Fatalf("%s: no packet was dropped", p)
		}
		if got.WSFrames < uint64(theirs[port]) {
			t.Errorf("%s: protolab decodes %d frames of the damaged capture, tshark %d", p, got.WSFrames, theirs[port])
		}
		// A dropped packet carries one frame here (one message per
		// write); with its neighbour that one gap may cost, 3 per loss
		// is the most a healing decoder may lose.
		if got.WSFrames+uint64(3*lost) < all {
			t.Errorf("%s: %d frames of %d decoded with %d packets dropped: the flows did not heal", p, got.WSFrames, all, lost)
		}
		if got.Gaps == 0 {
			t.Errorf("%s: %d packets dropped and no gap shown", p, lost)
		}
	}
}

// dropPackets copies the capture in to out (pcapng, no secrets block: the
// key log goes its own way) leaving out one in every `every` packets that
// carry TCP data to or from each of the ws and wss ports, counting from
// the 10th (so the upgrade stays whole), and returns how many it left out
// per port.
func dropPackets(t *testing.T, in, out string, ports map[uint16]protocol.Protocol, every int) map[uint16]int {
	t.Helper()
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	o, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	w, err := pcapgo.NewNgWriter(o, rd.LinkType())
	if err != nil {
		t.Fatal(err)
	}
	watch := map[uint16]bool{}
	for _, p := range []protocol.Protocol{protocol.WS, protocol.WSS} {
		watch[portsOf(ports, p)[0]] = true
	}
	seen, dropped := map[uint16]int{}, map[uint16]int{}
	for {
		data, ci, err := rd.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pkt := gopacket.NewPacket(data, rd.LinkType(), gopacket.NoCopy)
		if tcp, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP); ok && len(tcp.Payload) > 0 {
			port := uint16(tcp.DstPort)
			if !watch[port] {
				port = uint16(tcp.SrcPort)
			}
			if watch[port] {
				seen[port]++
				if k := seen[port]; k >= 10 && k%every == 0 {
					dropped[port]++
					continue
				}
			}
		}
		ci.InterfaceIndex = 0
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return dropped
}

// tsharkFrames counts the WebSocket frames tshark decodes on each port
// (wss decrypted with the key log file).
func tsharkFrames(t *testing.T, file, keyFile string, ports map[uint16]protocol.Protocol) map[uint16]int {
	t.Helper()
	args := []string{"-r", file, "-n", "-o", "tls.keylog_file:" + keyFile}
	for port, p := range ports {
		as := "http"
		if p.Secure() {
			as = "tls"
		}
		args = append(args, "-d", fmt.Sprintf("tcp.port==%d,%s", port, as))
	}
	args = append(args, "-Y", "websocket", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
		"-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "websocket.opcode")
	outb := testenv.Tshark(t, args...)
	counts := map[uint16]int{}
	for _, line := range strings.Split(string(outb), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 || f[2] == "" {
			continue
		}
		for _, s := range f[:2] {
			if p, err := strconv.ParseUint(s, 10, 16); err == nil {
				if _, ok := ports[uint16(p)]; ok {
					counts[uint16(p)] += len(strings.Split(f[2], ","))
				}
			}
		}
	}
	return counts
}
