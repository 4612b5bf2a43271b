package wire

import (
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/protolab/protolab-tui/protocol"
)

// A batch carries over every field of the Store it views (batch.go): a
// field added to Store must be added there too.
func TestBatchCarriesEveryStoreField(t *testing.T) {
	var names []string
	for f := range reflect.TypeFor[Store]().Fields() {
		names = append(names, f.Name)
	}
	want := []string{"mu", "size", "apps", "index", "nextID", "version", "aside"}
	if !slices.Equal(names, want) {
		t.Fatalf("Store's fields are %v, batch.go carries over %v: carry the new ones over in BeginBatch and EndBatch", names, want)
	}
}

// wsConversation is a WebSocket upgrade and n echoed frames on port 3002,
// as packets.
func wsConversation(t testing.TB, n int) [][]byte {
	var pkts [][]byte
	seq := [2]uint32{1000, 5000}
	send := func(dir Dir, payload []byte) {
		sp, dp := uint16(40000), uint16(3002)
		if dir == ServerToClient {
			sp, dp = dp, sp
		}
		pkts = append(pkts, segment(t, sp, dp, seq[dir], seq[1-dir], false, false, payload))
		seq[dir] += uint32(len(payload))
	}
	pkts = append(pkts, segment(t, 40000, 3002, 999, 0, true, false, nil), segment(t, 3002, 40000, 4999, 1000, true, false, nil))
	send(ClientToServer, []byte("GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	send(ServerToClient, []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"))
	mask := [4]byte{1, 2, 3, 4}
	for range n {
		send(ClientToServer, frame(true, 1, &mask, []byte("hello, batch")))
		send(ServerToClient, frame(true, 1, nil, []byte("hello, batch")))
	}
	return pkts
}

// Records and counters are the same whether packets are decoded one by one
// or in batches, and a front end reading while a batch runs waits for it
// (run with -race).
func TestBatchDecodesAsOneByOne(t *testing.T) {
	pkts := wsConversation(t, 300)
	ports := SeedPorts(map[uint16]protocol.Protocol{3002: protocol.WS})
	decode := func(batch int) *Store {
		s := NewStore(10000)
		d, err := NewDecoder(layers.LinkTypeEthernet, ports, nil, s)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Add(1)
		go func() { // a front end
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					_ = s.Counters("ws")
					_ = s.Window("ws", 0, 20)
				}
			}
		}()
		now := time.Unix(1, 0)
		for i, p := range pkts {
			if batch > 0 && i%batch == 0 {
				d.BeginBatch()
			}
			if err := d.Packet(p, gopacket.CaptureInfo{Timestamp: now.Add(time.Duration(i))}); err != nil {
				t.Fatal(err)
			}
			if batch > 0 && (i%batch == batch-1 || i == len(pkts)-1) {
				d.EndBatch()
			}
		}
		close(stop)
		wg.Wait()
		return s
	}
	one, batched := decode(0), decode(64)
	if a, b := one.Counters("ws"), batched.Counters("ws"); a != b {
		t.Errorf("counters one by one %+v, in batches %+v", a, b)
	}
	if a, b := one.Counters("ws"), uint64(602); a.WSFrames != 600 || a.Messages != b-2 {
		t.Errorf("decoded %+v", a)
	}
	ra, rb := one.All("ws"), batched.All("ws")
	if len(ra) != len(rb) || one.Version() != batched.Version() {
		t.Fatalf("%d records (version %d) one by one, %d (version %d) in batches", len(ra), one.Version(), len(rb), batched.Version())
	}
	for i := range ra {
		if ra[i].Text() != rb[i].Text() || ra[i].ID != rb[i].ID || ra[i].Seq != rb[i].Seq {
			t.Fatalf("record %d: %q (%d) one by one, %q (%d) in batches", i, ra[i].Text(), ra[i].ID, rb[i].Text(), rb[i].ID)
		}
	}
}

func TestAppOf(t *testing.T) {
	ports := SeedPorts(map[uint16]protocol.Protocol{3002: protocol.WS, 3000: protocol.HTTP})
	d, err := NewDecoder(layers.LinkTypeEthernet, ports, nil, NewStore(10))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		pkt  []byte
		want string
	}{
		{segment(t, 40000, 3002, 1, 1, false, false, []byte("x")), "ws"},
		{segment(t, 3000, 40001, 1, 1, false, false, nil), "http"},
		{segment(t, 40000, 4000, 1, 1, false, false, nil), ""},
		{[]byte{1, 2, 3}, ""},
		{segment(t, 40000, 3002, 1, 1, false, false, nil)[:30], ""},
	} {
		if got, ok := d.AppOf(c.pkt); got != c.want || ok != (c.want != "") {
			t.Errorf("AppOf(%d bytes) = %q, %v; want %q", len(c.pkt), got, ok, c.want)
		}
	}
}
