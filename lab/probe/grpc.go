package probe

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/protolab/protolab-tui/protocol/labrpc"
)

// grpcSession calls the lab's gRPC services over one connection: the unary
// echo (protolab.Echo/Say) is its echo, and the chat room
// (protolab.Chat/Join) its "stream" variant — two members on the same
// connection, one's message to the other timed as a round trip.
type grpcSession struct {
	c     *conn
	cc    *grpc.ClientConn
	echoC labrpc.EchoClient
	hs    time.Duration
	seq   uint64
	ctx   context.Context // the run's: the chat's streams live in it
	chat  *grpcChat
}

// grpcChat is the stream variant's two members.
type grpcChat struct {
	from     string
	speaker  labrpc.Chat_JoinClient
	listener labrpc.Chat_JoinClient
	cancel   context.CancelFunc
}

// grpcMaxMessage bounds a message the probe receives.
const grpcMaxMessage = 4 << 20

var grpcMembers atomic.Uint64

func newGRPCSession(ctx context.Context, t Target) (*grpcSession, error) {
	c, err := t.dial(ctx, t.alpn()...)
	if err != nil {
		return nil, err
	}
	if c.state != nil && c.state.NegotiatedProtocol != "h2" {
		c.Close()
		return nil, fmt.Errorf("%s: the app at %s chose ALPN %q, not h2: it does not speak gRPC over TLS", t.name(), t.Addr, c.state.NegotiatedProtocol)
	}
	var once sync.Once
	give := func(context.Context, string) (net.Conn, error) {
		var out net.Conn
		once.Do(func() { out = c.Conn })
		if out == nil {
			return nil, fmt.Errorf("%w: the probe keeps one connection and will not open another", errClosedByPeer)
		}
		return out, nil
	}
	// The connection handed over is already what the protocol asks for:
	// TCP, or TLS verified against the lab CA (t.dial). gRPC adds no
	// security handshake of its own on top, which is what insecure
	// credentials mean here; nothing goes unverified.
	cc, err := grpc.NewClient("passthrough:///"+t.hostPort(),
		grpc.WithContextDialer(give),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority(t.hostPort()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(grpcMaxMessage)))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: gRPC client for %s: %w", t.name(), t.Addr, err)
	}
	s := &grpcSession{c: c, cc: cc, echoC: labrpc.NewEchoClient(cc), ctx: ctx}
	start := time.Now()
	if _, err := s.say(ctx, "hello"); err != nil {
		s.close()
		return nil, fmt.Errorf("%s: the first call of %s on %s: %w", t.name(), labrpc.Echo_Say_FullMethodName, t.Addr, err)
	}
	s.hs = time.Since(start)
	return s, nil
}

func (s *grpcSession) conn() *conn              { return s.c }
func (s *grpcSession) handshake() time.Duration { return s.hs }

func (s *grpcSession) say(ctx context.Context, msg string) (string, error) {
	s.seq++
	r, err := s.echoC.Say(ctx, &labrpc.EchoRequest{Text: msg, Seq: s.seq})
	if err != nil {
		return "", err
	}
	if r.GetSeq() != s.seq {
		return "", fmt.Errorf("the answer to call %d says it answers call %d", s.seq, r.GetSeq())
	}
	return r.GetText(), nil
}

func (s *grpcSession) echo(ctx context.Context, msg string) (string, error) { return s.say(ctx, msg) }

func (s *grpcSession) variants() []variant {
	return []variant{{name: "stream", echo: s.chatEcho}}
}

// chatEcho says msg as one member and waits for the other to hear it.
func (s *grpcSession) chatEcho(ctx context.Context, msg string) (string, error) {
	if s.chat == nil {
		chat, err := s.join()
		if err != nil {
			return "", err
		}
		s.chat = chat
	}
	if err := s.chat.speaker.Send(&labrpc.ChatMessage{Kind: labrpc.ChatMessage_MESSAGE, Text: msg}); err != nil {
		return "", fmt.Errorf("saying it in %s: %w", labrpc.Chat_Join_FullMethodName, err)
	}
	stop := context.AfterFunc(ctx, s.chat.cancel)
	defer stop()
	for {
		m, err := s.chat.listener.Recv()
		if err != nil {
			return "", fmt.Errorf("hearing it in %s: %w", labrpc.Chat_Join_FullMethodName, err)
		}
		if m.GetKind() == labrpc.ChatMessage_MESSAGE && m.GetFrom() == s.chat.from {
			return m.GetText(), nil
		}
	}
}

// join brings two members into the chat room on the session's connection:
// the speaker, then the listener (so the speaker's room is set when the
// listener comes in).
func (s *grpcSession) join() (*grpcChat, error) {
	ctx, cancel := context.WithCancel(s.ctx)
	n := grpcMembers.Add(1)
	chat := &grpcChat{from: fmt.Sprintf("probe-%d-%d-a", os.Getpid(), n), cancel: cancel}
	member := func(name string) (labrpc.Chat_JoinClient, error) {
		st, err := labrpc.NewChatClient(s.cc).Join(ctx)
		if err != nil {
			return nil, err
		}
		if err := st.Send(&labrpc.ChatMessage{From: name}); err != nil {
			return nil, err
		}
		for {
			m, err := st.Recv()
			if err != nil {
				return nil, err
			}
			if m.GetKind() == labrpc.ChatMessage_GREETING {
				return st, nil
			}
		}
	}
	var err error
	if chat.speaker, err = member(chat.from); err == nil {
		chat.listener, err = member(fmt.Sprintf("probe-%d-%d-b", os.Getpid(), n))
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("joining %s as two members: %w", labrpc.Chat_Join_FullMethodName, err)
	}
	return chat, nil
}

func (s *grpcSession) close() {
	if s.chat != nil {
		_ = s.chat.speaker.CloseSend()
		_ = s.chat.listener.CloseSend()
		// each member's call ends when the server has seen it leave
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, st := range []labrpc.Chat_JoinClient{s.chat.speaker, s.chat.listener} {
				for {
					if _, err := st.Recv(); err != nil {
						break
					}
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(time.Second):
		}
		s.chat.cancel()
	}
	s.cc.Close()
	s.c.Close()
}
