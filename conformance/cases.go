package conformance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/protolab/protolab-tui/internal/wsraw"
	"github.com/protolab/protolab-tui/protocol/rfc6455"
)

// Shorthands for the case list.
var (
	text   = wsraw.Text
	binary = wsraw.Binary
	ping   = wsraw.Ping
	pong   = wsraw.Pong
)

func stars(n int) string { return strings.Repeat("*", n) }

// pattern is n bytes of binary payload (every value, in turn).
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func frag(op byte, fin bool, s string) wsraw.Frame { return wsraw.Fragment(op, fin, []byte(s)) }

const (
	opText = rfc6455.OpText
	opBin  = rfc6455.OpBinary
	opCont = rfc6455.OpContinuation
)

// ok is an exchange the server must answer with want, then close 1000
// when the client does.
func ok(chop int, send []wsraw.Frame, want ...wsraw.Frame) exchange {
	return exchange{steps: []step{{send: send, chop: chop, want: want}}}
}

// refused is an exchange the server must answer with want, then close
// with code.
func refused(code uint16, chop int, send []wsraw.Frame, want ...wsraw.Frame) exchange {
	return exchange{steps: []step{{send: send, chop: chop, want: want}}, close: code}
}

func frames(f ...wsraw.Frame) []wsraw.Frame { return f }

// chopName says how a case sends its bytes.
func chopName(chop int) string {
	switch {
	case chop == 1:
		return ", sent byte by byte"
	case chop < 0:
		return ", each frame in its own write"
	case chop > 1:
		return fmt.Sprintf(", in writes of %d bytes", chop)
	}
	return ""
}

