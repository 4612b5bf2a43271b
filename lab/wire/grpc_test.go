package wire

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/protocol/labrpc"
)

// grpcFrame prefixes a message as gRPC does.
func grpcFrame(compressed bool, msg []byte) []byte {
	out := []byte{0}
	if compressed {
		out[0] = 1
	}
	out = binary.BigEndian.AppendUint32(out, uint32(len(msg)))
	return append(out, msg...)
}

func marshal(t testing.TB, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func grpcRequest(w *h2Writer, stream uint32, path string, extra ...string) {
	w.headers(stream, false, append([]string{":method", "POST", ":scheme", "http", ":authority", "lab", ":path", path,
		"content-type", "application/grpc", "te", "trailers"}, extra...)...)
}

func TestGRPCMessages(t *testing.T) {
	cw, sw := newH2Writer(t), newH2Writer(t)
	cw.buf.WriteString(h2Preface)
	cw.do(cw.fr.WriteSettings())
	sw.do(sw.fr.WriteSettings())

	// Unary echo: the message's prefix split across two DATA frames.
	grpcRequest(cw, 1, "/protolab.Echo/Say")
	req := grpcFrame(false, marshal(t, &labrpc.EchoRequest{Text: "hi", Seq: 3}))
	cw.data(1, false, req[:3])
	cw.data(1, true, req[3:])
	sw.headers(1, false, ":status", "200", "content-type", "application/grpc")
	sw.data(1, false, grpcFrame(false, marshal(t, &labrpc.EchoReply{Text: "hi", Seq: 3, App: "grpc"})))
	sw.headers(1, true, "grpc-status", "0", "grpc-message", "")

	// The chat: two messages in one frame each way, an error status.
	grpcRequest(cw, 3, "/protolab.Chat/Join")
	two := append(grpcFrame(false, marshal(t, &labrpc.ChatMessage{From: "ann"})), grpcFrame(false, marshal(t, &labrpc.ChatMessage{Text: "hello"}))...)
	cw.data(3, true, two)
	sw.headers(3, false, ":status", "200", "content-type", "application/grpc+proto")
	sw.data(3, false, append(grpcFrame(false, marshal(t, &labrpc.ChatMessage{Kind: labrpc.ChatMessage_GREETING, Members: []string{"ann", "bob"}})),
		grpcFrame(false, marshal(t, &labrpc.ChatMessage{Kind: labrpc.ChatMessage_JOIN, From: "bob"}))...))
	sw.headers(3, true, "grpc-status", "6", "grpc-message", "name%20taken")

	// A method the lab's .proto does not know, a gzip-compressed message,
	// and a trailers-only answer.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(marshal(t, &labrpc.EchoRequest{Text: "zipped"}))
	zw.Close()
	grpcRequest(cw, 5, "/other.Svc/Do", "grpc-encoding", "gzip")
	cw.data(5, false, grpcFrame(false, []byte{0x0a, 0x03, 'a', 'b', 'c', 0x12, 0x02, 0x08, 0x07, 0x19, 1, 0, 0, 0, 0, 0, 0, 0}))
	cw.data(5, true, grpcFrame(true, gz.Bytes()))
	sw.headers(5, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "12", "grpc-message", "unknown service")

	// A prefix announcing an absurd length is refused.
	grpcRequest(cw, 7, "/protolab.Echo/Say")
	cw.data(7, true, []byte{0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	sw.headers(7, true, ":status", "200", "content-type", "application/grpc", "grpc-status", "13")

	c := newBigConvo(t, protocol.GRPC)
	c.sendChunks(ClientToServer, cw.take(), 7)
	c.sendChunks(ServerToClient, sw.take(), 7)
	c.d.StreamEnd(c.flow, time.Now())
	cn := c.s.Counters("grpc")
	var got, statuses, errs []string
	for _, r := range c.s.All("grpc") {
		switch {
		case r.Kind == KindError:
			errs = append(errs, r.Err)
		case r.Layer == "grpc" && r.Field("grpc_status") != "":
			statuses = append(statuses, r.Text())
		case r.Layer == "grpc":
			got = append(got, r.Text())
		}
	}
	want := []string{
		`gRPC /protolab.Echo/Say request #1 len=6 protolab.EchoRequest{text="hi" seq=3}`,
		`gRPC /protolab.Chat/Join request #1 len=5 protolab.ChatMessage{from="ann"}`,
		`gRPC /protolab.Chat/Join request #2 len=7 protolab.ChatMessage{text="hello"}`,
		`gRPC /other.Svc/Do request #1 len=18 {1:"abc" 2:{1:7} 3:0x0000000000000001}`,
		`gRPC /other.Svc/Do request #2 len=32 [compressed: gzip] {1:"zipped"}`,
		`gRPC /protolab.Echo/Say response #1 len=12 protolab.EchoReply{text="hi" seq=3 app="grpc"}`,
		`gRPC /protolab.Chat/Join response #1 len=12 protolab.ChatMessage{kind=GREETING members=["ann", "bob"]}`,
		`gRPC /protolab.Chat/Join response #2 len=7 protolab.ChatMessage{kind=JOIN from="bob"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("gRPC messages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantStatus := []string{
		"gRPC /protolab.Echo/Say status 0 OK",
		`gRPC /protolab.Chat/Join status 6 ALREADY_EXISTS "name taken"`,
		`gRPC /other.Svc/Do status 12 UNIMPLEMENTED "unknown service"`,
		"gRPC /protolab.Echo/Say status 13 INTERNAL",
	}
	if strings.Join(statuses, "\n") != strings.Join(wantStatus, "\n") {
		t.Errorf("statuses:\n%s\nwant:\n%s", strings.Join(statuses, "\n"), strings.Join(wantStatus, "\n"))
	}
	if len(errs) != 1 || !strings.Contains(errs[0], "refused (nothing allocated)") {
		t.Errorf("errors %q: want the absurd length refused", errs)
	}
	// gRPC messages are the app's messages; HTTP/2 messages are not.
	if cn.GRPCMessages != 8 || cn.Messages != 8 || cn.H2Messages != 8 {
		t.Errorf("counters %+v", cn)
	}
}

// TestGRPCBigMessage: a message larger than what is kept is counted whole,
// decoded as far as kept, and never held whole.
func TestGRPCBigMessage(t *testing.T) {
	cw := newH2Writer(t)
	cw.buf.WriteString(h2Preface)
	cw.do(cw.fr.WriteSettings())
	grpcRequest(cw, 1, "/protolab.Echo/Say")
	body := marshal(t, &labrpc.EchoRequest{Text: strings.Repeat("x", 100000), Seq: 1})
	msg := grpcFrame(false, body)
	for len(msg) > 0 {
		n := min(len(msg), 16384)
		cw.data(1, false, msg[:n])
		msg = msg[n:]
	}
	cw.do(cw.fr.WriteData(1, true, nil))
	c := newBigConvo(t, protocol.GRPC)
	c.send(ClientToServer, cw.take())
	var rec *Record
	for _, r := range c.s.All("grpc") {
		if r.Layer == "grpc" {
			rec = &r
		}
	}
	if rec == nil || rec.Payload != len(body) || len(rec.Data) > PreviewBytes ||
		rec.Field("fields") != fmt.Sprintf(`1:"%s"… (%d bytes, the first 2044 kept) … (the first 2048 of %d bytes)`, strings.Repeat("x", 128), 100000, len(body)) {
		t.Fatalf("big message record %+v %v", rec, rec.Details())
	}
}
