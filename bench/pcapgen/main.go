// Command pcapgen writes a large pcapng capture of lab traffic for the decode
// benchmarks. It runs the four lab apps in-process, records one real probe
// conversation per protocol (the bytes each side sent, and the TLS keys), and
// replays those conversations as TCP/IP packets with fresh client addresses
// until the file holds the requested number of packets. The TLS key log goes
// into a Decryption Secrets Block, so protolab and tshark can both decrypt
// https and wss.
//
//	go run ./bench/pcapgen -packets 1000000 -o /tmp/lab-1m.pcapng
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/protolab/protolab-tui/internal/labapps"
	"github.com/protolab/protolab-tui/lab/pki"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
)

func main() {
	packets := flag.Int("packets", 1_000_000, "packets to write")
	out := flag.String("o", "lab.pcapng", "output file")
	rounds := flag.Int("rounds", 20, "echo round trips in each recorded conversation")
	flag.Parse()
	if err := run(*packets, *out, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "pcapgen:", err)
		os.Exit(1)
	}
}

type chunk struct {
	dir  wire.Dir
	data []byte
}

// recorder keeps what crosses one connection, in order.
type recorder struct {
	net.Conn
	mu     *sync.Mutex
	chunks *[]chunk
}

func (r recorder) Read(b []byte) (int, error) {
	n, err := r.Conn.Read(b)
	if n > 0 {
		r.mu.Lock()
		*r.chunks = append(*r.chunks, chunk{wire.ServerToClient, append([]byte(nil), b[:n]...)})
		r.mu.Unlock()
	}
	return n, err
}

func (r recorder) Write(b []byte) (int, error) {
	n, err := r.Conn.Write(b)
	if n > 0 {
		r.mu.Lock()
		*r.chunks = append(*r.chunks, chunk{wire.ClientToServer, append([]byte(nil), b[:n]...)})
		r.mu.Unlock()
	}
	return n, err
}

// record runs one probe per protocol against in-process apps and returns
// each conversation and the TLS key log.
func record(rounds int) (map[protocol.Protocol][]chunk, []byte, error) {
	dir, err := os.MkdirTemp("", "pcapgen-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	auth, err := pki.Load(dir, nil)
	if err != nil {
		return nil, nil, err
	}
	keys := wire.NewKeyLog(nil)
	convs := map[protocol.Protocol][]chunk{}
	apps, err := labapps.Start(auth)
	if err != nil {
		return nil, nil, err
	}
	defer apps.Stop()
	for _, p := range protocol.Seed() {
		var mu sync.Mutex
		var chunks []chunk
		tg := probe.Target{Protocol: p, Addr: apps.Addrs[p], ServerName: "localhost", RootCAs: auth.Pool(), KeyLog: keys,
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var d net.Dialer
				c, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return recorder{c, &mu, &chunks}, nil
			}}
		if _, err := probe.Run(context.Background(), tg, probe.Options{Count: rounds}); err != nil {
			return nil, nil, err
		}
		mu.Lock()
		convs[p] = chunks
		mu.Unlock()
	}
	return convs, keys.Bytes(), nil
}

func run(total int, out string, rounds int) error {
	convs, secrets, err := record(rounds)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w, err := pcapgo.NewNgWriter(bw, layers.LinkTypeEthernet)
	if err != nil {
		return err
	}
	if err := w.WriteDecryptionSecretsBlock(0x544c534b, secrets); err != nil {
		return err
	}
	g := &gen{w: w, t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	flow := 0
	for g.n < total {
		p := protocol.Seed()[flow%4]
		client := net.IPv4(127, 1, byte(flow>>16), byte(flow>>8)).To4()
		cport := uint16(10000 + flow%50000)
		if err := g.conversation(client, cport, uint16(p.DefaultPort()), convs[p], total); err != nil {
			return err
		}
		flow++
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "pcapgen: %d packets in %d connections to %s\n", g.n, flow, out)
	return f.Close()
}

type gen struct {
	w   *pcapgo.NgWriter
	t   time.Time
	n   int
	buf gopacket.SerializeBuffer
}

var server = net.IPv4(127, 0, 0, 1).To4()

// packet writes one segment from (src, sp) to (dst, dp).
func (g *gen) packet(src net.IP, sp uint16, dst net.IP, dp uint16, seq, ack uint32, syn, fin, psh bool, payload []byte) error {
	if g.buf == nil {
		g.buf = gopacket.NewSerializeBuffer()
	}
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{0, 0, 0, 0, 0, 0}, DstMAC: net.HardwareAddr{0, 0, 0, 0, 0, 0}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst, Flags: layers.IPv4DontFragment}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), Seq: seq, Ack: ack, SYN: syn, FIN: fin, PSH: psh, ACK: !syn || ack != 0, Window: 512}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		return err
	}
	if err := gopacket.SerializeLayers(g.buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
		return err
	}
	data := g.buf.Bytes()
	g.t = g.t.Add(7 * time.Microsecond)
	g.n++
	return g.w.WritePacket(gopacket.CaptureInfo{Timestamp: g.t, CaptureLength: len(data), Length: len(data)}, data)
}

// conversation replays one recorded connection: handshake, every chunk as
// segments (each answered by an ACK), and the close.
func (g *gen) conversation(client net.IP, cport, sport uint16, chunks []chunk, limit int) error {
	var cseq, sseq uint32 = 1000, 5000
	steps := []func() error{
		func() error { return g.packet(client, cport, server, sport, cseq, 0, true, false, false, nil) },
		func() error { return g.packet(server, sport, client, cport, sseq, cseq+1, true, false, false, nil) },
		func() error {
			cseq++
			sseq++
			return g.packet(client, cport, server, sport, cseq, sseq, false, false, false, nil)
		},
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	const mss = 32768
	for _, c := range chunks {
		for off := 0; off < len(c.data); off += mss {
			seg := c.data[off:min(off+mss, len(c.data))]
			var err error
			if c.dir == wire.ClientToServer {
				err = g.packet(client, cport, server, sport, cseq, sseq, false, false, true, seg)
				cseq += uint32(len(seg))
				if err == nil {
					err = g.packet(server, sport, client, cport, sseq, cseq, false, false, false, nil)
				}
			} else {
				err = g.packet(server, sport, client, cport, sseq, cseq, false, false, true, seg)
				sseq += uint32(len(seg))
				if err == nil {
					err = g.packet(client, cport, server, sport, cseq, sseq, false, false, false, nil)
				}
			}
			if err != nil {
				return err
			}
		}
	}
	if err := g.packet(client, cport, server, sport, cseq, sseq, false, true, false, nil); err != nil {
		return err
	}
	if err := g.packet(server, sport, client, cport, sseq, cseq+1, false, true, false, nil); err != nil {
		return err
	}
	return g.packet(client, cport, server, sport, cseq+1, sseq+1, false, false, false, nil)
}
