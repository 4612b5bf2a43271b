package probe

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/protolab/protolab-tui/protocol"
)

// Where the client of a measurement ran (Result.Client).
const (
	// ClientWorker: a separate protolab process (the probe worker) talked to
	// the app directly.
	ClientWorker = "worker"
	// ClientWorkerRelay: the worker's bytes went through a relay in the lab's
	// process, because the lab's dialer (a socket tap, a port forward) only
	// exists there.
	ClientWorkerRelay = "worker via lab relay"
	// ClientInProcess: the client ran in the lab's own process (no worker
	// available in this binary, or Options.Client asked for it).
	ClientInProcess = "in-process"
)

// WorkerEnv, set in a process's environment, makes ServeWorker serve one
// probe request on stdin/stdout and exit.
const WorkerEnv = "PROTOLAB_PROBE_WORKER"

// workerCapable says this binary calls ServeWorker first thing, so it can be
// re-executed as the probe worker.
var workerCapable atomic.Bool

// ServeWorker must be called first in main (and in TestMain of packages whose
// tests probe): in a process started as the probe worker it serves the
// request and exits; otherwise it marks this binary as able to be one and
// returns.
func ServeWorker() {
	if os.Getenv(WorkerEnv) == "" {
		workerCapable.Store(true)
		return
	}
	code := 0
	if err := serveWorker(context.Background(), os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "probe worker:", err)
		code = 1
	}
	os.Exit(code)
}

// workerRequest is what the lab sends the worker: one measurement or one send.
type workerRequest struct {
	Op         string `json:"op"` // "run" or "send"
	App        string `json:"app"`
	Protocol   string `json:"protocol"`
	Addr       string `json:"addr"`
	ServerName string `json:"server_name"`
	Path       string `json:"path,omitempty"`
	// Compression is Target.Compression.
	Compression string   `json:"compression,omitempty"`
	Roots       [][]byte `json:"roots"` // DER certificates to verify against
	KeyLog      bool     `json:"keylog"`
	Options     Options  `json:"options"`
	Text        string   `json:"text,omitempty"`
	CPUs        []int    `json:"cpus,omitempty"` // pin the worker to these CPUs
}

// workerMessage is one line the worker writes: a key log line, or the end.
type workerMessage struct {
	KeyLog    string      `json:"keylog,omitempty"`
	Connected bool        `json:"connected,omitempty"`
	Done      bool        `json:"done,omitempty"`
	Result    *Result     `json:"result,omitempty"`
	Send      *SendResult `json:"send,omitempty"`
	Error     string      `json:"error,omitempty"`
	Pinned    string      `json:"pinned,omitempty"`
}

// lineWriter turns each Write (crypto/tls writes one key log line per call)
// into a workerMessage.
type lineWriter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (w *lineWriter) send(m workerMessage) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.enc.Encode(m)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	if err := w.send(workerMessage{KeyLog: string(p)}); err != nil {
		return 0, err
	}
	return len(p), nil
}

func serveWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	var req workerRequest
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		return fmt.Errorf("reading the request on stdin: %w", err)
	}
	w := &lineWriter{enc: json.NewEncoder(out)} // unbuffered: keys reach the lab as they are made
	done := workerMessage{Done: true}
	if len(req.CPUs) > 0 {
		if err := pinProcess(req.CPUs); err != nil {
			done.Pinned = "not pinned: " + err.Error()
		} else {
			done.Pinned = cpuList(req.CPUs)
		}
	}
	t := Target{App: req.App, Protocol: protocol.Protocol(req.Protocol), Addr: req.Addr, ServerName: req.ServerName, Path: req.Path, Compression: req.Compression}
	if len(req.Roots) > 0 {
		t.RootCAs = x509.NewCertPool()
		for _, der := range req.Roots {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return fmt.Errorf("the lab CA in the request: %w", err)
			}
			t.RootCAs.AddCert(c)
			t.Roots = append(t.Roots, c)
		}
	}
	if req.KeyLog {
		t.KeyLog = w
	}
	t.Connected = func() { _ = w.send(workerMessage{Connected: true}) }
	var err error
	switch req.Op {
	case "run":
		var r Result
		r, err = Run(ctx, t, req.Options)
		done.Result = &r
	case "send":
		var s SendResult
		s, err = Send(ctx, t, req.Text)
		done.Send = &s
	default:
		err = fmt.Errorf("unknown operation %q (want run or send)", req.Op)
	}
	if err != nil {
		done.Error = err.Error()
	}
	return w.send(done)
}

