// Package sshrun is the lab's remote runner: a lab.Runner over SSH
// (golang.org/x/crypto/ssh) that runs commands with streamed output and exit
// status, uploads files, and dials TCP and unix sockets on the remote host —
// which is how the docker provider reaches a remote engine and how remote
// capture streams tcpdump. Host keys are always checked: against
// known_hosts, or a key the lab pinned itself; an unknown key is accepted
// only when asked, a changed key never.
package sshrun

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/protolab/protolab-tui/lab"
)

// Config says how to reach and trust a host.
type Config struct {
	// Host is a host name, an address, or an alias from ~/.ssh/config.
	Host string
	User string
	Port int
	// IdentityFiles are private keys to offer (ed25519, RSA, ECDSA).
	IdentityFiles []string
	// Passphrase is asked for an encrypted identity file (the TUI prompts);
	// nil skips such files.
	Passphrase func(file string) ([]byte, error)
	// KnownHosts files (default ~/.ssh/known_hosts).
	KnownHosts []string
	// AcceptNewHostKey adds an unknown host's key to the first known_hosts
	// file (trust on first use). A changed key is refused regardless.
	AcceptNewHostKey bool
	// ConfirmHostKey, when set, asks whether to trust an unknown host key
	// (the TUI shows the fingerprint); true records it as AcceptNewHostKey
	// would.
	ConfirmHostKey func(host, fingerprint string) bool
	// SSHConfig is the ssh_config file read for aliases (default ~/.ssh/config).
	SSHConfig string
	// KeepAlive is the interval of keep-alive requests (default 15s).
	KeepAlive time.Duration
	// Events receives link news ("lost", "reconnected"); may be nil.
	Events func(msg string)
	// Link, when set, is told whether the link is up as it changes (lost:
	// false, re-established: true), with the same news.
	Link func(up bool, msg string)
}

// ParseTarget reads "user@host:port" (user and port optional).
func ParseTarget(s string) (user, host string, port int, err error) {
	if at := strings.LastIndex(s, "@"); at >= 0 {
		user, s = s[:at], s[at+1:]
	}
	host = s
	if h, p, err2 := net.SplitHostPort(s); err2 == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return "", "", 0, fmt.Errorf("--host %q: bad port %q", s, p)
		}
		host, port = h, n
	}
	if host == "" {
		return "", "", 0, fmt.Errorf("--host %q: no host name", s)
	}
	return user, host, port, nil
}

// resolve fills Config from ~/.ssh/config (HostName, User, Port,
// IdentityFile) for the given alias, and defaults.
func (c Config) resolve() (Config, error) {
	home, _ := os.UserHomeDir()
	if c.SSHConfig == "" && home != "" {
		c.SSHConfig = filepath.Join(home, ".ssh", "config")
	}
	if f, err := os.Open(c.SSHConfig); err == nil {
		hc := parseSSHConfig(f, c.Host)
		f.Close()
		if hc.hostName != "" {
			c.Host = hc.hostName
		}
		if c.User == "" {
			c.User = hc.user
		}
		if c.Port == 0 {
			c.Port = hc.port
		}
		for _, id := range hc.identities {
			c.IdentityFiles = append(c.IdentityFiles, expandHome(id, home))
		}
	}
	if c.User == "" {
		c.User = os.Getenv("USER")
		if c.User == "" {
			c.User = "root"
		}
	}
	if c.Port == 0 {
		c.Port = 22
	}
	if len(c.KnownHosts) == 0 {
		if home == "" {
			return c, errors.New("no home directory for ~/.ssh/known_hosts: give the known_hosts file")
		}
		c.KnownHosts = []string{filepath.Join(home, ".ssh", "known_hosts")}
	}
	if len(c.IdentityFiles) == 0 && home != "" {
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			p := filepath.Join(home, ".ssh", n)
			if _, err := os.Stat(p); err == nil {
				c.IdentityFiles = append(c.IdentityFiles, p)
			}
		}
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 15 * time.Second
	}
	return c, nil
}

func expandHome(p, home string) string {
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(home, p[2:])
	}
	return p
}

type hostConfig struct {
	hostName, user string
	port           int
	identities     []string
}

