package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/wire"
)

// CaptureConfig says whether and how the lab captures its traffic.
type CaptureConfig struct {
	// Mode is "auto" (capture when the process may), "on" (always: socket
	// level when nothing better is possible) or "off".
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty"`
	// RingSize is how many records each app keeps (default 10000).
	RingSize int `yaml:"ring,omitempty" json:"ring,omitempty"`
}

// CaptureOpener is implemented by providers that know where their traffic
// flows (a Docker bridge, a remote host reached through tcpdump over SSH).
// It gets the apps' ports as this machine reaches them and returns the
// source and the port map as the source sees the traffic (a remote host
// sees its own published ports, not this machine's forwards). Providers
// without it are captured on this host's loopback.
type CaptureOpener interface {
	OpenCapture(ctx context.Context, ports wire.PortMap) (capture.Source, capture.Mode, wire.PortMap, error)
}

// CaptureEvent reports capture turning on or off: the outcome of
// StartCapture (on; off when mode "auto" finds no way to capture) and of
// StopCapture (off). Note says how it captures, or why it is off.
type CaptureEvent struct {
	At
	State string        `json:"state"` // "on", "off"
	Stats capture.Stats `json:"stats"`
	Note  string        `json:"note,omitempty"`
}

// ExportEvent reports a pcapng export: where it went and what it holds, or
// (Error) why it failed. Note says what the file lacks of what the packet
// lists show (a socket-level capture keeps no packets), when anything.
type ExportEvent struct {
	At
	Path    string `json:"path"`
	Packets int    `json:"packets"`
	Secrets int    `json:"secrets"`
	Note    string `json:"note,omitempty"`
	Error   string `json:"error,omitempty"`
	// CutShort says the run was interrupted: the file holds what was
	// captured until then (its section comment says so too).
	CutShort bool `json:"cut_short,omitempty"`
}

// EventType implementations.
func (CaptureEvent) EventType() string { return "capture" }
func (ExportEvent) EventType() string  { return "export" }

// Wire returns the store of decoded records (empty until capture starts).
// It is kept across capture restarts and never cleared.
func (l *Lab) Wire() *wire.Store { return l.store }

// Keys returns the TLS key log of the lab's own clients.
func (l *Lab) Keys() *wire.KeyLog { return l.keys }

// Capturing reports whether capture is on, and how.
func (l *Lab) Capturing() (bool, capture.Mode) {
	if c := l.captureSession().running(); c != nil {
		return true, c.Mode()
	}
	return false, capture.ModeOff
}

// CaptureStats returns the running capture's counters (while it stops, too),
// else the last stopped capture's (zero before any ran).
func (l *Lab) CaptureStats() capture.Stats {
	s := l.captureSession()
	s.mu.Lock()
	c, last := s.cur, s.last
	s.mu.Unlock()
	if c == nil {
		return last
	}
	return c.Stats()
}

// labPorts returns the server ports of the deployed apps (or the configured
// ones when nothing is deployed yet), each with its app.
func (l *Lab) labPorts() wire.PortMap {
	l.mu.Lock()
	defer l.mu.Unlock()
	ports := wire.PortMap{}
	for _, a := range l.cfg.Apps {
		ref := wire.AppRef{Name: a.Name, Protocol: a.Protocol}
		if st, ok := l.apps[a.Name]; ok && st.Endpoint != "" {
			if _, ps, err := net.SplitHostPort(st.Endpoint); err == nil {
				if n, err := strconv.Atoi(ps); err == nil {
					ports[uint16(n)] = ref
					continue
				}
			}
		}
		if a.Port != 0 {
			ports[uint16(a.Port)] = ref
		}
	}
	return ports
}