// pinProcess binds every thread of this process (and so the threads they
// start) to cpus.
func pinProcess(cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	if err := pinSet(&set); err != nil {
		return fmt.Errorf("pinning to %s: %w", cpuList(cpus), err)
	}
	return nil
}

func pinSet(set *unix.CPUSet) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("listing this process's threads: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, set); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("sched_setaffinity of thread %d: %w", tid, err)
		}
	}
	return nil
}

func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return "cpu " + strings.Join(s, ",")
}

// workerCPUs is where the worker is pinned: the last CPU this process may use,
// when it may use at least minPinCPUs (on fewer, one CPU for the worker would
// take half or more of the apps' and the decoder's, changing what is measured
// more than sharing does).
func workerCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil || set.Count() < minPinCPUs {
		return nil
	}
	for c := runtime.NumCPU() * 4; c >= 0; c-- {
		if set.IsSet(c) {
			return []int{c}
		}
	}
	return nil
}

// minPinCPUs is the fewest CPUs on which the worker gets one of its own.
const minPinCPUs = 4

// Worker runs probes in a separate process: this binary, re-executed with
// WorkerEnv set.
type Worker struct {
	// Path is the binary to run (default: os.Executable()).
	Path string
	// Stderr receives the worker's diagnostics (default: discarded).
	Stderr io.Writer
}

// Available says whether probes can run in a worker: this binary called
// ServeWorker, so re-executing it serves the request.
func Available() bool { return workerCapable.Load() }

// RunClient measures like Run, in a worker process when the binary can be
// one and o.Client does not ask for the lab's process; Result.Client says
// where the client ran.
func RunClient(ctx context.Context, t Target, o Options) (Result, error) {
	if !Available() || o.Client == ClientInProcess {
		r, err := Run(ctx, t, o)
		r.Client = ClientInProcess
		return r, err
	}
	var w Worker
	return w.Run(ctx, t, o)
}

// SendClient sends like Send, in a worker process when available.
func SendClient(ctx context.Context, t Target, text string, o Options) (SendResult, error) {
	if !Available() || o.Client == ClientInProcess {
		return Send(ctx, t, text)
	}
	var w Worker
	return w.Send(ctx, t, text)
}

// Run measures t in the worker.
func (w Worker) Run(ctx context.Context, t Target, o Options) (Result, error) {
	m, err := w.do(ctx, t, workerRequest{Op: "run", Options: o.withDefaults()})
	if m.Result == nil {
		r := Result{App: t.name(), Protocol: t.Protocol, Addr: t.Addr, Client: ClientWorker}
		return r.fail(err)
	}
	return *m.Result, err
}

// Send sends text to t from the worker.
func (w Worker) Send(ctx context.Context, t Target, text string) (SendResult, error) {
	m, err := w.do(ctx, t, workerRequest{Op: "send", Text: text})
	if m.Send == nil {
		return SendResult{App: t.name(), Protocol: t.Protocol, Sent: text}, err
	}
	return *m.Send, err
}

