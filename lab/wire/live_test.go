package wire_test

// Real traffic: real servers and clients (net/http's HTTP/2 over TLS and in
// clear text, google.golang.org/grpc with the lab's services, an SSE
// handler, gorilla/websocket with compression) run in the test, and the
// decoder sees their bytes through socket-level capture (the client's
// connections tapped) or through live capture on lo — whose export tshark
// then decodes too, its HTTP/2 frame and gRPC message counts compared with
// protolab's.

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/pki"
	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/protocol/labrpc"
)

// echoServer is the lab's unary echo.
type echoServer struct {
	labrpc.UnimplementedEchoServer
}

func (echoServer) Say(_ context.Context, in *labrpc.EchoRequest) (*labrpc.EchoReply, error) {
	return &labrpc.EchoReply{Text: in.Text, Seq: in.Seq, App: "test"}, nil
}

// chatServer greets a member (its first message names it) and says back
// every message it sends.
type chatServer struct {
	labrpc.UnimplementedChatServer
}

func (chatServer) Join(s grpc.BidiStreamingServer[labrpc.ChatMessage, labrpc.ChatMessage]) error {
	first, err := s.Recv()
	if err != nil {
		return err
	}
	if err := s.Send(&labrpc.ChatMessage{Kind: labrpc.ChatMessage_GREETING, Members: []string{first.From}}); err != nil {
		return err
	}
	for {
		m, err := s.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := s.Send(&labrpc.ChatMessage{From: first.From, Text: m.Text}); err != nil {
			return err
		}
	}
}

// lab is the test's servers, one per app, on free loopback ports.
type lab struct {
	auth  *pki.Authority
	keys  *wire.KeyLog
	ports wire.PortMap
	addr  map[string]string
	app   map[string]wire.AppRef
}

func protocols(h1, h2, h2c bool) *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(h1)
	p.SetHTTP2(h2)
	p.SetUnencryptedHTTP2(h2c)
	return p
}

// sse is the SSE app: GET /events streams a hello, then each POST
// /events/send as an event.
type sse struct {
	mu   sync.Mutex
	subs []chan string
}

func (s *sse) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/events":
		ch := make(chan string, 16)
		s.mu.Lock()
		s.subs = append(s.subs, ch)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		fmt.Fprint(w, ": hello\n\nevent: hello\ndata: welcome\n\n")
		w.(http.Flusher).Flush()
		for seq := 1; ; seq++ {
			select {
			case <-r.Context().Done():
				return
			case text := <-ch:
				fmt.Fprintf(w, "id: %d\ndata: %s\n\n", seq, text)
				w.(http.Flusher).Flush()
			}
		}
	case r.Method == http.MethodPost && r.URL.Path == "/events/send":
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		for _, ch := range s.subs {
			ch <- string(b)
		}
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		http.NotFound(w, r)
	}
}

func startLab(t *testing.T) *lab {
	t.Helper()
	auth, err := pki.Load(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := &lab{auth: auth, keys: wire.NewKeyLog(nil), ports: wire.PortMap{}, addr: map[string]string{}, app: map[string]wire.AppRef{}}
	listen := func(name string, p protocol.Protocol) net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ref := wire.AppRef{Name: name, Protocol: p}
		l.ports[uint16(ln.Addr().(*net.TCPAddr).Port)] = ref
		l.addr[name], l.app[name] = ln.Addr().String(), ref
		return ln
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.Write(b)
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"proto": r.Proto})
	})
	serve := func(srv *http.Server, ln net.Listener, tls bool) {
		go func() {
			if tls {
				_ = srv.ServeTLS(ln, "", "")
			} else {
				_ = srv.Serve(ln)
			}
		}()
		t.Cleanup(func() { srv.Close() })
	}
	serve(&http.Server{Handler: mux, Protocols: protocols(false, false, true)}, listen("h2c", protocol.H2C), false)
	h2 := &http.Server{Handler: mux, Protocols: protocols(false, true, false), TLSConfig: auth.ServerTLS()}
	serve(h2, listen("h2", protocol.H2), true)
	serve(&http.Server{Handler: &sse{}}, listen("sse", protocol.SSE), false)
	up := websocket.Upgrader{EnableCompression: true}
	serve(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			typ, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(typ, b); err != nil {
				return
			}
		}
	})}, listen("ws", protocol.WS), false)
	for _, name := range []string{"grpc", "grpcs"} {
		var opts []grpc.ServerOption
		p := protocol.GRPC
		if name == "grpcs" {
			opts, p = append(opts, grpc.Creds(credentials.NewTLS(auth.ServerTLS()))), protocol.GRPCS
		}
		srv := grpc.NewServer(opts...)
		labrpc.RegisterEchoServer(srv, echoServer{})
		labrpc.RegisterChatServer(srv, chatServer{})
		ln := listen(name, p)
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(srv.Stop)
	}
	return l
}

