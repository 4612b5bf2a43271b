package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/protolab/protolab-tui/protocol"
)

// The SSE app's contract (apps/webapp, kind sse; names in protocol):
// GET /events streams events, the first of them a hello;
// protocol.StreamHeader names the stream; POST /events/{stream} sends its
// body back as an echo event on it.
const (
	sseEventsPath = "/events"
	// sseMaxEvent bounds one event the probe reads.
	sseMaxEvent = 4 << 20
)

// sseSession holds an event stream open on one connection and posts its
// echoes on a second: SSE carries the server's messages only, so a client
// talks back with requests. Its setup counts both connections; the time to
// the first event is its handshake.
type sseSession struct {
	stream, post *conn
	streamClient *http.Client
	postClient   *http.Client
	body         io.ReadCloser
	next         func() (sse.Event, error, bool)
	stop         func()
	base, id     string
	hs           time.Duration
}

// oneConn is a transport that uses c and will not open another, so the
// session's bytes are c's alone.
func oneConn(c *conn) *http.Transport {
	var once sync.Once
	give := func(context.Context, string, string) (net.Conn, error) {
		var out net.Conn
		once.Do(func() { out = c.Conn })
		if out == nil {
			return nil, fmt.Errorf("%w: the probe keeps one connection and will not open another", errClosedByPeer)
		}
		return out, nil
	}
	return &http.Transport{DialContext: give, DialTLSContext: give, MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, DisableCompression: true}
}

func newSSESession(ctx context.Context, t Target) (_ *sseSession, err error) {
	scheme := "http"
	if t.Protocol.Secure() {
		scheme = "https"
	}
	s := &sseSession{base: scheme + "://" + t.hostPort()}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.stream, err = t.dial(ctx, t.alpn()...); err != nil {
		return nil, err
	}
	s.streamClient = &http.Client{Transport: oneConn(s.stream)}
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+sseEventsPath, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := s.streamClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: GET %s on %s: %w", t.name(), sseEventsPath, t.Addr, err)
	}
	s.body = resp.Body
	s.stream.saw(resp.Header)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/event-stream") {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%s: GET %s answered %s (%s), not an event stream: %s", t.name(), sseEventsPath, resp.Status, ct, strings.TrimSpace(string(b)))
	}
	if s.id = resp.Header.Get(protocol.StreamHeader); s.id == "" {
		return nil, fmt.Errorf("%s: GET %s named no stream (%s): is it a protolab sse app?", t.name(), sseEventsPath, protocol.StreamHeader)
	}
	s.next, s.stop = iter.Pull2(sse.Read(resp.Body, &sse.ReadConfig{MaxEventSize: sseMaxEvent}))
	ev, err := s.read(ctx, protocol.SSEHello)
	if err != nil {
		return nil, fmt.Errorf("%s: waiting for the stream's first event: %w", t.name(), err)
	}
	s.hs = time.Since(start)
	var hello struct {
		Stream string `json:"stream"`
	}
	if err := json.Unmarshal([]byte(ev.Data), &hello); err != nil || hello.Stream != s.id {
		return nil, fmt.Errorf("%s: the hello event %q does not name stream %s", t.name(), ev.Data, s.id)
	}
	if s.post, err = t.dial(ctx, t.alpn()...); err != nil {
		return nil, err
	}
	s.postClient = &http.Client{Transport: oneConn(s.post)}
	return s, nil
}

// read returns the next event of type want, skipping others; it gives up
// when ctx ends (the stream is closed under the reader).
func (s *sseSession) read(ctx context.Context, want string) (sse.Event, error) {
	stop := context.AfterFunc(ctx, func() { s.body.Close() })
	defer stop()
	for {
		ev, err, ok := s.next()
		switch {
		case !ok:
			if ctx.Err() != nil {
				return ev, ctx.Err()
			}
			return ev, fmt.Errorf("%w: the event stream ended", errClosedByPeer)
		case err != nil:
			if ctx.Err() != nil {
				return ev, ctx.Err()
			}
			return ev, fmt.Errorf("reading the event stream: %w", err)
		case ev.Type == want:
			return ev, nil
		}
	}
}

func (s *sseSession) conn() *conn              { return s.stream }
func (s *sseSession) conns() []*conn           { return []*conn{s.stream, s.post} }
func (s *sseSession) handshake() time.Duration { return s.hs }

// echo posts msg to the stream and waits for it to come back as an event.
func (s *sseSession) echo(ctx context.Context, msg string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+sseEventsPath+"/"+s.id, strings.NewReader(msg))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := s.postClient.Do(req)
	if err != nil {
		return "", err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST %s/%s answered %s: %s", sseEventsPath, s.id, resp.Status, strings.TrimSpace(string(b)))
	}
	ev, err := s.read(ctx, protocol.SSEEcho)
	if err != nil {
		return "", err
	}
	return ev.Data, nil
}

func (s *sseSession) close() {
	if s.stop != nil {
		s.stop()
	}
	if s.body != nil {
		s.body.Close()
	}
	for _, cl := range []*http.Client{s.streamClient, s.postClient} {
		if cl != nil {
			cl.CloseIdleConnections()
		}
	}
	for _, c := range []*conn{s.stream, s.post} {
		if c != nil {
			c.Close()
		}
	}
}