// parseSSHConfig reads the basics of the Host blocks matching alias.
func parseSSHConfig(r io.Reader, alias string) hostConfig {
	var hc hostConfig
	match := true // options before any Host line apply to all
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, _ := strings.Cut(strings.ReplaceAll(line, "=", " "), " ")
		val = strings.Trim(strings.TrimSpace(val), `"`)
		switch strings.ToLower(key) {
		case "host":
			match = false
			for _, pat := range strings.Fields(val) {
				if ok, _ := filepath.Match(pat, alias); ok {
					match = true
				}
			}
		case "hostname":
			if match && hc.hostName == "" {
				hc.hostName = val
			}
		case "user":
			if match && hc.user == "" {
				hc.user = val
			}
		case "port":
			if n, err := strconv.Atoi(val); match && hc.port == 0 && err == nil && n > 0 && n <= 65535 {
				hc.port = n
			}
		case "identityfile":
			if match {
				hc.identities = append(hc.identities, val)
			}
		}
	}
	return hc
}

// HostKeyError is an unknown or changed host key.
type HostKeyError struct {
	Host        string
	Fingerprint string
	Changed     bool
	KnownHosts  string
}

func (e *HostKeyError) Error() string {
	if e.Changed {
		return fmt.Sprintf("WARNING: THE HOST KEY OF %s HAS CHANGED (now %s). Someone may be intercepting the connection, or the host was reinstalled: protolab refuses to connect. Check the key, then remove the old line from %s", e.Host, e.Fingerprint, e.KnownHosts)
	}
	return fmt.Sprintf("the host key of %s is unknown (%s): check it, then connect once with --accept-new-host-key (or confirm it in the TUI)", e.Host, e.Fingerprint)
}

// hostKeyCallback checks keys against the known_hosts files.
func (c Config) hostKeyCallback() (ssh.HostKeyCallback, error) {
	for _, f := range c.KnownHosts {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			return nil, err
		}
		if _, err := os.Stat(f); errors.Is(err, os.ErrNotExist) {
			if err := os.WriteFile(f, nil, 0o600); err != nil {
				return nil, err
			}
		}
	}
	check, err := knownhosts.New(c.KnownHosts...)
	if err != nil {
		return nil, fmt.Errorf("reading known hosts %v: %w", c.KnownHosts, err)
	}
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := check(hostname, remote, key)
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		he := &HostKeyError{Host: hostname, Fingerprint: ssh.FingerprintSHA256(key), Changed: len(ke.Want) > 0, KnownHosts: c.KnownHosts[0]}
		if he.Changed {
			return he
		}
		if !c.AcceptNewHostKey && (c.ConfirmHostKey == nil || !c.ConfirmHostKey(hostname, he.Fingerprint)) {
			return he
		}
		f, err := os.OpenFile(c.KnownHosts[0], os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			return fmt.Errorf("recording the host key: %w", err)
		}
		defer f.Close()
		_, err = fmt.Fprintln(f, knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key))
		return err
	}, nil
}

// authMethods offers the agent's keys and the identity files.
func (c Config) authMethods() ([]ssh.AuthMethod, func(), error) {
	var methods []ssh.AuthMethod
	cleanup := func() {}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if conn, err := net.Dial("unix", sock); err == nil {
			ag := agent.NewClient(conn)
			methods = append(methods, ssh.PublicKeysCallback(ag.Signers))
			cleanup = func() { conn.Close() }
		}
	}
	var signers []ssh.Signer
	for _, f := range c.IdentityFiles {
		pem, err := os.ReadFile(f)
		if err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("identity file %s: %w", f, err)
		}
		s, err := ssh.ParsePrivateKey(pem)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) && c.Passphrase != nil {
			pass, perr := c.Passphrase(f)
			if errors.Is(perr, lab.ErrNoAnswer) {
				continue // no one to type it: ssh-agent may hold the key
			}
			if perr != nil {
				cleanup()
				return nil, nil, perr
			}
			s, err = ssh.ParsePrivateKeyWithPassphrase(pem, pass)
		}
		if errors.As(err, &missing) {
			continue // encrypted and no way to ask: the agent may hold it
		}
		if err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("identity file %s: %w", f, err)
		}
		signers = append(signers, s)
	}
	if len(signers) > 0 {
		methods = append(methods, ssh.PublicKeys(signers...))
	}
	if len(methods) == 0 {
		return nil, nil, errors.New("no SSH credentials: give --identity FILE or start ssh-agent (SSH_AUTH_SOCK)")
	}
	return methods, cleanup, nil
}

// Runner is a lab.Runner on a remote host over SSH.
type Runner struct {
	cfg  Config
	addr string

	mu      sync.Mutex
	client  *ssh.Client
	closeFn func()
	stop    chan struct{}
	lost    chan struct{} // the link died under the runner
	closed  bool
}

