package webapp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/protolab/protolab-tui/protocol"
)

// sseApp is kind sse: server-sent events (text/event-stream over
// HTTP/1.1).
//
//	GET  /events               a stream: 200 text/event-stream, its id in
//	                           X-Protolab-Stream, a hello event at once,
//	                           keep-alive comments every PingInterval
//	POST /events/{stream}      the body comes back on that stream as an
//	                           echo event: 204 (404 no such stream, 413 a
//	                           body past the read limit, 400 not UTF-8,
//	                           503 a stream not reading its events)
//	GET  /chat/events?name=N&age=A   (with a chat-ws upstream) joins its
//	                           room as N over WebSocket and relays every
//	                           room message as a chat event; the chat's
//	                           refusal (409 a taken name, 400) before
//	                           streaming, 502 when it is down
//	POST /chat/events/{stream} says the body in the room as that member
//
// Each stream is one handler that alone writes its response: events reach
// it through a queue, each is flushed at once, and it ends when its client
// goes, at Shutdown (the response ends cleanly), or when its chat ends it.
type sseApp struct {
	s *Server
	// up is the chat-ws app whose room /chat/events relays (nil: none).
	up *Upstream

	mu      sync.Mutex
	streams map[string]*sseStream
	closed  bool
}

// sseStream is one open stream.
type sseStream struct {
	id string
	// events is the stream's queue; its handler writes them in order.
	events chan sseEvent
	// gone is closed when the stream's handler has returned.
	gone chan struct{}
	// chat is a chat stream's member in the upstream room (nil on an echo
	// stream); say serialises writes to it.
	chat  *websocket.Conn
	sayMu sync.Mutex
}

// sseEvent is one event to send; last ends the stream after it.
type sseEvent struct {
	name string
	data string
	last bool
}

// sseQueue bounds a stream's queue of events not yet written.
const sseQueue = 64

// sseWriteTimeout bounds writing one event to a client.
const sseWriteTimeout = 10 * time.Second

// StreamHello is the data of a stream's hello event.
type StreamHello struct {
	App    string `json:"app"`
	Stream string `json:"stream"`
	// Chat and Name are a chat stream's: the upstream chat app and the
	// member's name in its room.
	Chat string `json:"chat,omitempty"`
	Name string `json:"name,omitempty"`
}

// ChatEvent is the data of a chat event: one line of the chat room, as the
// chat-ws app sent it (Line), and what it says.
type ChatEvent struct {
	// Kind is "greeting" (the room's welcome to this member), "join",
	// "leave", "message", or "notice" for a line of none of those forms.
	Kind string `json:"kind"`
	// From is the member who joined, left or spoke.
	From string `json:"from,omitempty"`
	// Text is what a member said (a message's).
	Text string `json:"text,omitempty"`
	// Age is the age a member joined with, when it gave one.
	Age  *int   `json:"age,omitempty"`
	Line string `json:"line"`
}

// EndEvent is the data of a chat stream's end event.
type EndEvent struct {
	Why string `json:"why"`
}

func routeSSE(s *Server, mux *http.ServeMux) {
	a := &sseApp{s: s, streams: map[string]*sseStream{}}
	if len(s.cfg.Upstreams) > 0 {
		a.up = &s.cfg.Upstreams[0]
	}
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /events", a.echoStream)
	mux.HandleFunc("POST /events/{stream}", a.post)
	mux.HandleFunc("GET /chat/events", a.chatStream)
	mux.HandleFunc("POST /chat/events/{stream}", a.say)
	s.stops = append(s.stops, a.stop)
}

// stop refuses new streams; the open ones end on the server's shutdown
// channel.
func (a *sseApp) stop(context.Context) {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
}

// open registers a new stream (false when the server is shutting down).
func (a *sseApp) open(chat *websocket.Conn) (*sseStream, bool) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	st := &sseStream{id: hex.EncodeToString(b[:]), events: make(chan sseEvent, sseQueue), gone: make(chan struct{}), chat: chat}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, false
	}
	a.streams[st.id] = st
	return st, true
}

