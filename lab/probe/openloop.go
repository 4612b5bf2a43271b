package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Probe modes (Options.Mode).
const (
	// ModeClosed sends one message, waits for its echo, then sends the
	// next: msgs/s is 1 / the mean round trip of one connection.
	ModeClosed = "closed"
	// ModeOpen sends the messages at Options.Rate (as fast as the
	// connection takes them when 0) without waiting for their echoes, and
	// takes the echoes as they come: msgs/s is the rate they come back
	// at, latency is under that load.
	ModeOpen = "open"
)

// CheckMode says what is wrong with the options' mode and rate (field is
// "mode" or "rate"), or nothing.
func (o Options) CheckMode() (field, problem string) {
	switch {
	case o.Mode != "" && o.Mode != ModeClosed && o.Mode != ModeOpen:
		return "mode", fmt.Sprintf("mode %q: want %q (one message in flight, the default) or %q (sent at probe.rate without waiting for the echoes)", o.Mode, ModeClosed, ModeOpen)
	case o.Rate < 0:
		return "rate", fmt.Sprintf("rate %v is negative: give messages per second, or 0 for as fast as the connection takes them", o.Rate)
	case o.Rate > 0 && o.Mode != ModeOpen:
		return "rate", fmt.Sprintf("rate %v is for open-loop probes: add mode: %s", o.Rate, ModeOpen)
	}
	return "", ""
}

// openLooper is a session that can send its echoes without waiting for
// each (ModeOpen); Run measures the others closed-loop and says so.
type openLooper interface {
	pipeline(ctx context.Context) (pipeline, error)
}

// pipeline is one open-loop conversation: messages go out while echoes
// come back.
type pipeline interface {
	// send writes message i without waiting for its echo (one goroutine
	// sends).
	send(i int, msg string) error
	// recv returns the next echo to come back and the number of the
	// message it answers (one goroutine receives).
	recv() (i int, echo string, err error)
	// abort makes a blocked send or recv return (the other side failed).
	abort()
}

// measureAs measures s the way o asks: closed-loop (measure), or open-loop
// when asked and s can (measureOpen); r says which, and the offered rate.
func measureAs(ctx context.Context, r *Result, s session, conns []*conn, o Options) (figures, error) {
	r.Mode = ModeClosed
	if o.Mode != ModeOpen {
		return measure(ctx, conns, o, s.echo)
	}
	ol, ok := s.(openLooper)
	if !ok {
		r.ModeNote = fmt.Sprintf("open-loop is not available for %s: measured closed-loop", r.Protocol)
		return measure(ctx, conns, o, s.echo)
	}
	p, err := ol.pipeline(ctx)
	if err != nil {
		return figures{}, fmt.Errorf("open-loop: %w", err)
	}
	r.Mode = ModeOpen
	f, offered, err := measureOpen(ctx, conns, o, p)
	r.OfferedPerS = offered
	return f, err
}

// measureOpen sends o.Count messages at o.Rate (back to back when 0)
// without waiting for their echoes, takes the echoes as they come, and
// measures: each message's latency from when it was due to go (so a
// sender that falls behind its rate counts the wait: no coordinated
// omission), the rate the echoes came back at, the rate the messages went
// out at (offered), and the socket bytes.
func measureOpen(ctx context.Context, conns []*conn, o Options, p pipeline) (figures, float64, error) {
	var f figures
	bytes := func() (int64, int64) { return socketBytes(conns) }
	sent0, recv0 := bytes()
	due := make([]atomic.Int64, o.Count) // unix nanos each message was due
	var lastSent atomic.Int64
	sendErr := make(chan error, 1)
	begin := time.Now()
	go func() {
		var interval time.Duration
		if o.Rate > 0 {
			interval = time.Duration(float64(time.Second) / o.Rate)
		}
		for i := range o.Count {
			at := time.Now()
			if interval > 0 {
				at = begin.Add(time.Duration(i) * interval)
				if wait := time.Until(at); wait > 0 {
					select {
					case <-time.After(wait):
					case <-ctx.Done():
						sendErr <- ctx.Err()
						p.abort()
						return
					}
				}
			}
			due[i].Store(at.UnixNano())
			if err := p.send(i, Payload(i, o.Payload)); err != nil {
				sendErr <- fmt.Errorf("sending message %d of %d: %w", i+1, o.Count, err)
				p.abort()
				return
			}
			lastSent.Store(time.Now().UnixNano())
		}
		sendErr <- nil
	}()
	rtts := make([]time.Duration, 0, o.Count)
	seen := make([]bool, o.Count)
	var end time.Time
	fail := func(err error) (figures, float64, error) {
		p.abort()
		if serr := <-sendErr; serr != nil {
			err = serr // the cause; the receiver only saw its effect
		}
		f.Messages = len(rtts)
		return f, 0, err
	}
	for range o.Count {
		i, got, err := p.recv()
		end = time.Now()
		if err != nil {
			return fail(fmt.Errorf("echo %d of %d: %w", len(rtts)+1, o.Count, err))
		}
		if i < 0 || i >= o.Count || seen[i] {
			return fail(fmt.Errorf("echo %d of %d answers message %d, which was not sent or was answered already", len(rtts)+1, o.Count, i+1))
		}
		if want := Payload(i, o.Payload); got != want {
			return fail(fmt.Errorf("echo of message %d came back different: sent %q, got %q", i+1, want, got))
		}
		seen[i] = true
		rtts = append(rtts, end.Sub(time.Unix(0, due[i].Load())))
	}
	if err := <-sendErr; err != nil {
		f.Messages = len(rtts)
		return f, 0, err
	}
	f.Messages = len(rtts)
	sent, recv := bytes()
	f.SentB, f.RecvB = sent-sent0, recv-recv0
	f.BytesPerM = float64(f.SentB+f.RecvB) / float64(2*f.Messages)
	f.MsgsPerS = float64(f.Messages) / end.Sub(begin).Seconds()
	offered := float64(f.Messages) / time.Unix(0, lastSent.Load()).Sub(begin).Seconds()
	slices.Sort(rtts)
	f.RTTP50Ms, f.RTTP99Ms = ms(Percentile(rtts, 50)), ms(Percentile(rtts, 99))
	f.rttMin, f.rttMax = ms(rtts[0]), ms(rtts[len(rtts)-1])
	return f, offered, nil
}

