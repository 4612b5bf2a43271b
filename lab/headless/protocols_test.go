package headless_test

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/protocol"
)

// TestEveryProtocol runs examples/protocols.yaml headless: the seed's four
// beside sse, h2, h2c, grpc, grpcs and a compressing ws app, every one ok
// with its figures in the report (gRPC's chat stream as a variant, the ws
// app's compression), and — with capture — each app's messages on the
// wire as many as tshark decodes on its port, TLS decrypted with the
// secrets the export carries.
func TestEveryProtocol(t *testing.T) {
	pcap := filepath.Join(t.TempDir(), "protocols.pcapng")
	_, rep, out := runExample(t, "protocols.yaml", pcap)
	seen := map[protocol.Protocol]bool{}
	for _, name := range rep.Order {
		a := rep.Apps[name]
		seen[a.Protocol] = true
		if !a.OK || a.Messages != 30 || a.RTTP50Ms <= 0 || a.MsgsPerS <= 0 || a.BytesPerM <= 0 {
			t.Errorf("%s: %+v", name, a.Result)
		}
		if !strings.Contains(out, "\n"+strings.Repeat(" ", max(0, 12-len(name)))+name+" ") && !strings.Contains(out, " "+name+" ") {
			t.Errorf("the text report has no row for %s", name)
		}
	}
	for _, p := range protocol.All() {
		if !seen[p] {
			t.Errorf("no app of the example speaks %s", p)
		}
	}
	for _, name := range []string{"grpc", "grpcs"} {
		v := rep.Apps[name].Variants
		if len(v) != 1 || v[0].Name != "stream" || v[0].Messages != 30 {
			t.Errorf("%s: variants %+v, want the chat stream's 30 round trips", name, v)
		}
		if !strings.Contains(out, name+" · stream") {
			t.Errorf("the text report has no row for %s's stream", name)
		}
	}
	if rep.Apps["sse"].Conns == nil || len(rep.Apps["sse"].Conns) != 2 {
		t.Errorf("sse: connections %+v, want the stream and the posts'", rep.Apps["sse"].Conns)
	}
	deflate := rep.Apps["ws-deflate"]
	if deflate.Compression != protocol.CompressionDeflate || !strings.Contains(out, "ws+deflate") {
		t.Errorf("ws-deflate: compression %q", deflate.Compression)
	}
	if rep.Capture == nil {
		t.Log("capture off (not root): the wire is not checked")
		return
	}
	if w := deflate.Wire; w == nil || w.WSCompressed == 0 || w.InflatedPerMessage <= w.CompressedPerMessage {
		t.Errorf("ws-deflate on the wire: %+v, want compressed messages that inflate to more", w)
	}
	ports := map[uint16]protocol.Protocol{}
	portOf := map[string]uint16{}
	for name, a := range rep.Apps {
		ap, err := netip.ParseAddrPort(a.Addr)
		if err != nil {
			t.Fatalf("%s: address %q: %v", name, a.Addr, err)
		}
		ports[ap.Port()], portOf[name] = a.Protocol, ap.Port()
	}
	counts := testenv.TsharkPerPort(t, pcap, ports)
	for _, name := range rep.Order {
		a := rep.Apps[name]
		if a.Wire == nil || a.Wire.Errors != 0 {
			t.Errorf("%s: wire %+v, want figures and no errors", name, a.Wire)
			continue
		}
		c := counts[portOf[name]]
		got := c.Messages(a.Protocol)
		t.Logf("%-10s %-5s %s: protolab %d, tshark %d (%+v)", name, a.Protocol, a.Protocol.Desc().Message, a.Wire.Messages, got, c)
		if got <= 0 || uint64(got) != a.Wire.Messages {
			t.Errorf("%s (%s): %d messages on the wire, tshark decodes %d", name, a.Protocol, a.Wire.Messages, got)
		}
		if a.Protocol.HTTP2() && uint64(c.H2Frames) != a.Wire.H2Frames {
			t.Errorf("%s: %d HTTP/2 frames, tshark decodes %d", name, a.Wire.H2Frames, c.H2Frames)
		}
	}
}