// openSource picks the best source: the provider's own, else live capture
// on lo (in a private namespace if that is where this process runs), else
// nothing (socket-level capture of the lab's own connections).
func (l *Lab) openSource(ctx context.Context, portMap wire.PortMap, ports []int) (capture.Source, capture.Mode, wire.PortMap, string, error) {
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

// StartCapture starts capturing the lab's traffic into the Wire store. It
// returns at once; opening the source runs in the background. Its outcome is
// one event: a CaptureEvent "on" (or "off", with the reason in Note, when
// capture mode "auto" finds no way to capture), or an ErrorEvent (op
// "capture"), whose error is the Job's. While a capture is starting, on or
// stopping, it fails at once (ErrCaptureStarting, ErrCaptureOn,
// ErrCaptureStopping) and opens nothing.
func (l *Lab) StartCapture(ctx context.Context) *Job {
	s := l.captureSession()
	s.mu.Lock()
	err := s.startableLocked()
	if err == nil {
		// Read under s.mu: a Teardown that begins after this check finds
		// the session starting, and its StopCapture cancels the start.
		l.mu.Lock()
		if l.state == TearingDown {
			err = errors.New("capture: the lab is tearing down: start capture once it is up again")
		}
		l.mu.Unlock()
	}
	if err != nil {
		l.emit(ErrorEvent{At: now(), Op: "capture", Error: err.Error()})
		s.mu.Unlock()
		return failedJob(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	s.state, s.cancel, s.opDone = captureStarting, cancel, done
	s.work.Add(1)
	s.mu.Unlock()

	j := newJob()
	go func() {
		defer s.work.Done()
		defer cancel()
		c, note, err := l.openCapture(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			err = fmt.Errorf("capture: cancelled while starting (capture was stopped, or the lab closed): %w", err)
		case err != nil:
			err = fmt.Errorf("capture: %w", err)
		}
		var st capture.Stats
		if c != nil {
			st = c.Stats()
		}
		s.mu.Lock()
		if c != nil && s.closed {
			// Still starting: nothing else changes the session meanwhile.
			s.mu.Unlock()
			c.Close()
			c, err = nil, fmt.Errorf("capture: %w (closed while capture was starting)", ErrLabClosed)
			s.mu.Lock()
		}
		var ev Event
		switch {
		case err != nil:
			s.state = captureOff
			ev = ErrorEvent{At: now(), Op: "capture", Error: err.Error()}
		case c == nil: // no way to capture, and mode "auto" does without
			s.state = captureOff
			err = errors.New(note)
			ev = CaptureEvent{At: now(), State: "off", Stats: capture.Stats{Mode: capture.ModeOff}, Note: note}
		default:
			s.state, s.cur = captureOn, c
			s.ran = append(s.ran, c)
			s.watchLocked(l, c)
			ev = CaptureEvent{At: now(), State: "on", Stats: st, Note: note}
		}
		s.cancel, s.opDone = nil, nil
		// Published under s.mu, so a StopCapture that follows reports "off"
		// after this; and the job ends before a StopCapture waiting for it.
		l.emit(ev)
		j.finish(err)
		close(done)
		s.mu.Unlock()
	}()
	return j
}

// openCapture opens the best source for the lab's ports and starts a
// capture on it into the lab's store. A nil capture with a nil error means
// there is no way to capture and the configuration does without (note says
// why). Its errors say what failed; the caller says it was capture.
func (l *Lab) openCapture(ctx context.Context) (*capture.Capture, string, error) {
	ports := l.labPorts()
	if len(ports) == 0 {
		return nil, "", errors.New("no app ports known yet: deploy first, or give fixed ports")
	}
	list := make([]int, 0, len(ports))
	for p := range ports {
		list = append(list, int(p))
	}
	sort.Ints(list)
	src, mode, seen, note, err := l.openSource(ctx, ports, list)
	if err != nil {
		return nil, "", err
	}
	closeSrc := func() {
		if src != nil {
			src.Close()
		}
	}
	if err := ctx.Err(); err != nil {
		closeSrc()
		return nil, "", err
	}
	if mode == capture.ModeOff {
		closeSrc()
		return nil, note, nil
	}
	if err := l.keepKeys(); err != nil {
		// The key log stays in memory (exports embed it): only the file
		// of the run is missing.
		if note != "" {
			note += "; "
		}
		note += err.Error() + ": the TLS keys are kept in memory only (exports still hold them)"
	}
	spool := filepath.Join(l.cfg.StateDir, "spool")
	l.spoolSwept.Do(func() {
		// Spools have no name now; named ones are an older version's,
		// left when its run was killed or forced out.
		if swept := capture.SweepSpool(spool).Note(spool); swept != "" {
			note = strings.TrimPrefix(note+"; "+swept, "; ")
		}
	})
	c, err := capture.Start(src, mode, capture.Options{
		Ports: seen, Keys: l.keys, Store: l.store, SpoolDir: spool,
	})
	if err != nil {
		closeSrc()
		return nil, "", err
	}
	if err := c.SpoolError(); err != nil {
		if note != "" {
			note += "; "
		}
		note += err.Error()
	}
	return c, note, nil
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
	PruneOld(dir, ".keys", keptKeyLogs-1, 0)
	path := filepath.Join(dir, fmt.Sprintf("%s-%s.keys", l.cfg.Name, time.Now().Format("20060102-150405.000")))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("TLS key log: %w", err)
	}
	l.keyFile = f
	return l.keys.SetSink(f)
}

// What the state directory keeps: the TLS key logs of the last
// keptKeyLogs runs, and in the default export folder (<state-dir>/captures)
// the newest keptCaptures exports, at most keptCaptureBytes in all (the
// newest one whatever its size).
const (
	keptKeyLogs      = 20
	keptCaptures     = 20
	keptCaptureBytes = 2 << 30
)

// PruneOld removes the oldest files ending in suffix from dir until at most
// keep remain (by modification time) and, when maxBytes is above 0, until
// they hold at most maxBytes in all — the newest file is never removed for
// its size. It returns how many files it removed.
func PruneOld(dir, suffix string, keep int, maxBytes int64) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	type file struct {
		path string
		mod  time.Time
		size int64
	}
	var files []file
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), suffix) {
			if info, err := e.Info(); err == nil {
				files = append(files, file{filepath.Join(dir, e.Name()), info.ModTime(), info.Size()})
			}
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod.After(files[j].mod) }) // newest first
	removed := 0
	var total int64
	for i, f := range files {
		total += f.size
		if i >= keep || i > 0 && maxBytes > 0 && total > maxBytes {
			if os.Remove(f.path) == nil {
				removed++
			}
		}
	}
	return removed
}

