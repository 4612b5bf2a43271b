package wire

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/protocol"
)

// sseEvents feeds s to an SSE parser in pieces of n bytes.
func sseEvents(s string, n int) (events []*SSEEvent, p *sseParser) {
	p = newSSEParser(func(ev *SSEEvent) { events = append(events, ev) })
	b := []byte(s)
	for len(b) > 0 {
		k := min(n, len(b))
		p.feed(b[:k])
		b = b[k:]
	}
	return events, p
}

func TestSSEParser(t *testing.T) {
	type ev struct {
		dispatched bool
		event, id  string
		data       string
		retry      int64
	}
	long := strings.Repeat("x", 1000)
	for _, tc := range []struct {
		name string
		in   string
		want []ev
	}{
		// The examples of the WHATWG standard (§9.2.6).
		{"multi-line data", "data: YHOO\ndata: +2\ndata: 10\n\n", []ev{{true, "", "", "YHOO\n+2\n10", -1}}},
		{"ids and a comment", ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n", []ev{
			{false, "", "", "", -1},
			{true, "", "1", "first event", -1},
			{true, "", "", "second event", -1}, // an empty id resets the last one
			{true, "", "", " third event", -1}, // only one space is dropped
		}},
		{"empty data lines", "data\n\ndata\ndata\n\ndata:", []ev{{true, "", "", "", -1}, {true, "", "", "\n", -1}}},
		{"colon space optional", "data:test\n\ndata: test\n\n", []ev{{true, "", "", "test", -1}, {true, "", "", "test", -1}}},
		// Line ends, the BOM, the other fields.
		{"CR and CRLF", "event: add\rdata: a\r\ndata: b\r\r\ndata: c\n\r\n", []ev{{true, "add", "", "a\nb", -1}, {true, "", "", "c", -1}}},
		{"BOM", "\xef\xbb\xbfdata: x\n\n", []ev{{true, "", "", "x", -1}}},
		{"BOM only once", "\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n", []ev{{false, "", "", "", -1}, {true, "", "", "y", -1}}},
		{"retry", "retry: 3000\ndata: r\n\nretry: 12a\ndata: s\n\n", []ev{{true, "", "", "r", 3000}, {true, "", "", "s", -1}}},
		{"id carried over", "id: 7\ndata: a\n\ndata: b\n\nid: a\x00b\ndata: c\n\n", []ev{{true, "", "7", "a", -1}, {true, "", "7", "b", -1}, {true, "", "7", "c", -1}}},
		{"unknown field and no colon", "foo: bar\nevent\ndata: z\n\n", []ev{{true, "", "", "z", -1}}},
		{"fields without data", "event: x\nid: 9\n\ndata: y\n\n", []ev{{false, "x", "9", "", -1}, {true, "", "9", "y", -1}}},
		{"long data", "data: " + long + "\ndata: " + long + "\n\n", []ev{{true, "", "", (long + "\n" + long)[:PreviewBytes], -1}}},
		{"unfinished", "data: never dispatched\n", nil},
	} {
		for _, n := range []int{1, 2, 3, 7, 1 << 20} {
			got, _ := sseEvents(tc.in, n)
			if len(got) != len(tc.want) {
				t.Errorf("%s, pieces of %d: %d blocks, want %d", tc.name, n, len(got), len(tc.want))
				continue
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Dispatched != w.dispatched || g.Event != w.event || g.ID != w.id || string(g.Data) != w.data || g.Retry != w.retry {
					t.Errorf("%s, pieces of %d, block %d: %+v, want %+v", tc.name, n, i, g, w)
				}
			}
		}
	}
	got, _ := sseEvents("data: "+long+"\ndata: "+long+"\n\n", 5)
	if got[0].DataLen != 2*len(long)+1 {
		t.Errorf("data length %d, want %d", got[0].DataLen, 2*len(long)+1)
	}
	got, _ = sseEvents("event: chat\nid: 4\ndata: hi there\n\n", 100)
	var r Record
	got[0].fill(&r)
	if txt := r.Text(); txt != `SSE event "chat" id=4 "hi there"` || r.Field("data") != "hi there" || r.Field("seq") != "1" {
		t.Errorf("record %q %v", txt, r.Details())
	}
}