func size(n int) string {
	switch {
	case n >= 1024 && n%1024 == 0:
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Cases lists every case; limit is the apps' read limit, the bound of the
// limits group.
func Cases(limit int) []Case {
	var cs []Case
	add := func(id, sent, expected string, run func(context.Context, Target) (string, error)) {
		cs = append(cs, Case{ID: id, Sent: sent, Expected: expected, Run: run})
	}
	addX := func(id, sent, expected string, x exchange) { add(id, sent, expected, x.run) }

	cs = append(cs, handshakeCases()...)

	// 1 Framing: echoes of every length encoding (7-bit, 16-bit, 64-bit).
	sizes := []int{0, 125, 126, 127, 128, 65535, 65536}
	for i, n := range sizes {
		if n > limit {
			continue
		}
		addX(fmt.Sprintf("1.1.%d", i+1), "text of "+size(n), "echo, then close 1000", ok(0, frames(text(stars(n))), text(stars(n))))
		addX(fmt.Sprintf("1.2.%d", i+1), "binary of "+size(n), "echo, then close 1000", ok(0, frames(binary(pattern(n))), binary(pattern(n))))
	}
	addX("1.1.8", "text of 64 KiB in writes of 997 bytes", "echo, then close 1000", ok(997, frames(text(stars(65536))), text(stars(65536))))
	addX("1.2.8", "binary of 64 KiB in writes of 997 bytes", "echo, then close 1000", ok(997, frames(binary(pattern(65536))), binary(pattern(65536))))

	// 2 Pings and pongs.
	addX("2.1", "ping, no payload", "pong, no payload", ok(0, frames(ping(nil)), pong(nil)))
	addX("2.2", "ping with a text payload", "pong with the same payload", ok(0, frames(ping([]byte("Hello, world!"))), pong([]byte("Hello, world!"))))
	bin := []byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff}
	addX("2.3", "ping with a binary payload", "pong with the same payload", ok(0, frames(ping(bin)), pong(bin)))
	addX("2.4", "ping with 125 bytes", "pong with the same payload", ok(0, frames(ping(pattern(125))), pong(pattern(125))))
	addX("2.5", "ping with 126 bytes (too long for a control frame)", "close 1002", refused(1002, 0, frames(ping(pattern(126)))))
	addX("2.6", "ping with 125 bytes, sent byte by byte", "pong with the same payload", ok(1, frames(ping(pattern(125))), pong(pattern(125))))
	addX("2.7", "unsolicited pong, no payload", "nothing, then close 1000", ok(0, frames(pong(nil))))
	addX("2.8", "unsolicited pong with a payload", "nothing, then close 1000", ok(0, frames(pong([]byte("unsolicited pong payload")))))
	addX("2.9", "unsolicited pong, then ping", "pong with the ping's payload", ok(0, frames(pong([]byte("unsolicited")), ping([]byte("ping payload"))), pong([]byte("ping payload"))))
	add("2.10", "10 pings at once", "pongs with the pings' payloads in order, at least the last one's (§5.5.3)", pings(0))
	add("2.11", "10 pings, each in its own write", "pongs with the pings' payloads in order, at least the last one's (§5.5.3)", pings(-1))

	// 3 Reserved bits: no extension is negotiated, so any is a failure.
	addX("3.1", "text with RSV=1", "close 1002", refused(1002, 0, frames(wsraw.Frame{Fin: true, RSV: 1, Op: opText, Payload: []byte("Hello")})))
	for i, rsv := range []byte{2, 3, 4} {
		chop := []int{0, -1, 1}[i]
		addX(fmt.Sprintf("3.%d", i+2), fmt.Sprintf("text, then text with RSV=%d, then ping%s", rsv, chopName(chop)), "echo of the first, then close 1002 (no pong)",
			refused(1002, chop, frames(text("Hello"), wsraw.Frame{Fin: true, RSV: rsv, Op: opText, Payload: []byte("Hello")}, ping(nil)), text("Hello")))
	}
	addX("3.5", "binary with RSV=5", "close 1002", refused(1002, 0, frames(wsraw.Frame{Fin: true, RSV: 5, Op: opBin, Payload: pattern(8)})))
	addX("3.6", "ping with RSV=6", "close 1002 (no pong)", refused(1002, 0, frames(wsraw.Frame{Fin: true, RSV: 6, Op: rfc6455.OpPing, Payload: []byte("Hello")})))
	addX("3.7", "close with RSV=7", "close 1002", refused(1002, 0, frames(wsraw.Frame{Fin: true, RSV: 7, Op: rfc6455.OpClose, Payload: []byte{0x03, 0xe8}})))

	// 4 Opcodes: reserved non-control (3–7) and control (B–F) opcodes.
	for g, ops := range [][]byte{{3, 4, 5, 6, 7}, {0xb, 0xc, 0xd, 0xe, 0xf}} {
		kind := []string{"non-control", "control"}[g]
		for i, op := range ops {
			id := fmt.Sprintf("4.%d.%d", g+1, i+1)
			bad := wsraw.Frame{Fin: true, Op: op}
			if i%2 == 1 {
				bad.Payload = []byte("reserved opcode payload")
			}
			if i < 2 {
				addX(id, fmt.Sprintf("frame of reserved %s opcode 0x%x", kind, op), "close 1002", refused(1002, 0, frames(bad)))
				continue
			}
			chop := []int{0, 0, 0, 0, 1}[i]
			addX(id, fmt.Sprintf("text, frame of reserved %s opcode 0x%x, ping%s", kind, op, chopName(chop)), "echo of the text, then close 1002 (no pong)",
				refused(1002, chop, frames(text("Hello"), bad, ping(nil)), text("Hello")))
		}
	}

	// 5 Fragmentation.
	addX("5.1", "ping in 2 fragments", "close 1002", refused(1002, 0, frames(frag(rfc6455.OpPing, false, "fragment1"), frag(opCont, true, "fragment2"))))
	addX("5.2", "pong in 2 fragments", "close 1002", refused(1002, 0, frames(frag(rfc6455.OpPong, false, "fragment1"), frag(opCont, true, "fragment2"))))
	two := frames(frag(opText, false, "fragment1"), frag(opCont, true, "fragment2"))
	for i, chop := range []int{0, 1, -1} {
		addX(fmt.Sprintf("5.%d", 3+i), "text in 2 fragments"+chopName(chop), "echo as one message", ok(chop, two, text("fragment1fragment2")))
	}
	withPing := frames(frag(opText, false, "fragment1"), ping([]byte("pongme!")), frag(opCont, true, "fragment2"))
	for i, chop := range []int{0, 1, -1} {
		addX(fmt.Sprintf("5.%d", 6+i), "text in 2 fragments with a ping between"+chopName(chop), "pong, then the echo as one message",
			ok(chop, withPing, pong([]byte("pongme!")), text("fragment1fragment2")))
	}
	for i, fin := range []bool{true, false} {
		for j, chop := range []int{0, 1, -1} {
			addX(fmt.Sprintf("5.%d", 9+3*i+j), fmt.Sprintf("continuation (FIN=%v) with nothing to continue, then text%s", fin, chopName(chop)), "close 1002 (no echo)",
				refused(1002, chop, frames(frag(opCont, fin, "fragment1"), frag(opText, false, "fragment2"), frag(opCont, true, "fragment3"))))
		}
	}
	addX("5.15", "text in 2 fragments, then a continuation with nothing to continue, then text", "echo of the first, then close 1002",
		refused(1002, 0, frames(frag(opText, false, "fragment1"), frag(opCont, true, "fragment2"), frag(opCont, false, "fragment3"), frag(opText, true, "fragment4")), text("fragment1fragment2")))
	for i, fin := range []bool{false, true} {
		seq := frames(frag(opCont, fin, "fragment1"), frag(opText, false, "fragment2"), frag(opCont, true, "fragment3"))
		addX(fmt.Sprintf("5.%d", 16+i), fmt.Sprintf("twice: continuation (FIN=%v) with nothing to continue, text fragment, continuation", fin), "close 1002",
			refused(1002, 0, append(seq, seq...)))
	}
	addX("5.18", "text fragment, then another text frame before it ends", "close 1002", refused(1002, 0, frames(frag(opText, false, "fragment1"), frag(opText, true, "fragment2"))))
	for i, chop := range []int{-1, 1} {
		x := exchange{steps: []step{
			{send: frames(frag(opText, false, "fragment1"), frag(opCont, false, "fragment2"), ping([]byte("pongme 1!"))), chop: chop, want: frames(pong([]byte("pongme 1!")))},
			{send: frames(frag(opCont, false, "fragment3"), frag(opCont, false, "fragment4"), ping([]byte("pongme 2!"))), chop: chop, want: frames(pong([]byte("pongme 2!")))},
			{send: frames(frag(opCont, true, "fragment5")), chop: chop, want: frames(text("fragment1fragment2fragment3fragment4fragment5"))},
		}}
		addX(fmt.Sprintf("5.%d", 19+i), "text in 5 fragments, a ping after the 2nd and the 4th, each pong awaited"+chopName(chop), "each pong as its ping comes, then the echo as one message", x)
	}

	cs = append(cs, utf8Cases()...)
	cs = append(cs, closeCases(limit)...)
	cs = append(cs, limitCases(limit)...)
	cs = append(cs, chatCases()...)
	return cs
}

// pings sends 10 pings and checks the pongs (§5.5.3 lets a server answer
// only the latest of several pings).
func pings(chop int) func(context.Context, Target) (string, error) {
	return func(ctx context.Context, t Target) (string, error) {
		c, err := wsraw.Dial(ctx, t.Conn, t.Kind.Echo)
		if err != nil {
			return "handshake failed", err
		}
		defer c.Close()
		var fs []wsraw.Frame
		for i := range 10 {
			fs = append(fs, ping(fmt.Appendf(nil, "payload-%d", i)))
		}
		if err := send(c, append(fs, wsraw.Close(1000, "")), chop); err != nil {
			return "", err
		}
		got, err := c.Closed(time.Now().Add(wait))
		obs := describe(got)
		if err != nil {
			return obs, err
		}
		next, last := 0, ""
		for i, f := range got {
			if f.Op == rfc6455.OpClose {
				if code, _ := f.CloseCode(); code != 1000 || i != len(got)-1 {
					return obs, fmt.Errorf("close %d at frame %d, want 1000 last", code, i)
				}
				break
			}
			if f.Op != rfc6455.OpPong {
				return obs, fmt.Errorf("unexpected %v", f)
			}
			for next < 10 && string(f.Payload) != fmt.Sprintf("payload-%d", next) {
				next++
			}
			if next == 10 {
				return obs, fmt.Errorf("pong %q out of order", f.Payload)
			}
			last = string(f.Payload)
		}
		if last != "payload-9" {
			return obs, fmt.Errorf("no pong for the last ping (last pong %q)", last)
		}
		return obs + "; TCP closed", nil
	}
}

// handshakeCases are the opening handshake's (§4.2.1, §4.2.2).
func handshakeCases() []Case {
	type hs struct {
		id, sent, expected string
		request            func(host, path string) string
		status             int
		header, absent     string // "Name: value" the answer must have; a header it must not
	}
	replace := func(old, new string) func(string, string) string {
		return func(host, path string) string { return strings.Replace(wsraw.Request(host, path), old, new, 1) }
	}
	extra := func(h string) func(string, string) string {
		return func(host, path string) string { return wsraw.Request(host, path, h) }
	}
	var cs []Case
	for _, h := range []hs{
		{"H.1", "a valid handshake", "101 with the Sec-WebSocket-Accept of the key", replace("", ""), 101, "Upgrade: websocket", ""},
		{"H.2", "Sec-WebSocket-Version: 8", "426 (or another 4xx) with Sec-WebSocket-Version: 13", replace("Version: 13", "Version: 8"), 426, "Sec-Websocket-Version: 13", ""},
		{"H.3", "POST instead of GET", "405", replace("GET", "POST"), 405, "", ""},
		{"H.4", "no Sec-WebSocket-Key", "400", replace("Sec-WebSocket-Key", "X-Key"), 400, "", ""},
		{"H.5", "a Sec-WebSocket-Key of 3 bytes", "400", replace("Sec-WebSocket-Key: ", "Sec-WebSocket-Key: a2V5"), 400, "", ""},
		{"H.6", "no Upgrade: websocket", "400", replace("Upgrade: websocket\r\n", ""), 400, "", ""},
		{"H.7", "Origin of a foreign site", "403 (§4.2.2: the server may refuse an origin)", extra("Origin: http://evil.example"), 403, "", ""},
		{"H.8", "HTTP/1.0", "400 (the handshake needs HTTP/1.1)", replace("HTTP/1.1", "HTTP/1.0"), 400, "", ""},
		{"H.9", "offers permessage-deflate", "101 without Sec-WebSocket-Extensions (none negotiated, so RSV bits stay forbidden)", extra("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"), 101, "", "Sec-Websocket-Extensions"},
		{"H.10", "asks for a subprotocol the server lacks", "101 without Sec-WebSocket-Protocol", extra("Sec-WebSocket-Protocol: chat.example"), 101, "", "Sec-Websocket-Protocol"},
	} {
		cs = append(cs, Case{ID: h.id, Sent: h.sent, Expected: h.expected, Run: func(ctx context.Context, t Target) (string, error) {
			c, err := wsraw.Handshake(ctx, t.Conn, h.request(t.Conn.Addr, t.Kind.Echo))
			if err != nil {
				return "no answer", err
			}
			defer c.Close()
			r := c.Response
			obs := fmt.Sprint(r.StatusCode)
			if h.status == 101 && r.StatusCode == 101 && r.Header.Get("Sec-WebSocket-Accept") == "" {
				return obs, errors.New("101 without Sec-WebSocket-Accept")
			}
			if name, value, ok := strings.Cut(h.header, ": "); ok {
				if got := r.Header.Get(name); !strings.EqualFold(got, value) {
					return obs, fmt.Errorf("%s: %q, want %q", name, got, value)
				}
				obs += " with " + h.header
			}
			if h.absent != "" {
				if v := r.Header.Get(h.absent); v != "" {
					return obs, fmt.Errorf("answered %s: %s", h.absent, v)
				}
				obs += ", no " + http.CanonicalHeaderKey(h.absent)
			}
			if r.StatusCode != h.status {
				return obs, fmt.Errorf("status %d, want %d", r.StatusCode, h.status)
			}
			return obs, nil
		}})
	}
	cs = append(cs, Case{ID: "H.11", Sent: "a text frame in the same write as the handshake", Expected: "101, then the echo (the server may also refuse: §4.1 asks the client to wait)", Run: func(ctx context.Context, t Target) (string, error) {
		c, err := wsraw.Handshake(ctx, t.Conn, wsraw.Request(t.Conn.Addr, t.Kind.Echo)+string(text("early").Encode()))
		if err != nil {
			return "no answer", err
		}
		defer c.Close()
		if c.Response.StatusCode != 101 {
			return fmt.Sprint(c.Response.StatusCode), fmt.Errorf("status %d", c.Response.StatusCode)
		}
		f, err := c.ReadFrame(time.Now().Add(wait))
		if err != nil || !same(f, text("early")) {
			return "101", fmt.Errorf("no echo of the early frame: %v %v", f, err)
		}
		return "101, " + describe([]wsraw.Frame{f}), nil
	}})
	return cs
}

// utf8Sequence is one payload of the UTF-8 group, after Markus Kuhn's
// UTF-8 decoder stress test as Autobahn plays it.
type utf8Sequence struct {
	id, about string
	b         string
}

func utf8Cases() []Case {
	var cs []Case
	addX := func(id, sent, expected string, x exchange) {
		cs = append(cs, Case{ID: id, Sent: sent, Expected: expected, Run: x.run})
	}
	addX("6.1.1", "empty text", "echo (empty)", ok(0, frames(text("")), text("")))
	addX("6.1.2", "text in 3 empty fragments", "echo (empty)", ok(0, frames(frag(opText, false, ""), frag(opCont, false, ""), frag(opCont, true, "")), text("")))
	addX("6.1.3", "text in 3 fragments, the 1st and 3rd empty", "echo as one message",
		ok(0, frames(frag(opText, false, ""), frag(opCont, false, "middle frame payload"), frag(opCont, true, "")), text("middle frame payload")))
	hello := "Hello-µ@ßöäüàá-UTF-8!!"
	addX("6.2.1", "valid UTF-8 text", "echo", ok(0, frames(text(hello)), text(hello)))
	addX("6.2.2", "valid UTF-8 text in 2 fragments, cut between characters", "echo as one message", ok(0, frames(frag(opText, false, "Hello-µ@ßöä"), frag(opCont, true, "üàá-UTF-8!!")), text(hello)))
	addX("6.2.3", "valid UTF-8 text, sent byte by byte", "echo", ok(1, frames(text(hello)), text(hello)))
	greek := "κόσμε"
	addX("6.2.4", "κόσμε, sent byte by byte", "echo", ok(1, frames(text(greek)), text(greek)))
	bad := greek + "\xed\xa0\x80edited"
	addX("6.3.1", "invalid UTF-8 text (a surrogate)", "close 1007", refused(1007, 0, frames(text(bad))))
	addX("6.3.2", "invalid UTF-8 text, sent byte by byte", "close 1007", refused(1007, 1, frames(text(bad))))

	// 6.4: fail fast — the close must come before the rest is sent.
	x := exchange{steps: []step{
		{send: frames(frag(opText, false, greek))},
		{send: frames(frag(opCont, false, "\xf4\x90\x80\x80")), failFast: 1007},
		{send: frames(frag(opCont, true, "edited"))},
	}}
	addX("6.4.1", "text in 3 fragments: κόσμε, then U+110000 (past Unicode), then more", "close 1007 before the 3rd fragment is sent", x)
	x = exchange{steps: []step{
		{send: frames(frag(opText, false, greek+"\xf4"))},
		{send: frames(frag(opCont, false, "\x90")), failFast: 1007},
		{send: frames(frag(opCont, true, "\x80\x80edited"))},
	}}
	addX("6.4.2", "text in 3 fragments, the invalid sequence cut after its 1st and 2nd byte", "close 1007 before the 3rd fragment is sent", x)
	one := text(greek + "\xf4\x90\x80\x80edited").Encode()
	hdr := 6 // 2 + the mask: the payload is under 126 bytes
	cut := func(a, b int) []byte { return one[a:b] }
	raw := func(id, sent string, parts ...[]byte) {
		cs = append(cs, Case{ID: id, Sent: sent, Expected: "close 1007 before the last piece is sent", Run: func(ctx context.Context, t Target) (string, error) {
			c, err := wsraw.Dial(ctx, t.Conn, t.Kind.Echo)
			if err != nil {
				return "handshake failed", err
			}
			defer c.Close()
			for _, p := range parts[:len(parts)-1] {
				if err := c.Write(p); err != nil {
					return "", err
				}
			}
			f, err := c.ReadFrame(time.Now().Add(wait))
			if err != nil {
				return "", fmt.Errorf("no close before the rest was sent: %w", err)
			}
			obs := describe([]wsraw.Frame{f}) + " (before the rest was sent)"
			if code, _ := f.CloseCode(); f.Op != rfc6455.OpClose || code != 1007 {
				return obs, fmt.Errorf("got %v, want close 1007", f)
			}
			// A client finishes the frame it was writing, then answers.
			if err := c.Write(parts[len(parts)-1]); err != nil {
				return obs, err
			}
			_ = c.Send(wsraw.CloseRaw(f.Payload[:2]))
			rest, err := c.Closed(time.Now().Add(wait))
			if err != nil || len(rest) > 0 {
				return obs, fmt.Errorf("after the close: %v %v", rest, err)
			}
			return obs + "; TCP closed", nil
		}})
	}
	n := hdr + len(greek)
	raw("6.4.3", "one text frame in 3 writes: κόσμε, U+110000, the rest", cut(0, n), cut(n, n+4), cut(n+4, len(one)))
	raw("6.4.4", "one text frame in 3 writes, U+110000 cut after its 2nd byte", cut(0, n+1), cut(n+1, n+2), cut(n+2, len(one)))

	addX("6.5.1", "κόσμε in one frame", "echo", ok(0, frames(text(greek)), text(greek)))
	var perChar, perByte []wsraw.Frame
	for i, r := range []rune(greek) {
		perChar = append(perChar, frag(map[bool]byte{true: opText, false: opCont}[i == 0], i == len([]rune(greek))-1, string(r)))
	}
	for i := range len(greek) {
		perByte = append(perByte, frag(map[bool]byte{true: opText, false: opCont}[i == 0], i == len(greek)-1, greek[i:i+1]))
	}
	addX("6.5.2", "κόσμε, one character per fragment", "echo as one message", ok(0, perChar, text(greek)))
	addX("6.5.3", "κόσμε, one byte per fragment (fragments are not valid alone)", "echo as one message", ok(0, perByte, text(greek)))

	// The stress test's sequences, each in one frame: valid ones echoed,
	// invalid ones closed 1007.
	var seqs []utf8Sequence
	for k := 1; k <= len(greek); k++ {
		seqs = append(seqs, utf8Sequence{fmt.Sprintf("6.6.%d", k), fmt.Sprintf("the first %d bytes of κόσμε", k), greek[:k]})
	}
	list := func(group, about string, bs ...string) {
		for i, b := range bs {
			seqs = append(seqs, utf8Sequence{fmt.Sprintf("%s.%d", group, i+1), about, b})
		}
	}
	list("6.7", "first character of its length", "\x00", "\xc2\x80", "\xe0\xa0\x80", "\xf0\x90\x80\x80")
	list("6.8", "first 5- and 6-byte sequences (not UTF-8)", "\xf8\x88\x80\x80\x80", "\xfc\x84\x80\x80\x80\x80")
	list("6.9", "last character of its length (the 4-byte one past Unicode)", "\x7f", "\xdf\xbf", "\xef\xbf\xbf", "\xf7\xbf\xbf\xbf")
	list("6.10", "last 5- and 6-byte sequences", "\xfb\xbf\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf\xbf")
	list("6.11", "boundaries: U+D7FF, U+E000, U+FFFD, U+10FFFF, U+110000", "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbd", "\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80")
	var allCont []byte
	for b := 0x80; b <= 0xbf; b++ {
		allCont = append(allCont, byte(b))
	}
	list("6.12", "unexpected continuation bytes", "\x80", "\xbf", "\x80\xbf", "\x80\xbf\x80", "\x80\xbf\x80\xbf", "\x80\xbf\x80\xbf\x80", "\x80\xbf\x80\xbf\x80\xbf", string(allCont))
	lonely := func(from, to byte) string {
		var b []byte
		for c := int(from); c <= int(to); c++ {
			b = append(b, byte(c), ' ')
		}
		return string(b)
	}
	list("6.13", "lonely start bytes, each followed by a space", lonely(0xc0, 0xdf), lonely(0xe0, 0xef), lonely(0xf0, 0xf7), lonely(0xf8, 0xfb), lonely(0xfc, 0xfd))
	missing := []string{"\xc0", "\xe0\x80", "\xf0\x80\x80", "\xf8\x80\x80\x80", "\xfc\x80\x80\x80\x80", "\xdf", "\xef\xbf", "\xf7\xbf\xbf", "\xfb\xbf\xbf\xbf", "\xfd\xbf\xbf\xbf\xbf"}
	list("6.14", "sequences with their last byte missing", missing...)
	list("6.15", "all of 6.14 in a row", strings.Join(missing, ""))
	list("6.16", "impossible bytes", "\xfe", "\xff", "\xfe\xfe\xff\xff")
	list("6.17", "overlong forms of /", "\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xf8\x80\x80\x80\xaf", "\xfc\x80\x80\x80\x80\xaf")
	list("6.18", "the largest overlong forms", "\xc1\xbf", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "\xf8\x87\xbf\xbf\xbf", "\xfc\x83\xbf\xbf\xbf\xbf")
	list("6.19", "overlong forms of NUL", "\xc0\x80", "\xe0\x80\x80", "\xf0\x80\x80\x80", "\xf8\x80\x80\x80\x80", "\xfc\x80\x80\x80\x80\x80")
	list("6.20", "single UTF-16 surrogates", "\xed\xa0\x80", "\xed\xad\xbf", "\xed\xae\x80", "\xed\xaf\xbf", "\xed\xb0\x80", "\xed\xbe\x80", "\xed\xbf\xbf")
	list("6.21", "paired UTF-16 surrogates", "\xed\xa0\x80\xed\xb0\x80", "\xed\xa0\x80\xed\xbf\xbf", "\xed\xad\xbf\xed\xb0\x80", "\xed\xad\xbf\xed\xbf\xbf",
		"\xed\xae\x80\xed\xb0\x80", "\xed\xae\x80\xed\xbf\xbf", "\xed\xaf\xbf\xed\xb0\x80", "\xed\xaf\xbf\xed\xbf\xbf")
	var nonchars []string
	for plane := rune(0); plane <= 16; plane++ {
		nonchars = append(nonchars, string(plane<<16|0xfffe), string(plane<<16|0xffff))
	}
	list("6.22", "noncharacters U+FFFE, U+FFFF of each plane (valid UTF-8)", nonchars...)
	list("6.23", "the replacement character U+FFFD", "\xef\xbf\xbd", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "text \xef\xbf\xbd text")
	for _, s := range seqs {
		sent := fmt.Sprintf("%s: %x", s.about, s.b)
		if len(s.b) > 16 {
			sent = fmt.Sprintf("%s: %x… (%d bytes)", s.about, s.b[:8], len(s.b))
		}
		if utf8.ValidString(s.b) {
			addX(s.id, sent, "echo (valid)", ok(0, frames(text(s.b)), text(s.b)))
		} else {
			addX(s.id, sent, "close 1007 (invalid)", refused(1007, 0, frames(text(s.b))))
		}
	}
	return cs
}

func closeCases(limit int) []Case {
	var cs []Case
	addX := func(id, sent, expected string, x exchange) {
		cs = append(cs, Case{ID: id, Sent: sent, Expected: expected, Run: x.run})
	}
	cl := wsraw.Close
	addX("7.1.1", "text, then close 1000", "echo, then close 1000", ok(0, frames(text("Hello World!"), cl(1000, "")), text("Hello World!")))
	addX("7.1.2", "close 1000 twice", "one close 1000, then TCP closed", ok(0, frames(cl(1000, ""), cl(1000, ""))))
	addX("7.1.3", "close 1000, then ping", "close 1000, no pong", ok(0, frames(cl(1000, ""), ping([]byte("Hello World!")))))
	addX("7.1.4", "close 1000, then text", "close 1000, no echo", ok(0, frames(cl(1000, ""), text("Hello World!"))))
	addX("7.1.5", "text fragment, close 1000, the last fragment", "close 1000, no echo", ok(0, frames(frag(opText, false, "fragment1"), cl(1000, ""), frag(opCont, true, "fragment2"))))
	addX("7.1.6", fmt.Sprintf("text of %s (the read limit), close 1000, ping", size(limit)), "echo, then close 1000 (no pong)",
		ok(0, frames(text(stars(limit)), cl(1000, ""), ping([]byte("Hello World!"))), text(stars(limit))))
	addX("7.3.1", "close with no payload", "close with no payload", refused(rfc6455.CloseNoStatus, 0, frames(wsraw.CloseRaw(nil))))
	addX("7.3.2", "close with a 1-byte payload", "close 1002", refused(1002, 0, frames(wsraw.CloseRaw([]byte{0x03}))))
	addX("7.3.3", "close 1000, no reason", "close 1000", ok(0, frames(cl(1000, ""))))
	addX("7.3.4", "close 1000 with a reason", "close 1000", ok(0, frames(cl(1000, "Hello World!"))))
	addX("7.3.5", "close 1000 with a reason of 123 bytes (the most that fits)", "close 1000", ok(0, frames(cl(1000, stars(123)))))
	addX("7.3.6", "close 1000 with a reason of 124 bytes (a 126-byte control frame)", "close 1002", refused(1002, 0, frames(cl(1000, stars(124)))))
	addX("7.5.1", "close 1000 with a reason that is not UTF-8", "close 1007", refused(1007, 0, frames(cl(1000, "κόσμε\xed\xa0\x80edited"))))
	for i, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		addX(fmt.Sprintf("7.7.%d", i+1), fmt.Sprintf("close %d (%s)", code, rfc6455.CloseName(code)), fmt.Sprintf("close %d (the code echoed)", code),
			refused(code, 0, frames(cl(code, ""))))
	}
	for i, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		addX(fmt.Sprintf("7.9.%d", i+1), fmt.Sprintf("close %d (%s: never sent)", code, rfc6455.CloseName(code)), "close 1002", refused(1002, 0, frames(cl(code, ""))))
	}
	return cs
}

