package testenv

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/protolab/protolab-tui/protocol"
)

// TsharkCounts are what tshark decodes on one app's port, each way.
type TsharkCounts struct {
	HTTPRequests, HTTPResponses int
	WSFrames                    int
	H2Frames                    int
	// H2Ends counts HTTP/2 frames that end their stream one way
	// (END_STREAM): one per request and one per response.
	H2Ends       int
	GRPCMessages int
	// SSEEvents counts the event fields in the bytes the app sent, as
	// tshark reassembles them (tshark has no event-stream dissector: the
	// bytes are its, the count of "event:" lines is this helper's).
	SSEEvents int
}

// Messages is the count of what the protocol's descriptor says one message
// is (protocol.Unit), from what tshark decoded.
func (c TsharkCounts) Messages(p protocol.Protocol) int {
	switch p.Desc().Message {
	case protocol.UnitHTTPMessage:
		return c.HTTPRequests + c.HTTPResponses
	case protocol.UnitWSFrame:
		return c.WSFrames
	case protocol.UnitSSEEvent:
		return c.SSEEvents + c.HTTPRequests
	case protocol.UnitHTTP2Message:
		return c.H2Ends
	case protocol.UnitGRPCMessage:
		return c.GRPCMessages
	}
	return -1
}

var sseEventLine = regexp.MustCompile(`(?m)^event:`)

// TsharkPerPort runs tshark over a capture file (TLS decrypted through the
// file's decryption secrets block) with each port decoded as its
// protocol's first layer — TLS, HTTP/2 (prior knowledge) or HTTP — and
// counts, per port, what it decodes there.
func TsharkPerPort(t testing.TB, file string, ports map[uint16]protocol.Protocol) map[uint16]TsharkCounts {
	t.Helper()
	args := []string{"-r", file, "-n", "-o", "http.desegment_body:TRUE"}
	for port, p := range ports {
		as := "http"
		switch {
		case p.Secure():
			as = "tls"
		case p.HTTP2():
			as = "http2"
		}
		args = append(args, "-d", fmt.Sprintf("tcp.port==%d,%s", port, as))
	}
	args = append(args, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
		"-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "tcp.stream",
		"-e", "http.request", "-e", "http.response", "-e", "websocket.opcode",
		"-e", "http2.type", "-e", "http2.flags.end_stream", "-e", "grpc.message_length", "-e", "tcp.payload")
	out := Tshark(t, args...)
	counts := map[uint16]TsharkCounts{}
	streams := map[string][]byte{} // an sse app's bytes to its clients, by TCP stream
	streamPort := map[string]uint16{}
	n := func(s string) int {
		if s == "" {
			return 0
		}
		return len(strings.Split(s, ","))
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 10 {
			continue
		}
		src, _ := strconv.ParseUint(f[0], 10, 16)
		dst, _ := strconv.ParseUint(f[1], 10, 16)
		port := uint16(dst)
		if _, ok := ports[port]; !ok {
			port = uint16(src)
		}
		p, ok := ports[port]
		if !ok {
			continue
		}
		c := counts[port]
		c.HTTPRequests += n(f[3])
		c.HTTPResponses += n(f[4])
		c.WSFrames += n(f[5])
		c.H2Frames += n(f[6])
		for _, e := range strings.Split(f[7], ",") {
			if e == "1" || e == "True" {
				c.H2Ends++
			}
		}
		c.GRPCMessages += n(f[8])
		counts[port] = c
		if p.Desc().Message == protocol.UnitSSEEvent && uint16(src) == port && f[9] != "" {
			b, err := hex.DecodeString(strings.ReplaceAll(f[9], ":", ""))
			if err == nil {
				streams[f[2]] = append(streams[f[2]], b...)
				streamPort[f[2]] = port
			}
		}
	}
	for s, b := range streams {
		c := counts[streamPort[s]]
		c.SSEEvents += len(sseEventLine.FindAll(b, -1))
		counts[streamPort[s]] = c
	}
	return counts
}
