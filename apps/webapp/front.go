package webapp

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// front is a TLS front (kind tls-front): it terminates TLS with the app's
// certificate and copies the plain bytes to and from its one upstream,
// connection for connection, like stunnel. It does not read what it
// carries, so anything over TLS passes (HTTP, a WebSocket upgrade and its
// frames).
type front struct {
	s  *Server
	up Upstream

	mu    sync.Mutex
	l     net.Listener
	conns liveSet[net.Conn, struct{}]
	wg    sync.WaitGroup
}

func setupFront(s *Server) {
	f := &front{s: s, up: s.cfg.Upstreams[0]}
	s.serve = f.serveListener
	s.stops = append(s.stops, f.stop)
}

func (f *front) serveListener(l net.Listener) error {
	f.mu.Lock()
	f.l = l
	f.mu.Unlock()
	for {
		c, err := l.Accept()
		if err != nil {
			select {
			case <-f.s.shutdown:
				f.wg.Wait()
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		if !f.track(c) {
			c.Close()
			continue
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer f.untrack(c)
			f.handle(c)
		}()
	}
}

func (f *front) track(c net.Conn) bool { return f.conns.add(c, struct{}{}) }

func (f *front) untrack(c net.Conn) {
	f.conns.remove(c)
	c.Close()
}

// stop closes the listener and every connection (their clients see the
// TCP connection end, as behind stunnel).
func (f *front) stop(context.Context) {
	f.mu.Lock()
	if f.l != nil {
		f.l.Close()
	}
	f.mu.Unlock()
	f.conns.shutDown(func(c net.Conn, _ struct{}) { c.Close() })
}

// handle is one client: the TLS handshake within the timeout, then the
// upstream dialled and the bytes copied both ways until both sides are done.
func (f *front) handle(raw net.Conn) {
	log := f.s.log.With("client", raw.RemoteAddr().String())
	tc := tls.Server(raw, f.s.srv.TLSConfig)
	ctx, cancel := context.WithTimeout(context.Background(), f.s.cfg.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			log.Warn("TLS handshake not completed in time: connection closed", "timeout", f.s.cfg.HandshakeTimeout)
		} else {
			log.Info("TLS handshake failed", "err", err)
		}
		return
	}
	var d net.Dialer
	dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
	up, err := d.DialContext(dctx, "tcp", f.up.Addr)
	dcancel()
	if err != nil {
		log.Warn("upstream unreachable: connection closed", "upstream", f.up.Name, "addr", f.up.Addr, "err", err)
		return
	}
	if !f.track(up) {
		up.Close()
		return
	}
	defer f.untrack(up)
	log.Debug("relaying", "upstream", f.up.Name, "inside", up.LocalAddr().String())
	done := make(chan struct{}, 2)
	go func() { pipe(up, tc); done <- struct{}{} }()
	go func() { pipe(tc, up); done <- struct{}{} }()
	<-done
	<-done
}

// halfCloser is a connection whose sending side can be closed alone.
type halfCloser interface{ CloseWrite() error }

// pipe copies src to dst, then closes dst's sending side so the far end
// sees the end of this direction (and the other direction goes on).
func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	if hc, ok := dst.(halfCloser); ok {
		_ = hc.CloseWrite()
	} else {
		_ = dst.Close()
	}
}
