package webapp

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/protocol/rfc6455"
)

// maxNameLen bounds chat names.
const maxNameLen = 32

// checkOrigin allows requests without an Origin header (non-browser clients),
// same-origin requests and origins on the configured allow list.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, allowed := range s.cfg.AllowedOrigins {
		if allowed == "*" || strings.EqualFold(strings.TrimRight(allowed, "/"), origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if !strings.EqualFold(u.Host, r.Host) {
		s.log.Warn("websocket origin refused", "origin", origin, "host", r.Host)
		return false
	}
	return true
}

// track registers a live WebSocket connection so Shutdown can send it close
// 1001. It returns false when the server is shutting down.
func (s *Server) track(c *wsConn) (done chan struct{}, ok bool) {
	done = make(chan struct{})
	return done, s.conns.add(c, done)
}

func (s *Server) untrack(c *wsConn, done chan struct{}) {
	s.conns.remove(c)
	close(done)
	_ = c.Close()
}

// keepAlive arms the read deadline, extends it on every pong, and pings the
// peer every PingInterval until stop is closed. A peer that stops answering
// makes the next read fail with a timeout.
func (s *Server) keepAlive(c *wsConn, stop <-chan struct{}) {
	wait := 2 * s.cfg.PingInterval
	_ = c.nc.SetReadDeadline(time.Now().Add(wait))
	c.onPong = func() { _ = c.nc.SetReadDeadline(time.Now().Add(wait)) }
	go func() {
		t := time.NewTicker(s.cfg.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := c.Ping(time.Now().Add(5 * time.Second)); err != nil {
					return
				}
			}
		}
	}()
}

// handshake answers the opening handshake (RFC 6455 §4.2): 400 for a
// request that is no WebSocket handshake, 405 for a method other than GET,
// 426 with the version spoken for a version other than 13, 403 for a
// foreign origin; else 101 and the connection is the caller's.
func (s *Server) handshake(w http.ResponseWriter, r *http.Request) (*wsConn, error) {
	refuse := func(status int, why string) (*wsConn, error) {
		http.Error(w, why, status)
		return nil, errors.New(why)
	}
	if !hasToken(r.Header, "Connection", "upgrade") || !hasToken(r.Header, "Upgrade", "websocket") {
		return refuse(http.StatusBadRequest, "not a WebSocket handshake: the request needs Connection: Upgrade and Upgrade: websocket")
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		return refuse(http.StatusMethodNotAllowed, "a WebSocket handshake is a GET request")
	}
	if !r.ProtoAtLeast(1, 1) {
		return refuse(http.StatusBadRequest, "a WebSocket handshake needs HTTP/1.1")
	}
	if !hasToken(r.Header, "Sec-WebSocket-Version", "13") {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return refuse(http.StatusUpgradeRequired, "unsupported WebSocket version: this server speaks version 13 (RFC 6455)")
	}
	if !s.checkOrigin(r) {
		return refuse(http.StatusForbidden, "origin not allowed: connect from the app's own page, or add the origin to --allowed-origins")
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if !rfc6455.ValidKey(key) {
		return refuse(http.StatusBadRequest, "not a WebSocket handshake: Sec-WebSocket-Key must be 16 bytes in base64")
	}
	deflate := s.negotiateDeflate(r)
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return refuse(http.StatusInternalServerError, "cannot take over the connection: "+err.Error())
	}
	// Frames the client sent with its handshake wait in brw.Reader: it is
	// the connection's reader from now on.
	_ = nc.SetDeadline(time.Time{})
	_ = nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + rfc6455.AcceptKey(key) + "\r\n"
	if deflate {
		resp += "Sec-WebSocket-Extensions: " + deflateResponse + "\r\n"
	}
	resp += "\r\n"
	if _, err := nc.Write([]byte(resp)); err != nil {
		nc.Close()
		return nil, fmt.Errorf("answering the WebSocket handshake: %w", err)
	}
	_ = nc.SetWriteDeadline(time.Time{})
	c := newWSConn(nc, brw.Reader, s.cfg.ReadLimit)
	c.m = s.metrics
	c.deflate = deflate
	return c, nil
}

// negotiateDeflate reports whether the connection r asks for compresses its
// messages: when the app's Compression is deflate and the client offers a
// permessage-deflate the server can take (deflate.go). A header that does
// not parse, or offers none the server can take, means no compression (the
// connection goes on without: extensions are optional).
func (s *Server) negotiateDeflate(r *http.Request) bool {
	if s.cfg.Compression != protocol.CompressionDeflate {
		return false
	}
	offers := r.Header.Values("Sec-WebSocket-Extensions")
	if len(offers) == 0 {
		return false
	}
	exts, err := parseExtensions(offers)
	if err != nil {
		s.log.Info("websocket extensions not understood: not compressing", "client", r.RemoteAddr, "err", err)
		return false
	}
	ok, why := acceptDeflate(exts)
	if !ok {
		s.log.Info("permessage-deflate declined: not compressing", "client", r.RemoteAddr, "why", why)
	}
	return ok
}

