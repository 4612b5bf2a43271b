package webapp

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/protolab/protolab-tui/protocol"
)

// session reads a terminal's first message: the text one that says which
// shell it is.
func session(t *testing.T, c *websocket.Conn) TermSession {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	op, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("waiting for the session message: %v", err)
	}
	var s TermSession
	if op != websocket.TextMessage || json.Unmarshal(b, &s) != nil || s.Type != "session" || s.PID <= 0 {
		t.Fatalf("the first message (type %d) is %q, want a session message", op, b)
	}
	return s
}

// readUntil reads the terminal's output until it holds want, and returns it.
func readUntil(t *testing.T, c *websocket.Conn, want string) string {
	t.Helper()
	var got strings.Builder
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !strings.Contains(got.String(), want) {
		op, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %q: %v; the terminal showed %q", want, err, got.String())
		}
		if op != websocket.BinaryMessage {
			t.Fatalf("the shell's output came as message type %d, want binary", op)
		}
		got.Write(b)
	}
	return got.String()
}

// TestWebTerminal: a term app's WebSocket carries a real shell on a pty —
// keys in (binary), output back (binary), a resize (text JSON) that the
// shell sees in stty — and the shell's whole session ends when the socket
// goes. A foreign origin is refused before any shell starts, and the page
// either loads xterm.js or says how to build it in.
func TestWebTerminal(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	r := start(t, Config{Protocol: protocol.WS, Kind: protocol.KindTerm})
	c := r.dial(t, "/term", nil)
	sess := session(t, c)
	if sess.Mode != "pty" || sess.Exec != "" {
		t.Errorf("session %+v, want a pty", sess)
	}
	if err := c.WriteMessage(websocket.BinaryMessage, []byte("echo hi-$((40+2)); echo pid=$$\n")); err != nil {
		t.Fatal(err)
	}
	out := readUntil(t, c, "hi-42")
	pidLine := regexp.MustCompile(`pid=(\d+)\r?\n`)
	for !pidLine.MatchString(out) { // the output may come in more than one message
		out += readUntil(t, c, "\n")
	}
	pid, err := strconv.Atoi(pidLine.FindStringSubmatch(out)[1])
	if err != nil {
		t.Fatalf("the shell's pid in %q: %v", out, err)
	}
	if pid != sess.PID {
		t.Errorf("the shell says its pid is %d, the session message %d", pid, sess.PID)
	}
	rs, _ := json.Marshal(TermResize{Type: "resize", Cols: 100, Rows: 40})
	if err := c.WriteMessage(websocket.TextMessage, rs); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.BinaryMessage, []byte("stty size\n")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, c, "40 100")
	// A text message that is no resize is ignored, the session goes on.
	_ = c.WriteMessage(websocket.TextMessage, []byte(`{"type":"paste"}`))
	_ = c.WriteMessage(websocket.BinaryMessage, []byte("echo still-$((1+1))\n"))
	readUntil(t, c, "still-2")

	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the shell (pid %d) outlived its socket", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// exit ends the shell, and the socket with close 1000.
	c = r.dial(t, "/term", nil)
	session(t, c)
	_ = c.WriteMessage(websocket.BinaryMessage, []byte("exit\n"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) || !strings.Contains(err.Error(), "the shell exited") {
				t.Errorf("after exit: %v, want close 1000 \"the shell exited\"", err)
			}
			break
		}
	}
	c.Close()

	// A page elsewhere may not open a shell here.
	_, res, err := r.dialer().Dial(r.wsURL("/term"), http.Header{"Origin": {"http://evil.example"}})
	if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("foreign origin: %v %v, want 403", res, err)
	}

	page, err := r.httpClient().Get(r.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	switch {
	case termReady() && (page.StatusCode != 200 || !strings.Contains(string(body), "/term/assets/xterm.js")):
		t.Errorf("the page (assets built in): %d %.200s", page.StatusCode, body)
	case !termReady() && (page.StatusCode != 503 || !strings.Contains(string(body), "scripts/term-assets.sh")):
		t.Errorf("the page (no assets): %d %.200s", page.StatusCode, body)
	}
	if termReady() {
		js, err := r.httpClient().Get(r.url("/term/assets/xterm.js"))
		if err != nil || js.StatusCode != 200 || !strings.HasPrefix(js.Header.Get("Content-Type"), "text/javascript") {
			t.Errorf("xterm.js: %v %v", js, err)
		}
		if js != nil {
			js.Body.Close()
		}
		if res, err := r.httpClient().Get(r.url("/term/assets/..%2fterm.go")); err == nil && res.StatusCode != 404 {
			t.Errorf("an asset outside the list: %d", res.StatusCode)
		}
	}
}

// TestWebTerminalExecNoEngine: a term app configured as an exec bridge
// whose engine is not there (no socket), or that names no container,
// refuses each session with close 1011 and a reason that says so; the
// server goes on serving.
func TestWebTerminalExecNoEngine(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "no-engine.sock")
	for _, tc := range []struct {
		name string
		exec TermExec
		want string
	}{
		{"no socket", TermExec{Engine: "unix://" + sock, Container: "protolab-x-shell"}, "no shell: the engine at unix://" + sock + " does not answer"},
		{"no container", TermExec{Engine: "unix://" + sock}, "no shell: no container to run shells in"},
		{"a bad address", TermExec{Engine: "not-an-address", Container: "c"}, `no shell: the engine address "not-an-address"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := tc.exec
			r := start(t, Config{Protocol: protocol.WS, Kind: protocol.KindTerm, TermExec: &ex})
			for range 2 {
				c := r.dial(t, "/term", nil)
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, b, err := c.ReadMessage()
				var ce *websocket.CloseError
				if !errors.As(err, &ce) || ce.Code != websocket.CloseInternalServerErr || !strings.HasPrefix(ce.Text, tc.want) {
					t.Errorf("got %q, %v; want close 1011 %q…", b, err, tc.want)
				}
				c.Close()
			}
		})
	}
}

func TestTruncateReason(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	got := truncateReason(long)
	if len(got) > 120 || !utf8.ValidString(got) || len(got) < 118 {
		t.Errorf("truncateReason: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
	if truncateReason("short") != "short" {
		t.Error("a short reason changed")
	}
}