// WebSocket: messages go out on the connection while a reader takes the
// echoes, in order (one writer and one reader at a time, as gorilla
// allows).
func (s *wsSession) pipeline(ctx context.Context) (pipeline, error) {
	if deadline, ok := ctx.Deadline(); ok {
		s.deadline = deadline
		_ = s.ws.SetWriteDeadline(deadline)
		_ = s.ws.SetReadDeadline(deadline)
	}
	return &wsPipeline{s: s}, nil
}

type wsPipeline struct {
	s    *wsSession
	next int
}

func (p *wsPipeline) send(_ int, msg string) error {
	return p.s.ws.WriteMessage(websocket.TextMessage, []byte(msg))
}

func (p *wsPipeline) recv() (int, string, error) {
	for {
		typ, b, err := p.s.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return 0, "", fmt.Errorf("%w: close %d %q", errClosedByPeer, ce.Code, ce.Text)
			}
			return 0, "", err
		}
		if typ == websocket.TextMessage {
			p.next++
			return p.next - 1, string(b), nil
		}
	}
}

func (p *wsPipeline) abort() { _ = p.s.ws.UnderlyingConn().SetDeadline(time.Now()) }

// HTTP: over HTTP/2 the requests go out as concurrent streams of the one
// connection (at most maxStreams in flight), answered in any order; over
// HTTP/1.1 a connection carries one exchange at a time, so open-loop is
// pipelining (RFC 9112 §9.3.2): the requests are written back to back on
// the kept-alive connection, taken back from the transport, and the
// answers read in order.
func (s *httpSession) pipeline(ctx context.Context) (pipeline, error) {
	if s.h2 {
		return &h2Pipeline{s: s, ctx: ctx, done: make(chan h2Answer, maxStreams), slots: make(chan struct{}, maxStreams), stop: make(chan struct{})}, nil
	}
	nc, err := s.lent.reclaim()
	if err != nil {
		return nil, err
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(deadline)
	}
	host := strings.TrimPrefix(strings.TrimPrefix(s.base, "https://"), "http://")
	return &h1Pipeline{c: nc, br: bufio.NewReader(nc), head: "POST " + s.path + " HTTP/1.1\r\nHost: " + host +
		"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "}, nil
}

// maxStreams bounds the HTTP/2 requests an open-loop probe keeps in flight
// (Go's server allows 250 streams at once by default).
const maxStreams = 100

type h1Pipeline struct {
	c    net.Conn
	br   *bufio.Reader
	head string
	buf  []byte
	next int
}

func (p *h1Pipeline) send(_ int, msg string) error {
	p.buf = append(append(strconv.AppendInt(append(p.buf[:0], p.head...), int64(len(msg)), 10), "\r\n\r\n"...), msg...)
	_, err := p.c.Write(p.buf)
	return err
}