func (w Worker) do(ctx context.Context, t Target, req workerRequest) (last workerMessage, _ error) {
	req.App, req.Protocol, req.Addr, req.ServerName, req.Path, req.Compression = t.name(), string(t.Protocol), t.Addr, t.serverName(), t.Path, t.Compression
	req.KeyLog = t.KeyLog != nil
	for _, c := range t.Roots {
		req.Roots = append(req.Roots, c.Raw)
	}
	if t.Protocol.Secure() && len(req.Roots) == 0 {
		return workerMessage{}, fmt.Errorf("%s probe: the target carries no lab CA certificate (Target.Roots) to hand to the worker", t.name())
	}
	req.CPUs = workerCPUs()
	client := ClientWorker
	if t.Dial != nil {
		addr, upstream, stop, err := relay(ctx, t)
		if err != nil {
			return workerMessage{}, err
		}
		defer stop()
		req.Addr = addr
		client = ClientWorkerRelay
		defer func() {
			// The wire saw the relay's connections, not the worker's.
			if r := last.Result; r != nil {
				ups := upstream()
				for i, c := range r.Conns {
					if up, ok := ups[c.Client]; ok {
						r.Conns[i].Client, r.Conns[i].Server = up.LocalAddr().String(), up.RemoteAddr().String()
					}
				}
			}
		}()
	}
	path := w.Path
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return workerMessage{}, fmt.Errorf("%s probe: finding this program to start the worker: %w", t.name(), err)
		}
		path = exe
	}
	body, err := json.Marshal(req)
	if err != nil {
		return workerMessage{}, err
	}
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = append(os.Environ(), WorkerEnv+"=1")
	cmd.Stdin = strings.NewReader(string(body))
	cmd.Stderr = w.Stderr
	cmd.WaitDelay = time.Second
	// Its own process group: a Ctrl-C typed at the terminal is the lab's
	// to handle (it cancels ctx, which ends the worker), not a signal that
	// kills the worker mid-probe as well.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return workerMessage{}, err
	}
	if err := cmd.Start(); err != nil {
		return workerMessage{}, fmt.Errorf("%s probe: starting the worker %s: %w", t.name(), path, err)
	}
	dec := json.NewDecoder(stdout)
	for {
		var m workerMessage
		if err := dec.Decode(&m); err != nil {
			break
		}
		if m.KeyLog != "" && t.KeyLog != nil {
			_, _ = io.WriteString(t.KeyLog, m.KeyLog)
		}
		if m.Connected && t.Connected != nil {
			t.Connected()
		}
		if m.Done {
			last = m
		}
	}
	werr := cmd.Wait()
	if !last.Done {
		if werr == nil {
			werr = errors.New("it ended without a result")
		}
		return last, fmt.Errorf("%s probe worker: %w", t.name(), werr)
	}
	if last.Result != nil {
		last.Result.Client, last.Result.Addr = client, t.Addr
		last.Result.ClientCPUs = last.Pinned
	}
	if last.Error != "" {
		return last, errors.New(last.Error)
	}
	return last, nil
}

// relay listens on loopback and joins each connection the worker opens to
// one made with t.Dial, so a dialer that lives in the lab's process (a
// socket tap, a port forward) still carries the worker's bytes.
// upstream returns the connections made so far, by the worker's end of
// the connection they carry (its local address as the worker sees it).
func relay(ctx context.Context, t Target) (addr string, upstream func() map[string]net.Conn, stop func(), _ error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, fmt.Errorf("%s probe: listening for the worker's relay: %w", t.name(), err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ups := map[string]net.Conn{}
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer in.Close()
				up, err := t.Dial(ctx, "tcp", t.Addr)
				if err != nil {
					return
				}
				defer up.Close()
				mu.Lock()
				ups[in.RemoteAddr().String()] = up
				mu.Unlock()
				stop := context.AfterFunc(ctx, func() { in.Close(); up.Close() })
				defer stop()
				// each way ends as the sender ends it (a FIN passed on as
				// a half-close), so every byte either side sent arrives
				var pair sync.WaitGroup
				pair.Go(func() { _, _ = io.Copy(up, in); closeWrite(up) })
				_, _ = io.Copy(in, up)
				closeWrite(in)
				pair.Wait()
			})
		}
	})
	upstream = func() map[string]net.Conn {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(ups)
	}
	return ln.Addr().String(), upstream, func() { ln.Close(); cancel(); wg.Wait() }, nil
}

// closeWrite half-closes c when it can, else closes it.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		return
	}
	c.Close()
}