func (a *sseApp) close(st *sseStream) {
	a.mu.Lock()
	delete(a.streams, st.id)
	a.mu.Unlock()
	close(st.gone)
}

func (a *sseApp) lookup(id string) *sseStream {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.streams[id]
}

// echoStream serves GET /events.
func (a *sseApp) echoStream(w http.ResponseWriter, r *http.Request) {
	st, ok := a.open(nil)
	if !ok {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	defer a.close(st)
	a.serve(w, r, st, StreamHello{App: a.s.cfg.Name, Stream: st.id})
}

// serve writes st's events to w until the client goes, the server shuts
// down or a last event: the hello first, then each queued event and a
// keep-alive comment every PingInterval, each flushed at once.
func (a *sseApp) serve(w http.ResponseWriter, r *http.Request, st *sseStream, hello StreamHello) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set(protocol.StreamHeader, st.id)
	h.Set("X-Accel-Buffering", "no") // a proxy in the way should not hold events back
	w.WriteHeader(http.StatusOK)

	m := a.s.metrics
	m.sseOpen.Inc()
	defer m.sseOpen.Dec()
	// An expired write deadline would fail the response's end: clear it.
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	var seq uint64
	var buf []byte
	send := func(name, data string) bool {
		seq++
		buf = appendEvent(buf[:0], name, seq, data)
		if err := a.write(rc, w, buf); err != nil {
			a.s.log.Debug("sse client gone", "stream", st.id, "err", err)
			return false
		}
		m.sseEvents.WithLabelValues(name).Inc()
		return true
	}
	helloJSON, _ := json.Marshal(hello)
	if !send(protocol.SSEHello, string(helloJSON)) {
		return
	}
	streamStarted(w)
	keep := time.NewTicker(a.s.cfg.PingInterval)
	defer keep.Stop()
	for {
		select {
		case ev := <-st.events:
			if !send(ev.name, ev.data) || ev.last {
				return
			}
		case <-keep.C:
			if err := a.write(rc, w, []byte(": keep-alive\n\n")); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		case <-a.s.shutdown:
			return
		}
	}
}

// write writes b and flushes it, within sseWriteTimeout.
func (a *sseApp) write(rc *http.ResponseController, w io.Writer, b []byte) error {
	_ = rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	if _, err := w.Write(b); err != nil {
		return err
	}
	return rc.Flush()
}

// appendEvent appends one event in the text/event-stream format: its type,
// its id, and its data as one "data:" line per line of data (a CR LF, CR or
// LF ends a line, as the client splits them), then the blank line that
// dispatches it. Empty data is one empty data line (a client dispatches an
// event only when it has data).
func appendEvent(b []byte, name string, id uint64, data string) []byte {
	b = append(b, "event: "...)
	b = append(b, name...)
	b = append(b, "\nid: "...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, '\n')
	for {
		i := strings.IndexAny(data, "\r\n")
		if i < 0 {
			break
		}
		b = append(append(append(b, "data: "...), data[:i]...), '\n')
		if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
			i++
		}
		data = data[i+1:]
	}
	b = append(append(append(b, "data: "...), data...), '\n')
	return append(b, '\n')
}

// readText reads a POSTed body within the read limit and checks it is
// UTF-8 text (what an event or a chat message carries); on failure it has
// answered the client.
func (a *sseApp) readText(w http.ResponseWriter, r *http.Request) (string, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.s.cfg.ReadLimit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("body larger than the %d bytes this app accepts", a.s.cfg.ReadLimit), http.StatusRequestEntityTooLarge)
			return "", false
		}
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return "", false
	}
	if !utf8.Valid(body) {
		http.Error(w, "the body is not UTF-8 text (an event carries text)", http.StatusBadRequest)
		return "", false
	}
	return string(body), true
}

