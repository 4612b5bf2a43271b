// Package conformance is protolab's WebSocket conformance suite: a
// raw-socket client (internal/wsraw) plays the case groups of the
// Autobahn|Testsuite that apply to a server — 1 framing, 2 pings and
// pongs, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close
// handling, 9 limits and performance at a bounded size — plus the opening
// handshake and the chat room, against every WebSocket app the protocol
// table lists (each kind with an echo path, over each WebSocket protocol
// it speaks). The cases and what each expects come from RFC 6455; the
// test writes the results to docs/websocket-conformance.md.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/protolab/protolab-tui/internal/wsraw"
	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/protocol/rfc6455"
)

// Target is one app under test.
type Target struct {
	// Name is "kind/protocol".
	Name     string
	Kind     protocol.Kind
	Protocol protocol.Protocol
	Conn     wsraw.Target
	// ReadLimit is the largest message the app accepts: the bound of the
	// limits group.
	ReadLimit int
}

// Case is one conformance case.
type Case struct {
	// ID numbers it as Autobahn does where a case of Autobahn's exists
	// ("6.4.1"); H.n are handshake cases and C.n chat room cases.
	ID string
	// Sent says what the client does.
	Sent string
	// Expected says what RFC 6455 asks of the server.
	Expected string
	// Chat marks cases of the chat room: they run on kinds that have one.
	Chat bool
	// Run plays the case and returns what the server did, in a few
	// deterministic words, and an error when that is not what is expected.
	Run func(ctx context.Context, t Target) (observed string, err error)
}

// Group is the case's group ("1", "6", "H").
func (c Case) Group() string { g, _, _ := strings.Cut(c.ID, "."); return g }

// Before orders case IDs part by part, numbers as numbers ("6.9.2" before
// "6.10.1").
func Before(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil {
			return na < nb
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}

// GroupTitles name the groups, in the order the table shows them.
var GroupTitles = []struct{ ID, Title string }{
	{"H", "Opening handshake (§4.2)"},
	{"1", "Framing (§5.2, §5.6)"},
	{"2", "Pings and pongs (§5.5.2, §5.5.3)"},
	{"3", "Reserved bits (§5.2)"},
	{"4", "Opcodes (§5.2)"},
	{"5", "Fragmentation (§5.4)"},
	{"6", "UTF-8 handling (§5.6, §8.1)"},
	{"7", "Close handling (§5.5.1, §7)"},
	{"9", "Limits and performance, bounded by the app's read limit (§10.4)"},
	{"C", "The chat room: what one member sends cannot break the others"},
}

// wait bounds every read of a case.
const wait = 5 * time.Second

// step is one part of an exchange: frames sent, then what the server must
// answer before the next part goes.
type step struct {
	send []wsraw.Frame
	// chop: 0 sends the frames in one write, -1 each frame in its own,
	// n > 0 in writes of n bytes.
	chop int
	// want are the frames the server must send back (opcode, FIN and
	// payload compared), in order.
	want []wsraw.Frame
	// failFast: the server must close with this code now, before the
	// steps after this one are sent.
	failFast uint16
}

// exchange is a case as a script: the steps, then the end.
type exchange struct {
	steps []step
	// close: 0 means the server must answer the client's close (sent by
	// the runner after the steps with 1000, unless a step sent one) with
	// the same code; else the server must close with this code (1005:
	// with no code).
	close uint16
}

func (x exchange) run(ctx context.Context, t Target) (string, error) {
	c, err := wsraw.Dial(ctx, t.Conn, t.Kind.Echo)
	if err != nil {
		return "handshake failed", err
	}
	defer c.Close()
	var seen []wsraw.Frame
	for i, s := range x.steps {
		if err := send(c, s.send, s.chop); err != nil && s.failFast == 0 && i < len(x.steps)-1 {
			return describe(seen), fmt.Errorf("step %d: sending: %w", i+1, err)
		}
		for _, w := range s.want {
			f, err := c.ReadFrame(time.Now().Add(wait))
			if err != nil {
				return describe(seen), fmt.Errorf("step %d: waiting for %v: %w", i+1, w, err)
			}
			seen = append(seen, f)
			if !same(f, w) {
				return describe(seen), fmt.Errorf("step %d: got %v, want %v", i+1, f, w)
			}
		}
		if s.failFast != 0 {
			obs, err := finish(c, s.failFast, seen)
			return strings.Replace(obs, "; TCP closed", " (before the rest was sent); TCP closed", 1), err
		}
	}
	code := x.close
	if code == 0 {
		code = rfc6455.CloseNormal
		if !c.CloseSent() {
			_ = c.Send(wsraw.Close(code, ""))
		}
	}
	return finish(c, code, seen)
}

func send(c *wsraw.Conn, frames []wsraw.Frame, chop int) error {
	switch {
	case len(frames) == 0:
		return nil
	case chop == 0:
		return c.Send(frames...)
	case chop < 0:
		return c.SendFramewise(frames...)
	}
	return c.SendChopped(chop, frames...)
}

// finish reads until the server closes TCP: its next frame must be a
// close with code (1005: no code), answered by the client unless it sent
// one already.
func finish(c *wsraw.Conn, code uint16, seen []wsraw.Frame) (string, error) {
	frames, err := c.Closed(time.Now().Add(wait))
	seen = append(seen, frames...)
	obs := describe(seen)
	if err != nil {
		return obs, err
	}
	if len(frames) == 0 {
		return obs + "TCP closed", fmt.Errorf("TCP closed with no close frame, want close %d", code)
	}
	f := frames[0]
	if f.Op != rfc6455.OpClose {
		return obs, fmt.Errorf("got %v, want close %d", f, code)
	}
	got, reason := f.CloseCode()
	if got != code {
		return obs, fmt.Errorf("close %d (%q), want %d", got, reason, code)
	}
	if len(frames) > 1 {
		return obs, fmt.Errorf("frames after the close: %v", frames[1:])
	}
	return obs + "; TCP closed", nil
}

// same compares a received frame with the one wanted.
func same(got, want wsraw.Frame) bool {
	return got.Op == want.Op && got.Fin == want.Fin && got.RSV == 0 && !got.Masked && string(got.Payload) == string(want.Payload)
}

// describe says what the server sent, runs of equal frames counted:
// "text 16 B ×1000, close 1000".
func describe(frames []wsraw.Frame) string {
	var parts []string
	for i := 0; i < len(frames); {
		j := i + 1
		for j < len(frames) && frames[j].String() == frames[i].String() {
			j++
		}
		s := frames[i].String()
		if n := j - i; n > 1 {
			s += fmt.Sprintf(" ×%d", n)
		}
		parts = append(parts, s)
		i = j
	}
	return strings.Join(parts, ", ")
}

// Targets lists the apps under test from the protocol table: every kind
// with an echo path, over every WebSocket protocol it speaks. addr starts
// one and says where it listens (and how to reach it).
func Targets(start func(k protocol.Kind, p protocol.Protocol) (wsraw.Target, int, error)) ([]Target, error) {
	var out []Target
	for _, k := range protocol.Kinds() {
		if k.Echo == "" {
			continue
		}
		for _, p := range k.Protocols {
			if !p.WebSocket() {
				continue
			}
			conn, limit, err := start(k, p)
			if err != nil {
				return nil, fmt.Errorf("starting %s over %s for the suite: %w", k.Name, p, err)
			}
			out = append(out, Target{Name: k.Name + "/" + string(p), Kind: k, Protocol: p, Conn: conn, ReadLimit: limit})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the protocol table has no WebSocket kind with an echo path")
	}
	return out, nil
}
