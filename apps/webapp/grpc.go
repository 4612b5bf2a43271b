package webapp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/protolab/protolab-tui/protocol/labrpc"
)

// grpcApp is kind grpc: a gRPC server (google.golang.org/grpc) with the
// lab's services (protocol/labrpc: the unary echo protolab.Echo/Say, the
// chat room protolab.Chat/Join) and the standard health service — and, on
// the same port, the app's HTTP/1.1 server for GET /health (how the lab
// checks every app), GET / and GET /metrics.
//
// Each accepted connection is sniffed, bounded in bytes and time
// (HandshakeTimeout): over TLS (grpcs) the handshake offers ALPN h2 then
// http/1.1, and h2 goes to gRPC; in clear text (grpc) a connection whose
// first bytes are the HTTP/2 client preface goes to gRPC, any other to
// HTTP/1.1 as soon as one byte differs. A connection that says too little
// in time is closed.
type grpcApp struct {
	s      *Server
	gs     *grpc.Server
	health *health.Server
	room   *room[*labrpc.ChatMessage]

	mu       sync.Mutex
	l        net.Listener
	sniffing liveSet[net.Conn, struct{}]
	wg       sync.WaitGroup
}

// http2Preface is what an HTTP/2 client sends first (RFC 9113 §3.4).
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// joinTimeout bounds how long a chat member may take to name itself.
const joinTimeout = 10 * time.Second

func setupGRPC(s *Server) {
	g := &grpcApp{s: s, room: newRoom[*labrpc.ChatMessage](), health: health.NewServer()}
	// The HTTP server gets the connections that are not gRPC: HTTP/1.1.
	var ps http.Protocols
	ps.SetHTTP1(true)
	s.srv.Protocols = &ps
	g.gs = grpc.NewServer(
		grpc.MaxRecvMsgSize(int(min(s.cfg.ReadLimit, 1<<30))),
		grpc.ChainUnaryInterceptor(g.unaryInterceptor),
		grpc.ChainStreamInterceptor(g.streamInterceptor),
	)
	labrpc.RegisterEchoServer(g.gs, echoService{g: g})
	labrpc.RegisterChatServer(g.gs, chatService{g: g})
	healthpb.RegisterHealthServer(g.gs, g.health)
	for _, name := range []string{"", labrpc.Echo_ServiceDesc.ServiceName, labrpc.Chat_ServiceDesc.ServiceName} {
		g.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.serve = g.serveListener
	s.stops = append(s.stops, g.stop)
}

func routeGRPC(s *Server, mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.index)
}

// serveListener accepts connections on l and hands each, sniffed, to the
// gRPC server or the HTTP server, until Shutdown.
func (g *grpcApp) serveListener(l net.Listener) error {
	g.mu.Lock()
	g.l = l
	g.mu.Unlock()
	grpcL, httpL := newConnListener(l.Addr()), newConnListener(l.Addr())
	served := make(chan error, 2)
	go func() { served <- g.gs.Serve(grpcL) }()
	go func() {
		err := g.s.srv.Serve(httpL)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		served <- err
	}()
	var acceptErr error
	for {
		c, err := l.Accept()
		if err != nil {
			select {
			case <-g.s.shutdown:
			default:
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				acceptErr = fmt.Errorf("%s server on %s: %w", g.s.cfg.Protocol, l.Addr(), err)
				g.gs.Stop()
				_ = g.s.srv.Close()
			}
			break
		}
		if !g.sniffing.add(c, struct{}{}) {
			c.Close()
			continue
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			g.route(c, grpcL, httpL)
		}()
	}
	// Each server closes its listener as it stops (a graceful stop, an
	// HTTP shutdown), which ends a push still waiting.
	g.wg.Wait()
	for range 2 {
		if err := <-served; err != nil && acceptErr == nil {
			acceptErr = fmt.Errorf("%s server on %s: %w", g.s.cfg.Protocol, l.Addr(), err)
		}
	}
	return acceptErr
}