// upgrade runs the WebSocket handshake and prepares the connection:
// keep-alive, shutdown tracking. The returned release must be called when
// the handler ends.
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) (*wsConn, func(), error) {
	c, err := s.handshake(w, r)
	if err != nil {
		return nil, nil, err // the client has had its answer
	}
	done, ok := s.track(c)
	if !ok {
		_ = c.SendClose(rfc6455.CloseGoingAway, "server shutting down", time.Now().Add(time.Second))
		_ = c.Close()
		return nil, nil, errors.New("server shutting down")
	}
	stop := make(chan struct{})
	s.keepAlive(c, stop)
	return c, func() { close(stop); s.untrack(c, done) }, nil
}

func (s *Server) logReadEnd(who string, err error) {
	var f *failed
	var pc *peerClosed
	switch {
	case errors.As(err, &f):
		s.log.Info("websocket peer failed: closed with "+strconv.Itoa(int(f.code)), "peer", who, "why", f.reason)
	case errors.As(err, &pc):
		s.log.Debug("websocket closed", "peer", who, "code", pc.code)
	default:
		s.log.Debug("websocket read ended", "peer", who, "err", err)
	}
}

// wsEcho echoes every text and binary message back with the same type.
func (s *Server) wsEcho(w http.ResponseWriter, r *http.Request) {
	c, release, err := s.upgrade(w, r)
	if err != nil {
		return
	}
	defer release()
	for {
		op, msg, err := c.ReadMessage()
		if err != nil {
			s.logReadEnd(r.RemoteAddr, err)
			return
		}
		if err := c.WriteMessage(op, msg, time.Now().Add(10*time.Second)); err != nil {
			return
		}
	}
}

// validName reports why a chat name is unacceptable, or "" when it is fine.
func validName(name string) string {
	if name == "" {
		return "a chat name is required: /chat/{name}"
	}
	if len(name) > maxNameLen {
		return fmt.Sprintf("chat name longer than %d bytes", maxNameLen)
	}
	if !utf8.ValidString(name) {
		// It would go to everyone in "{name} joined" as invalid text.
		return "chat name is not valid UTF-8"
	}
	for _, r := range name {
		if !unicode.IsPrint(r) || r == ':' {
			return "chat name has a character that is not allowed (control characters and ':' are refused)"
		}
	}
	return ""
}

// wsChat serves /chat/{name}?age=N.
func (s *Server) wsChat(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if why := validName(name); why != "" {
		http.Error(w, why, http.StatusBadRequest)
		return
	}
	age := -1
	if a := r.URL.Query().Get("age"); a != "" {
		n, err := strconv.Atoi(a)
		if err != nil || n < 0 || n > 200 {
			http.Error(w, fmt.Sprintf("age %q: want a whole number from 0 to 200", a), http.StatusBadRequest)
			return
		}
		age = n
	}
	m, ok := s.room.reserve(name)
	if !ok {
		http.Error(w, fmt.Sprintf("the name %q is already taken in this chat room; pick another", name), http.StatusConflict)
		return
	}
	c, release, err := s.upgrade(w, r)
	if err != nil {
		s.room.leave(m, nil)
		return
	}
	defer release()

	// The writer sends the member's queue; pings and closes may be written
	// meanwhile from other goroutines (wsConn serialises frames).
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for msg := range m.send {
			if err := c.WriteMessage(rfc6455.OpText, msg, time.Now().Add(10*time.Second)); err != nil {
				_ = c.Close()
				return
			}
		}
		// The queue was closed: the member left, or could not keep up and
		// the room dropped it (then this is news to it).
		_ = c.SendClose(rfc6455.ClosePolicyViolation, "too slow: your messages were piling up", time.Now().Add(time.Second))
		_ = c.Close()
	}()

	joined := name + " joined"
	if age >= 0 {
		joined = fmt.Sprintf("%s joined (age %d)", name, age)
	}
	s.room.join(m, func([]string) []byte {
		return fmt.Appendf(nil, "Hi %s! You have successfully connected to the chat.", name)
	}, []byte(joined))
	// ReadMessage refuses invalid UTF-8 (closing 1007), so only valid text
	// ever reaches the room: one member cannot make everyone else's
	// browser fail its connection.
	for {
		op, msg, err := c.ReadMessage()
		if err != nil {
			s.logReadEnd(name, err)
			break
		}
		if op != rfc6455.OpText {
			s.logReadEnd(name, c.fail(rfc6455.CloseUnsupportedData, "the chat takes text messages only", 0))
			break
		}
		s.room.broadcast(m, []byte(name+": "+string(msg)))
	}
	left := []byte(name + " left")
	s.room.leave(m, &left)
	<-writerDone
}

// Members is the body of GET /chat: who is in the room now, sorted.
type Members struct {
	Members []string `json:"members"`
}

// chatMembers serves GET /chat, the room's members (the chat page shows them).
func (s *Server) chatMembers(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Members{Members: s.room.names()})
}
