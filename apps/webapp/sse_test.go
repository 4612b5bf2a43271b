package webapp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	sse "github.com/tmaxmax/go-sse"

	"github.com/protolab/protolab-tui/protocol"
)

// sseClient is a test's SSE client on one stream: go-sse's parser reads
// the response body in a goroutine and hands each event over.
type sseClient struct {
	id     string
	resp   *http.Response
	events chan sse.Event
	// end receives the reading's end: nil when the stream ended cleanly
	// (the response's end), else the error.
	end    chan error
	cancel context.CancelFunc
}

// openStream GETs path on r as an event stream and checks the answer's
// headers; the stream is read until the test ends (or cancel).
func (r *running) openStream(t *testing.T, path string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.url(path), nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: %s %s", path, resp.Status, body)
	}
	for h, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("GET %s: %s %q, want %q", path, h, got, want)
		}
	}
	s := &sseClient{id: resp.Header.Get(protocol.StreamHeader), resp: resp, events: make(chan sse.Event, 64), end: make(chan error, 1), cancel: cancel}
	if s.id == "" {
		t.Errorf("GET %s: no %s header", path, protocol.StreamHeader)
	}
	go func() {
		defer resp.Body.Close()
		for ev, err := range sse.Read(resp.Body, nil) {
			if err != nil {
				s.end <- err
				return
			}
			s.events <- ev
		}
		s.end <- nil
	}()
	t.Cleanup(cancel)
	return s
}

// next is the stream's next event, within 5 s.
func (s *sseClient) next(t *testing.T) sse.Event {
	t.Helper()
	select {
	case ev := <-s.events:
		return ev
	case err := <-s.end:
		// The reader queues the last events before it reports the end.
		select {
		case ev := <-s.events:
			s.end <- err
			return ev
		default:
		}
		t.Fatalf("stream %s ended (%v) before the next event", s.id, err)
	case <-time.After(5 * time.Second):
		t.Fatalf("stream %s: no event within 5 s", s.id)
	}
	return sse.Event{}
}

// expect reads the next event and checks its type and id.
func (s *sseClient) expect(t *testing.T, typ string, id int) sse.Event {
	t.Helper()
	ev := s.next(t)
	if ev.Type != typ || ev.LastEventID != strconv.Itoa(id) {
		t.Fatalf("event %q id %q (%q), want %q id %d", ev.Type, ev.LastEventID, ev.Data, typ, id)
	}
	return ev
}