// route sniffs c and hands it to gRPC or HTTP/1.1 (or closes it).
func (g *grpcApp) route(c net.Conn, grpcL, httpL *connListener) {
	defer g.sniffing.remove(c)
	log := g.s.log.With("client", c.RemoteAddr().String())
	var toGRPC bool
	if g.s.cfg.Protocol.Secure() {
		tc := tls.Server(c, g.s.srv.TLSConfig)
		ctx, cancel := context.WithTimeout(context.Background(), g.s.cfg.HandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			log.Info("TLS handshake failed: connection closed", "err", err)
			c.Close()
			return
		}
		toGRPC = tc.ConnectionState().NegotiatedProtocol == "h2"
		c = tc
	} else {
		seen, isH2, err := sniffPreface(c, g.s.cfg.HandshakeTimeout)
		if err != nil {
			log.Info("connection closed before it said what it speaks", "read", fmt.Sprintf("%q", seen), "err", err)
			c.Close()
			return
		}
		toGRPC = isH2
		c = &prefixConn{Conn: c, prefix: seen}
	}
	to := httpL
	if toGRPC {
		to = grpcL
	}
	if !to.push(c) {
		c.Close()
	}
}

// sniffPreface reads from c until its bytes are, or cannot be, the HTTP/2
// preface: at most len(http2Preface) bytes, within timeout. It returns what
// it read (to be read again) and whether it is the preface; an error when
// c ended or stalled before telling.
func sniffPreface(c net.Conn, timeout time.Duration) ([]byte, bool, error) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, len(http2Preface))
	n := 0
	for n < len(buf) {
		k, err := c.Read(buf[n:])
		n += k
		if !strings.HasPrefix(http2Preface, string(buf[:n])) {
			return buf[:n], false, nil
		}
		if err != nil {
			return buf[:n], false, err
		}
	}
	return buf, true, nil
}

// stop ends the gRPC side: no more connections, the health service
// NOT_SERVING, connections still being sniffed closed, and a graceful stop
// (streams end at once: the stream interceptor cancels them on the
// server's shutdown) bounded by ctx, after which the rest is cut.
func (g *grpcApp) stop(ctx context.Context) {
	g.mu.Lock()
	if g.l != nil {
		g.l.Close()
	}
	g.mu.Unlock()
	g.health.Shutdown()
	g.sniffing.shutDown(func(c net.Conn, _ struct{}) { c.Close() })
	done := make(chan struct{})
	go func() { g.gs.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		g.s.log.Warn("gRPC calls still running at the shutdown's deadline: cut", "err", ctx.Err())
		g.gs.Stop()
		<-done
	}
}

// unaryInterceptor counts a unary call: its request in, its answer out,
// the call by method and code.
func (g *grpcApp) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	m := g.s.metrics
	m.grpcMsgIn.Inc()
	resp, err := handler(ctx, req)
	if err == nil {
		m.grpcMsgOut.Inc()
	}
	m.grpcCalls.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
	return resp, err
}

