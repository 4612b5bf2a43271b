package webapp

import (
	"context"
	"crypto/tls"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/protocol/rfc6455"
)

//go:embed chat.html
var chatPage []byte

// maxHTTPBody bounds POST /echo bodies.
const maxHTTPBody = 1 << 20

// Server is one lab application. Create it with New, run it with Serve and
// stop it with Shutdown.
type Server struct {
	cfg  Config
	log  *slog.Logger
	srv  *http.Server
	room *room[[]byte] // the chat-ws room (websocket.go)
	// metrics are the app's own (GET /metrics), in a registry of its own.
	metrics *metrics

	mu       sync.Mutex
	conns    liveSet[*wsConn, chan struct{}] // live WebSocket peers → closed when their handler ends
	closing  bool
	shutdown chan struct{}

	// Set by an intermediary kind (front.go, balancer.go, wsproxy.go):
	// serve replaces the HTTP server for a TCP-level kind; healthy, when
	// set, decides GET /health; stops run at Shutdown, before the HTTP
	// server's own.
	serve   func(l net.Listener) error
	healthy func() error
	stops   []func(ctx context.Context)
}

// New builds a server from cfg. The logger may be nil.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		cfg:      cfg,
		log:      log.With("app", cfg.Name),
		room:     newRoom[[]byte](),
		shutdown: make(chan struct{}),
		metrics:  newMetrics(cfg),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.health)
	if k, _ := protocol.LookupKind(cfg.Kind); k.Metrics {
		mux.Handle("GET "+protocol.MetricsPath, s.metrics.handler(s))
	}
	kindRoutes[cfg.Kind](s, mux)
	s.srv = &http.Server{
		Handler:           s.metrics.instrument(mux),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.srv.Protocols = httpProtocols(cfg.Protocol)
	if cfg.Protocol.Secure() {
		s.srv.TLSConfig = cfg.TLS.Clone()
		if len(s.srv.TLSConfig.NextProtos) == 0 {
			s.srv.TLSConfig.NextProtos = nextProtos(cfg.Protocol)
		}
	}
	if setup := kindServe[cfg.Kind]; setup != nil {
		setup(s)
	}
	return s, nil
}

// httpProtocols is what the app's HTTP server speaks, from the protocol's
// descriptor: HTTP/1.1 always (the lab health-checks every app with an
// HTTP/1.1 GET /health, and WebSocket upgrades are HTTP/1.1), and HTTP/2
// when the protocol is HTTP/2 — over TLS by ALPN, or in clear text with prior
// knowledge (h2c). (A gRPC app sends its HTTP/2 connections to its gRPC
// server before they reach this one, and sets HTTP/1.1 only: grpc.go.)
func httpProtocols(p protocol.Protocol) *http.Protocols {
	var ps http.Protocols
	ps.SetHTTP1(true)
	if p.HTTP2() {
		if p.Secure() {
			ps.SetHTTP2(true)
		} else {
			ps.SetUnencryptedHTTP2(true)
		}
	}
	return &ps
}

// nextProtos is what the app's TLS server offers by ALPN: the protocol's own
// (its descriptor's ALPN, h2 for h2 and grpcs) and http/1.1 after them, so
// that an HTTP/1.1 client (the lab's health checks, its /metrics scrapes)
// is still served.
func nextProtos(p protocol.Protocol) []string {
	out := append([]string(nil), p.Desc().ALPN...)
	if !slices.Contains(out, "http/1.1") {
		out = append(out, "http/1.1")
	}
	return out
}

// kindServe sets up, for a kind that is not an HTTP server (a TLS front
// works on TCP connections), how it serves its listener.
var kindServe = map[string]func(s *Server){
	protocol.KindTLSFront: setupFront,
	protocol.KindGRPC:     setupGRPC,
}

// kindRoutes sets up, for each app kind, the routes its server answers
// (besides GET /health, which every kind has).
var kindRoutes = map[string]func(s *Server, mux *http.ServeMux){
	protocol.KindEchoHTTP: func(s *Server, mux *http.ServeMux) {
		mux.HandleFunc("GET /{$}", s.index)
		mux.HandleFunc("POST /echo", s.httpEcho)
	},
	protocol.KindChatWS: func(s *Server, mux *http.ServeMux) {
		mux.HandleFunc("GET /{$}", s.page)
		mux.HandleFunc("GET /echo", s.wsEcho)
		mux.HandleFunc("GET /chat/{name}", s.wsChat)
		mux.HandleFunc("GET /chat", s.chatMembers)
	},
	protocol.KindTLSFront: func(*Server, *http.ServeMux) {}, // not HTTP: see kindServe
	protocol.KindBalancer: routeBalancer,
	protocol.KindWSProxy:  routeWSProxy,
	protocol.KindTerm:     routeTerm,
	protocol.KindSSE:      routeSSE,
	protocol.KindGRPC:     routeGRPC,
}

// Config returns the effective configuration (defaults applied).
func (s *Server) Config() Config { return s.cfg }

// Handler returns the server's HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.srv.Handler }

// Serve accepts connections on l until Shutdown. For https and wss it wraps l
// in TLS. It returns nil after a clean Shutdown.
func (s *Server) Serve(l net.Listener) error {
	if s.serve != nil {
		s.log.Info("serving", "kind", s.cfg.Kind, "protocol", s.cfg.Protocol, "addr", l.Addr().String())
		return s.serve(l)
	}
	if s.cfg.Protocol.Secure() {
		l = tls.NewListener(l, s.srv.TLSConfig)
	}
	s.log.Info("serving", "kind", s.cfg.Kind, "protocol", s.cfg.Protocol, "addr", l.Addr().String())
	err := s.srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("%s server on %s: %w", s.cfg.Protocol, l.Addr(), err)
}

// Shutdown stops accepting connections, sends close 1001 (going away) to every
// WebSocket peer, waits for them to go (bounded by ShutdownGrace and ctx) and
// then waits for in-flight HTTP requests.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	first := !s.closing
	if first {
		s.closing = true
		close(s.shutdown)
	}
	stops := s.stops
	s.mu.Unlock()
	if first {
		for _, stop := range stops {
			stop(ctx)
		}
	}
	var peers []chan struct{}
	s.conns.shutDown(func(c *wsConn, done chan struct{}) {
		_ = c.SendClose(rfc6455.CloseGoingAway, "server shutting down", time.Now().Add(time.Second))
		peers = append(peers, done)
	})

	grace := time.NewTimer(s.cfg.ShutdownGrace)
	defer grace.Stop()
wait:
	for _, done := range peers {
		select {
		case <-done:
		case <-grace.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	// Hijacked connections are not tracked by http.Server: close what is left.
	s.conns.shutDown(func(c *wsConn, _ chan struct{}) { _ = c.Close() })
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("%s server shutdown: %w", s.cfg.Protocol, err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Info is the body of GET / on the http and https apps.
type Info struct {
	App      string `json:"app"`
	Protocol string `json:"protocol"`
	Version  string `json:"version"`
}

func (s *Server) index(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Info{App: s.cfg.Name, Protocol: string(s.cfg.Protocol), Version: Version})
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	if s.healthy != nil {
		if err := s.healthy(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unhealthy", "app": s.cfg.Name, "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "app": s.cfg.Name})
}

func (s *Server) page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(chatPage)
}

func (s *Server) httpEcho(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHTTPBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("body larger than %d bytes", maxHTTPBody), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(body)
}
