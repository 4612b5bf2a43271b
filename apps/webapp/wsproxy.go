package webapp

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/protocol/labtoken"
)

// wsProxy is a token-checked WebSocket proxy (kind ws-proxy): a client asks
// for /<token>/<target>/<path>; the proxy checks the token (signed with the
// lab's secret, protocol/labtoken) names the target, dials the target's
// /<path> (default /echo), and only then upgrades the client and relays
// every message and control frame both ways, close codes included. Every
// refusal is answered before the upgrade — 401 for a malformed, forged or
// expired token, 403 for a target the token does not allow, 404 for a target
// the proxy does not know, 502 when the target is down or refuses — and
// logged with its reason.
type wsProxy struct {
	s       *Server
	targets map[string]Upstream
	up      websocket.Upgrader

	relays liveSet[*websocket.Conn, struct{}] // client sides
}

func routeWSProxy(s *Server, mux *http.ServeMux) {
	p := &wsProxy{s: s, targets: map[string]Upstream{}}
	for _, u := range s.cfg.Upstreams {
		p.targets[u.Name] = u
	}
	p.up = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		CheckOrigin:      s.checkOrigin,
	}
	mux.HandleFunc("GET /{token}/{target}", p.serve)
	mux.HandleFunc("GET /{token}/{target}/{path...}", p.serve)
	s.stops = append(s.stops, p.stop)
}

// refuse answers an HTTP error before any upgrade and logs why.
func (p *wsProxy) refuse(w http.ResponseWriter, r *http.Request, status int, target, why string) {
	p.s.log.Warn("proxy refused", "status", status, "target", target, "client", r.RemoteAddr, "reason", why)
	http.Error(w, why, status)
}

func (p *wsProxy) serve(w http.ResponseWriter, r *http.Request) {
	target := r.PathValue("target")
	if _, err := labtoken.Check(p.s.cfg.TokenSecret, r.PathValue("token"), target, time.Now()); err != nil {
		p.refuse(w, r, labtoken.Status(err), target, err.Error())
		return
	}
	up, ok := p.targets[target]
	if !ok {
		p.refuse(w, r, http.StatusNotFound, target, "this proxy has no target "+target+" (it has "+p.names()+")")
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		p.refuse(w, r, http.StatusBadRequest, target, "want a WebSocket upgrade request")
		return
	}
	if !p.s.checkOrigin(r) {
		p.refuse(w, r, http.StatusForbidden, target, "origin "+r.Header.Get("Origin")+" not allowed")
		return
	}
	path := "/" + r.PathValue("path")
	if path == "/" {
		path = "/echo"
	}
	u := url.URL{Scheme: "ws", Host: up.Addr, Path: path, RawQuery: r.URL.RawQuery}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: websocket.Subprotocols(r)}
	if up.Protocol.Secure() {
		u.Scheme = "wss"
		name := up.ServerName
		if name == "" {
			name = "localhost"
		}
		d.TLSClientConfig = &tls.Config{RootCAs: p.s.cfg.RootCAs, ServerName: name, MinVersion: tls.VersionTLS12,
			NextProtos: []string{"http/1.1"}, KeyLogWriter: p.s.cfg.UpstreamKeyLog}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	inner, res, err := d.DialContext(ctx, u.String(), nil)
	cancel()
	if err != nil {
		why := "target " + target + " is down: " + err.Error()
		if res != nil {
			why = "target " + target + " refused the upgrade: " + res.Status
		}
		p.refuse(w, r, http.StatusBadGateway, target, why)
		return
	}
	var h http.Header
	if sp := inner.Subprotocol(); sp != "" {
		h = http.Header{"Sec-Websocket-Protocol": {sp}}
	}
	outer, err := p.up.Upgrade(w, r, h)
	if err != nil { // the upgrader has answered the client
		inner.Close()
		p.s.log.Info("client upgrade failed", "target", target, "err", err)
		return
	}
	outer.SetReadLimit(p.s.cfg.ReadLimit)
	inner.SetReadLimit(p.s.cfg.ReadLimit)
	if !p.track(outer) {
		p.closeClient(outer, websocket.CloseGoingAway, "proxy shutting down")
		outer.Close()
		inner.Close()
		return
	}
	defer p.untrack(outer)
	p.s.log.Debug("relaying", "target", target, "client", r.RemoteAddr, "path", path)
	relay(outer, inner, p.s.metrics)
}

