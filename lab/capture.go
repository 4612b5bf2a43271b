package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/proto"
	"github.com/protolab/protolab-tui/lab/wire"
)

// CaptureConfig says whether and how the lab captures its traffic.
type CaptureConfig struct {
	// Mode is "auto" (capture when the process may), "on" (always: socket
	// level when nothing better is possible) or "off".
	Mode string
	// RingSize is how many records each protocol keeps (default 10000).
	RingSize int
}

// CaptureOpener is implemented by providers that know where their traffic
// flows (a Docker bridge, a remote host reached through tcpdump over SSH).
// It gets the apps' ports as this machine reaches them and returns the
// source and the port map as the source sees the traffic (a remote host
// sees its own published ports, not this machine's forwards). Providers
// without it are captured on this host's loopback.
type CaptureOpener interface {
	OpenCapture(ctx context.Context, ports map[uint16]proto.Protocol) (capture.Source, capture.Mode, map[uint16]proto.Protocol, error)
}

// CaptureEvent reports capture starting, stopping or failing.
type CaptureEvent struct {
	At
	State string        `json:"state"` // "on", "off"
	Stats capture.Stats `json:"stats"`
	Note  string        `json:"note,omitempty"`
}

// ExportEvent reports a pcapng export.
type ExportEvent struct {
	At
	Path    string `json:"path"`
	Packets int    `json:"packets"`
	Secrets int    `json:"secrets"`
	Error   string `json:"error,omitempty"`
}

// EventType implementations.
func (CaptureEvent) EventType() string { return "capture" }
func (ExportEvent) EventType() string  { return "export" }

// Wire returns the store of decoded records (empty until capture starts).
func (l *Lab) Wire() *wire.Store { return l.store }

// Keys returns the TLS key log of the lab's own clients.
func (l *Lab) Keys() *wire.KeyLog { return l.keys }

// Capturing reports whether capture is on, and how.
func (l *Lab) Capturing() (bool, capture.Mode) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.capt == nil {
		return false, capture.ModeOff
	}
	return true, l.capt.Mode()
}

// CaptureStats returns the running capture's counters (zero when off).
func (l *Lab) CaptureStats() capture.Stats {
	l.mu.Lock()
	c := l.capt
	last := l.lastCapture
	l.mu.Unlock()
	if c == nil {
		return last
	}
	return c.Stats()
}

// labPorts returns the server ports of the deployed apps (or the configured
// ones when nothing is deployed yet).
func (l *Lab) labPorts() map[uint16]proto.Protocol {
	l.mu.Lock()
	defer l.mu.Unlock()
	ports := map[uint16]proto.Protocol{}
	for _, p := range l.cfg.Protocols {
		if a, ok := l.apps[string(p)]; ok && a.Endpoint != "" {
			if _, ps, err := net.SplitHostPort(a.Endpoint); err == nil {
				if n, err := strconv.Atoi(ps); err == nil {
					ports[uint16(n)] = p
					continue
				}
			}
		}
		if n := l.cfg.Ports[p]; n != 0 {
			ports[uint16(n)] = p
		}
	}
	return ports
}

// openSource picks the best source: the provider's own, else live capture
// on lo (in a private namespace if that is where this process runs), else
// nothing (socket-level capture of the lab's own connections).
func (l *Lab) openSource(ctx context.Context, portMap map[uint16]proto.Protocol, ports []int) (capture.Source, capture.Mode, map[uint16]proto.Protocol, string, error) {
	if co, ok := l.prov.(CaptureOpener); ok {
		src, mode, seen, err := co.OpenCapture(ctx, portMap)
		return src, mode, seen, "", err
	}
	src, mode, note, err := l.openLocal(ports)
	return src, mode, portMap, note, err
}

func (l *Lab) openLocal(ports []int) (capture.Source, capture.Mode, string, error) {
	src, err := capture.OpenLive("lo", ports)
	if err == nil {
		mode := capture.ModeLive
		if capture.InNamespace() {
			mode = capture.ModeNamespace
		}
		return src, mode, "", nil
	}
	if !errors.Is(err, capture.ErrNoPrivilege) {
		return nil, "", "", err
	}
	if l.cfg.Capture.Mode == "auto" {
		return nil, capture.ModeOff, "no permission to capture packets: capture is off (use --capture on for socket-level capture)", nil
	}
	return nil, capture.ModeSocket, "no permission to capture packets and no private namespace: socket-level capture of the lab's own connections (payload bytes per direction, no TCP flags)", nil
}

// StartCapture starts capturing the lab's traffic into the Wire store.
func (l *Lab) StartCapture(ctx context.Context) *Job {
	l.mu.Lock()
	on := l.capt != nil
	l.mu.Unlock()
	if on {
		return failedJob(errors.New("capture is already on"))
	}
	ports := l.labPorts()
	if len(ports) == 0 {
		err := errors.New("capture: no app ports known yet: deploy first, or give fixed ports")
		l.emit(ErrorEvent{At: now(), Op: "capture", Error: err.Error()})
		return failedJob(err)
	}
	list := make([]int, 0, len(ports))
	for p := range ports {
		list = append(list, int(p))
	}
	sort.Ints(list)
	src, mode, ports, note, err := l.openSource(ctx, ports, list)
	if err != nil {
		err = fmt.Errorf("capture: %w", err)
		l.emit(ErrorEvent{At: now(), Op: "capture", Error: err.Error()})
		return failedJob(err)
	}
	if mode == capture.ModeOff {
		l.emit(CaptureEvent{At: now(), State: "off", Stats: capture.Stats{Mode: capture.ModeOff}, Note: note})
		return failedJob(errors.New(note))
	}
	if err := l.keepKeys(); err != nil {
		if src != nil {
			src.Close()
		}
		l.emit(ErrorEvent{At: now(), Op: "capture", Error: err.Error()})
		return failedJob(err)
	}
	c, err := capture.Start(src, mode, capture.Options{
		Ports: ports, Keys: l.keys, Store: l.store,
		SpoolDir: filepath.Join(l.cfg.StateDir, "spool"),
	})
	if err != nil {
		if src != nil {
			src.Close()
		}
		err = fmt.Errorf("capture: %w", err)
		l.emit(ErrorEvent{At: now(), Op: "capture", Error: err.Error()})
		return failedJob(err)
	}
	l.mu.Lock()
	l.capt = c
	l.mu.Unlock()
	l.emit(CaptureEvent{At: now(), State: "on", Stats: c.Stats(), Note: note})
	return failedJob(nil)
}