// Dial connects (within ctx) and starts keep-alives.
func Dial(ctx context.Context, cfg Config) (*Runner, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	r := &Runner{cfg: cfg, addr: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), stop: make(chan struct{}), lost: make(chan struct{}, 1)}
	if _, err := r.connect(ctx); err != nil {
		return nil, err
	}
	go r.keepAlive()
	return r, nil
}

// Addr is the host:port connected to.
func (r *Runner) Addr() string { return r.addr }

// User is the remote user.
func (r *Runner) User() string { return r.cfg.User }

func (r *Runner) connect(ctx context.Context) (*ssh.Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.client != nil {
		return r.client, nil
	}
	if r.closed {
		return nil, errors.New("ssh runner closed")
	}
	hk, err := r.cfg.hostKeyCallback()
	if err != nil {
		return nil, err
	}
	auth, cleanup, err := r.cfg.authMethods()
	if err != nil {
		return nil, err
	}
	conf := &ssh.ClientConfig{User: r.cfg.User, Auth: auth, HostKeyCallback: hk, Timeout: 10 * time.Second}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", r.addr)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("ssh %s@%s: %w", r.cfg.User, r.addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, r.addr, conf)
	if err != nil {
		conn.Close()
		cleanup()
		var he *HostKeyError
		if errors.As(err, &he) {
			return nil, he
		}
		return nil, fmt.Errorf("ssh %s@%s: %w", r.cfg.User, r.addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	r.client, r.closeFn = ssh.NewClient(c, chans, reqs), cleanup
	go r.watchLink(r.client)
	return r.client, nil
}

// drop forgets a broken connection.
func (r *Runner) drop(c *ssh.Client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.client == c && c != nil {
		c.Close()
		r.client = nil
		r.closeFn()
	}
}

// keepAlive pings the server every KeepAlive; a link that dies — its
// connection closed under it (the server's process killed), or a ping not
// answered within the interval (the network gone silent) — is reported at
// once and re-established.
func (r *Runner) keepAlive() {
	t := time.NewTicker(r.cfg.KeepAlive)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-r.lost:
			r.recover()
			continue
		case <-t.C:
		}
		r.mu.Lock()
		c := r.client
		r.mu.Unlock()
		if c != nil && r.ping(c) == nil {
			continue
		}
		r.drop(c)
		r.recover()
	}
}

// ping sends a keep-alive request and waits for the answer, at most one
// keep-alive interval.
func (r *Runner) ping(c *ssh.Client) error {
	answered := make(chan error, 1)
	go func() {
		_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
		answered <- err
	}()
	select {
	case err := <-answered:
		return err
	case <-time.After(r.cfg.KeepAlive):
		return fmt.Errorf("no answer to a keep-alive within %s", r.cfg.KeepAlive)
	}
}

// watchLink reports the link lost as soon as c's connection ends, unless
// the runner let it go itself (drop, Close).
func (r *Runner) watchLink(c *ssh.Client) {
	_ = c.Wait()
	r.mu.Lock()
	mine := r.client == c
	r.mu.Unlock()
	if !mine {
		return
	}
	r.drop(c)
	select {
	case r.lost <- struct{}{}:
	default:
	}
}

// recover says the link is lost and reconnects, trying again (sooner at
// first) until it is back or the runner is closed.
func (r *Runner) recover() {
	r.link(false, fmt.Sprintf("ssh link to %s lost: reconnecting", r.addr))
	wait := 250 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := r.connect(ctx)
		cancel()
		if err == nil {
			r.link(true, fmt.Sprintf("ssh link to %s re-established", r.addr))
			return
		}
		select {
		case <-r.stop:
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, r.cfg.KeepAlive)
	}
}

func (r *Runner) link(up bool, msg string) {
	if r.cfg.Events != nil {
		r.cfg.Events(msg)
	}
	if r.cfg.Link != nil {
		r.cfg.Link(up, msg)
	}
}

// Close ends the connection.
func (r *Runner) Close() error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.stop)
	}
	c := r.client
	r.client = nil
	r.mu.Unlock()
	if c != nil {
		return c.Close()
	}
	return nil
}

// watchdog runs "$@" with no input and kills it when standard input closes
// (fd 3 keeps stdin for the background reader: a non-interactive shell gives
// background jobs /dev/null otherwise).
const watchdog = `exec 3<&0; "$@" </dev/null & p=$!; { cat <&3 >/dev/null; kill -TERM "$p" 2>/dev/null; } & w=$!; wait "$p"; s=$?; kill "$w" 2>/dev/null; exit "$s"`

