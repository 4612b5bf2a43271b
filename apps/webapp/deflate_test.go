package webapp

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/protolab/protolab-tui/internal/wsraw"
	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/protocol/rfc6455"
)

// compress deflates msg as a permessage-deflate sender does (§7.2.1), with
// the standard library alone (not the server's code).
func compress(t testing.TB, msg []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	out := b.Bytes()
	if !bytes.HasSuffix(out, []byte{0, 0, 0xff, 0xff}) {
		t.Fatalf("flushed deflate stream ends % x", out[len(out)-4:])
	}
	return out[:len(out)-4]
}

// inflate is the receiving side of compress.
func inflate(t *testing.T, payload []byte) []byte {
	t.Helper()
	r := flate.NewReader(io.MultiReader(bytes.NewReader(payload), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})))
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("the server's compressed message does not inflate: %v", err)
	}
	return b
}

// TestDeflateWithGorilla: a chat-ws app with compression deflate and
// gorilla/websocket's client (EnableCompression) agree on
// permessage-deflate, echo and chat both ways, over ws and wss; without the
// option (or without the client's offer) nothing is negotiated and all
// works as before.
func TestDeflateWithGorilla(t *testing.T) {
	for _, mode := range []protocol.Protocol{protocol.WS, protocol.WSS} {
		t.Run(string(mode), func(t *testing.T) {
			r := start(t, Config{Protocol: mode, Compression: protocol.CompressionDeflate})
			d := r.dialer()
			d.EnableCompression = true
			c, resp, err := d.Dial(r.wsURL("/echo"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != deflateResponse {
				t.Errorf("Sec-WebSocket-Extensions = %q, want %q", got, deflateResponse)
			}
			long := strings.Repeat("compress me, ", 2000)
			for _, m := range []struct {
				typ  int
				data string
			}{{websocket.TextMessage, "hello"}, {websocket.TextMessage, long}, {websocket.BinaryMessage, "\x00\x01\xff"}, {websocket.TextMessage, ""}} {
				for _, compressed := range []bool{true, false} {
					c.EnableWriteCompression(compressed)
					if err := c.WriteMessage(m.typ, []byte(m.data)); err != nil {
						t.Fatal(err)
					}
					_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
					typ, b, err := c.ReadMessage()
					if err != nil {
						t.Fatal(err)
					}
					if typ != m.typ || string(b) != m.data {
						t.Errorf("echo of a %d-byte message (client compressing: %v) = %d, %d bytes", len(m.data), compressed, typ, len(b))
					}
				}
			}

			alice, _, err := d.Dial(r.wsURL("/chat/alice"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer alice.Close()
			read(t, alice)
			bob, _, err := d.Dial(r.wsURL("/chat/bob"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer bob.Close()
			read(t, bob)
			if got := read(t, alice); got != "bob joined" {
				t.Errorf("alice saw %q", got)
			}
			if err := bob.WriteMessage(websocket.TextMessage, []byte(long)); err != nil {
				t.Fatal(err)
			}
			if got := read(t, alice); got != "bob: "+long {
				t.Errorf("alice saw %d bytes, want bob's long message", len(got))
			}
		})
	}
	for _, tc := range []struct {
		name        string
		compression string
		offer       bool
	}{{"app without compression", "", true}, {"client without the offer", protocol.CompressionDeflate, false}} {
		t.Run(tc.name, func(t *testing.T) {
			r := start(t, Config{Protocol: protocol.WS, Compression: tc.compression})
			d := r.dialer()
			d.EnableCompression = tc.offer
			c, resp, err := d.Dial(r.wsURL("/echo"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != "" {
				t.Errorf("Sec-WebSocket-Extensions = %q, want none", got)
			}
			if err := c.WriteMessage(websocket.TextMessage, []byte("plain")); err != nil {
				t.Fatal(err)
			}
			if got := read(t, c); got != "plain" {
				t.Errorf("echo = %q", got)
			}
		})
	}
}

// rawDeflate opens a raw client to r's /echo offering permessage-deflate as
// a browser does.
func (r *running) rawDeflate(t *testing.T, offer string) *wsraw.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := wsraw.Dial(ctx, r.rawTarget(), "/echo", "Sec-WebSocket-Extensions: "+offer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestDeflateOnTheWire: the server's data frames carry RSV1 and a deflate
// payload shorter than the message; a client's compressed message, whole
// or fragmented (RSV1 on the first frame only), is inflated; pings are
// never compressed.
func TestDeflateOnTheWire(t *testing.T) {
	r := start(t, Config{Protocol: protocol.WS, Compression: protocol.CompressionDeflate})
	c := r.rawDeflate(t, "permessage-deflate; client_max_window_bits")
	if got := c.Response.Header.Get("Sec-WebSocket-Extensions"); got != deflateResponse {
		t.Fatalf("Sec-WebSocket-Extensions = %q", got)
	}
	msg := []byte(strings.Repeat("the same words again ", 100))
	z := compress(t, msg)
	for _, send := range [][]wsraw.Frame{
		{wsraw.Text(string(msg))},
		{{Fin: true, RSV: 4, Op: rfc6455.OpText, Payload: z}},
		{{Fin: false, RSV: 4, Op: rfc6455.OpText, Payload: z[:5]}, wsraw.Ping([]byte("in between")), wsraw.Fragment(rfc6455.OpContinuation, true, z[5:])},
	} {
		if err := c.SendFramewise(send...); err != nil {
			t.Fatal(err)
		}
		f, err := c.ReadFrame(time.Now().Add(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if f.Op == rfc6455.OpPong {
			if f.RSV != 0 {
				t.Errorf("pong with reserved bits %03b", f.RSV)
			}
			if f, err = c.ReadFrame(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		if f.Op != rfc6455.OpText || f.RSV != 4 || !f.Fin {
			t.Fatalf("echo frame: %v, RSV %03b, want a final text frame with RSV1", f, f.RSV)
		}
		if len(f.Payload) >= len(msg)/4 {
			t.Errorf("a %d-byte repetitive message went as %d bytes", len(msg), len(f.Payload))
		}
		if got := inflate(t, f.Payload); !bytes.Equal(got, msg) {
			t.Errorf("echo inflates to %q", got)
		}
	}
}

// TestDeflateRefusals: what RFC 7692 and the read limit forbid closes the
// connection with the code RFC 6455 gives: a decompression bomb 1009 (its
// inflated size is never reached), a compressed message past the limit
// before it inflates 1009, RSV1 on a control or continuation frame and
// RSV2 1002, data that does not inflate or inflates to invalid UTF-8 1007;
// and RSV1 where nothing was negotiated 1002.
func TestDeflateRefusals(t *testing.T) {
	bomb := compress(t, make([]byte, 20<<20)) // 20 MiB of zeros in ~20 KiB
	if len(bomb) > 64<<10 {
		t.Fatalf("the bomb is %d bytes compressed: under the read limit, it should be", len(bomb))
	}
	incompressible := make([]byte, compressedLimit(DefaultReadLimit)+1)
	_, _ = rand.Read(incompressible)
	for _, tc := range []struct {
		name   string
		offer  bool
		frames []wsraw.Frame
		want   uint16
	}{
		{"decompression bomb", true, []wsraw.Frame{{Fin: true, RSV: 4, Op: rfc6455.OpBinary, Payload: bomb}}, rfc6455.CloseTooBig},
		{"compressed past the limit", true, []wsraw.Frame{{Fin: true, RSV: 4, Op: rfc6455.OpBinary, Payload: incompressible}}, rfc6455.CloseTooBig},
		{"RSV1 on a ping", true, []wsraw.Frame{{Fin: true, RSV: 4, Op: rfc6455.OpPing}}, rfc6455.CloseProtocolError},
		{"RSV1 on a continuation", true, []wsraw.Frame{
			{RSV: 4, Op: rfc6455.OpText, Payload: compress(t, []byte("ab"))},
			{Fin: true, RSV: 4, Op: rfc6455.OpContinuation, Payload: compress(t, []byte("cd"))},
		}, rfc6455.CloseProtocolError},
		{"RSV2", true, []wsraw.Frame{{Fin: true, RSV: 2, Op: rfc6455.OpText, Payload: []byte("x")}}, rfc6455.CloseProtocolError},
		{"not deflate", true, []wsraw.Frame{{Fin: true, RSV: 4, Op: rfc6455.OpText, Payload: []byte{0xff, 0xff, 0xff, 0xff}}}, rfc6455.CloseInvalidPayload},
		{"inflates to invalid UTF-8", true, []wsraw.Frame{{Fin: true, RSV: 4, Op: rfc6455.OpText, Payload: compress(t, []byte("ok \xed\xa0\x80"))}}, rfc6455.CloseInvalidPayload},
		{"RSV1 not negotiated", false, []wsraw.Frame{{Fin: true, RSV: 4, Op: rfc6455.OpText, Payload: compress(t, []byte("hi"))}}, rfc6455.CloseProtocolError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := start(t, Config{Protocol: protocol.WSS, Compression: protocol.CompressionDeflate})
			var c *wsraw.Conn
			if tc.offer {
				c = r.rawDeflate(t, "permessage-deflate")
			} else {
				c = r.rawDial(t, "/echo")
			}
			if err := c.SendFramewise(tc.frames...); err != nil {
				t.Fatal(err)
			}
			if code, before := closedWith(t, c); code != tc.want || len(before) != 0 {
				t.Errorf("closed with %d after %v, want %d", code, before, tc.want)
			}
		})
	}
}

// TestInflateBombCostsTheLimit: a 20 MiB bomb read by a connection with a
// 64 KiB limit allocates a few times the limit, not the bomb.
func TestInflateBombCostsTheLimit(t *testing.T) {
	frame := wsraw.Frame{Fin: true, RSV: 4, Op: rfc6455.OpBinary, Payload: compress(t, make([]byte, 20<<20))}.Encode()
	nc := &bytesConn{in: bytes.NewReader(frame)}
	c := newWSConn(nc, bufio.NewReaderSize(nc, 4096), DefaultReadLimit)
	c.deflate = true
	_, _ = inflateMessage(compress(t, []byte("warm the pool")), 100)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err := c.ReadMessage()
	runtime.ReadMemStats(&after)
	if f, ok := err.(*failed); !ok || f.code != rfc6455.CloseTooBig {
		t.Fatalf("ReadMessage = %v, want a 1009 failure", err)
	}
	t.Logf("allocated %d bytes", after.TotalAlloc-before.TotalAlloc)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("reading the bomb allocated %d bytes (limit %d)", got, DefaultReadLimit)
	}
}

func TestAcceptDeflate(t *testing.T) {
	for _, tc := range []struct {
		header string
		ok     bool
	}{
		{"permessage-deflate", true},
		{"permessage-deflate; client_max_window_bits", true},                                   // Chromium, Firefox
		{"permessage-deflate; server_no_context_takeover; client_no_context_takeover", true},   // gorilla
		{"permessage-deflate; client_max_window_bits=10; server_max_window_bits=\"15\"", true}, // quoted token
		{"x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=10, permessage-deflate", true},
		{"permessage-deflate; server_max_window_bits=10", false},
		{"permessage-deflate; server_max_window_bits", false},
		{"permessage-deflate; client_max_window_bits=16", false},
		{"permessage-deflate; client_max_window_bits=09", false},
		{"permessage-deflate; server_no_context_takeover=1", false},
		{"permessage-deflate; client_no_context_takeover; client_no_context_takeover", false},
		{"permessage-deflate; mystery", false},
		{"x-webkit-deflate-frame", false},
	} {
		exts, err := parseExtensions([]string{tc.header})
		if err != nil {
			t.Errorf("%q does not parse: %v", tc.header, err)
			continue
		}
		if ok, why := acceptDeflate(exts); ok != tc.ok {
			t.Errorf("%q: accepted %v (%s), want %v", tc.header, ok, why, tc.ok)
		}
	}
	for _, bad := range []string{"permessage-deflate;", "permessage-deflate; a=", "permessage-deflate; a=\"x y\"", "permessage-deflate; a=\"x", "a b", "permessage-deflate; =1", "a;b=\"\""} {
		if exts, err := parseExtensions([]string{bad}); err == nil {
			t.Errorf("%q parsed as %+v", bad, exts)
		}
	}
	// A header the server does not understand means no compression, not a
	// refused handshake.
	r := start(t, Config{Protocol: protocol.WS, Compression: protocol.CompressionDeflate})
	c := r.rawDeflate(t, "permessage-deflate; =")
	if got := c.Response.Header.Get("Sec-WebSocket-Extensions"); got != "" || c.Response.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("a malformed offer: %s with extensions %q, want 101 without", c.Response.Status, got)
	}
}
