package capture

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/protolab/protolab-tui/apps/webapp"
	"github.com/protolab/protolab-tui/internal/labapps"
	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab/pki"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
)

// apps starts the four lab apps on free loopback ports and returns a probe
// target for each (keys, when not nil, receives the TLS secrets) and the
// port map.
func apps(t testing.TB, keys *wire.KeyLog) (map[protocol.Protocol]probe.Target, map[uint16]protocol.Protocol) {
	t.Helper()
	auth, err := pki.Load(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := labapps.Start(auth)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	targets := map[protocol.Protocol]probe.Target{}
	for p, addr := range a.Addrs {
		targets[p] = probe.Target{Protocol: p, Addr: addr, ServerName: "localhost", RootCAs: auth.Pool()}
		if keys != nil {
			tg := targets[p]
			tg.KeyLog = keys
			targets[p] = tg
		}
	}
	return targets, a.Ports
}

func portList(m map[uint16]protocol.Protocol) []int {
	var out []int
	for p := range m {
		out = append(out, int(p))
	}
	return out
}

// runProbes runs every protocol's probe with n round trips.
func runProbes(t testing.TB, targets map[protocol.Protocol]probe.Target, n int) {
	t.Helper()
	for _, p := range protocol.Seed() {
		if _, err := probe.Run(context.Background(), targets[p], probe.Options{Count: n}); err != nil {
			t.Fatal(err)
		}
	}
}

// wantExact is what one probe run of n round trips puts on the wire: http
// and https: GET / and n POSTs, each answered; ws and wss: n text frames each
// way and a close frame each way.
func wantMessages(n int) uint64 { return uint64(2*n + 2) }

func TestLiveCaptureCountsExactly(t *testing.T) {
	testenv.NeedRoot(t)
	const n = 25
	c, _ := probedCapture(t, wire.NewKeyLog(nil), n)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if st.Drops() != 0 {
		t.Errorf("drops: %+v", st)
	}
	for _, p := range protocol.Seed() {
		cn := c.Store().Counters(string(p))
		t.Logf("%s: %+v", p, cn)
		if cn.Messages != wantMessages(n) {
			t.Errorf("%s: %d messages on the wire, want %d", p, cn.Messages, wantMessages(n))
		}
		if cn.Errors != 0 {
			for _, r := range c.Store().All(string(p)) {
				if r.Kind == wire.KindError {
					t.Errorf("%s: %s", p, r.Err)
				}
			}
		}
		if cn.Flows != 1 || cn.SetupFlows != 1 {
			t.Errorf("%s: %d flows, %d with an application message; want 1 and 1", p, cn.Flows, cn.SetupFlows)
		}
		if p.Secure() {
			if cn.TLSHellos != 1 || cn.Decrypted == 0 {
				t.Errorf("%s: %d ClientHellos, %d decrypted records", p, cn.TLSHellos, cn.Decrypted)
			}
		}
		if p.WebSocket() {
			if cn.HTTPReqs != 1 || cn.HTTPResps != 1 || cn.WSControl != 2 {
				t.Errorf("%s: upgrade %d/%d, %d control frames", p, cn.HTTPReqs, cn.HTTPResps, cn.WSControl)
			}
		} else if cn.HTTPReqs != n+1 || cn.HTTPResps != n+1 {
			t.Errorf("%s: %d requests, %d responses; want %d each", p, cn.HTTPReqs, cn.HTTPResps, n+1)
		}
	}
}

// tsharkCounts runs tshark once over file, with the lab's ports decoded as
// HTTP or TLS (TLS then decrypted through the file's secrets block), and
// counts per server port: packets, HTTP requests and responses, ClientHellos
// and WebSocket frames (a packet may carry several).
type tsharkTally struct{ packets, requests, responses, hellos, frames uint64 }

func tsharkCounts(t *testing.T, file string, ports map[uint16]protocol.Protocol) map[uint16]*tsharkTally {
	t.Helper()
	tshark := testenv.NeedCommand(t, "tshark")
	args := []string{"-r", file, "-n"}
	for port, p := range ports {
		as := "http"
		if p.Secure() {
			as = "tls"
		}
		args = append(args, "-d", fmt.Sprintf("tcp.port==%d,%s", port, as))
	}
	args = append(args, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
		"-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "http.request.method", "-e", "http.response.code",
		"-e", "tls.handshake.type", "-e", "websocket.opcode")
	out, err := exec.Command(tshark, args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("tshark %v: %v %s", args, err, stderr)
	}
	count := func(s string) uint64 {
		if s == "" {
			return 0
		}
		return uint64(len(strings.Split(s, ",")))
	}
	tally := map[uint16]*tsharkTally{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 2 {
			continue
		}
		for len(f) < 6 {
			f = append(f, "")
		}
		var port uint16
		for _, s := range f[:2] {
			var v uint16
			fmt.Sscan(s, &v)
			if _, ok := ports[v]; ok {
				port = v
			}
		}
		if port == 0 {
			continue
		}
		ty := tally[port]
		if ty == nil {
			ty = &tsharkTally{}
			tally[port] = ty
		}
		ty.packets++
		ty.requests += count(f[2])
		ty.responses += count(f[3])
		for _, h := range strings.Split(f[4], ",") {
			if h == "1" {
				ty.hellos++
			}
		}
		ty.frames += count(f[5])
	}
	return tally
}

// portsOf keeps the ports of one protocol.
func portsOf(ports map[uint16]protocol.Protocol, p protocol.Protocol) []uint16 {
	var out []uint16
	for port, pp := range ports {
		if pp == p {
			out = append(out, port)
		}
	}
	return out
}

// probedCapture captures lo (with a spool, for export) while every
// protocol's probe runs n round trips, and waits until all is decoded.
func probedCapture(t *testing.T, keys *wire.KeyLog, n int) (*Capture, map[uint16]protocol.Protocol) {
	t.Helper()
	targets, ports := apps(t, keys)
	src, err := OpenLive("lo", portList(ports))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(src, ModeLive, Options{Ports: wire.SeedPorts(ports), Keys: keys, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	runProbes(t, targets, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Sync(ctx, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	return c, ports
}

func TestExportIsDecryptedByTshark(t *testing.T) {
	testenv.NeedRoot(t)
	keys := wire.NewKeyLog(nil)
	c, ports := probedCapture(t, keys, 10)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "lab.pcapng")
	n, err := c.Export(file)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("export mode %v (%v), want 0600: it holds TLS keys", st.Mode().Perm(), err)
	}
	if cs := c.Stats(); uint64(n) != cs.Packets-cs.Ignored {
		t.Errorf("exported %d packets of %d captured (%d not the lab's)", n, cs.Packets, cs.Ignored)
	}
	// The secrets block comes before the first packet.
	raw, _ := os.ReadFile(file)
	dsb := bytes.Index(raw, []byte{0x0a, 0, 0, 0})
	epb := bytes.Index(raw, []byte{0x06, 0, 0, 0})
	if dsb < 0 || epb < 0 || dsb > epb {
		t.Errorf("decryption secrets block at %d, first packet block at %d", dsb, epb)
	}

	tally := tsharkCounts(t, file, ports)
	for _, p := range protocol.Seed() {
		cn := c.Store().Counters(string(p))
		for _, port := range portsOf(ports, p) {
			ty := tally[port]
			if ty == nil {
				t.Fatalf("%s: tshark saw nothing on port %d", p, port)
			}
			got := tsharkTally{cn.Packets, cn.HTTPReqs, cn.HTTPResps, cn.TLSHellos, cn.WSFrames}
			if *ty != got {
				t.Errorf("%s: tshark counts %+v, protolab %+v", p, *ty, got)

			}
		}
		if p.Secure() && cn.Decrypted == 0 {
			t.Errorf("%s: nothing decrypted", p)
		}
	}
}

// execRunner runs commands on this machine (the lab's LocalRunner does the
// same through the provider; this package cannot import lab).
type execRunner struct{}

func (execRunner) Run(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd.Run()
}

// texts lists the one-line summaries of every record of p.
func texts(s *wire.Store, p protocol.Protocol) []string {
	var out []string
	for _, r := range s.All(string(p)) {
		out = append(out, fmt.Sprintf("%s %s %s", r.Kind, r.Dir, r.Text()))
	}
	return out
}

func TestTcpdumpStreamMatchesAFPacket(t *testing.T) {
	for _, iface := range []string{"lo", "any"} { // "any" gives Linux SLL2 framing
		t.Run(iface, func(t *testing.T) { tcpdumpMatches(t, iface) })
	}
}

func tcpdumpMatches(t *testing.T, iface string) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "tcpdump")
	keys := wire.NewKeyLog(nil)
	targets, ports := apps(t, keys)
	live, err := OpenLive("lo", portList(ports))
	if err != nil {
		t.Fatal(err)
	}
	a, err := Start(live, ModeLive, Options{Ports: wire.SeedPorts(ports), Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := OpenStream(ctx, execRunner{}, TcpdumpArgs(iface, portList(ports)), "tcpdump on "+iface)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Start(stream, ModeStream, Options{Ports: wire.SeedPorts(ports), Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	time.Sleep(300 * time.Millisecond) // tcpdump has its filter in place once it wrote its header; give it a moment more
	runProbes(t, targets, 10)
	for _, c := range []*Capture{a, b} {
		if err := c.Sync(ctx, 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	if b.Stats().Packets == 0 {
		t.Fatalf("tcpdump streamed no packets: %+v", b.Stats())
	}
	for _, p := range protocol.Seed() {
		ca, cb := a.Store().Counters(string(p)), b.Store().Counters(string(p))
		if iface == "any" {
			// Linux SLL2 framing is 20 bytes where Ethernet's is 14.
			if cb.Bytes-ca.Bytes != 6*ca.Packets {
				t.Errorf("%s: %d bytes in SLL2 frames, %d in Ethernet frames, for %d packets", p, cb.Bytes, ca.Bytes, ca.Packets)
			}
			cb.Bytes = ca.Bytes
		}
		if ca != cb {
			t.Errorf("%s: AF_PACKET %+v\ntcpdump   %+v", p, ca, cb)
		}
		// The same records; their order may differ where TLS records
		// waited for their keys in one decoder and not in the other.
		if only := diffLines(texts(a.Store(), p), texts(b.Store(), p)); only != "" {
			t.Errorf("%s: records differ:\n%s", p, only)
		}
	}
}

// diffLines lists the lines that one side has more often than the other.
func diffLines(a, b []string) string {
	n := map[string]int{}
	for _, l := range a {
		n[l]++
	}
	for _, l := range b {
		n[l]--
	}
	var out []string
	for l, c := range n {
		switch {
		case c > 0:
			out = append(out, fmt.Sprintf("only AF_PACKET (%d): %s", c, l))
		case c < 0:
			out = append(out, fmt.Sprintf("only tcpdump (%d): %s", -c, l))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

func TestStreamErrorsAreClear(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := OpenStream(ctx, execRunner{}, []string{"sh", "-c", "echo 'tcpdump: lo: You don'\"'\"'t have permission' >&2; exit 1"}, "tcpdump on lo")
	if err == nil || !strings.Contains(err.Error(), "permission") || !strings.Contains(err.Error(), "tcpdump on lo") {
		t.Errorf("err = %v, want the command's complaint", err)
	}
	_, err = OpenStream(ctx, execRunner{}, []string{"sh", "-c", "echo not a pcap; sleep 1"}, "bad stream")
	if err == nil || !strings.Contains(err.Error(), "bad stream") {
		t.Errorf("err = %v", err)
	}
}

func TestReplayExportedFile(t *testing.T) {
	testenv.NeedRoot(t)
	keys := wire.NewKeyLog(nil)
	c, ports := probedCapture(t, keys, 5)
	c.Stop()
	file := filepath.Join(t.TempDir(), "lab.pcapng")
	if _, err := c.Export(file); err != nil {
		t.Fatal(err)
	}

	// A fresh key log: the secrets come from the file itself.
	replayKeys := wire.NewKeyLog(nil)
	f, err := OpenFile(file, replayKeys)
	if err != nil {
		t.Fatal(err)
	}
	if replayKeys.Len() != keys.Len() || keys.Len() == 0 {
		t.Fatalf("loaded %d secrets from the file, the capture had %d", replayKeys.Len(), keys.Len())
	}
	r, err := Start(f, ModeFile, Options{Ports: wire.SeedPorts(ports), Keys: replayKeys})
	if err != nil {
		t.Fatal(err)
	}
	<-r.Done()
	r.Stop()
	for _, p := range protocol.Seed() {
		if a, b := c.Store().Counters(string(p)), r.Store().Counters(string(p)); a != b {
			t.Errorf("%s: live %+v\nreplay %+v", p, a, b)
		}
	}
}

func TestSocketLevelCapture(t *testing.T) {
	keys := wire.NewKeyLog(nil)
	targets, ports := apps(t, keys)
	c, err := Start(nil, ModeSocket, Options{Ports: wire.SeedPorts(ports), Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 7
	for _, p := range protocol.Seed() {
		tg := targets[p]
		tg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return c.Tap(wire.AppRef{Name: string(p), Protocol: p}, conn), nil
		}
		if _, err := probe.Run(context.Background(), tg, probe.Options{Count: n}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Sync(ctx, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	c.Stop()
	for _, p := range protocol.Seed() {
		cn := c.Store().Counters(string(p))
		if cn.Messages != wantMessages(n) || cn.Errors != 0 {
			t.Errorf("%s: socket-level %+v, want %d messages", p, cn, wantMessages(n))
		}
		if p.Secure() && cn.Decrypted == 0 {
			t.Errorf("%s: socket-level capture decrypted nothing", p)
		}
		for _, r := range c.Store().All(string(p)) {
			if r.Kind == wire.KindPacket && (r.Layer != "socket" || r.TCP != (wire.TCPInfo{})) {
				t.Errorf("%s: socket-level packet record %+v claims TCP details", p, r)
				break
			}
		}
	}
	if _, err := c.Export(filepath.Join(t.TempDir(), "x.pcapng")); err == nil || !strings.Contains(err.Error(), "socket-level") {
		t.Errorf("export of a socket-level capture: %v", err)
	}
}

func TestBrokenFileIsAClearError(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{
		"empty.pcap":   nil,
		"garbage.pcap": []byte("this is not a capture file at all"),
		"ng.pcapng":    {0x0a, 0x0d, 0x0d, 0x0a, 0xff, 0xff, 0, 0, 1, 2, 3, 4},
	} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, data, 0o600)
		_, err := OpenFile(path, wire.NewKeyLog(nil))
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want an error naming the file", name, err)
		}
	}
}

// TestDecryptsEveryTLS13Suite has OpenSSL (not Go) talk to the https app
// with each TLS 1.3 cipher suite and its own key log: protolab decrypts the
// HTTP exchange with the keys arriving only after the traffic.
func TestDecryptsEveryTLS13Suite(t *testing.T) {
	testenv.NeedRoot(t)
	openssl := testenv.NeedCommand(t, "openssl")
	dir := t.TempDir()
	auth, err := pki.Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := webapp.New(webapp.Config{Protocol: protocol.HTTPS, TLS: auth.ServerTLS()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	defer srv.Shutdown(context.Background())
	port := l.Addr().(*net.TCPAddr).Port
	ports := map[uint16]protocol.Protocol{uint16(port): protocol.HTTPS}

	for _, suite := range []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"} {
		t.Run(suite, func(t *testing.T) {
			keys := wire.NewKeyLog(nil)
			src, err := OpenLive("lo", []int{port})
			if err != nil {
				t.Fatal(err)
			}
			c, err := Start(src, ModeLive, Options{Ports: wire.SeedPorts(ports), Keys: keys})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			keyFile := filepath.Join(t.TempDir(), "keys")
			cmd := exec.Command(openssl, "s_client", "-connect", l.Addr().String(), "-servername", "localhost",
				"-CAfile", auth.Path(pki.CAFile), "-verify_return_error", "-tls1_3", "-ciphersuites", suite,
				"-keylogfile", keyFile, "-ign_eof", "-quiet")
			cmd.Stdin = strings.NewReader("GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), `"status":"ok"`) {
				t.Fatalf("openssl s_client: %v\n%s", err, out)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.Sync(ctx, 200*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(keyFile)
			if err != nil {
				t.Fatal(err)
			}
			err = keys.Load(f)
			f.Close()
			if err != nil || keys.Len() < 4 {
				t.Fatalf("openssl's key log: %d secrets (%v)", keys.Len(), err)
			}
			c.Stop()
			cn := c.Store().Counters(string(protocol.HTTPS))
			if cn.HTTPReqs != 1 || cn.HTTPResps != 1 || cn.Errors != 0 || cn.Decrypted == 0 {
				t.Errorf("%s: %+v, want the decrypted request and response", suite, cn)
			}
			var negotiated string
			for _, r := range c.Store().All(string(protocol.HTTPS)) {
				if r.Field("handshake_type") == "ServerHello" {
					negotiated = r.Field("cipher_suite")
				}
			}
			if negotiated != suite {
				t.Errorf("ServerHello says %q, want %q", negotiated, suite)
			}
		})
	}
}

// memSource returns the same packets again and again, as fast as asked,
// until n are read.
type memSource struct {
	pkts [][]byte
	n, i int
}

func (m *memSource) LinkType() layers.LinkType { return layers.LinkTypeEthernet }
func (m *memSource) Close() error              { return nil }
func (m *memSource) Describe() string          { return "memory" }
func (m *memSource) ReadPacketData() ([]byte, gopacket.CaptureInfo, error) {
	if m.i == m.n {
		return nil, gopacket.CaptureInfo{}, io.EOF
	}
	p := m.pkts[m.i%len(m.pkts)]
	m.i++
	return p, gopacket.CaptureInfo{Timestamp: time.Now(), Length: len(p), CaptureLength: len(p)}, nil
}

// segment builds an Ethernet/IPv4/TCP packet.
func segment(t testing.TB, sport, dport uint16, payload string) []byte {
	buf := gopacket.NewSerializeBuffer()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IPv4(127, 0, 0, 1), DstIP: net.IPv4(127, 0, 0, 1)}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1, ACK: true, Window: 100}
	tcp.SetNetworkLayerForChecksum(ip)
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: make(net.HardwareAddr, 6), DstMAC: make(net.HardwareAddr, 6), EthernetType: layers.EthernetTypeIPv4},
		ip, tcp, gopacket.Payload(payload)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A packet the queue has no room for is dropped and counted: in the total,
// and under its app (wire.Counters.Dropped), which the report and the
// explorer show.
func TestQueueDropsAreCountedByApp(t *testing.T) {
	ports := wire.SeedPorts(map[uint16]protocol.Protocol{3000: protocol.HTTP, 3002: protocol.WS})
	src := &memSource{n: 50000, pkts: [][]byte{
		segment(t, 40000, 3000, "GET / HTTP/1.1\r\n"), segment(t, 3002, 40001, "x"), segment(t, 3002, 40002, ""),
	}}
	c, err := Start(src, ModeStream, Options{Ports: ports, Queue: 1})
	if err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	c.Stop()
	st := c.Stats()
	http, ws := c.Store().Counters("http"), c.Store().Counters("ws")
	if st.QueueDrops == 0 {
		t.Fatalf("nothing dropped with a queue of 1: %+v", st)
	}
	if http.Dropped+ws.Dropped != st.QueueDrops || http.Dropped == 0 || ws.Dropped == 0 {
		t.Errorf("%d dropped: http %d, ws %d", st.QueueDrops, http.Dropped, ws.Dropped)
	}
	if got := http.Packets + ws.Packets + st.QueueDrops; got != 50000 {
		t.Errorf("%d decoded + %d dropped = %d packets, want 50000", http.Packets+ws.Packets, st.QueueDrops, got)
	}
}