// Quote makes one argument safe for the remote shell, which always parses
// an SSH command line: every argument is single-quoted.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// Run implements lab.Runner: argv is quoted argument by argument, so
// nothing the user typed becomes shell syntax on the remote side.
func (r *Runner) Run(ctx context.Context, cmd lab.Cmd) error {
	if len(cmd.Argv) == 0 {
		return errors.New("run: empty command")
	}
	c, err := r.connect(ctx)
	if err != nil {
		return err
	}
	s, err := c.NewSession()
	if err != nil {
		r.drop(c)
		return fmt.Errorf("ssh session on %s: %w", r.addr, err)
	}
	defer s.Close()
	s.Stdout, s.Stderr = cmd.Stdout, cmd.Stderr
	argv := cmd.Argv
	var stdin io.WriteCloser
	if cmd.Stdin != nil {
		s.Stdin = cmd.Stdin
	} else {
		// No input to give: the command runs under a watchdog that ends it
		// when our side closes its standard input — so cancelling stops
		// the remote process (a streaming tcpdump, say) and never leaves
		// it running. The script is constant; argv stays positional.
		argv = append([]string{"sh", "-c", watchdog, "protolab"}, argv...)
		if stdin, err = s.StdinPipe(); err != nil {
			return err
		}
	}
	var line strings.Builder
	for _, kv := range cmd.Env {
		if k, _, ok := strings.Cut(kv, "="); ok && k != "" {
			line.WriteString(kv[:len(k)+1] + Quote(kv[len(k)+1:]) + " ")
		}
	}
	for i, a := range argv {
		if i > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(Quote(a))
	}
	if err := s.Start(line.String()); err != nil {
		return fmt.Errorf("ssh %s: starting %s: %w", r.addr, cmd.Argv[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		if stdin != nil {
			stdin.Close() // the watchdog ends the command
		}
		_ = s.Signal(ssh.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.Close()
		}
		return ctx.Err()
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return &lab.ExitError{Argv: cmd.Argv, Code: ee.ExitStatus()}
	}
	if err != nil {
		return fmt.Errorf("ssh %s: %s: %w", r.addr, cmd.Argv[0], err)
	}
	return nil
}

// Dial implements lab.Runner: a connection opened by the remote host, to a
// TCP address or a unix socket (e.g. /var/run/docker.sock).
func (r *Runner) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := r.connect(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := c.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: dialing %s %s on the remote host: %w", r.addr, network, addr, err)
	}
	return conn, nil
}

// Upload writes data to path on the remote host with the given mode.
func (r *Runner) Upload(ctx context.Context, data []byte, path string, mode os.FileMode) error {
	err := r.Run(ctx, lab.Cmd{Argv: []string{"sh", "-c", `umask 077 && cat > "$1" && chmod "$2" "$1"`, "upload", path, fmt.Sprintf("%o", mode)},
		Stdin: strings.NewReader(string(data))})
	if err != nil {
		return fmt.Errorf("uploading %s: %w", path, err)
	}
	return nil
}

// shell is an interactive shell over SSH, on a remote pty.
type shell struct {
	s   *ssh.Session
	in  io.WriteCloser
	out io.Reader
}

// OpenShell implements lab.Runner: a login shell on a pty on the
// remote host; resizing the pane resizes the pty.
func (r *Runner) OpenShell(ctx context.Context, cols, rows int) (lab.Shell, error) {
	c, err := r.connect(ctx)
	if err != nil {
		return nil, err
	}
	s, err := c.NewSession()
	if err != nil {
		return nil, fmt.Errorf("ssh session on %s: %w", r.addr, err)
	}
	modes := ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}
	if err := s.RequestPty("xterm-256color", rows, cols, modes); err != nil {
		s.Close()
		return nil, fmt.Errorf("a pty on %s: %w", r.addr, err)
	}
	in, err := s.StdinPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	out, err := s.StdoutPipe()
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := s.Shell(); err != nil {
		s.Close()
		return nil, fmt.Errorf("a shell on %s: %w", r.addr, err)
	}
	return &shell{s: s, in: in, out: out}, nil
}

func (sh *shell) Read(p []byte) (int, error)  { return sh.out.Read(p) }
func (sh *shell) Write(p []byte) (int, error) { return sh.in.Write(p) }
func (sh *shell) Resize(cols, rows int) error { return sh.s.WindowChange(rows, cols) }
func (sh *shell) Close() error                { return sh.s.Close() }