// SyncCapture waits until the capture has decoded everything sent so far
// (at once when capture is not on). Where the capture sees the probes'
// connections as the probes made them (socket level; this host's packets,
// the apps in this process or behind the engine's proxy on a published
// port), it waits for exactly their bytes and closes (capture.SyncConns);
// where it does not (a remote host's tcpdump, behind an SSH forward), for a
// quiet period — as it also does when the exact bytes have not come within
// exactSyncLimit (a packet lost before the decoder while traffic goes on).
func (l *Lab) SyncCapture(ctx context.Context) error {
	c := l.captureSession().running()
	if c == nil {
		return nil
	}
	l.mu.Lock()
	conns := l.unsynced
	l.unsynced = nil
	l.mu.Unlock()
	if len(conns) > 0 {
		ectx, cancel := context.WithTimeout(ctx, exactSyncLimit)
		err := c.SyncConns(ectx, conns, quietSync)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
	}
	return c.Sync(ctx, quietSync)
}

// exactSyncLimit bounds the wait for the probes' exact bytes; quietSync is
// the quiet that ends a sync where the capture cannot see them.
const (
	exactSyncLimit = 3 * time.Second
	quietSync      = 150 * time.Millisecond
)

// noteProbed remembers a probe's connection made while capture ran, for
// SyncCapture.
func (l *Lab) noteProbed(res probe.Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range res.Conns {
		cl, err1 := netip.ParseAddrPort(c.Client)
		sv, err2 := netip.ParseAddrPort(c.Server)
		if err1 != nil || err2 != nil {
			continue
		}
		l.unsynced = append(l.unsynced, capture.Conn{Client: netip.AddrPortFrom(cl.Addr().Unmap(), cl.Port()),
			Server: netip.AddrPortFrom(sv.Addr().Unmap(), sv.Port()), Sent: c.Sent, Recv: c.Recv})
	}
}

