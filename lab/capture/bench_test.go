package capture

import (
	"context"
	"os"
	"testing"
	"time"

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