func noStream(w http.ResponseWriter, id string) {
	http.Error(w, fmt.Sprintf("no stream %q here: it ended, or never was (GET /events opens one)", id), http.StatusNotFound)
}

// post serves POST /events/{stream}: the body as an echo event on the
// stream.
func (a *sseApp) post(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("stream")
	st := a.lookup(id)
	if st == nil {
		noStream(w, id)
		return
	}
	text, ok := a.readText(w, r)
	if !ok {
		return
	}
	select {
	case <-st.gone:
		noStream(w, id)
		return
	default:
	}
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case st.events <- sseEvent{name: protocol.SSEEcho, data: text}:
		w.WriteHeader(http.StatusNoContent)
	case <-st.gone:
		noStream(w, id)
	case <-t.C:
		http.Error(w, fmt.Sprintf("stream %s is not reading its events: %d wait already; try again later", id, sseQueue), http.StatusServiceUnavailable)
	case <-r.Context().Done():
	}
}

// chatStream serves GET /chat/events?name=NAME&age=N: it joins the
// upstream's chat room as NAME and relays the room as chat events.
func (a *sseApp) chatStream(w http.ResponseWriter, r *http.Request) {
	if a.up == nil {
		http.Error(w, "this sse app has no chat: give it a chat-ws app as its upstream", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	name := q.Get("name")
	if why := validName(name); why != "" {
		http.Error(w, strings.Replace(why, "/chat/{name}", "/chat/events?name=NAME", 1), http.StatusBadRequest)
		return
	}
	u := url.URL{Scheme: "ws", Host: a.up.Addr, Path: "/chat/" + name}
	if age := q.Get("age"); age != "" {
		u.RawQuery = url.Values{"age": {age}}.Encode()
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, ReadBufferSize: 4096, WriteBufferSize: 4096}
	if a.up.Protocol.Secure() {
		u.Scheme = "wss"
		sn := a.up.ServerName
		if sn == "" {
			sn = "localhost"
		}
		d.TLSClientConfig = &tls.Config{RootCAs: a.s.cfg.RootCAs, ServerName: sn, MinVersion: tls.VersionTLS12,
			NextProtos: []string{"http/1.1"}, KeyLogWriter: a.s.cfg.UpstreamKeyLog}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	conn, res, err := d.DialContext(ctx, u.String(), nil)
	cancel()
	if err != nil {
		a.refuseChat(w, res, err)
		return
	}
	conn.SetReadLimit(a.s.cfg.ReadLimit)
	st, ok := a.open(conn)
	if !ok {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(time.Second))
		conn.Close()
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	defer a.close(st)
	go a.relay(st, name)
	a.serve(w, r, st, StreamHello{App: a.s.cfg.Name, Stream: st.id, Chat: a.up.Name, Name: name})

	// The client went (or the server is going, or the room ended it): leave
	// the room.
	code, why := websocket.CloseNormalClosure, "the SSE client went away"
	select {
	case <-a.s.shutdown:
		code, why = websocket.CloseGoingAway, "server shutting down"
	default:
	}
	st.sayMu.Lock()
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, why), time.Now().Add(time.Second))
	st.sayMu.Unlock()
	conn.Close()
}

// refuseChat answers a chat stream the upstream would not open: its own
// refusal (409 for a taken name, 400 for a bad one) with its reason, else
// 502.
func (a *sseApp) refuseChat(w http.ResponseWriter, res *http.Response, err error) {
	if res == nil {
		a.s.log.Warn("chat upstream unreachable", "upstream", a.up.Name, "addr", a.up.Addr, "err", err)
		http.Error(w, fmt.Sprintf("the chat %s is down: %v", a.up.Name, err), http.StatusBadGateway)
		return
	}
	reason, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
	res.Body.Close()
	switch res.StatusCode {
	case http.StatusConflict, http.StatusBadRequest:
		http.Error(w, strings.TrimSpace(string(reason)), res.StatusCode)
	default:
		http.Error(w, fmt.Sprintf("the chat %s refused to join: %s %s", a.up.Name, res.Status, strings.TrimSpace(string(reason))), http.StatusBadGateway)
	}
}

// relay queues every message of st's chat as a chat event, and an end
// event when the chat ends the membership. Queueing waits for the stream
// (a stream that does not keep up holds the room's messages back, and the
// room drops a member that does not keep up: then the stream ends).
func (a *sseApp) relay(st *sseStream, name string) {
	queue := func(ev sseEvent) bool {
		select {
		case st.events <- ev:
			return true
		case <-st.gone:
			return false
		}
	}
	for first := true; ; first = false {
		typ, msg, err := st.chat.ReadMessage()
		if err != nil {
			why := "the chat connection ended: " + err.Error()
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				why = fmt.Sprintf("the chat closed the connection: %d %s", ce.Code, ce.Text)
			}
			data, _ := json.Marshal(EndEvent{Why: why})
			queue(sseEvent{name: protocol.SSEEnd, data: string(data), last: true})
			return
		}
		if typ != websocket.TextMessage || !utf8.Valid(msg) {
			continue // the chat sends text only
		}
		data, _ := json.Marshal(parseChatLine(string(msg), first))
		if !queue(sseEvent{name: protocol.SSEChat, data: string(data)}) {
			return
		}
	}
}