// StopCapture stops capturing. It returns at once; the stop (draining what
// was read, flushing open flows) runs in the background, and the Job ends
// when capture is off. Its outcome is one CaptureEvent "off" (with the
// capture's error in Note, which is then also the Job's). A start in
// progress is cancelled and waited for (it reports its own failure); a stop
// in progress is waited for; when capture is off already it does nothing.
// The records and the packets kept for export stay until the lab is closed.
func (l *Lab) StopCapture() *Job {
	s := l.captureSession()
	s.mu.Lock()
	if s.state == captureOff {
		s.mu.Unlock()
		return failedJob(nil)
	}
	stop := func() error { return s.stop(l) }
	if s.state == captureOn {
		c, done := s.beginStopLocked()
		stop = func() error { return s.finishStop(l, c, done) }
	}
	// After Close began, Close itself waits for the capture to stop.
	tracked := !s.closed
	if tracked {
		s.work.Add(1)
	}
	s.mu.Unlock()
	j := newJob()
	go func() {
		if tracked {
			defer s.work.Done()
		}
		j.finish(stop())
	}()
	return j
}

// DefaultExportPath is where Export("") writes now:
// <state dir>/captures/<lab>-<time>.pcapng.
func (l *Lab) DefaultExportPath() string {
	return filepath.Join(l.cfg.StateDir, "captures", fmt.Sprintf("%s-%s.pcapng", l.cfg.Name, time.Now().Format("20060102-150405.000")))
}

// Export writes every capture since the lab was created (the running one
// up to now, and the stopped ones, whose records the packet lists may still
// show) as one pcapng with the TLS key log embedded. It returns at once; the
// outcome is one ExportEvent (Error set, and the Job's error, on failure;
// Note saying what the file lacks, if anything). An empty path means
// <state dir>/captures/<lab>-<time>.pcapng. That folder (the default one,
// whatever the file's name) is created when missing and keeps the newest 20
// exports (2 GiB at most; older ones are removed, and the event says so).
// Any other path's folder must exist.
func (l *Lab) Export(path string) *Job { return l.export(path, "") }

// ExportCutShort is Export for a run that was interrupted: the file's
// section comment (what Wireshark shows as the capture comment) and the
// event's Note say it was cut short, and why.
func (l *Lab) ExportCutShort(path, why string) *Job {
	return l.export(path, fmt.Sprintf("cut short: %s at %s; the file holds the packets captured until then", why, time.Now().Format(time.RFC3339)))
}

