package webapp

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

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

// TermSession is the text message a web terminal sends its page once the
// shell runs: which shell it is. Mode "pty" is a shell on a pty of the
// app's own (PID in the app's PID namespace); "exec" an exec in Container
// through the Docker Engine API (Exec is its ID, PID the shell's pid in
// the container's PID namespace).
type TermSession struct {
	Type      string `json:"type"` // "session"
	Mode      string `json:"mode"` // "pty" or "exec"
	PID       int    `json:"pid"`
	Container string `json:"container,omitempty"`
	Exec      string `json:"exec,omitempty"`
}

// termShell is one session's shell: its output is read, the page's keys
// are written, End ends it (and all of its session) and releases it.
// Ended, once the output has ended by itself, says how to close the socket:
// 1000 when the shell exited, 1011 and why when it was lost.
type termShell interface {
	io.ReadWriter
	Resize(cols, rows int) error
	Session() TermSession
	End()
	Ended() (code uint16, reason string)
}

func routeTerm(s *Server, mux *http.ServeMux) {
	open := s.ptyShell
	if s.cfg.TermExec != nil {
		b := newExecBridge(*s.cfg.TermExec, s.shellArgv(), s.log)
		if b.err != nil {
			s.log.Warn("web terminal: no engine client: every session will be refused", "err", b.err)
		}
		s.log.Info("web terminal: shells are execs in a container", "container", b.cfg.Container, "engine", b.engine())
		open = b.open
		s.stops = append(s.stops, func(context.Context) { b.close() })
	}
	mux.HandleFunc("GET /{$}", s.termPage)
	mux.HandleFunc("GET /term/assets/{file}", s.termAsset)
	mux.HandleFunc("GET /term", func(w http.ResponseWriter, r *http.Request) { s.wsTerm(w, r, open) })
	mux.HandleFunc("GET /echo", s.wsEcho)
}

func (s *Server) shellArgv() []string {
	if len(s.cfg.Shell) == 0 {
		return DefaultShell
	}
	return s.cfg.Shell
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

// wsTerm is one terminal session: a shell (open's: a pty of the app's own,
// or an exec in a container), its output sent as binary messages, the
// page's binary messages typed into it, its text messages resizing it. The
// shell ends with the socket, and the socket (close 1000) with the shell;
// a shell that cannot start closes the socket 1011 with the reason.
func (s *Server) wsTerm(w http.ResponseWriter, r *http.Request, open func(context.Context) (termShell, error)) {
	c, release, err := s.upgrade(w, r)
	if err != nil {
		return
	}
	defer release()
	who := r.RemoteAddr
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sh, err := open(ctx)
	if err != nil {
		s.log.Warn("web terminal: no shell", "peer", who, "err", err)
		_ = c.SendClose(rfc6455.CloseInternalError, truncateReason("no shell: "+err.Error()), time.Now().Add(time.Second))
		return
	}
	info := sh.Session()
	s.log.Info("web terminal opened", "peer", who, "mode", info.Mode, "pid", info.PID, "container", info.Container, "exec", info.Exec)
	hello, _ := json.Marshal(info)
	_ = c.WriteMessage(rfc6455.OpText, hello, time.Now().Add(10*time.Second))
	shellDone := make(chan struct{})
	go func() {
		defer close(shellDone)
		buf := make([]byte, 32<<10)
		for {
			n, err := sh.Read(buf)
			if n > 0 {
				if werr := c.WriteMessage(rfc6455.OpBinary, buf[:n], time.Now().Add(10*time.Second)); werr != nil {
					return
				}
			}
			if err != nil {
				return // EIO or EOF: the shell (and all it started) is gone
			}
		}
	}()
	var ending atomic.Bool // the socket went first: End ends the output
	go func() {
		<-shellDone
		if ending.Load() {
			return
		}
		code, reason := sh.Ended()
		if code != rfc6455.CloseNormal {
			s.log.Warn("web terminal: the shell was lost", "peer", who, "why", reason)
		}
		_ = c.SendClose(code, truncateReason(reason), time.Now().Add(time.Second))
	}()
	for {
		op, msg, err := c.ReadMessage()
		if err != nil {
			s.logReadEnd(who, err)
			break
		}
		switch op {
		case rfc6455.OpBinary:
			if _, err := sh.Write(msg); err != nil {
				s.log.Info("web terminal: the shell is gone", "peer", who, "err", err)
			}
		case rfc6455.OpText:
			var rs TermResize
			if err := json.Unmarshal(msg, &rs); err != nil || rs.Type != "resize" || rs.Cols <= 0 || rs.Rows <= 0 || rs.Cols > 1000 || rs.Rows > 1000 {
				s.log.Info("web terminal: a text message that is not a resize", "peer", who, "text", truncateReason(string(msg)))
				continue
			}
			if err := sh.Resize(rs.Cols, rs.Rows); err != nil {
				s.log.Info("web terminal: resize", "peer", who, "err", err)
			}
		}
	}
	ending.Store(true)
	sh.End()
	<-shellDone
	s.log.Info("web terminal closed", "peer", who, "mode", info.Mode, "pid", info.PID)
}

// ptyShell starts the configured shell on a pty of the app's own.
func (s *Server) ptyShell(context.Context) (termShell, error) {
	argv := s.shellArgv()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 80, Rows: 24})
	if err != nil {
		return nil, fmt.Errorf("starting %s on a pty: %w", argv[0], err)
	}
	return &ptySession{cmd: cmd, f: f}, nil
}