func (p *h1Pipeline) recv() (int, string, error) {
	resp, err := http.ReadResponse(p.br, nil)
	if err != nil {
		return 0, "", fmt.Errorf("reading a pipelined response: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 2<<20))
	resp.Body.Close()
	if err != nil {
		return 0, "", fmt.Errorf("reading a pipelined response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, "", fmt.Errorf("a pipelined POST was answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	p.next++
	return p.next - 1, string(b), nil
}

func (p *h1Pipeline) abort() { _ = p.c.SetDeadline(time.Now()) }

type h2Pipeline struct {
	s     *httpSession
	ctx   context.Context
	done  chan h2Answer
	slots chan struct{} // one per stream in flight
	once  sync.Once
	stop  chan struct{} // closed by abort
}

type h2Answer struct {
	i       int
	body    string
	replica http.Header
	err     error
}

func (p *h2Pipeline) send(i int, msg string) error {
	select {
	case p.slots <- struct{}{}:
	case <-p.stop:
		return errors.New("aborted")
	}
	go func() {
		defer func() { <-p.slots }()
		a := h2Answer{i: i}
		req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, p.s.base+p.s.path, strings.NewReader(msg))
		if err == nil {
			req.Header.Set("Content-Type", "text/plain; charset=utf-8")
			var resp *http.Response
			if resp, err = p.s.client.Do(req); err == nil {
				b, rerr := io.ReadAll(io.LimitReader(resp.Body, 2<<20))
				resp.Body.Close()
				switch {
				case resp.ProtoMajor != 2:
					err = fmt.Errorf("POST %s was answered over %s, not HTTP/2", p.s.path, resp.Proto)
				case rerr != nil:
					err = fmt.Errorf("reading the response: %w", rerr)
				case resp.StatusCode != http.StatusOK:
					err = fmt.Errorf("POST %s answered %s: %s", p.s.path, resp.Status, strings.TrimSpace(string(b)))
				}
				a.body, a.replica = string(b), resp.Header
			}
		}
		a.err = err
		p.done <- a
	}()
	return nil
}

func (p *h2Pipeline) recv() (int, string, error) {
	a := <-p.done
	if a.err != nil {
		return 0, "", a.err
	}
	p.s.c.saw(a.replica)
	return a.i, a.body, nil
}

func (p *h2Pipeline) abort() { p.once.Do(func() { close(p.stop) }) }

// lentConn is the connection an httpSession lends its transport (HTTP/1.1).
// The transport's Close does not close it: net/http drops a connection
// whose request write it has not seen complete within 50 ms of the answer
// (maxWriteWaitBeforeConnReuse) — a writer goroutine held up on a loaded
// machine — and would dial again, which the probe, keeping one connection,
// refuses; it gets this one back instead (dropped). The session closes the
// connection itself. For an open-loop run the session takes it back
// (reclaim): the transport would read the pipelined answers itself, from
// the read it keeps waiting on an idle connection.
type lentConn struct {
	net.Conn
	reclaimed atomic.Bool
	reading   atomic.Int32
	closed    atomic.Bool // by the transport
}

// dropped says whether the transport closed the connection, which it may
// then have again: a read the dropped one still waits on ends first, so
// one reader has it at a time.
func (l *lentConn) dropped() bool {
	if l == nil || l.reclaimed.Load() || !l.closed.Swap(false) {
		return false
	}
	return l.quiesce() == nil
}

var errReclaimed = errors.New("the probe took its connection back for an open-loop run")

func (l *lentConn) Read(b []byte) (int, error) {
	l.reading.Add(1)
	defer l.reading.Add(-1)
	if l.reclaimed.Load() {
		return 0, errReclaimed
	}
	return l.Conn.Read(b)
}

// Close is the transport's: it leaves the connection up (see lentConn).
func (l *lentConn) Close() error {
	l.closed.Store(true)
	return nil
}

// reclaim takes the connection back from the transport: its waiting read
// ends (a read deadline in the past: a timeout, which leaves a TLS
// connection usable) and every later one fails. It returns the connection,
// to be used by one reader and one writer.
func (l *lentConn) reclaim() (net.Conn, error) {
	if l == nil {
		return nil, errors.New("the session has no connection of its own to pipeline on")
	}
	l.reclaimed.Store(true)
	if err := l.quiesce(); err != nil {
		return nil, fmt.Errorf("taking the connection back: %w", err)
	}
	return l.Conn, nil
}

// quiesce ends the read the transport waits on, if any (a read deadline
// in the past: a timeout, which leaves a TLS connection usable), waits for
// it to return, and lifts the deadline.
func (l *lentConn) quiesce() error {
	if err := l.Conn.SetReadDeadline(time.Now()); err != nil {
		return err
	}
	for wait := time.Now().Add(5 * time.Second); l.reading.Load() > 0; time.Sleep(100 * time.Microsecond) {
		if time.Now().After(wait) {
			return errors.New("the HTTP transport is still reading it")
		}
	}
	return l.Conn.SetReadDeadline(time.Time{})
}
