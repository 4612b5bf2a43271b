package webapp

import (
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path"
	"syscall"
	"time"

	"github.com/creack/pty"

	"github.com/protolab/protolab-tui/protocol/rfc6455"
)

// termAssets are the web terminal's scripts and styles (xterm.js from the
// npm registry), put in term/ by scripts/term-assets.sh before the build.
//
//go:embed term
var termAssets embed.FS

// termFiles are the assets the page needs.
var termFiles = []string{"xterm.js", "xterm.css", "addon-fit.js"}

// DefaultShell is what a web terminal runs when the configuration names
// none.
var DefaultShell = []string{"/bin/sh", "-i"}

// TermResize is the text message a web terminal's page sends when its size
// changes; every other message from the page is binary: keys for the
// shell. Everything the shell writes goes back binary.
type TermResize struct {
	Type string `json:"type"` // "resize"
	Cols int    `json:"cols"`
	Rows int    `json:"rows"`
}

func routeTerm(s *Server, mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.termPage)
	mux.HandleFunc("GET /term/assets/{file}", s.termAsset)
	mux.HandleFunc("GET /term", s.wsTerm)
	mux.HandleFunc("GET /echo", s.wsEcho)
}

// termReady says whether the binary carries the terminal's assets.
func termReady() bool {
	for _, f := range termFiles {
		if _, err := fs.Stat(termAssets, path.Join("term", f)); err != nil {
			return false
		}
	}
	return true
}

func (s *Server) termPage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if !termReady() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, termMissingPage)
		return
	}
	_, _ = io.WriteString(w, termPageHTML)
}

func (s *Server) termAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := termAssets.ReadFile(path.Join("term", path.Base(name)))
	if err != nil || (name != "xterm.js" && name != "xterm.css" && name != "addon-fit.js") {
		http.NotFound(w, r)
		return
	}
	ct := "text/javascript; charset=utf-8"
	if path.Ext(name) == ".css" {
		ct = "text/css; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "max-age=3600")
	_, _ = w.Write(b)
}

// wsTerm is one terminal session: a shell on a pty of its own, its output
// sent as binary messages, the page's binary messages typed into it, its
// text messages resizing it. The shell ends with the socket (its process
// group is hung up, then killed), and the socket with the shell.
func (s *Server) wsTerm(w http.ResponseWriter, r *http.Request) {
	c, release, err := s.upgrade(w, r)
	if err != nil {
		return
	}
	defer release()
	argv := s.cfg.Shell
	if len(argv) == 0 {
		argv = DefaultShell
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 80, Rows: 24})
	if err != nil {
		s.log.Warn("web terminal: no shell", "shell", argv[0], "err", err)
		_ = c.SendClose(rfc6455.CloseInternalError, truncateReason(fmt.Sprintf("no shell: %v", err)), time.Now().Add(time.Second))
		return
	}
	who := r.RemoteAddr
	s.log.Info("web terminal opened", "peer", who, "shell", argv[0], "pid", cmd.Process.Pid)
	shellDone := make(chan struct{})
	go func() {
		defer close(shellDone)
		buf := make([]byte, 32<<10)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				if werr := c.WriteMessage(rfc6455.OpBinary, buf[:n], time.Now().Add(10*time.Second)); werr != nil {
					return
				}
			}
			if err != nil {
				return // EIO: the shell (and all it started) closed the pty
			}
		}
	}()
	go func() {
		<-shellDone
		_ = c.SendClose(rfc6455.CloseNormal, "the shell exited", time.Now().Add(time.Second))
	}()
	for {
		op, msg, err := c.ReadMessage()
		if err != nil {
			s.logReadEnd(who, err)
			break
		}
		switch op {
		case rfc6455.OpBinary:
			if _, err := f.Write(msg); err != nil {
				s.log.Info("web terminal: the shell is gone", "peer", who, "err", err)
			}
		case rfc6455.OpText:
			var rs TermResize
			if err := json.Unmarshal(msg, &rs); err != nil || rs.Type != "resize" || rs.Cols <= 0 || rs.Rows <= 0 || rs.Cols > 1000 || rs.Rows > 1000 {
				s.log.Info("web terminal: a text message that is not a resize", "peer", who, "text", truncateReason(string(msg)))
				continue
			}
			_ = pty.Setsize(f, &pty.Winsize{Cols: uint16(rs.Cols), Rows: uint16(rs.Rows)})
		}
	}
	endShell(cmd)
	f.Close()
	<-shellDone
	s.log.Info("web terminal closed", "peer", who)
}

// endShell hangs up the shell's session (it leads its own, from the pty),
// kills what is left a moment later, and reaps it.
func endShell(cmd *exec.Cmd) {
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGHUP)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
}

// truncateReason fits a close reason in a control frame (123 bytes).
func truncateReason(s string) string {
	if len(s) > 120 {
		return s[:120]
	}
	return s
}

const termMissingPage = `<!doctype html><meta charset="utf-8"><title>protolab web terminal</title>
<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto">
<h1>The web terminal's assets are not built in</h1>
<p>This binary was built without xterm.js. From the protolab-tui checkout run</p>
<pre>scripts/term-assets.sh
go build ./cmd/protolab-tui</pre>
<p>(the script fetches xterm.js from the npm registry into <code>apps/webapp/term/</code>, which the build embeds), then start the lab again.</p>
</body>`

const termPageHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>protolab web terminal</title>
<link rel="stylesheet" href="/term/assets/xterm.css">
<style>
  html, body { margin: 0; height: 100%; background: #1e1e2e; color: #cdd6f4; font-family: sans-serif; }
  header { padding: .4em .8em; font-size: 14px; display: flex; gap: 1em; align-items: baseline; }
  header b { font-weight: 600; }
  #status.closed { color: #f38ba8; }
  #term { position: absolute; top: 2.2em; left: 0; right: 0; bottom: 0; padding: 0 .4em .4em; }
</style></head>
<body>
<header><b>protolab web terminal</b><span id="status">connecting…</span></header>
<div id="term"></div>
<script src="/term/assets/xterm.js"></script>
<script src="/term/assets/addon-fit.js"></script>
<script>
  const status = (text, closed) => { const s = document.getElementById('status'); s.textContent = text; s.className = closed ? 'closed' : ''; };
  const term = new Terminal({ cursorBlink: true, fontSize: 14, theme: { background: '#1e1e2e' } });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(document.getElementById('term'));
  fit.fit();
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/term');
  ws.binaryType = 'arraybuffer';
  const enc = new TextEncoder();
  const size = () => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows })); };
  ws.onopen = () => { status('connected: a shell on the lab host; closing this page ends it'); size(); term.focus(); };
  ws.onmessage = (e) => term.write(new Uint8Array(e.data));
  ws.onclose = (e) => status('closed: ' + (e.reason || ('code ' + e.code)), true);
  term.onData((d) => { if (ws.readyState === WebSocket.OPEN) ws.send(enc.encode(d)); });
  term.onResize(size);
  window.addEventListener('resize', () => fit.fit());
</script>
</body></html>
`
