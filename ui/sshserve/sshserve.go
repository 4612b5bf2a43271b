// Package sshserve serves the explorer over SSH (protolab-tui serve): each
// session that a listed key opens gets an explorer of its own — its own
// size, colours, focus and overlays — on one shared lab, whose events every
// session sees. Leaving a session leaves the lab running for the others. It
// is built on charmbracelet/wish and its Bubble Tea glue.
package sshserve

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/ssh"
	"github.com/charmbracelet/wish"
	bm "github.com/charmbracelet/wish/bubbletea"
	gossh "golang.org/x/crypto/ssh"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/ui"
)

// Options configure the server.
type Options struct {
	// Listen is where to listen: host:port.
	Listen string
	// HostKey is the server's private key file, made (ed25519, 0600) when
	// missing: clients pin it on first connection, so it is kept.
	HostKey string
	// AuthorizedKeys lists the keys that may open a session
	// (authorized_keys format); any other key is refused.
	AuthorizedKeys string
	// ShellKeys lists the keys whose sessions may open the debugging shell
	// (x: a root shell on the lab host); empty: none may.
	ShellKeys string
	// Log receives who connected, who was refused and who left.
	Log *slog.Logger
}

// Server is a listening SSH server for one lab.
type Server struct {
	lab   *lab.Lab
	srv   *ssh.Server
	ln    net.Listener
	log   *slog.Logger
	keys  []gossh.PublicKey
	shell []gossh.PublicKey
	// HostKeyFingerprint is the host key's SHA256 fingerprint, as ssh
	// prints it on first connection.
	HostKeyFingerprint string
}

// New reads the keys, makes the host key if it is missing, and listens.
func New(l *lab.Lab, o Options) (*Server, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{lab: l, log: o.Log}
	var err error
	if o.AuthorizedKeys == "" {
		return nil, errors.New("serve: --authorized-keys FILE is needed: only the keys it lists may open the explorer")
	}
	if s.keys, err = ReadAuthorizedKeys(o.AuthorizedKeys); err != nil {
		return nil, err
	}
	if len(s.keys) == 0 {
		return nil, fmt.Errorf("serve: %s lists no key: no one could connect", o.AuthorizedKeys)
	}
	if o.ShellKeys != "" {
		if s.shell, err = ReadAuthorizedKeys(o.ShellKeys); err != nil {
			return nil, err
		}
	}
	hostPEM, err := hostKey(o.HostKey)
	if err != nil {
		return nil, err
	}
	signer, err := gossh.ParsePrivateKey(hostPEM)
	if err != nil {
		return nil, fmt.Errorf("serve: host key %s: %w", o.HostKey, err)
	}
	s.HostKeyFingerprint = gossh.FingerprintSHA256(signer.PublicKey())
	s.srv, err = wish.NewServer(
		wish.WithHostKeyPEM(hostPEM),
		wish.WithPublicKeyAuth(s.allowed),
		wish.WithMiddleware(s.session),
	)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	if s.ln, err = net.Listen("tcp", o.Listen); err != nil {
		return nil, fmt.Errorf("serve: listening on %s: %w (choose another with --listen)", o.Listen, err)
	}
	return s, nil
}

// Addr is where the server listens.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve answers sessions until Close; it returns nil then.
func (s *Server) Serve() error {
	err := s.srv.Serve(s.ln)
	if errors.Is(err, ssh.ErrServerClosed) {
		return nil
	}
	return err
}

// Close ends every session and stops listening.
func (s *Server) Close() error { return s.srv.Close() }

// allowed is the public key check: a listed key, or no session.
func (s *Server) allowed(ctx ssh.Context, key ssh.PublicKey) bool {
	if listed(s.keys, key) {
		return true
	}
	s.log.Warn("refused a key not in the authorized keys", "user", ctx.User(), "from", ctx.RemoteAddr().String(), "key", gossh.FingerprintSHA256(key))
	return false
}

