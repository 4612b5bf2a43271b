package webapp

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/protocol/labrpc"
)

// grpcClient is a grpc-go client of r: prior-knowledge HTTP/2 for grpc,
// TLS with ALPN h2 verified against r's CA for grpcs.
func (r *running) grpcClient(t *testing.T) *grpc.ClientConn {
	t.Helper()
	creds := insecure.NewCredentials()
	if r.srv.cfg.Protocol.Secure() {
		creds = credentials.NewTLS(&tls.Config{RootCAs: r.pool, ServerName: "localhost"})
	}
	cc, err := grpc.NewClient("passthrough:///"+r.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func ctx5(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestGRPCEchoAndHTTP: the unary echo answers with the text, the seq and
// the app (over TLS by ALPN h2 on grpcs); the health service says SERVING;
// and on the same port HTTP/1.1 answers GET /health, GET / and GET
// /metrics, which counts the calls by method and code and the messages.
func TestGRPCEchoAndHTTP(t *testing.T) {
	for _, p := range []protocol.Protocol{protocol.GRPC, protocol.GRPCS} {
		t.Run(string(p), func(t *testing.T) {
			r := start(t, Config{Protocol: p})
			cc := r.grpcClient(t)
			echo := labrpc.NewEchoClient(cc)
			var pr peer.Peer
			for i := range 3 {
				reply, err := echo.Say(ctx5(t), &labrpc.EchoRequest{Text: "hello gRPC", Seq: uint64(i)}, grpc.Peer(&pr))
				if err != nil {
					t.Fatal(err)
				}
				if reply.GetText() != "hello gRPC" || reply.GetSeq() != uint64(i) || reply.GetApp() != "protolab-"+string(p) {
					t.Errorf("Say = %v", reply)
				}
			}
			if ti, ok := pr.AuthInfo.(credentials.TLSInfo); p.Secure() && (!ok || ti.State.NegotiatedProtocol != "h2") {
				t.Errorf("grpcs peer %+v, want TLS with ALPN h2", pr.AuthInfo)
			}
			hc := healthpb.NewHealthClient(cc)
			for _, svc := range []string{"", "protolab.Echo", "protolab.Chat"} {
				res, err := hc.Check(ctx5(t), &healthpb.HealthCheckRequest{Service: svc})
				if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
					t.Errorf("health of %q = %v, %v", svc, res, err)
				}
			}
			if _, err := hc.Check(ctx5(t), &healthpb.HealthCheckRequest{Service: "nope"}); status.Code(err) != codes.NotFound {
				t.Errorf("health of an unknown service: %v, want NotFound", err)
			}

			// HTTP/1.1 on the same port (TLS with ALPN http/1.1 on grpcs).
			resp, body := get(t, r.httpClient(), r.url("/health"))
			if resp.ProtoMajor != 1 || resp.StatusCode != 200 || !strings.Contains(body, `"status":"ok"`) {
				t.Errorf("GET /health = %s %d %s", resp.Proto, resp.StatusCode, body)
			}
			_, body = get(t, r.httpClient(), r.url("/"))
			var info Info
			if err := json.Unmarshal([]byte(body), &info); err != nil || info != (Info{App: "protolab-" + string(p), Protocol: string(p), Version: Version}) {
				t.Errorf("GET / = %s", body)
			}
			m := r.scrape(t)
			for _, c := range []struct {
				name   string
				labels []string
				want   float64
			}{
				{protocol.MetricGRPCCalls, []string{"method", "/protolab.Echo/Say", "code", "OK"}, 3},
				{protocol.MetricGRPCCalls, []string{"method", "/grpc.health.v1.Health/Check", "code", "OK"}, 3},
				{protocol.MetricGRPCCalls, []string{"method", "/grpc.health.v1.Health/Check", "code", "NotFound"}, 1},
				{protocol.MetricGRPCMessages, []string{"direction", protocol.MetricIn}, 7},
				{protocol.MetricGRPCMessages, []string{"direction", protocol.MetricOut}, 6},
				{protocol.MetricGRPCStreamsOpen, nil, 0},
				{protocol.MetricRequests, []string{"route", "GET /health", "code", "200"}, 1},
			} {
				if got := m.value(c.name, c.labels...); got != c.want {
					t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
				}
			}
		})
	}
}

// joinChat joins the chat of cc as name and returns its stream.
func joinChat(t *testing.T, cc *grpc.ClientConn, name string) grpc.BidiStreamingClient[labrpc.ChatMessage, labrpc.ChatMessage] {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := labrpc.NewChatClient(cc).Join(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&labrpc.ChatMessage{From: name}); err != nil {
		t.Fatal(err)
	}
	return st
}

// recv is a member's next message, within 5 s.
func recv(t *testing.T, st grpc.BidiStreamingClient[labrpc.ChatMessage, labrpc.ChatMessage]) (*labrpc.ChatMessage, error) {
	t.Helper()
	type got struct {
		m   *labrpc.ChatMessage
		err error
	}
	c := make(chan got, 1)
	go func() { m, err := st.Recv(); c <- got{m, err} }()
	select {
	case g := <-c:
		return g.m, g.err
	case <-time.After(5 * time.Second):
		t.Fatal("no chat message within 5 s")
	}
	return nil, nil
}

func expectChat(t *testing.T, st grpc.BidiStreamingClient[labrpc.ChatMessage, labrpc.ChatMessage], kind labrpc.ChatMessage_Kind, from, text string, members ...string) {
	t.Helper()
	m, err := recv(t, st)
	if err != nil {
		t.Fatalf("want %s from %s: %v", kind, from, err)
	}
	if m.GetKind() != kind || m.GetFrom() != from || (text != "" && m.GetText() != text) || !slices.Equal(m.GetMembers(), members) {
		t.Fatalf("got %v, want %s from %s %q %v", m, kind, from, text, members)
	}
}

// TestGRPCChat: two members over grpc and grpcs — greeting with the
// members, join, messages both ways, a taken name refused with
// ALREADY_EXISTS, a bad name with INVALID_ARGUMENT, a leave when a stream
// ends; the open streams gauge follows.
func TestGRPCChat(t *testing.T) {
	for _, p := range []protocol.Protocol{protocol.GRPC, protocol.GRPCS} {
		t.Run(string(p), func(t *testing.T) {
			r := start(t, Config{Protocol: p})
			cc := r.grpcClient(t)
			alice := joinChat(t, cc, "alice")
			expectChat(t, alice, labrpc.ChatMessage_GREETING, "alice", "Hi alice! You have successfully connected to the chat.", "alice")
			bob := joinChat(t, r.grpcClient(t), "bob")
			expectChat(t, bob, labrpc.ChatMessage_GREETING, "bob", "", "alice", "bob")
			expectChat(t, alice, labrpc.ChatMessage_JOIN, "bob", "bob joined")
			r.waitFor(t, 2, protocol.MetricGRPCStreamsOpen)

			if err := bob.Send(&labrpc.ChatMessage{Text: "hi alice"}); err != nil {
				t.Fatal(err)
			}
			expectChat(t, alice, labrpc.ChatMessage_MESSAGE, "bob", "hi alice")
			if err := alice.Send(&labrpc.ChatMessage{Text: "hello bob", From: "mallory"}); err != nil {
				t.Fatal(err)
			}
			expectChat(t, bob, labrpc.ChatMessage_MESSAGE, "alice", "hello bob") // from is the member's, not what it claims

			dup := joinChat(t, cc, "alice")
			if _, err := recv(t, dup); status.Code(err) != codes.AlreadyExists || !strings.Contains(err.Error(), `"alice" is already taken`) {
				t.Errorf("a second alice: %v, want AlreadyExists", err)
			}
			bad := joinChat(t, cc, "no:colons")
			if _, err := recv(t, bad); status.Code(err) != codes.InvalidArgument {
				t.Errorf("a bad name: %v, want InvalidArgument", err)
			}

			if err := bob.CloseSend(); err != nil {
				t.Fatal(err)
			}
			if _, err := recv(t, bob); !errors.Is(err, io.EOF) {
				t.Errorf("bob's stream after leaving: %v, want its clean end", err)
			}
			expectChat(t, alice, labrpc.ChatMessage_LEAVE, "bob", "bob left")
			m := r.waitFor(t, 1, protocol.MetricGRPCStreamsOpen)
			if got := m.value(protocol.MetricGRPCCalls, "method", "/protolab.Chat/Join", "code", "AlreadyExists"); got != 1 {
				t.Errorf("Join AlreadyExists counted %v times", got)
			}
			// bob's name is free again.
			bob2 := joinChat(t, cc, "bob")
			expectChat(t, bob2, labrpc.ChatMessage_GREETING, "bob", "", "alice", "bob")
		})
	}
}

// TestGRPCLimitsAndShutdown: a message past the read limit is refused
// (RESOURCE_EXHAUSTED); at Shutdown a chat member's and a health watcher's
// streams end at once (UNAVAILABLE for the chat) and Shutdown returns well
// within its deadline.
func TestGRPCLimitsAndShutdown(t *testing.T) {
	r := start(t, Config{Protocol: protocol.GRPCS, ReadLimit: 1024})
	cc := r.grpcClient(t)
	if _, err := labrpc.NewEchoClient(cc).Say(ctx5(t), &labrpc.EchoRequest{Text: strings.Repeat("x", 2000)}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a 2000-byte request to a 1024-byte limit: %v, want ResourceExhausted", err)
	}
	alice := joinChat(t, cc, "alice")
	expectChat(t, alice, labrpc.ChatMessage_GREETING, "alice", "", "alice")
	watch, err := healthpb.NewHealthClient(cc).Watch(ctx5(t), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := watch.Recv(); err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch: %v %v", res, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	began := time.Now()
	if err := r.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("Shutdown took %v: the streams held it", took)
	}
	if _, err := recv(t, alice); status.Code(err) != codes.Unavailable {
		t.Errorf("chat member at shutdown: %v, want Unavailable", err)
	}
	for {
		res, err := watch.Recv()
		if err != nil {
			break
		}
		if res.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("watch at shutdown: %v", res)
		}
	}
}

// TestGRPCSniffBounds: a clear-text connection that starts like the
// HTTP/2 preface and stalls, or a TLS one that never says hello, is closed
// at the timeout; HTTP/1.1 starting with "P" (POST) is not taken for
// HTTP/2.
func TestGRPCSniffBounds(t *testing.T) {
	for _, tc := range []struct {
		p    protocol.Protocol
		send string
	}{{protocol.GRPC, "PRI * HTTP/2"}, {protocol.GRPCS, ""}} {
		r := start(t, Config{Protocol: tc.p, HandshakeTimeout: 200 * time.Millisecond})
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, tc.send); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		began := time.Now()
		if _, err := c.Read(make([]byte, 1)); err == nil || time.Since(began) > 3*time.Second {
			t.Errorf("%s: a connection that stalled after %q: read %v after %v, want it closed at the timeout", tc.p, tc.send, err, time.Since(began))
		}
	}
	r := start(t, Config{Protocol: protocol.GRPC})
	resp, err := r.httpClient().Post(r.url("/health"), "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("POST /health over HTTP/1.1 = %s, want 405 from the HTTP server", resp.Status)
	}
}

// TestSniffPreface: what the sniffer decides from a connection's first
// bytes, however they are split.
func TestSniffPreface(t *testing.T) {
	for _, tc := range []struct {
		in   string
		h2   bool
		read string
	}{
		{http2Preface + "\x00\x00\x12\x04", true, http2Preface},
		{"GET / HTTP/1.1\r\n", false, "G"},
		{"POST /echo HTTP/1.1\r\n", false, "PO"},
		{"PRI * HTTP/1.1\r\n", false, "PRI * HTTP/1"},
	} {
		a, b := net.Pipe()
		go func() {
			for i := range len(tc.in) { // a byte at a time
				if _, err := b.Write([]byte{tc.in[i]}); err != nil {
					return
				}
			}
		}()
		read, h2, err := sniffPreface(a, time.Second)
		if err != nil || h2 != tc.h2 || string(read) != tc.read {
			t.Errorf("%q: read %q, h2 %v, %v; want %q, %v", tc.in, read, h2, err, tc.read, tc.h2)
		}
		a.Close()
		b.Close()
	}
}