// say serves POST /chat/events/{stream}: the body said in the room as the
// stream's member.
func (a *sseApp) say(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("stream")
	st := a.lookup(id)
	if st == nil {
		noStream(w, id)
		return
	}
	if st.chat == nil {
		http.Error(w, fmt.Sprintf("stream %s is no chat stream (POST /events/%s echoes on it)", id, id), http.StatusNotFound)
		return
	}
	text, ok := a.readText(w, r)
	if !ok {
		return
	}
	st.sayMu.Lock()
	_ = st.chat.SetWriteDeadline(time.Now().Add(5 * time.Second))
	err := st.chat.WriteMessage(websocket.TextMessage, []byte(text))
	st.sayMu.Unlock()
	if err != nil {
		http.Error(w, fmt.Sprintf("the chat %s did not take it: %v", a.up.Name, err), http.StatusBadGateway)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// parseChatLine says what one line of the chat-ws room is (websocket.go
// writes them): first is the member's first line, its greeting "Hi NAME!
// …". A member's message is "NAME: TEXT" (names have no ':'), a join
// "NAME joined" or "NAME joined (age N)", a leave "NAME left"; anything
// else is a notice.
func parseChatLine(line string, first bool) ChatEvent {
	ev := ChatEvent{Kind: "notice", Line: line}
	if first {
		if rest, ok := strings.CutPrefix(line, "Hi "); ok {
			if name, _, ok := strings.Cut(rest, "! "); ok && validName(name) == "" {
				ev.Kind, ev.From = "greeting", name
				return ev
			}
		}
	}
	if name, text, ok := strings.Cut(line, ": "); ok && validName(name) == "" {
		ev.Kind, ev.From, ev.Text = "message", name, text
		return ev
	}
	if name, ok := strings.CutSuffix(line, " left"); ok && validName(name) == "" {
		ev.Kind, ev.From = "leave", name
		return ev
	}
	if name, ok := strings.CutSuffix(line, " joined"); ok && validName(name) == "" {
		ev.Kind, ev.From = "join", name
		return ev
	}
	if rest, ok := strings.CutSuffix(line, ")"); ok {
		if name, age, ok := strings.Cut(rest, " joined (age "); ok && validName(name) == "" {
			if n, err := strconv.Atoi(age); err == nil && n >= 0 && n <= 200 && strconv.Itoa(n) == age {
				ev.Kind, ev.From, ev.Age = "join", name, &n
				return ev
			}
		}
	}
	return ev
}
