package capture

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gorilla/websocket"

	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
)

// flood sends n ws messages as fast as the echo comes back in a pipeline
// (a reader goroutine drains the echoes) and returns how long it took.
func flood(b *testing.B, addr string, n int) time.Duration {
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/echo", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	msg := []byte("flood message of about forty bytes.....")
	start := time.Now()
	for range n {
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	return time.Since(start)
}

// BenchmarkLiveFlood floods the ws app on lo with capture on ("captured")
// and off ("reference"), in the same run. It reports the messages per
// second of each, the packets the capture dropped (kernel and queue) and the
// decode lag: how long after the last echo the decoder had caught up.
func BenchmarkLiveFlood(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("live capture needs root")
	}
	targets, ports := apps(b, nil)
	addr := targets[protocol.WS].Addr
	const n = 20000
	b.Run("reference", func(b *testing.B) {
		var total time.Duration
		for range b.N {
			total += flood(b, addr, n)
		}
		b.ReportMetric(float64(n*b.N)/total.Seconds(), "msgs/s")
	})
	b.Run("captured", func(b *testing.B) {
		var total, lag time.Duration
		var drops, packets, frames uint64
		for range b.N {
			src, err := OpenLive("lo", portList(ports))
			if err != nil {
				b.Fatal(err)
			}
			c, err := Start(src, ModeLive, Options{Ports: wire.SeedPorts(ports), Keys: wire.NewKeyLog(nil)})
			if err != nil {
				b.Fatal(err)
			}
			total += flood(b, addr, n)
			end := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := c.Sync(ctx, 20*time.Millisecond); err != nil {
				b.Fatal(err)
			}
			cancel()
			lag += time.Since(end) - 20*time.Millisecond
			c.Stop()
			st := c.Stats()
			drops += st.Drops()
			packets += st.Packets
			frames += c.Store().Counters(string(protocol.WS)).WSFrames
			c.Close()
		}
		b.ReportMetric(float64(n*b.N)/total.Seconds(), "msgs/s")
		b.ReportMetric(float64(drops)/float64(b.N), "drops/op")
		b.ReportMetric(float64(packets)/float64(b.N), "packets/op")
		b.ReportMetric(float64(lag.Milliseconds())/float64(b.N), "lag-ms/op")
		b.ReportMetric(float64(frames)/float64(b.N), "frames/op")
	})
}

// decodeInput is the capture BenchmarkDecode decodes: $PROTOLAB_DECODE_PCAP,
// or 100 000 packets bench/pcapgen writes (all four protocols, https and
// wss with their keys), read into memory once.
func decodeInput(b *testing.B) (pkts [][]byte, cis []gopacket.CaptureInfo, keys *wire.KeyLog) {
	path := os.Getenv("PROTOLAB_DECODE_PCAP")
	if path == "" {
		path = filepath.Join(b.TempDir(), "decode.pcapng")
		out, err := exec.Command("go", "run", "../../bench/pcapgen", "-packets", "100000", "-o", path).CombinedOutput()
		if err != nil {
			b.Fatalf("bench/pcapgen: %v: %s", err, out)
		}
	}
	keys = wire.NewKeyLog(nil)
	f, err := OpenFile(path, keys)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for {
		data, ci, err := f.ReadPacketData()
		if err != nil {
			break
		}
		pkts, cis = append(pkts, data), append(cis, ci)
	}
	return pkts, cis, keys
}

// BenchmarkDecode decodes a generated capture of the four seed protocols
// (TLS decrypted) packet by packet, from memory, into a fresh store: the
// decoder's own cost per packet (ns/packet, allocs/packet).
func BenchmarkDecode(b *testing.B) {
	pkts, cis, keys := decodeInput(b)
	ports := wire.SeedPorts(map[uint16]protocol.Protocol{3000: protocol.HTTP, 3001: protocol.HTTPS, 3002: protocol.WS, 3003: protocol.WSS})
	b.ReportAllocs()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	for range b.N {
		d, err := wire.NewDecoder(layers.LinkTypeEthernet, ports, keys, wire.NewStore(0))
		if err != nil {
			b.Fatal(err)
		}
		for i, p := range pkts {
			_ = d.Packet(p, cis[i])
		}
		d.Flush(time.Now())
	}
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	n := float64(b.N * len(pkts))
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/packet")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/n, "allocs/packet")
}