// dialer dials an app, as the capture wants it (tapped or not).
type dialer func(app wire.AppRef) func(ctx context.Context, network, addr string) (net.Conn, error)

func plainDial(wire.AppRef) func(context.Context, string, string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext
}

// counts is what a run of the clients sent, per app.
type counts struct {
	h2Messages, grpcMessages, grpcCalls, sseEvents, httpRequests, wsCompressed int
}

const (
	rounds   = 6 // echoes per app
	chatSays = 4 // chat messages after the join
)

func (l *lab) tlsConfig() *tls.Config {
	c := l.auth.ClientTLS("localhost")
	c.KeyLogWriter = l.keys
	return c
}

// drive runs every client against its app and says what it sent.
func (l *lab) drive(t *testing.T, dial dialer) map[string]counts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	want := map[string]counts{}
	for _, name := range []string{"h2c", "h2"} {
		tr := &http.Transport{DialContext: dial(l.app[name]), Protocols: protocols(false, name == "h2", name == "h2c"), TLSClientConfig: l.tlsConfig()}
		scheme := "http"
		if name == "h2" {
			scheme = "https"
		}
		base := scheme + "://" + l.addr[name]
		if name == "h2" {
			base = "https://localhost:" + strings.Split(l.addr[name], ":")[1]
			tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dial(l.app[name])(ctx, network, l.addr[name])
			}
		}
		cl := &http.Client{Transport: tr}
		resp, err := cl.Get(base + "/")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("%s: answered over %s: %s", name, resp.Proto, b)
		}
		for i := range rounds {
			msg := fmt.Sprintf("hello %d", i)
			resp, err := cl.Post(base+"/echo", "text/plain", strings.NewReader(msg))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != msg {
				t.Fatalf("%s: echo %q, want %q", name, b, msg)
			}
		}
		tr.CloseIdleConnections()
		want[name] = counts{h2Messages: 2 * (rounds + 1)}
	}
	for _, name := range []string{"grpc", "grpcs"} {
		creds := insecure.NewCredentials()
		if name == "grpcs" {
			creds = credentials.NewTLS(l.tlsConfig())
		}
		conn, err := grpc.NewClient("passthrough:///"+l.addr[name], grpc.WithTransportCredentials(creds),
			grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return dial(l.app[name])(ctx, "tcp", addr) }))
		if err != nil {
			t.Fatal(err)
		}
		echo := labrpc.NewEchoClient(conn)
		for i := range rounds {
			r, err := echo.Say(ctx, &labrpc.EchoRequest{Text: "hi", Seq: uint64(i + 1)})
			if err != nil || r.Seq != uint64(i+1) {
				t.Fatalf("%s: Say: %v %v", name, r, err)
			}
		}
		chat, err := labrpc.NewChatClient(conn).Join(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := chat.Send(&labrpc.ChatMessage{From: "ann"}); err != nil {
			t.Fatal(err)
		}
		if g, err := chat.Recv(); err != nil || g.Kind != labrpc.ChatMessage_GREETING {
			t.Fatalf("%s: greeting %v %v", name, g, err)
		}
		for i := range chatSays {
			if err := chat.Send(&labrpc.ChatMessage{Text: fmt.Sprint("line ", i)}); err != nil {
				t.Fatal(err)
			}
			if m, err := chat.Recv(); err != nil || m.Text != fmt.Sprint("line ", i) {
				t.Fatalf("%s: chat %v %v", name, m, err)
			}
		}
		chat.CloseSend()
		if _, err := chat.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("%s: chat end: %v", name, err)
		}
		conn.Close()
		want[name] = counts{grpcMessages: 2*rounds + 2*(chatSays+1), grpcCalls: rounds + 1}
	}
	// SSE: a stream, and posts whose events come back on it.
	{
		tr := &http.Transport{DialContext: dial(l.app["sse"])}
		cl := &http.Client{Transport: tr}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+l.addr["sse"]+"/events", nil)
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		events := bufio.NewReader(resp.Body)
		readEvent := func() string {
			var data string
			for {
				line, err := events.ReadString('\n')
				if err != nil {
					t.Fatalf("sse: %v", err)
				}
				if line == "\n" && data != "" {
					return data
				}
				if d, ok := strings.CutPrefix(line, "data: "); ok {
					data = strings.TrimSuffix(d, "\n")
				}
			}
		}
		if ev := readEvent(); ev != "welcome" {
			t.Fatalf("sse: first event %q", ev)
		}
		for i := range rounds {
			msg := fmt.Sprint("event ", i)
			r, err := cl.Post("http://"+l.addr["sse"]+"/events/send", "text/plain", strings.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			if ev := readEvent(); ev != msg {
				t.Fatalf("sse: event %q, want %q", ev, msg)
			}
		}
		resp.Body.Close()
		tr.CloseIdleConnections()
		want["sse"] = counts{sseEvents: rounds + 1, httpRequests: rounds + 1}
	}
	// WebSocket with permessage-deflate.
	{
		d := websocket.Dialer{EnableCompression: true, NetDialContext: dial(l.app["ws"])}
		c, resp, err := d.DialContext(ctx, "ws://"+l.addr["ws"]+"/echo", nil)
		if err != nil {
			t.Fatal(err)
		}
		if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
			t.Fatalf("ws: no compression agreed (%q)", ext)
		}
		for i := range rounds {
			msg := strings.Repeat(fmt.Sprintf("compress me %d — κόσμε; ", i), 20)
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				t.Fatal(err)
			}
			if _, b, err := c.ReadMessage(); err != nil || string(b) != msg {
				t.Fatalf("ws: echo %q %v", b, err)
			}
		}
		c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				break
			}
		}
		c.Close()
		want["ws"] = counts{wsCompressed: 2 * rounds}
	}
	return want
}