func listed(keys []gossh.PublicKey, key ssh.PublicKey) bool {
	for _, k := range keys {
		if ssh.KeysEqual(k, key) {
			return true
		}
	}
	return false
}

// session runs one explorer for as long as the session lasts.
func (s *Server) session(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		defer next(sess)
		who := fmt.Sprintf("%s@%s", sess.User(), sess.RemoteAddr())
		pty, windows, ok := sess.Pty()
		if !ok {
			wish.Fatalln(sess, "protolab-tui serve: the explorer needs a terminal: ssh -t")
			return
		}
		events := s.catchUp(sess.Context())
		noShell := ""
		if !listed(s.shell, sess.PublicKey()) {
			noShell = "the debugging shell (a root shell on the lab host) is not open to this session: serve --shell-keys lists who may"
		}
		cfg := s.lab.Config()
		m := ui.New(s.lab, events, ui.Options{
			Name: cfg.Name, Provider: cfg.Provider, StateDir: cfg.StateDir, Fingerprint: s.lab.PKI().Fingerprint(),
			CaptureMode: cfg.Capture.Mode, Apps: cfg.Apps, Renderer: bm.MakeRenderer(sess), Out: sess,
			Shared: true, NoShell: noShell,
		})
		opts := append(bm.MakeOptions(sess), tea.WithAltScreen(), tea.WithMouseCellMotion(),
			tea.WithContext(sess.Context()), tea.WithoutSignalHandler())
		p := tea.NewProgram(m, opts...)
		go func() {
			p.Send(tea.WindowSizeMsg{Width: pty.Window.Width, Height: pty.Window.Height})
			for {
				select {
				case <-sess.Context().Done():
					p.Quit()
					return
				case w := <-windows:
					p.Send(tea.WindowSizeMsg{Width: w.Width, Height: w.Height})
				}
			}
		}()
		s.log.Info("session opened", "who", who, "term", pty.Term, "size", fmt.Sprintf("%dx%d", pty.Window.Width, pty.Window.Height), "shell", noShell == "")
		if _, err := p.Run(); err != nil && sess.Context().Err() == nil {
			s.log.Warn("session's explorer failed", "who", who, "err", err)
		}
		p.Kill()
		s.log.Info("session left", "who", who)
	}
}

// catchUp is the session's event stream: the events that bring its
// explorer to the lab's state now, then the live ones, until ctx ends
// (then the subscription is ended and drained).
func (s *Server) catchUp(ctx context.Context) <-chan lab.Event {
	live, stop := s.lab.Subscribe()
	out := make(chan lab.Event, 64)
	go func() {
		defer close(out)
		defer func() {
			stop()
			for range live { // the stream's goroutine ends once drained
			}
		}()
		for _, e := range s.lab.Catchup() {
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
		for {
			select {
			case e, ok := <-live:
				if !ok {
					return
				}
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// ReadAuthorizedKeys reads an authorized_keys file; a line that is not a
// key is an error naming the file and line.
func ReadAuthorizedKeys(path string) ([]gossh.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("serve: reading the authorized keys: %w", err)
	}
	var out []gossh.PublicKey
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		k, _, _, _, err := gossh.ParseAuthorizedKey(line)
		if err != nil {
			return nil, fmt.Errorf("serve: %s:%d: not a public key (%w)", path, n, err)
		}
		out = append(out, k)
	}
	return out, sc.Err()
}

// hostKey reads the host key file, or makes one (ed25519, 0600) when there
// is none.
func hostKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if st, serr := os.Stat(path); serr == nil && st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("serve: host key %s is readable by others (mode %o): chmod 600 it", path, st.Mode().Perm())
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("serve: host key: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := gossh.MarshalPrivateKey(priv, "protolab-tui serve")
	if err != nil {
		return nil, err
	}
	b = pem.EncodeToMemory(block)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("serve: host key: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("serve: host key: %w", err)
	}
	return b, nil
}