func (l *Lab) export(path, cutShort string) *Job {
	captures := filepath.Join(l.cfg.StateDir, "captures")
	if path == "" {
		path = l.DefaultExportPath()
	}
	defaultDir := "" // set when the export goes to the state directory's folder
	if filepath.Dir(filepath.Clean(path)) == filepath.Clean(captures) {
		defaultDir = captures
	}
	s := l.captureSession()
	s.mu.Lock()
	closed := s.closed
	ran := append([]*capture.Capture(nil), s.ran...)
	if !closed && len(ran) > 0 {
		s.work.Add(1)
	}
	s.mu.Unlock()
	var err error
	switch {
	case closed:
		err = fmt.Errorf("export: %w: its captures are gone", ErrLabClosed)
	case len(ran) == 0:
		err = errors.New("export: nothing captured yet: start capture first")
	}
	if err != nil {
		l.emit(ExportEvent{At: now(), Path: path, Error: err.Error()})
		return failedJob(err)
	}
	j := newJob()
	go func() {
		defer s.work.Done()
		secrets := l.keys.Len()
		var err error
		if defaultDir != "" {
			if err = os.MkdirAll(defaultDir, 0o700); err != nil {
				err = fmt.Errorf("export: creating the captures folder: %w (%s is not writable: export elsewhere or make it writable; nothing captured is lost)", err, filepath.Dir(defaultDir))
			}
		}
		var res capture.ExportResult
		if err == nil {
			res, err = capture.ExportAllWith(path, l.keys, capture.ExportOptions{Comment: cutShort}, ran...)
		}
		ev := ExportEvent{At: now(), Path: path, Packets: res.Packets, Secrets: secrets, CutShort: cutShort != ""}
		if err != nil {
			ev.Error = err.Error()
		} else {
			notes := []string{cutShort, res.Note()}
			if defaultDir != "" {
				if n := PruneOld(defaultDir, ".pcapng", keptCaptures, keptCaptureBytes); n > 0 {
					notes = append(notes, fmt.Sprintf("removed the %d oldest exports of %s: it keeps the newest %d, %d GiB at most", n, defaultDir, keptCaptures, keptCaptureBytes>>30))
				}
			}
			ev.Note = strings.Join(slices.DeleteFunc(notes, func(s string) bool { return s == "" }), "; ")
		}
		l.emit(ev)
		j.finish(err)
	}()
	return j
}

// Close stops capture, waits for the capture commands in flight and removes
// what capture kept on disk (the spools; not the key log, which is the run's
// record), then closes the key log file. Call it after Teardown. Capture
// commands after Close fail with ErrLabClosed.
func (l *Lab) Close() error {
	s := l.captureSession()
	s.mu.Lock()
	s.closed = true
	if s.cancel != nil {
		s.cancel() // a start or a restart in progress
	}
	s.mu.Unlock()
	s.closeWatchers()
	_ = s.stop(l) // its event says how it went
	s.work.Wait()
	s.release()
	l.scraper().CloseIdleConnections() // the explorer's kept-alive scrapes
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keyFile != nil {
		err := l.keyFile.Close()
		l.keyFile = nil
		if err != nil {
			return fmt.Errorf("closing the TLS key log: %w", err)
		}
	}
	return nil
}

// tapDial returns a dialer that feeds the app's connection to socket-level
// capture, or nil when capture is not socket-level.
func (l *Lab) tapDial(a App) func(ctx context.Context, network, addr string) (net.Conn, error) {
	c := l.captureSession().running()
	if c == nil || c.Mode() != capture.ModeSocket {
		return nil
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return c.Tap(wire.AppRef{Name: a.Name, Protocol: a.Protocol}, conn), nil
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

// Packet returns the whole packet a packet record stands for — its bytes as
// captured, found in the spool of the capture that took it by its time and
// its length on the wire (wire.Record's Time and Len) — and the link type
// they start with: what the explorer's detail shows in hex, while records
// keep only the first bytes of their payload. capture.ErrNoPacket when no
// spool holds it (a socket-level capture keeps none; a full spool drops).
func (l *Lab) Packet(at time.Time, length int) ([]byte, layers.LinkType, error) {
	s := l.captureSession()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, 0, fmt.Errorf("packet: %w: its captures are gone", ErrLabClosed)
	}
	ran := slices.Clone(s.ran)
	s.work.Add(1) // Close waits: the spools stay open while read
	s.mu.Unlock()
	defer s.work.Done()
	for i := len(ran) - 1; i >= 0; i-- {
		if ran[i].Started().After(at) {
			continue
		}
		data, lt, err := ran[i].Packet(at, length)
		if err == nil || !errors.Is(err, capture.ErrNoPacket) {
			return data, lt, err
		}
	}
	return nil, 0, capture.ErrNoPacket
}