// closeClient sends a client a Close frame, counted as sent when it went.
func (p *wsProxy) closeClient(c *websocket.Conn, code int, reason string) {
	if c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second)) == nil {
		p.s.metrics.closeCode(protocol.MetricSent, code)
	}
}

func (p *wsProxy) names() string {
	var out []string
	for _, u := range p.s.cfg.Upstreams {
		out = append(out, u.Name)
	}
	return strings.Join(out, ", ")
}

func (p *wsProxy) track(c *websocket.Conn) bool { return p.relays.add(c, struct{}{}) }

func (p *wsProxy) untrack(c *websocket.Conn) { p.relays.remove(c) }

// stop sends every client close 1001 (the relay then ends both sides).
func (p *wsProxy) stop(context.Context) {
	p.relays.shutDown(func(c *websocket.Conn, _ struct{}) {
		p.closeClient(c, websocket.CloseGoingAway, "proxy shutting down")
		_ = c.Close()
	})
}

// relay copies messages and control frames between a (the client's side)
// and b (the target's) until either side closes; a close frame is passed on
// with its code and reason. m counts the client side's messages and Close
// frames.
func relay(a, b *websocket.Conn, m *metrics) {
	var wa, wb sync.Mutex // gorilla allows one writer at a time
	forwardControl := func(to *websocket.Conn, mu *sync.Mutex, typ int) func(string) error {
		return func(data string) error {
			mu.Lock()
			defer mu.Unlock()
			err := to.WriteControl(typ, []byte(data), time.Now().Add(5*time.Second))
			if errors.Is(err, websocket.ErrCloseSent) {
				return nil
			}
			return err
		}
	}
	a.SetPingHandler(forwardControl(b, &wb, websocket.PingMessage))
	a.SetPongHandler(forwardControl(b, &wb, websocket.PongMessage))
	b.SetPingHandler(forwardControl(a, &wa, websocket.PingMessage))
	b.SetPongHandler(forwardControl(a, &wa, websocket.PongMessage))
	// The client's Close is answered as gorilla's own handler does (the
	// code, no reason), and both frames are counted.
	a.SetCloseHandler(func(code int, _ string) error {
		m.closeCode(protocol.MetricReceived, code)
		if a.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second)) == nil {
			m.closeCode(protocol.MetricSent, code)
		}
		return nil
	})
	done := make(chan struct{}, 2)
	copyOne := func(dst, src *websocket.Conn, mu *sync.Mutex) {
		defer func() { done <- struct{}{} }()
		for {
			typ, msg, err := src.ReadMessage()
			if err != nil {
				code, text := websocket.CloseAbnormalClosure, ""
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					code, text = ce.Code, ce.Text
				}
				mu.Lock()
				var werr error = errors.New("no close to pass on")
				if code == websocket.CloseNoStatusReceived {
					werr = dst.WriteControl(websocket.CloseMessage, []byte{}, time.Now().Add(time.Second))
				} else if code != websocket.CloseAbnormalClosure {
					werr = dst.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
				}
				mu.Unlock()
				if dst == a && werr == nil {
					m.closeCode(protocol.MetricSent, code)
				}
				// Give the other side a moment to answer the close, then
				// end both.
				time.AfterFunc(time.Second, func() { dst.Close(); src.Close() })
				return
			}
			if src == a {
				m.messageIn()
			}
			mu.Lock()
			err = dst.WriteMessage(typ, msg)
			mu.Unlock()
			if err != nil {
				src.Close()
				return
			}
			if dst == a {
				m.messageOut()
			}
		}
	}
	go copyOne(b, a, &wb)
	go copyOne(a, b, &wa)
	<-done
	<-done
	a.Close()
	b.Close()
}
