// Package appmain is the lab's web-app command: one app kind serving one
// protocol, configured by flags or the environment (how containers are
// configured). Both the stand-alone protolab-app (./apps) and protolab-tui
// itself (its "app" subcommand, or when run under the name protolab-app, as
// in the lab's FROM scratch image) run it, so an installed protolab-tui
// carries the apps it deploys.
package appmain

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/protolab/protolab-tui/apps/webapp"
	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/protocol/labtoken"
)

// env returns the environment variable's value or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// Run runs the app the flags (or the environment) name until SIGINT or
// SIGTERM.
func Run(args []string) error { return run(args, nil) }

// FlagSet is the app's flags, unparsed (what protolab-tui's completion
// scripts offer for `app`).
func FlagSet() *flag.FlagSet {
	var fs *flag.FlagSet
	_ = run(nil, func(f *flag.FlagSet) { fs = f })
	return fs
}

// run is Run, or when describe is set, hands it the flag set instead.
func run(args []string, describe func(*flag.FlagSet)) error {
	fs := flag.NewFlagSet("protolab-app", flag.ContinueOnError)
	mode := fs.String("mode", env("PROTOLAB_MODE", "http"), "protocol to serve: "+protocol.Names()+" (PROTOLAB_MODE)")
	kind := fs.String("kind", env("PROTOLAB_KIND", ""), "the server to run: "+protocol.KindNames()+" (PROTOLAB_KIND; default: the protocol's own)")
	addr := fs.String("addr", env("PROTOLAB_ADDR", ""), "listen address (PROTOLAB_ADDR; default: the protocol's own port, :3000 for http … :3008 for grpcs)")
	name := fs.String("name", env("PROTOLAB_NAME", ""), "application name reported by GET / (PROTOLAB_NAME)")
	cert := fs.String("cert", env("PROTOLAB_TLS_CERT", ""), "PEM certificate chain for the TLS protocols: https, wss, h2, grpcs (PROTOLAB_TLS_CERT)")
	key := fs.String("key", env("PROTOLAB_TLS_KEY", ""), "PEM private key for the TLS protocols (PROTOLAB_TLS_KEY)")
	readLimit := fs.String("read-limit", env("PROTOLAB_READ_LIMIT", strconv.Itoa(webapp.DefaultReadLimit)), "largest WebSocket message in bytes; larger ones are closed with 1009 (PROTOLAB_READ_LIMIT)")
	origins := fs.String("allowed-origins", env("PROTOLAB_ALLOWED_ORIGINS", ""), "comma-separated extra browser origins allowed to open WebSockets, or * (PROTOLAB_ALLOWED_ORIGINS)")
	logLevel := fs.String("log-level", env("PROTOLAB_LOG_LEVEL", "info"), "debug, info, warn or error (PROTOLAB_LOG_LEVEL)")
	upstreams := fs.String("upstream", env("PROTOLAB_UPSTREAMS", ""), "an intermediary's upstreams, or an sse app's chat-ws feed: name=protocol://host:port, comma-separated (PROTOLAB_UPSTREAMS)")
	affinity := fs.String("affinity", env("PROTOLAB_AFFINITY", ""), "a balancer's session affinity: none or cookie (PROTOLAB_AFFINITY)")
	handshake := fs.String("handshake-timeout", env("PROTOLAB_HANDSHAKE_TIMEOUT", "10s"), "a tls-front's bound on a client's TLS handshake, and a grpc app's on telling gRPC from HTTP/1.1 on a new connection (PROTOLAB_HANDSHAKE_TIMEOUT)")
	health := fs.String("health-interval", env("PROTOLAB_HEALTH_INTERVAL", "1s"), "how often a balancer checks its replicas (PROTOLAB_HEALTH_INTERVAL)")
	caFile := fs.String("ca", env("PROTOLAB_CA", ""), "PEM CA certificate that verifies TLS upstreams (PROTOLAB_CA)")
	secretFile := fs.String("secret-file", env("PROTOLAB_SECRET_FILE", ""), "the lab secret a ws-proxy checks tokens with, mode 0600 (PROTOLAB_SECRET_FILE)")
	compression := fs.String("compression", env("PROTOLAB_COMPRESSION", protocol.CompressionNone), "how a WebSocket app compresses messages: none or deflate (permessage-deflate) (PROTOLAB_COMPRESSION)")
	termContainer := fs.String("term-container", env("PROTOLAB_TERM_CONTAINER", ""), "a term app's shells run in this container (name or ID) as execs through the Docker Engine API, instead of on a pty of the app's own (PROTOLAB_TERM_CONTAINER)")
	termEngine := fs.String("term-engine", env("PROTOLAB_TERM_ENGINE", ""), "the Docker Engine a term app with --term-container talks to, e.g. unix:///var/run/docker.sock (PROTOLAB_TERM_ENGINE; default DOCKER_HOST, else the default socket)")
	termUser := fs.String("term-user", env("PROTOLAB_TERM_USER", "65534:65534"), "who a term app's exec'd shells run as in the container; empty: the container's user (PROTOLAB_TERM_USER)")
	keyLog := fs.Bool("keylog-stderr", env("PROTOLAB_KEYLOG_STDERR", "") == "1", "write the TLS secrets of connections to upstreams on standard error, each line prefixed "+strconv.Quote(protocol.KeyLogPrefix)+", for the lab's capture to decrypt (PROTOLAB_KEYLOG_STDERR=1)")
	if describe != nil {
		describe(fs)
		return nil
	}
	if err := fs.Parse(args); err != nil {
		return err
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: %w", *logLevel, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	m, err := protocol.Parse(*mode)
	if err != nil {
		return fmt.Errorf("--mode: %w", err)
	}
	limit, err := strconv.ParseInt(*readLimit, 10, 64)
	if err != nil || limit <= 0 {
		return fmt.Errorf("--read-limit %q: want a positive number of bytes", *readLimit)
	}
	cfg := webapp.Config{Protocol: m, Kind: *kind, Name: *name, ReadLimit: limit, Affinity: *affinity, Compression: *compression}
	if cfg.Upstreams, err = webapp.ParseUpstreams(*upstreams); err != nil {
		return fmt.Errorf("--upstream: %w", err)
	}
	if cfg.HandshakeTimeout, err = time.ParseDuration(*handshake); err != nil || cfg.HandshakeTimeout <= 0 {
		return fmt.Errorf("--handshake-timeout %q: want a positive duration such as 10s", *handshake)
	}
	if cfg.HealthInterval, err = time.ParseDuration(*health); err != nil || cfg.HealthInterval <= 0 {
		return fmt.Errorf("--health-interval %q: want a positive duration such as 1s", *health)
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca %s: no PEM certificate in it", *caFile)
		}
	}
	if *termContainer != "" {
		cfg.TermExec = &webapp.TermExec{Engine: *termEngine, Container: *termContainer, User: *termUser}
	}
	if *keyLog {
		cfg.UpstreamKeyLog = prefixedLines{w: os.Stderr, prefix: protocol.KeyLogPrefix}
	}
	if *secretFile != "" {
		if cfg.TokenSecret, err = labtoken.ReadSecret(*secretFile); err != nil {
			return fmt.Errorf("--secret-file: %w", err)
		}
	}
	for _, o := range strings.Split(*origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
		}
	}
	if m.Secure() {
		if *cert == "" || *key == "" {
			return fmt.Errorf("%s mode needs --cert and --key (PEM files); protolab-tui writes lab-CA-signed ones to its state directory under pki/", m)
		}
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			return fmt.Errorf("loading TLS certificate %s and key %s: %w", *cert, *key, err)
		}
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	if *addr == "" {
		*addr = fmt.Sprintf(":%d", m.DefaultPort())
	}

	srv, err := webapp.New(cfg, log)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w (choose another address with --addr)", *addr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return <-errc
}

// prefixedLines writes each Write (crypto/tls writes one key log line per
// call) as one write of prefix and the line, so lines from several
// connections never interleave.
type prefixedLines struct {
	w      io.Writer
	prefix string
}

func (p prefixedLines) Write(b []byte) (int, error) {
	if _, err := p.w.Write(append([]byte(p.prefix), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}