func limitCases(limit int) []Case {
	var cs []Case
	add := func(id, sent, expected string, run func(context.Context, Target) (string, error)) {
		cs = append(cs, Case{ID: id, Sent: sent, Expected: expected, Run: run})
	}
	addX := func(id, sent, expected string, x exchange) { add(id, sent, expected, x.run) }
	type kind struct {
		name string
		op   byte
		msg  func(n int) wsraw.Frame
		body func(n int) []byte
	}
	kinds := []kind{
		{"text", opText, func(n int) wsraw.Frame { return text(stars(n)) }, func(n int) []byte { return []byte(stars(n)) }},
		{"binary", opBin, func(n int) wsraw.Frame { return binary(pattern(n)) }, pattern},
	}
	for g, k := range kinds {
		for i, n := range []int{limit / 64, limit / 16, limit / 4, limit} {
			addX(fmt.Sprintf("9.%d.%d", 1+g, i+1), fmt.Sprintf("%s of %s", k.name, size(n)), "echo", ok(0, frames(k.msg(n)), k.msg(n)))
		}
		addX(fmt.Sprintf("9.%d.5", 1+g), fmt.Sprintf("%s of %s + 1 byte (past the read limit)", k.name, size(limit)), "close 1009", refused(1009, 0, frames(k.msg(limit+1))))
		for i, f := range []int{64, 256, 1024, 4096, 16384, limit} {
			addX(fmt.Sprintf("9.%d.%d", 3+g, i+1), fmt.Sprintf("%s of %s in fragments of %s", k.name, size(limit), size(f)), "echo as one message",
				ok(0, wsraw.Fragments(k.op, k.body(limit), f), k.msg(limit)))
		}
		for i, c := range []int{64, 128, 256, 512, 1024, 2048} {
			addX(fmt.Sprintf("9.%d.%d", 5+g, i+1), fmt.Sprintf("%s of %s in writes of %d bytes", k.name, size(limit), c), "echo", ok(c, frames(k.msg(limit)), k.msg(limit)))
		}
		for i, n := range []int{0, 16, 64, 256, 1024, 4096} {
			add(fmt.Sprintf("9.%d.%d", 7+g, i+1), fmt.Sprintf("1000 %s messages of %s, sent without waiting", k.name, size(n)), "1000 echoes, in order", pipelined(1000, k.msg(n)))
		}
	}
	addX("9.9.1", fmt.Sprintf("text of %s + 1 byte in fragments of 4 KiB", size(limit)), "close 1009 (the message, not a frame, is over the limit)",
		refused(1009, 0, wsraw.Fragments(opText, []byte(stars(limit+1)), 4096)))
	add("9.10.1", "200 connections at once, each echoing 10 text messages of 64 bytes", "2000 echoes, each on its connection, in order", concurrent(200, 10))
	return cs
}

