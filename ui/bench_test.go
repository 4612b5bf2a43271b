package ui

import (
	"net/netip"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/gopacket/gopacket/layers"

	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
)

// fill decodes n records (WS text frames and their packets) into a store.
func fill(b testing.TB, n int) *wire.Store {
	s := wire.NewStore(n)
	d, err := wire.NewDecoder(layers.LinkTypeEthernet, wire.SeedPorts(map[uint16]protocol.Protocol{3002: protocol.WS}), nil, s)
	if err != nil {
		b.Fatal(err)
	}
	flow := wire.Flow{Client: netip.MustParseAddrPort("127.0.0.1:51000"), Server: netip.MustParseAddrPort("127.0.0.1:3002")}
	d.Stream(flow, wire.AppRef{Name: "ws", Protocol: protocol.WS}, wire.ClientToServer, []byte("GET /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: a2V5\r\n\r\n"), t0)
	d.Stream(flow, wire.AppRef{Name: "ws", Protocol: protocol.WS}, wire.ServerToClient, []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"), t0)
	frame := append([]byte{0x81, 20}, "twenty bytes of text"...)
	for i := 0; s.Len(string(protocol.WS)) < n; i++ {
		d.Stream(flow, wire.AppRef{Name: "ws", Protocol: protocol.WS}, wire.ServerToClient, frame, t0.Add(time.Duration(i)*time.Microsecond))
	}
	return s
}

// frame is one screen refresh: fetch the visible window, apply it, render.
func frame(m Model, store *wire.Store) Model {
	next, _ := m.Update(m.packets.fetch(store, nil)())
	m = next.(Model)
	_ = m.View()
	return m
}

// BenchmarkView renders the explorer with 1 k and with 1 M records
// buffered, without a filter and with one, and reports both frame times
// and their ratio (target ≤ 1.2 both: only the rows on screen are fetched
// and formatted, and a filter matches each record once, when it arrives).
// The two are measured side by side, a 1 k frame then a 1 M frame in each
// iteration, with both stores alive throughout: on a shared machine, runs
// measured one after the other differ by more than the frames do, and a
// frame's garbage costs a GC cycle whose marking follows the live heap —
// the 1 M ring's, held by the process, not walked by the frame — so both
// pay it alike here.
func BenchmarkView(b *testing.B) {
	small, big := fill(b, 1_000), fill(b, 1_000_000)
	runtime.GC() // the filling's garbage is not the view's cost
	for _, f := range []struct{ name, filter string }{{"plain", ""}, {"filter", "s>c and message"}} {
		b.Run(f.name, func(b *testing.B) {
			open := func(store *wire.Store) Model {
				m, _ := newModel(&testing.T{})
				m = send(&testing.T{}, m, tea.WindowSizeMsg{Width: 160, Height: 48}, upEvents(), keys("3")[0])
				m.packets.filter = f.filter
				m = frame(m, store) // the first frame with a filter matches the whole ring
				if f.filter != "" {
					match, _ := compileFilter(f.filter)
					if got, want := m.packets.lists[2].total, len(store.Matching("ws", match)); got != want || want == 0 {
						b.Fatalf("the filter kept %d records, a scan %d", got, want)
					}
				}
				return m
			}
			ms, mb := open(small), open(big)
			runtime.GC()
			var ts, tb time.Duration
			b.ResetTimer()
			for range b.N {
				t := time.Now()
				ms = frame(ms, small)
				ts += time.Since(t)
				t = time.Now()
				mb = frame(mb, big)
				tb += time.Since(t)
			}
			b.ReportMetric(float64(ts.Microseconds())/1000/float64(b.N), "1k-ms/frame")
			b.ReportMetric(float64(tb.Microseconds())/1000/float64(b.N), "1M-ms/frame")
			b.ReportMetric(float64(tb)/float64(ts), "1M/1k")
		})
	}
}

// BenchmarkFloodFrames refreshes the explorer while a decoder floods the
// store as fast as it can — in batches, one lock of the store per 256
// records, as live capture decodes — pressing keys between frames as a
// user would; it reports the p99 frame time (target ≤ 16 ms) and, as the
// reference, the p99 of the same frames and keys with the flood paused,
// alternating every 50 frames.
func BenchmarkFloodFrames(b *testing.B) {
	store := wire.NewStore(0)
	d, _ := wire.NewDecoder(layers.LinkTypeEthernet, wire.SeedPorts(map[uint16]protocol.Protocol{3002: protocol.WS}), nil, store)
	flow := wire.Flow{Client: netip.MustParseAddrPort("127.0.0.1:51000"), Server: netip.MustParseAddrPort("127.0.0.1:3002")}
	d.Stream(flow, wire.AppRef{Name: "ws", Protocol: protocol.WS}, wire.ClientToServer, []byte("GET /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: a2V5\r\n\r\n"), t0)
	d.Stream(flow, wire.AppRef{Name: "ws", Protocol: protocol.WS}, wire.ServerToClient, []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"), t0)
	var stop, flooding atomic.Bool
	var added, floodNanos atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		frame := append([]byte{0x81, 20}, "twenty bytes of text"...)
		for !stop.Load() {
			if !flooding.Load() {
				time.Sleep(100 * time.Microsecond)
				continue
			}
			start := time.Now()
			d.BeginBatch()
			for range 256 {
				d.Stream(flow, wire.AppRef{Name: "ws", Protocol: protocol.WS}, wire.ServerToClient, frame, time.Now())
			}
			d.EndBatch()
			added.Add(256)
			floodNanos.Add(int64(time.Since(start)))
		}
	}()
	m, _ := newModel(&testing.T{})
	m = send(&testing.T{}, m, tea.WindowSizeMsg{Width: 160, Height: 48}, upEvents(), keys("3")[0])
	presses := []tea.Msg{tea.KeyMsg{Type: tea.KeyUp}, tea.KeyMsg{Type: tea.KeyDown}, keys("G")[0], keys("1")[0], keys("3")[0]}
	flood, quiet := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		on := i/50%2 == 1
		flooding.Store(on)
		start := time.Now()
		next, _ := m.Update(presses[i%len(presses)])
		m = frame(next.(Model), store)
		if on {
			flood = append(flood, time.Since(start))
		} else {
			quiet = append(quiet, time.Since(start))
		}
	}
	b.StopTimer()
	stop.Store(true)
	<-done
	p99 := func(times []time.Duration) float64 {
		if len(times) == 0 {
			return 0
		}
		slices.Sort(times)
		return float64(times[min(len(times)-1, len(times)*99/100)].Microseconds()) / 1000
	}
	b.ReportMetric(p99(flood), "p99-frame-ms")
	b.ReportMetric(float64(added.Load())/time.Duration(floodNanos.Load()).Seconds(), "records/s")
	b.ReportMetric(p99(quiet), "ref-p99-frame-ms")
}