// check compares what the decoder counted with what the clients sent, and
// looks at the records' content.
func (l *lab) check(t *testing.T, s *wire.Store, want map[string]counts) {
	t.Helper()
	for name, w := range want {
		cn := s.Counters(name)
		t.Logf("%s: %d frames, %d h2 messages, %d gRPC, %d events, %d compressed (%d → %d bytes), %d errors",
			name, cn.H2Frames, cn.H2Messages, cn.GRPCMessages, cn.SSEEvents, cn.WSCompressed, cn.WSCompressedBytes, cn.WSInflated, cn.Errors)
		if cn.Errors != 0 {
			for _, r := range s.All(name) {
				if r.Kind == wire.KindError {
					t.Errorf("%s: %s", name, r.Err)
				}
			}
		}
		switch {
		case w.h2Messages > 0:
			if cn.H2Messages != uint64(w.h2Messages) || cn.Messages != cn.H2Messages || cn.H2Frames == 0 {
				t.Errorf("%s: %d HTTP/2 messages (%d frames), want %d", name, cn.H2Messages, cn.H2Frames, w.h2Messages)
			}
		case w.grpcMessages > 0:
			if cn.GRPCMessages != uint64(w.grpcMessages) || cn.Messages != cn.GRPCMessages {
				t.Errorf("%s: %d gRPC messages, want %d", name, cn.GRPCMessages, w.grpcMessages)
			}
		case w.sseEvents > 0:
			if cn.SSEEvents != uint64(w.sseEvents) || cn.HTTPReqs != uint64(w.httpRequests) || cn.Messages != uint64(w.sseEvents+w.httpRequests) {
				t.Errorf("%s: %d events, %d requests, %d messages; want %d, %d", name, cn.SSEEvents, cn.HTTPReqs, cn.Messages, w.sseEvents, w.httpRequests)
			}
		case w.wsCompressed > 0:
			if cn.WSCompressed != uint64(w.wsCompressed) || cn.WSInflated <= cn.WSCompressedBytes {
				t.Errorf("%s: %d compressed messages (%d → %d bytes), want %d", name, cn.WSCompressed, cn.WSCompressedBytes, cn.WSInflated, w.wsCompressed)
			}
		}
	}
	// What the records say.
	find := func(app string, keep func(r *wire.Record) bool) *wire.Record {
		for _, r := range s.All(app) {
			if keep(&r) {
				return &r
			}
		}
		return nil
	}
	for _, name := range []string{"h2", "h2c"} {
		if r := find(name, func(r *wire.Record) bool { return r.Field("method") == "POST" }); r == nil || r.Field("path") != "/echo" || r.Field("body") != "hello 0" {
			t.Errorf("%s: no POST /echo message with its body: %v", name, r)
		} else if name == "h2" && !r.Decrypted {
			t.Errorf("h2: the request was not decrypted")
		}
	}
	for _, name := range []string{"grpc", "grpcs"} {
		say := find(name, func(r *wire.Record) bool {
			return r.Layer == "grpc" && strings.Contains(r.Text(), `protolab.EchoRequest{text="hi" seq=3}`)
		})
		status := find(name, func(r *wire.Record) bool { return r.Field("grpc_status_name") == "OK" })
		join := find(name, func(r *wire.Record) bool { return strings.Contains(r.Text(), `kind=GREETING members=["ann"]`) })
		if say == nil || status == nil || join == nil {
			t.Errorf("%s: records of Say %v, a status %v, the greeting %v", name, say != nil, status != nil, join != nil)
		}
	}
	if r := find("ws", func(r *wire.Record) bool { return r.Field("inflated_bytes") != "" }); r == nil || !strings.Contains(r.Field("text"), "compress me 0 — κόσμε") {
		t.Errorf("ws: no inflated message record: %v", r)
	}
}