// pipelined sends n copies of m while reading the echoes.
func pipelined(n int, m wsraw.Frame) func(context.Context, Target) (string, error) {
	return func(ctx context.Context, t Target) (string, error) {
		c, err := wsraw.Dial(ctx, t.Conn, t.Kind.Echo)
		if err != nil {
			return "handshake failed", err
		}
		defer c.Close()
		sent := make(chan error, 1)
		go func() {
			var err error
			for range n {
				if err = c.Send(m); err != nil {
					break
				}
			}
			sent <- err
		}()
		var seen []wsraw.Frame
		for i := range n {
			f, err := c.ReadFrame(time.Now().Add(wait))
			if err != nil {
				return describe(seen), fmt.Errorf("echo %d of %d: %w", i+1, n, err)
			}
			if !same(f, m) {
				return describe(seen), fmt.Errorf("echo %d: %v, want %v", i+1, f, m)
			}
			seen = append(seen, f)
		}
		if err := <-sent; err != nil {
			return describe(seen), err
		}
		_ = c.Send(wsraw.Close(1000, ""))
		return finish(c, 1000, seen)
	}
}

// concurrent runs conns connections at once, each echoing msgs messages.
func concurrent(conns, msgs int) func(context.Context, Target) (string, error) {
	return func(ctx context.Context, t Target) (string, error) {
		var wg sync.WaitGroup
		errs := make(chan error, conns)
		for i := range conns {
			wg.Go(func() {
				c, err := wsraw.Dial(ctx, t.Conn, t.Kind.Echo)
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
				defer c.Close()
				for j := range msgs {
					m := text(fmt.Sprintf("%06d-%06d-", i, j) + stars(50))
					if err := c.Send(m); err != nil {
						errs <- err
						return
					}
					f, err := c.ReadFrame(time.Now().Add(2 * wait))
					if err != nil || !same(f, m) {
						errs <- fmt.Errorf("connection %d, message %d: %v %v", i, j, f, err)
						return
					}
				}
				_ = c.Send(wsraw.Close(1000, ""))
				if _, err := finish(c, 1000, nil); err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		var all []error
		for err := range errs {
			all = append(all, err)
		}
		if len(all) > 0 {
			return fmt.Sprintf("%d of %d connections failed", len(all), conns), errors.Join(all[:min(len(all), 5)]...)
		}
		return fmt.Sprintf("%d connections × %d echoes, in order; each closed 1000", conns, msgs), nil
	}
}