// streamInterceptor counts a streaming call (open while it runs, its
// messages each way, the call by method and code) and ends it at the
// server's shutdown: its context is cancelled then.
func (g *grpcApp) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	m := g.s.metrics
	m.grpcOpen.Inc()
	defer m.grpcOpen.Dec()
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	go func() {
		select {
		case <-g.s.shutdown:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := handler(srv, &countedStream{ServerStream: ss, ctx: ctx, m: m})
	m.grpcCalls.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
	return err
}

// countedStream counts a stream's messages and carries its context.
type countedStream struct {
	grpc.ServerStream
	ctx context.Context
	m   *metrics
}

func (s *countedStream) Context() context.Context { return s.ctx }

func (s *countedStream) SendMsg(msg any) error {
	err := s.ServerStream.SendMsg(msg)
	if err == nil {
		s.m.grpcMsgOut.Inc()
	}
	return err
}

func (s *countedStream) RecvMsg(msg any) error {
	err := s.ServerStream.RecvMsg(msg)
	if err == nil {
		s.m.grpcMsgIn.Inc()
	}
	return err
}

// echoService is protolab.Echo.
type echoService struct {
	labrpc.UnimplementedEchoServer
	g *grpcApp
}

// Say answers the request's text and seq, naming the app.
func (e echoService) Say(_ context.Context, req *labrpc.EchoRequest) (*labrpc.EchoReply, error) {
	return &labrpc.EchoReply{Text: req.GetText(), Seq: req.GetSeq(), App: e.g.s.cfg.Name}, nil
}

// chatService is protolab.Chat: the chat room over one bidirectional
// stream per member, as the WebSocket chat does it (room.go).
type chatService struct {
	labrpc.UnimplementedChatServer
	g *grpcApp
}

// Join is one member: its first message names it (From; its text is not
// said), then it gets a GREETING with the members (its own name included),
// the others a JOIN; each MESSAGE it sends goes to the others with its name;
// a LEAVE when its stream ends. A name in use ends the call with
// ALREADY_EXISTS, a bad one (or no name within joinTimeout) with
// INVALID_ARGUMENT; a member too slow to take its messages is dropped with
// RESOURCE_EXHAUSTED; at shutdown, UNAVAILABLE.
func (c chatService) Join(stream grpc.BidiStreamingServer[labrpc.ChatMessage, labrpc.ChatMessage]) error {
	g := c.g
	ctx := stream.Context()
	type received struct {
		msg *labrpc.ChatMessage
		err error
	}
	in := make(chan received)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			msg, err := stream.Recv()
			select {
			case in <- received{msg, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	ended := func(err error) error {
		select {
		case <-g.s.shutdown:
			return status.Error(codes.Unavailable, "server shutting down")
		default:
		}
		if errors.Is(err, io.EOF) {
			return nil // the member closed its side: it left
		}
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
		return err
	}

	var hello *labrpc.ChatMessage
	t := time.NewTimer(joinTimeout)
	defer t.Stop()
	select {
	case r := <-in:
		if errors.Is(r.err, io.EOF) {
			return status.Error(codes.InvalidArgument, "the stream ended before its first message named the member (from)")
		}
		if r.err != nil {
			return ended(r.err)
		}
		hello = r.msg
	case <-t.C:
		return status.Errorf(codes.InvalidArgument, "no first message naming the member (from) within %s", joinTimeout)
	case <-ctx.Done():
		return ended(ctx.Err())
	}
	name := hello.GetFrom()
	if why := validName(name); why != "" {
		return status.Error(codes.InvalidArgument, strings.Replace(why, "/chat/{name}", "the first message's from", 1))
	}
	m, ok := g.room.reserve(name)
	if !ok {
		return status.Errorf(codes.AlreadyExists, "the name %q is already taken in this chat room; pick another", name)
	}
	leave := &labrpc.ChatMessage{Kind: labrpc.ChatMessage_LEAVE, From: name, Text: name + " left"}
	g.room.join(m, func(members []string) *labrpc.ChatMessage {
		return &labrpc.ChatMessage{Kind: labrpc.ChatMessage_GREETING, From: name,
			Text: fmt.Sprintf("Hi %s! You have successfully connected to the chat.", name), Members: members}
	}, &labrpc.ChatMessage{Kind: labrpc.ChatMessage_JOIN, From: name, Text: name + " joined"})
	defer g.room.leave(m, &leave)
	g.s.log.Debug("grpc chat: joined", "member", name)
	for {
		select {
		case msg, ok := <-m.send:
			if !ok {
				return status.Error(codes.ResourceExhausted, "too slow: your messages were piling up")
			}
			if err := stream.Send(msg); err != nil {
				return ended(err)
			}
		case r := <-in:
			if r.err != nil {
				return ended(r.err)
			}
			if k := r.msg.GetKind(); k != labrpc.ChatMessage_MESSAGE {
				return status.Errorf(codes.InvalidArgument, "a member sends MESSAGE only, not %s", k)
			}
			g.room.broadcast(m, &labrpc.ChatMessage{Kind: labrpc.ChatMessage_MESSAGE, From: name, Text: r.msg.GetText()})
		case <-ctx.Done():
			return ended(ctx.Err())
		}
	}
}

// connListener is a net.Listener fed by push: the sniffer hands each
// server its connections.
type connListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }

// push hands c to the listener's server; false once it is closed.
func (l *connListener) push(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

// prefixConn is a connection whose first bytes (read by the sniffer) are
// read again.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