// keepKeys opens the run's key-log file (0600) in the state directory.
func (l *Lab) keepKeys() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keyFile != nil {
		return nil
	}
	dir := filepath.Join(l.cfg.StateDir, "keys")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("TLS key log: %w", err)
	}
	PruneOld(dir, ".keys", keptKeyLogs-1)
	path := filepath.Join(dir, fmt.Sprintf("%s-%s.keys", l.cfg.Name, time.Now().Format("20060102-150405.000")))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("TLS key log: %w", err)
	}
	l.keyFile = f
	return l.keys.SetSink(f)
}

// keptKeyLogs is how many runs' TLS key logs the state directory keeps.
const keptKeyLogs = 20

// PruneOld removes the oldest files ending in suffix from dir until at most
// keep remain (by modification time).
func PruneOld(dir, suffix string, keep int) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type file struct {
		path string
		mod  time.Time
	}
	var files []file
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), suffix) {
			if info, err := e.Info(); err == nil {
				files = append(files, file{filepath.Join(dir, e.Name()), info.ModTime()})
			}
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod.Before(files[j].mod) })
	for len(files) > keep {
		_ = os.Remove(files[0].path)
		files = files[1:]
	}
}

// SyncCapture waits until the capture has decoded everything sent so far.
func (l *Lab) SyncCapture(ctx context.Context) error {
	l.mu.Lock()
	c := l.capt
	l.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Sync(ctx, 150*time.Millisecond)
}

// StopCapture stops capturing; the records and the packets kept for export
// stay until the next capture starts or the lab is closed.
func (l *Lab) StopCapture() *Job {
	l.mu.Lock()
	c := l.capt
	l.capt = nil
	l.mu.Unlock()
	if c == nil {
		return failedJob(nil)
	}
	err := c.Stop()
	st := c.Stats()
	l.mu.Lock()
	if l.stopped != nil {
		l.stopped.Close() // the previous capture's spool
	}
	l.stopped, l.lastCapture = c, st
	l.mu.Unlock()
	ev := CaptureEvent{At: now(), State: "off", Stats: st}
	if err != nil {
		ev.Note = err.Error()
	}
	l.emit(ev)
	return failedJob(err)
}

// Export writes the capture (running or stopped) as pcapng with the TLS key
// log embedded, and publishes an ExportEvent. An empty path means
// <state dir>/captures/<lab>-<time>.pcapng.
func (l *Lab) Export(path string) *Job {
	l.mu.Lock()
	c := l.capt
	if c == nil {
		c = l.stopped
	}
	l.mu.Unlock()
	if path == "" {
		path = filepath.Join(l.cfg.StateDir, "captures", fmt.Sprintf("%s-%s.pcapng", l.cfg.Name, time.Now().Format("20060102-150405")))
	}
	ev := ExportEvent{At: now(), Path: path, Secrets: l.keys.Len()}
	var err error
	if c == nil {
		err = errors.New("export: nothing captured yet: start capture first")
	} else {
		ev.Packets, err = c.Export(path)
	}
	if err != nil {
		ev.Error = err.Error()
	}
	l.emit(ev)
	return failedJob(err)
}

// closeCapture stops capture and removes what it kept on disk (not the key
// log, which is the run's record).
func (l *Lab) closeCapture() {
	l.StopCapture()
	l.mu.Lock()
	if l.stopped != nil {
		l.stopped.Close()
		l.stopped = nil
	}
	l.mu.Unlock()
}

// Close releases what the lab holds on this host (capture spool, key log
// file). Call it after Teardown.
func (l *Lab) Close() error {
	l.closeCapture()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keyFile != nil {
		err := l.keyFile.Close()
		l.keyFile = nil
		return err
	}
	return nil
}

// tapDial returns a dialer that feeds the connection to socket-level
// capture, or nil when capture is not socket-level.
func (l *Lab) tapDial(p proto.Protocol) func(ctx context.Context, network, addr string) (net.Conn, error) {
	l.mu.Lock()
	c := l.capt
	l.mu.Unlock()
	if c == nil || c.Mode() != capture.ModeSocket {
		return nil
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return c.Tap(p, conn), nil
	}
}

// runnerAdapter lets capture run commands through the provider's runner.
type runnerAdapter struct{ r Runner }

func (a runnerAdapter) Run(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
	return a.r.Run(ctx, Cmd{Argv: argv, Stdout: stdout, Stderr: stderr})
}

// CaptureRunner adapts a Runner for capture.OpenStream (tcpdump through the
// provider's runner).
func CaptureRunner(r Runner) capture.Runner { return runnerAdapter{r} }

// ProtocolReport is one protocol's row of the report: the probe's
// measurement and, when capture was on, what the wire showed.
type ProtocolReport struct {
	probe.Result
	Wire *wire.Summary `json:"wire,omitempty"`
}