// post POSTs body to path and returns the status and the answer's body.
func (r *running) post(t *testing.T, path, body string) (int, string) {
	t.Helper()
	resp, err := r.httpClient().Post(r.url(path), "text/plain; charset=utf-8", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestSSEEcho: GET /events streams a hello at once, then each POST
// /events/{stream} as an echo event (several lines as several data lines,
// ids increasing), flushed as it comes; the refusals are 404, 413 and 400;
// GET / is the JSON Info.
func TestSSEEcho(t *testing.T) {
	r := start(t, Config{Protocol: protocol.SSE, ReadLimit: 1024})
	s := r.openStream(t, "/events")
	hello := s.expect(t, protocol.SSEHello, 1)
	var h StreamHello
	if err := json.Unmarshal([]byte(hello.Data), &h); err != nil || h != (StreamHello{App: "protolab-sse", Stream: s.id}) {
		t.Errorf("hello = %q (%v), want the app and stream %s", hello.Data, err, s.id)
	}
	for i, body := range []string{"one", "two\nlines", "three\r\nlines\rin all", "", "κόσμε"} {
		if code, msg := r.post(t, "/events/"+s.id, body); code != http.StatusNoContent {
			t.Fatalf("POST %q: %d %s", body, code, msg)
		}
		want := strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(body)
		if ev := s.expect(t, protocol.SSEEcho, i+2); ev.Data != want {
			t.Errorf("echo of %q = %q, want %q", body, ev.Data, want)
		}
	}
	for _, tc := range []struct {
		path, body string
		want       int
	}{
		{"/events/nosuchstream", "x", http.StatusNotFound},
		{"/events/" + s.id, strings.Repeat("x", 1025), http.StatusRequestEntityTooLarge},
		{"/events/" + s.id, "not \xff UTF-8", http.StatusBadRequest},
		{"/chat/events/" + s.id, "x", http.StatusNotFound}, // no chat here
	} {
		if code, msg := r.post(t, tc.path, tc.body); code != tc.want {
			t.Errorf("POST %s (%d bytes) = %d %s, want %d", tc.path, len(tc.body), code, msg, tc.want)
		}
	}
	if resp, body := get(t, r.httpClient(), r.url("/chat/events?name=x")); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "no chat") {
		t.Errorf("GET /chat/events without an upstream = %d %s", resp.StatusCode, body)
	}
	resp, body := get(t, r.httpClient(), r.url("/"))
	var info Info
	if err := json.Unmarshal([]byte(body), &info); err != nil || info != (Info{App: "protolab-sse", Protocol: "sse", Version: Version}) {
		t.Errorf("GET / = %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, r.httpClient(), r.url("/health")); resp.StatusCode != 200 {
		t.Errorf("GET /health = %s", resp.Status)
	}
}

// TestSSEWire reads a stream's bytes as they come: the format exactly
// (event, id, one data line per line, a blank line), keep-alive comments
// every PingInterval, each event as soon as it is sent.
func TestSSEWire(t *testing.T) {
	r := start(t, Config{Protocol: protocol.SSE, PingInterval: 50 * time.Millisecond})
	nc, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, "GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := resp.Header.Get(protocol.StreamHeader)
	lines := bufio.NewReader(resp.Body) // chunked, decoded
	line := func() string {
		t.Helper()
		l, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v (so far %q)", err, l)
		}
		return l
	}
	want := func(w ...string) {
		t.Helper()
		for _, s := range w {
			if got := line(); got != s {
				t.Fatalf("stream line %q, want %q", got, s)
			}
		}
	}
	hello, _ := json.Marshal(StreamHello{App: "protolab-sse", Stream: id})
	want("event: hello\n", "id: 1\n", "data: "+string(hello)+"\n", "\n")
	want(": keep-alive\n", "\n")
	if code, msg := r.post(t, "/events/"+id, " indented\nsecond\r\n"); code != http.StatusNoContent {
		t.Fatalf("POST: %d %s", code, msg)
	}
	for {
		l := line()
		if l == ": keep-alive\n" {
			want("\n")
			continue
		}
		if l != "event: echo\n" {
			t.Fatalf("stream line %q, want the echo", l)
		}
		break
	}
	want("id: 2\n", "data:  indented\n", "data: second\n", "data: \n", "\n")
}

// TestSSEStreamEnds: a stream ends when its client goes (its id is then
// unknown, the gauge back to zero), and at Shutdown cleanly (the response
// ends; the client reads no error).
func TestSSEStreamEnds(t *testing.T) {
	r := start(t, Config{Protocol: protocol.SSE})
	s := r.openStream(t, "/events")
	s.expect(t, protocol.SSEHello, 1)
	r.waitFor(t, 1, protocol.MetricSSEOpen)
	s.cancel()
	r.waitFor(t, 0, protocol.MetricSSEOpen)
	if code, _ := r.post(t, "/events/"+s.id, "anyone?"); code != http.StatusNotFound {
		t.Errorf("POST to a stream whose client went = %d, want 404", code)
	}

	s = r.openStream(t, "/events")
	s.expect(t, protocol.SSEHello, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.end:
		if err != nil {
			t.Errorf("at shutdown the stream ended with %v, want a clean end", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end at shutdown")
	}
}

// TestSSEMetrics: the open streams, the events by type, and a stream's
// request counted (200) once it began, not when it ends.
func TestSSEMetrics(t *testing.T) {
	r := start(t, Config{Protocol: protocol.SSE})
	s := r.openStream(t, "/events")
	s.expect(t, protocol.SSEHello, 1)
	for i := range 3 {
		r.post(t, "/events/"+s.id, "x")
		s.expect(t, protocol.SSEEcho, i+2)
	}
	m := r.waitFor(t, 3, protocol.MetricSSEEvents, "event", protocol.SSEEcho)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{protocol.MetricSSEOpen, nil, 1},
		{protocol.MetricSSEEvents, []string{"event", protocol.SSEHello}, 1},
		{protocol.MetricRequests, []string{"route", "GET /events", "code", "200"}, 1},
		{protocol.MetricRequestDuration, []string{"route", "GET /events"}, 1},
		{protocol.MetricRequests, []string{"route", "POST /events/{stream}", "code", "204"}, 3},
	} {
		if got := m.value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	s.cancel()
	m = r.waitFor(t, 0, protocol.MetricSSEOpen)
	if got := m.value(protocol.MetricRequests, "route", "GET /events", "code", "200"); got != 1 {
		t.Errorf("the ended stream's request counted %v times, want once", got)
	}
}

// TestSSEChatRelay: an sse app fed by a chat-ws app (ws, and wss verified
// with the CA, its secrets in the key log) joins the room for each GET
// /chat/events, relays the room as chat events, says what is POSTed, is
// refused a taken name (409, before streaming), and leaves when its client
// goes.
func TestSSEChatRelay(t *testing.T) {
	for _, p := range []protocol.Protocol{protocol.WS, protocol.WSS} {
		t.Run(string(p), func(t *testing.T) {
			hub := start(t, Config{Protocol: p})
			var keys logBuf
			r := start(t, Config{Protocol: protocol.SSE, Upstreams: []Upstream{up("hub", hub)}, RootCAs: hub.pool, UpstreamKeyLog: &keys})

			alice := r.openStream(t, "/chat/events?name=alice&age=30")
			var h StreamHello
			if err := json.Unmarshal([]byte(alice.expect(t, protocol.SSEHello, 1).Data), &h); err != nil || h != (StreamHello{App: "protolab-sse", Stream: alice.id, Chat: "hub", Name: "alice"}) {
				t.Errorf("hello = %+v (%v)", h, err)
			}
			chat := func(id int) ChatEvent {
				t.Helper()
				var ev ChatEvent
				if err := json.Unmarshal([]byte(alice.expect(t, protocol.SSEChat, id).Data), &ev); err != nil {
					t.Fatal(err)
				}
				return ev
			}
			if ev := chat(2); ev.Kind != "greeting" || ev.From != "alice" || !strings.HasPrefix(ev.Line, "Hi alice!") {
				t.Errorf("first chat event = %+v, want alice's greeting", ev)
			}
			bob := hub.dial(t, "/chat/bob", nil)
			read(t, bob) // greeting
			if ev := chat(3); ev.Kind != "join" || ev.From != "bob" || ev.Age != nil {
				t.Errorf("chat event = %+v, want bob's join", ev)
			}
			if err := bob.WriteMessage(websocket.TextMessage, []byte("hi alice: welcome")); err != nil {
				t.Fatal(err)
			}
			if ev := chat(4); ev != (ChatEvent{Kind: "message", From: "bob", Text: "hi alice: welcome", Line: "bob: hi alice: welcome"}) {
				t.Errorf("chat event = %+v, want bob's message", ev)
			}
			if code, msg := r.post(t, "/chat/events/"+alice.id, "hello bob"); code != http.StatusNoContent {
				t.Fatalf("POST /chat/events: %d %s", code, msg)
			}
			if got := read(t, bob); got != "alice: hello bob" {
				t.Errorf("bob read %q, want alice's message", got)
			}
			hub.waitMembers(t, []string{"alice", "bob"})

			// A taken name: the chat's 409 and reason, no stream.
			resp, body := get(t, r.httpClient(), r.url("/chat/events?name=bob"))
			if resp.StatusCode != http.StatusConflict || !strings.Contains(body, `"bob" is already taken`) || resp.Header.Get("Content-Type") == "text/event-stream" {
				t.Errorf("GET /chat/events?name=bob = %d %q (%s), want 409 with the reason", resp.StatusCode, body, resp.Header.Get("Content-Type"))
			}
			if resp, body := get(t, r.httpClient(), r.url("/chat/events?name=")); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("GET /chat/events without a name = %d %q, want 400", resp.StatusCode, body)
			}
			if code, _ := r.post(t, "/events/"+alice.id, "an echo on a chat stream"); code != http.StatusNoContent {
				t.Errorf("POST /events/{chat stream} = %d", code)
			}
			alice.expect(t, protocol.SSEEcho, 5)

			// alice's client goes: she leaves the room.
			alice.cancel()
			if got := read(t, bob); got != "alice left" {
				t.Errorf("bob read %q, want alice left", got)
			}
			hub.waitMembers(t, []string{"bob"})
			if p.Secure() && !strings.Contains(keys.String(), "CLIENT_TRAFFIC_SECRET_0") && !strings.Contains(keys.String(), "CLIENT_RANDOM") {
				t.Errorf("no TLS secrets of the upstream connection in the key log: %q", keys.String())
			}
		})
	}
}

// TestSSEChatEnds: when the chat drops the member (the upstream shuts
// down), the stream gets an end event and ends; a chat that is down is 502.
func TestSSEChatEnds(t *testing.T) {
	hub := start(t, Config{Protocol: protocol.WS})
	r := start(t, Config{Protocol: protocol.SSE, Upstreams: []Upstream{up("hub", hub)}})
	s := r.openStream(t, "/chat/events?name=zed")
	s.expect(t, protocol.SSEHello, 1)
	s.expect(t, protocol.SSEChat, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hub.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var end EndEvent
	if err := json.Unmarshal([]byte(s.expect(t, protocol.SSEEnd, 3).Data), &end); err != nil || !strings.Contains(end.Why, "1001") {
		t.Errorf("end event = %+v (%v), want the chat's 1001", end, err)
	}
	select {
	case err := <-s.end:
		if err != nil {
			t.Errorf("the stream ended with %v, want a clean end", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end after its end event")
	}
	resp, body := get(t, r.httpClient(), r.url("/chat/events?name=zed"))
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "hub is down") {
		t.Errorf("GET /chat/events with the chat down = %d %q, want 502", resp.StatusCode, body)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Error("shutting the hub down took the whole timeout")
	}
}

// TestSSEConfig: an sse app takes at most one upstream, a WebSocket one,
// and the CA for a wss one.
func TestSSEConfig(t *testing.T) {
	for _, tc := range []struct {
		ups  []Upstream
		want string
	}{
		{[]Upstream{{Name: "a", Protocol: protocol.HTTP, Addr: "x:1"}}, "a WebSocket chat app"},
		{[]Upstream{{Name: "a", Protocol: protocol.WS, Addr: "x:1"}, {Name: "b", Protocol: protocol.WS, Addr: "x:2"}}, "at most 1"},
		{[]Upstream{{Name: "a", Protocol: protocol.WSS, Addr: "x:1"}}, "needs the lab CA"},
	} {
		if _, err := New(Config{Protocol: protocol.SSE, Upstreams: tc.ups}, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("upstreams %+v: %v, want an error saying %q", tc.ups, err, tc.want)
		}
	}
}