// TestSSEGap: after bytes lost inside the body, the block hit is partial
// and decoding resumes after the next blank line.
func TestSSEGap(t *testing.T) {
	var got []*SSEEvent
	p := newSSEParser(func(ev *SSEEvent) { got = append(got, ev) })
	p.feed([]byte("data: one\n\ndata: tw"))
	p.gap()
	p.feed([]byte("o\ndata: lost too\n\ndata: three\n\n"))
	if len(got) != 3 || string(got[1].Data) != "tw" || !got[1].Partial || string(got[2].Data) != "three" {
		for _, ev := range got {
			t.Logf("%+v", ev)
		}
		t.Fatalf("%d events after the gap", len(got))
	}
}

// sseExchange is an SSE app's conversation: the stream's GET, its chunked
// response with events, an echo POST, its answer.
func TestSSEStreamsEventsAsTheyArrive(t *testing.T) {
	c := newConvo(t, protocol.SSE)
	app := string(protocol.SSE)
	c.send(ClientToServer, []byte("GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"))
	c.send(ServerToClient, []byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n"))
	// The response is a record as soon as its headers are in.
	var head *Record
	for _, r := range c.s.All(app) {
		if r.Layer == "http" && r.Field("status") == "200" {
			head = &r
		}
	}
	if head == nil || head.Field("streaming") != "true" {
		t.Fatalf("no streaming response record once its headers arrived")
	}
	chunk := func(s string) []byte { return []byte(fmt.Sprintf("%x\r\n%s\r\n", len(s), s)) }
	c.send(ServerToClient, chunk("event: hello\ndata: welcome\n\n"))
	if n := c.s.Counters(app).SSEEvents; n != 1 {
		t.Fatalf("%d events after the first chunk, want 1", n)
	}
	// An event split across chunks, and a keep-alive comment.
	c.send(ServerToClient, chunk("id: 1\ndata: hel"))
	c.send(ServerToClient, chunk("lo\n\n: keep-alive\n\n"))
	c.send(ClientToServer, []byte("POST /events/s1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"))
	c.send(ServerToClient, chunk("id: 2\ndata: hi\n\n"))
	c.send(ServerToClient, []byte("0\r\n\r\n"))
	c.d.StreamEnd(c.flow, time.Now())
	cn := c.s.Counters(app)
	// Messages: two requests (the GET and the POST) and three events.
	if cn.SSEEvents != 3 || cn.HTTPReqs != 2 || cn.HTTPResps != 1 || cn.Messages != 5 || cn.Errors != 0 {
		t.Errorf("counters %+v", cn)
	}
	var texts []string
	for _, r := range c.s.All(app) {
		if r.Layer == "sse" {
			texts = append(texts, r.Text())
		}
	}
	want := []string{`SSE event "hello" "welcome"`, `SSE event "message" id=1 "hello"`, `SSE comment "keep-alive"`,
		`SSE event "message" id=2 "hi"`, "SSE stream ended: 3 events, 77 body bytes"}
	if strings.Join(texts, "\n") != strings.Join(want, "\n") {
		t.Errorf("sse records:\n%s\nwant:\n%s", strings.Join(texts, "\n"), strings.Join(want, "\n"))
	}
}

// TestSSEUntilCloseAndCutShort: a stream read until close ends with the
// connection; a chunked one cut inside an event is an error.
func TestSSEUntilCloseAndCutShort(t *testing.T) {
	c := newConvo(t, protocol.SSE)
	c.send(ClientToServer, []byte("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"))
	c.send(ServerToClient, []byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: a\n\ndata: b\n\n"))
	c.d.StreamEnd(c.flow, time.Now())
	if cn := c.s.Counters("sse"); cn.SSEEvents != 2 || cn.Errors != 0 || cn.HTTPResps != 1 {
		t.Errorf("until close: %+v", cn)
	}
	c2 := newConvo(t, protocol.SSE)
	c2.send(ClientToServer, []byte("GET /events HTTP/1.1\r\nHost: x\r\n\r\n"))
	c2.send(ServerToClient, []byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n10\r\ndata: a\n\ndata: b"))
	c2.d.StreamEnd(c2.flow, time.Now())
	cn := c2.s.Counters("sse")
	if cn.SSEEvents != 1 || cn.Errors != 1 {
		t.Errorf("cut short: %+v", cn)
	}
	var ended string
	for _, r := range c2.s.All("sse") {
		if strings.HasPrefix(r.Text(), "SSE stream ended") {
			ended = r.Text()
		}
	}
	if !strings.Contains(ended, "cut short") {
		t.Errorf("stream end record %q", ended)
	}
}