// TestRealTrafficSocketLevel: the clients' connections tapped (no root
// needed).
func TestRealTrafficSocketLevel(t *testing.T) {
	l := startLab(t)
	c, err := capture.Start(nil, capture.ModeSocket, capture.Options{Ports: l.ports, Keys: l.keys, Store: wire.NewStore(1 << 15)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tap := func(app wire.AppRef) func(context.Context, string, string) (net.Conn, error) {
		return func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return c.Tap(app, conn), nil
		}
	}
	want := l.drive(t, tap)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Sync(ctx, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	c.Stop()
	l.check(t, c.Store(), want)
}

// TestSSEEventsShowAsTheyArrive: while the stream is open, its response
// and each event already are records.
func TestSSEEventsShowAsTheyArrive(t *testing.T) {
	l := startLab(t)
	c, err := capture.Start(nil, capture.ModeSocket, capture.Options{Ports: l.ports})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return c.Tap(l.app["sse"], conn), nil
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + l.addr["sse"] + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for line := ""; line != "data: welcome\n"; {
		if line, err = br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Sync(ctx, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var streaming, event bool
	for _, r := range c.Store().All("sse") {
		streaming = streaming || r.Field("streaming") == "true"
		event = event || (r.Layer == "sse" && r.Field("data") == "welcome")
	}
	if !streaming || !event {
		t.Errorf("with the stream still open: response record %v, event record %v", streaming, event)
	}
}

// TestRealTrafficTsharkCounts captures the same traffic live on lo and
// has tshark decode the export: its HTTP/2 frames and gRPC messages per
// app equal protolab's (TLS decrypted with the key log).
func TestRealTrafficTsharkCounts(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "tshark")
	l := startLab(t)
	var ports []int
	for p := range l.ports {
		ports = append(ports, int(p))
	}
	src, err := capture.OpenLive("lo", ports)
	if err != nil {
		t.Fatal(err)
	}
	c, err := capture.Start(src, capture.ModeLive, capture.Options{Ports: l.ports, Keys: l.keys, SpoolDir: t.TempDir(), Store: wire.NewStore(1 << 15)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := l.drive(t, plainDial)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.Sync(ctx, 500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.Drops() != 0 {
		t.Fatalf("drops: %+v", st)
	}
	l.check(t, c.Store(), want)

	dir := t.TempDir()
	file := filepath.Join(dir, "lab.pcapng")
	if _, err := c.Export(file); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "keys")
	if err := os.WriteFile(keyFile, l.keys.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-r", file, "-n", "-o", "tls.keylog_file:" + keyFile}
	for port, app := range l.ports {
		switch {
		case app.Protocol.Secure():
			args = append(args, "-d", fmt.Sprintf("tcp.port==%d,tls", port))
		case app.Protocol.HTTP2():
			args = append(args, "-d", fmt.Sprintf("tcp.port==%d,http2", port))
		}
	}
	args = append(args, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
		"-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "http2.type", "-e", "grpc.message_length")
	out := testenv.Tshark(t, args...)
	frames, grpcs := map[string]int{}, map[string]int{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 4 {
			continue
		}
		var app string
		for _, s := range f[:2] {
			if p, err := strconv.Atoi(s); err == nil {
				if a, ok := l.ports[uint16(p)]; ok {
					app = a.Name
				}
			}
		}
		count := func(s string) int {
			if s == "" {
				return 0
			}
			return len(strings.Split(s, ","))
		}
		frames[app] += count(f[2])
		grpcs[app] += count(f[3])
	}
	for _, name := range []string{"h2c", "h2", "grpc", "grpcs"} {
		cn := c.Store().Counters(name)
		t.Logf("%s: tshark %d HTTP/2 frames, %d gRPC messages; protolab %d and %d", name, frames[name], grpcs[name], cn.H2Frames, cn.GRPCMessages)
		if frames[name] == 0 || uint64(frames[name]) != cn.H2Frames {
			t.Errorf("%s: tshark counts %d HTTP/2 frames, protolab %d", name, frames[name], cn.H2Frames)
		}
		if uint64(grpcs[name]) != cn.GRPCMessages {
			t.Errorf("%s: tshark counts %d gRPC messages, protolab %d", name, grpcs[name], cn.GRPCMessages)
		}
	}
}