// floodConns floods the ws app on conns connections at once, n messages
// each (as flood does), and returns how long the slowest took.
func floodConns(addr string, conns, n int) (time.Duration, error) {
	dialed := make([]*websocket.Conn, conns)
	for i := range dialed {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/echo", nil)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		dialed[i] = c
	}
	msg := []byte("flood message of about forty bytes.....")
	errs := make(chan error, 2*conns)
	start := time.Now()
	for _, c := range dialed {
		go func() {
			for range n {
				if _, _, err := c.ReadMessage(); err != nil {
					errs <- fmt.Errorf("reading an echo: %w", err)
					return
				}
			}
			errs <- nil
		}()
		go func() {
			for range n {
				if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
					errs <- fmt.Errorf("sending: %w", err)
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range 2 * conns {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return time.Since(start), first
}

// BenchmarkFlood8 floods the ws app with 8 connections at once, each
// sending 20 000 messages without waiting for their echoes (a reader
// drains them), with live capture on lo and, as the reference, without,
// alternately in each iteration. It reports both rates, the capture's
// drops (kernel and queue), the frames it decoded against those sent and
// echoed, and the decode lag after the last echo.
func BenchmarkFlood8(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("live capture needs root")
	}
	const conns, n = 8, 20000
	targets, ports := apps(b, nil)
	addr := targets[protocol.WS].Addr
	var ref, capt, lag time.Duration
	var kdrops, qdrops, frames, packets, gaps uint64
	for i := range b.N {
		for _, captured := range [][]bool{{false, true}, {true, false}}[i%2] {
			if !captured {
				d, err := floodConns(addr, conns, n)
				if err != nil {
					b.Fatal(err)
				}
				ref += d
				continue
			}
			src, err := OpenLive("lo", portList(ports))
			if err != nil {
				b.Fatal(err)
			}
			c, err := Start(src, ModeLive, Options{Ports: wire.SeedPorts(ports), Keys: wire.NewKeyLog(nil), SpoolDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			d, err := floodConns(addr, conns, n)
			if err != nil {
				b.Fatal(err)
			}
			capt += d
			end := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			if err := c.Sync(ctx, 20*time.Millisecond); err != nil {
				b.Fatal(err)
			}
			cancel()
			lag += time.Since(end) - 20*time.Millisecond
			c.Stop()
			st := c.Stats()
			kdrops += st.KernelDrops
			qdrops += st.QueueDrops
			packets += st.Packets
			// The spool keeps every packet for export (its buffer is
			// written out before an export reads it).
			if exported, err := c.Export(filepath.Join(b.TempDir(), "flood.pcapng")); err != nil || uint64(exported) != st.Packets {
				b.Fatalf("exported %d of %d packets: %v", exported, st.Packets, err)
			}
			cn := c.Store().Counters(string(protocol.WS))
			frames += cn.WSFrames
			gaps += cn.Gaps
			if os.Getenv("PROTOLAB_FLOOD_DEBUG") != "" {
				b.Logf("capture %+v; ws %+v", st, cn)
			}
			c.Close()
		}
	}
	per := func(v uint64) float64 { return float64(v) / float64(b.N) }
	msgs := float64(conns * n * b.N)
	b.ReportMetric(msgs/ref.Seconds(), "ref-msgs/s")
	b.ReportMetric(msgs/capt.Seconds(), "cap-msgs/s")
	b.ReportMetric(ref.Seconds()/capt.Seconds(), "cap/ref")
	b.ReportMetric(per(kdrops), "kernel-drops/op")
	b.ReportMetric(per(qdrops), "queue-drops/op")
	b.ReportMetric(per(packets), "packets/op")
	b.ReportMetric(per(frames)/float64(2*conns*n), "frames-decoded/sent")
	b.ReportMetric(per(gaps), "gaps/op")
	b.ReportMetric(float64(lag.Milliseconds())/float64(b.N), "lag-ms/op")
	b.ReportMetric(0, "ns/op")
}