// ptySession is a shell on a pty: it leads its own session.
type ptySession struct {
	cmd  *exec.Cmd
	f    *os.File
	once sync.Once
}

func (p *ptySession) Read(b []byte) (int, error)  { return p.f.Read(b) }
func (p *ptySession) Write(b []byte) (int, error) { return p.f.Write(b) }
func (p *ptySession) Resize(cols, rows int) error {
	return pty.Setsize(p.f, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)})
}
func (p *ptySession) Session() TermSession {
	return TermSession{Type: "session", Mode: "pty", PID: p.cmd.Process.Pid}
}
func (p *ptySession) Ended() (uint16, string) { return rfc6455.CloseNormal, "the shell exited" }
func (p *ptySession) End() {
	p.once.Do(func() {
		endShell(p.cmd)
		p.f.Close()
	})
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

// truncateReason fits a close reason in a control frame
// (123 bytes), cutting at a rune boundary so it stays UTF-8.
func truncateReason(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) <= 120 {
		return s
	}
	s = s[:120]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
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
  header { padding: .4em .8em; font-size: 14px; display: flex; gap: 1em; align-items: baseline; white-space: nowrap; }
  header b { font-weight: 600; flex: none; }
  #status { overflow: hidden; text-overflow: ellipsis; min-width: 0; }
  #status.closed { color: #f38ba8; }
  #term { position: absolute; top: 2.2em; left: 0; right: 0; bottom: 0; padding: 0 .4em .4em; }
</style></head>
<body>
<header><b>protolab web terminal</b><span id="status">connecting…</span></header>
<div id="term"></div>
<script src="/term/assets/xterm.js"></script>
<script src="/term/assets/addon-fit.js"></script>
<script>
  const status = (text, closed) => { const s = document.getElementById('status'); s.textContent = text; s.title = text; s.className = closed ? 'closed' : ''; };
  const term = new Terminal({ cursorBlink: true, fontSize: 14, theme: { background: '#1e1e2e' } });
  const fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(document.getElementById('term'));
  fit.fit();
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/term');
  ws.binaryType = 'arraybuffer';
  const enc = new TextEncoder();
  const size = () => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows })); };
  ws.onopen = () => { status('connected: starting a shell…'); size(); term.focus(); };
  // Binary messages are the shell's output; the one text message says
  // which shell it is (a pty of the app's, or an exec in a container).
  const where = (m) => m.mode === 'exec'
    ? 'a shell in container ' + m.container + ' (exec ' + String(m.exec).slice(0, 12) + ', pid ' + m.pid + ')'
    : 'a shell on the lab host (pid ' + m.pid + ')';
  ws.onmessage = (e) => {
    if (typeof e.data !== 'string') { term.write(new Uint8Array(e.data)); return; }
    try { const m = JSON.parse(e.data); if (m.type === 'session') status('connected: ' + where(m) + '; closing this page ends it'); } catch (_) {}
  };
  ws.onclose = (e) => status('closed: ' + (e.reason || ('code ' + e.code)), true);
  term.onData((d) => { if (ws.readyState === WebSocket.OPEN) ws.send(enc.encode(d)); });
  term.onResize(size);
  window.addEventListener('resize', () => fit.fit());
</script>
</body></html>
`
