package lab_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
)

// upAndDeployed brings a lab up with its apps running.
func upAndDeployed(t *testing.T, l *lab.Lab) {
	t.Helper()
	ctx := context.Background()
	for _, j := range []func(context.Context) *lab.Job{l.Up, l.Deploy} {
		if err := wait(t, j(ctx)); err != nil {
			t.Fatal(err)
		}
	}
}

// syncCapture waits (bounded) until the capture has decoded everything.
func syncCapture(t *testing.T, l *lab.Lab) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.SyncCapture(ctx); err != nil {
		t.Fatal(err)
	}
}

// wirePackets sums the store's packet counters over the lab's apps, and
// counts the packet records its lists hold.
func wirePackets(l *lab.Lab) (counted uint64, listed int) {
	for _, a := range l.Config().Apps {
		counted += l.Wire().Counters(a.Name).Packets
		for _, r := range l.Wire().All(a.Name) {
			if r.Kind == wire.KindPacket {
				listed++
			}
		}
	}
	return counted, listed
}

// captureEvents keeps the capture, export and error events.
func captureEvents(events []lab.Event) []lab.Event {
	var out []lab.Event
	for _, e := range events {
		switch e.(type) {
		case lab.CaptureEvent, lab.ExportEvent, lab.ErrorEvent:
			out = append(out, e)
		}
	}
	return out
}

// outcomes describes capture, export and error events, in order.
func outcomes(events []lab.Event) string {
	var out []string
	for _, e := range events {
		switch e := e.(type) {
		case lab.CaptureEvent:
			out = append(out, "capture "+e.State)
		case lab.ExportEvent:
			out = append(out, "export "+e.Error)
		case lab.ErrorEvent:
			out = append(out, "error "+e.Error)
		}
	}
	return strings.Join(out, "; ")
}

// openSpools lists this process's open files in the spool folder (spools
// have no name: /proc shows them as "<dir>/#<inode> (deleted)").
func openSpools(t *testing.T, dir string) []string {
	t.Helper()
	fds, err := filepath.Glob("/proc/self/fd/*")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, fd := range fds {
		if target, err := os.Readlink(fd); err == nil && strings.HasPrefix(target, dir+"/") {
			out = append(out, target)
		}
	}
	return out
}

func TestStartCaptureTwiceRunsOneCapture(t *testing.T) {
	testenv.NeedRoot(t)
	state := t.TempDir()
	l := newLab(t, lab.Config{StateDir: state, Capture: lab.CaptureConfig{Mode: "on"}})
	upAndDeployed(t, l)
	rec := record(l)
	ctx := context.Background()

	// As a key pressed twice: the second start comes before the first has
	// opened anything.
	first, second := l.StartCapture(ctx), l.StartCapture(ctx)
	if err := wait(t, first); err != nil {
		t.Fatal(err)
	}
	err := wait(t, second)
	if !errors.Is(err, lab.ErrCaptureStarting) && !errors.Is(err, lab.ErrCaptureOn) {
		t.Fatalf("second start: %v, want %q or %q", err, lab.ErrCaptureStarting, lab.ErrCaptureOn)
	}
	if on, mode := l.Capturing(); !on || mode != capture.ModeLive {
		t.Fatalf("capturing %v %s", on, mode)
	}
	if spools := openSpools(t, filepath.Join(state, "spool")); len(spools) != 1 {
		t.Errorf("open spool files %v, want one: one capture runs", spools)
	}
	if named, _ := filepath.Glob(filepath.Join(state, "spool", "*")); len(named) != 0 {
		t.Errorf("spool files with names %v: spools have none, so none outlives its run", named)
	}
	if err := wait(t, l.Probe(ctx)); err != nil {
		t.Fatal(err)
	}
	syncCapture(t, l)
	if err := wait(t, l.StopCapture()); err != nil {
		t.Fatal(err)
	}
	st := l.CaptureStats()
	counted, _ := wirePackets(l)
	// Ignored: other traffic a live source lets through before its filter
	// is set; it is not the lab's.
	if mine := st.Packets - st.Ignored - st.Undecodable; mine == 0 || mine != counted {
		t.Errorf("the capture read %d packets of the lab's (%+v), the store counted %d: want the same, non-zero", mine, st, counted)
	}
	for _, a := range l.Config().Apps {
		if n := l.Wire().Counters(a.Name).Messages; n != 2*20+2 {
			t.Errorf("%s: %d messages on the wire, want %d (each counted once)", a.Name, n, 2*20+2)
		}
	}

	events := captureEvents(rec.finish())
	var ons, offs, errs int
	for _, e := range events {
		switch e := e.(type) {
		case lab.CaptureEvent:
			if e.State == "on" {
				ons++
			} else {
				offs++
			}
		case lab.ErrorEvent:
			errs++
			if e.Op != "capture" || e.Error != err.Error() {
				t.Errorf("error event %+v, want op capture and the job's error %q", e, err)
			}
		default:
			t.Errorf("unexpected event %+v", e)
		}
	}
	if ons != 1 || offs != 1 || errs != 1 {
		t.Errorf("%d on, %d off, %d error events; want 1, 1, 1: %+v", ons, offs, errs, events)
	}
}

func TestExportHoldsEveryCapture(t *testing.T) {
	testenv.NeedRoot(t)
	l := newLab(t, lab.Config{Capture: lab.CaptureConfig{Mode: "on"}})
	defer l.Close()
	upAndDeployed(t, l)
	rec := record(l)
	ctx := context.Background()

	// First capture: on, probe, off.
	if err := wait(t, l.StartCapture(ctx)); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, l.Probe(ctx)); err != nil {
		t.Fatal(err)
	}
	syncCapture(t, l)
	if err := wait(t, l.StopCapture()); err != nil {
		t.Fatal(err)
	}
	first := l.CaptureStats()
	firstCounted, _ := wirePackets(l)
	// Second capture: on again, probe, export while it runs.
	if err := wait(t, l.StartCapture(ctx)); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, l.Probe(ctx, "ws", "https")); err != nil {
		t.Fatal(err)
	}
	syncCapture(t, l)
	running := filepath.Join(t.TempDir(), "running.pcapng")
	if err := wait(t, l.Export(running)); err != nil {
		t.Fatal(err)
	}
	perIntf, secrets := readPcapng(t, running)
	if len(perIntf) != 2 || uint64(perIntf[0]) != firstCounted || firstCounted == 0 || perIntf[1] == 0 {
		t.Fatalf("exported while capturing: %v packets per interface, want one interface per capture, the first with its %d packets", perIntf, firstCounted)
	}
	if secrets == 0 {
		t.Error("the file has no TLS secrets")
	}

	// Once capture is off, nothing is in flight: the file holds exactly
	// what the store counted and the lists show.
	if err := wait(t, l.StopCapture()); err != nil {
		t.Fatal(err)
	}
	second := l.CaptureStats()
	counted, listed := wirePackets(l)
	file := filepath.Join(t.TempDir(), "both.pcapng")
	if err := wait(t, l.Export(file)); err != nil {
		t.Fatal(err)
	}
	perIntf, _ = readPcapng(t, file)
	if len(perIntf) != 2 || uint64(perIntf[0]) != firstCounted || uint64(perIntf[1]) != counted-firstCounted || counted == firstCounted {
		t.Fatalf("the file holds %v packets per interface; the store counted %d in the first capture, %d in the second", perIntf, firstCounted, counted-firstCounted)
	}
	for i, st := range []capture.Stats{first, second} {
		if uint64(perIntf[i]) != st.Packets-st.Ignored {
			t.Errorf("capture %d: %d packets in the file, %d read of which %d not the lab's", i+1, perIntf[i], st.Packets, st.Ignored)
		}
	}
	total := perIntf[0] + perIntf[1]
	if uint64(total) != counted || total != listed {
		t.Errorf("the file holds %d packets; the store counted %d and lists %d", total, counted, listed)
	}
	// The lab's own reader takes the file back whole.
	f, err := capture.OpenFile(file, wire.NewKeyLog(nil))
	if err != nil {
		t.Fatal(err)
	}
	var read int
	for {
		if _, _, err := f.ReadPacketData(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Errorf("reading the export back: %v", err)
			}
			break
		}
		read++
	}
	f.Close()
	if read != total {
		t.Errorf("capture.OpenFile reads %d packets of %d", read, total)
	}
	// tshark, when there is one, agrees.
	if tshark, err := exec.LookPath("tshark"); err == nil {
		out, err := exec.Command(tshark, "-r", file, "-n", "-T", "fields", "-e", "frame.interface_id").Output()
		if err != nil {
			t.Fatalf("tshark: %v", err)
		}
		seen := make([]int, 2)
		for _, id := range strings.Fields(string(out)) {
			if i, err := strconv.Atoi(id); err == nil && i >= 0 && i < len(seen) {
				seen[i]++
			}
		}
		if seen[0] != perIntf[0] || seen[1] != perIntf[1] {
			t.Errorf("tshark reads %v packets per interface, want %v", seen, perIntf)
		}
	}

	var exports []lab.ExportEvent
	for _, e := range captureEvents(rec.finish()) {
		switch e := e.(type) {
		case lab.ExportEvent:
			exports = append(exports, e)
		case lab.ErrorEvent:
			t.Errorf("error event %+v", e)
		}
	}
	if len(exports) != 2 || exports[1].Error != "" || exports[1].Note != "" || exports[1].Packets != total || exports[1].Path != file {
		t.Errorf("export events %+v, want two, the second of %d packets to %s, with nothing left out", exports, total, file)
	}
}

// readPcapng counts a pcapng file's packets per interface and its TLS
// secrets.
func readPcapng(t *testing.T, file string) (perIntf []int, secrets int) {
	t.Helper()
	in, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	r, err := pcapgo.NewNgReader(bufio.NewReader(in), pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, ci, err := r.ReadPacketData()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("reading %s: %v", file, err)
			}
			break
		}
		for len(perIntf) <= ci.InterfaceIndex {
			perIntf = append(perIntf, 0)
		}
		perIntf[ci.InterfaceIndex]++
	}
	for len(perIntf) < r.NInterfaces() {
		perIntf = append(perIntf, 0)
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	keys := wire.NewKeyLog(nil)
	if err := capture.LoadSecrets(in, keys); err != nil {
		t.Fatal(err)
	}
	return perIntf, keys.Len()
}

func TestEachCaptureFailureIsOneEvent(t *testing.T) {
	l := newLab(t, lab.Config{})
	rec := record(l)
	ctx := context.Background()

	file := filepath.Join(t.TempDir(), "nothing.pcapng")
	exportErr := wait(t, l.Export(file))
	if exportErr == nil || !strings.Contains(exportErr.Error(), "nothing captured yet") {
		t.Errorf("export with nothing captured: %v", exportErr)
	}
	if _, err := os.Stat(file); err == nil {
		t.Error("a failed export wrote its file")
	}
	startErr := wait(t, l.StartCapture(ctx)) // down: no app port known
	if startErr == nil || !strings.Contains(startErr.Error(), "no app ports known") {
		t.Errorf("start while down: %v", startErr)
	}
	if err := wait(t, l.StopCapture()); err != nil {
		t.Errorf("stop while off: %v", err)
	}

	events := rec.finish()
	if len(events) != 2 {
		t.Fatalf("events %+v, want one per failed command (and none for a stop that had nothing to stop)", events)
	}
	if e, ok := events[0].(lab.ExportEvent); !ok || e.Error != exportErr.Error() || e.Path != file {
		t.Errorf("export's event %+v, want an ExportEvent with the job's error %q", events[0], exportErr)
	}
	if e, ok := events[1].(lab.ErrorEvent); !ok || e.Op != "capture" || e.Error != startErr.Error() {
		t.Errorf("start's event %+v, want an ErrorEvent with the job's error %q", events[1], startErr)
	}
}

func TestStopAndCloseWaitForAStartInProgress(t *testing.T) {
	// Mode "on" captures without privileges too (socket-level), so this
	// runs everywhere.
	state := t.TempDir()
	l := newLab(t, lab.Config{StateDir: state, Capture: lab.CaptureConfig{Mode: "on"}})
	upAndDeployed(t, l)
	rec := record(l)
	ctx := context.Background()

	start := l.StartCapture(ctx)
	if err := wait(t, l.StopCapture()); err != nil {
		t.Errorf("stop during start: %v", err)
	}
	select {
	case <-start.Done():
	default:
		t.Fatal("StopCapture ended before the start it stopped")
	}
	if on, _ := l.Capturing(); on {
		t.Error("capture is on after StopCapture")
	}
	// The start either made it (then the stop turned it off) or was
	// cancelled: one event each way.
	got := outcomes(captureEvents(rec.finish()))
	if err := start.Err(); err == nil {
		if got != "capture on; capture off" {
			t.Errorf("start then stop: events %q, want on, off", got)
		}
	} else if want := "error " + err.Error(); got != want {
		t.Errorf("cancelled start: events %q, want one error event with the job's error %q", got, want)
	}

	again := l.StartCapture(ctx)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-again.Done():
	default:
		t.Fatal("Close returned before the start in progress ended")
	}
	if on, _ := l.Capturing(); on {
		t.Error("capture is on after Close")
	}
	if spools := openSpools(t, filepath.Join(state, "spool")); len(spools) != 0 {
		t.Errorf("spool files still open after Close: %v", spools)
	}
	if err := wait(t, l.StartCapture(ctx)); !errors.Is(err, lab.ErrLabClosed) {
		t.Errorf("start after Close: %v, want %q", err, lab.ErrLabClosed)
	}
	if err := wait(t, l.Export("")); !errors.Is(err, lab.ErrLabClosed) {
		t.Errorf("export after Close: %v, want %q", err, lab.ErrLabClosed)
	}
}

func TestTeardownStopsCaptureFirst(t *testing.T) {
	l := newLab(t, lab.Config{Capture: lab.CaptureConfig{Mode: "on"}})
	defer l.Close()
	upAndDeployed(t, l)
	ctx := context.Background()
	if err := wait(t, l.StartCapture(ctx)); err != nil {
		t.Fatal(err)
	}
	rec := record(l)
	if err := wait(t, l.Teardown(ctx)); err != nil {
		t.Fatal(err)
	}
	if on, _ := l.Capturing(); on {
		t.Error("capture is on after teardown")
	}
	var order []string
	for _, e := range rec.finish() {
		switch e := e.(type) {
		case lab.CaptureEvent:
			order = append(order, "capture "+e.State)
		case lab.StateEvent:
			order = append(order, string(e.To))
		}
	}
	if got := strings.Join(order, ", "); got != "tearing_down, capture off, down" {
		t.Errorf("events %q, want capture off between tearing_down and down", got)
	}
}

// TestExportSaysWhatItLeavesOut exports a socket-level capture (which keeps
// no packets) alone, and beside a live one when the test may capture.
func TestExportSaysWhatItLeavesOut(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	port := echo.Addr().(*net.TCPAddr).Port
	app := wire.AppRef{Name: "plain", Protocol: protocol.HTTP}
	ports := wire.PortMap{uint16(port): app}
	store := wire.NewStore(0)

	sock, err := capture.Start(nil, capture.ModeSocket, capture.Options{Ports: ports, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	conn, err := net.Dial("tcp", echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tapped := sock.Tap(app, conn)
	req := "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	if _, err := io.WriteString(tapped, req); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(tapped, make([]byte, len(req))); err != nil {
		t.Fatal(err)
	}
	tapped.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sock.Sync(ctx, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	sock.Stop()
	records := store.Counters(app.Name).Packets
	if records == 0 {
		t.Fatal("socket-level capture recorded nothing")
	}
	want := "the socket-level capture of " + sock.Started().Format("15:04:05") + " kept no packets: its " +
		strconv.FormatUint(records, 10) + " packet records (socket reads and writes) are not in the file"

	file := filepath.Join(t.TempDir(), "x.pcapng")
	_, err = capture.ExportAll(file, nil, sock)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "CAP_NET_RAW") {
		t.Errorf("export of a socket-level capture: %v, want it to say %q and what to do", err, want)
	}
	if _, err := os.Stat(file); err == nil {
		t.Error("an export with no packets wrote its file")
	}

	if os.Geteuid() != 0 {
		t.Log("not root: the live half of this test is skipped")
		return
	}
	src, err := capture.OpenLive("lo", []int{port})
	if err != nil {
		t.Fatal(err)
	}
	live, err := capture.Start(src, capture.ModeLive, capture.Options{Ports: ports, Store: store, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	conn, err = net.Dial("tcp", echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := live.Sync(ctx, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	live.Stop()
	res, err := capture.ExportAll(file, wire.NewKeyLog(nil), sock, live)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(res.Packets) != live.Stats().Packets || res.Packets == 0 || res.Interfaces != 1 {
		t.Errorf("exported %+v, want the live capture's %d packets on one interface", res, live.Stats().Packets)
	}
	if len(res.LeftOut) != 1 || res.LeftOut[0] != want {
		t.Errorf("left out %q, want %q", res.LeftOut, want)
	}
}

// After a probe under live capture, the sync waits for exactly the probes'
// connections (every byte each way, both closes), and the records then hold
// every message the probes exchanged.
func TestSyncCaptureWaitsForTheProbesBytes(t *testing.T) {
	testenv.NeedRoot(t)
	l := newLab(t, lab.Config{StateDir: t.TempDir(), Capture: lab.CaptureConfig{Mode: "on"}})
	upAndDeployed(t, l)
	ctx := context.Background()
	if err := wait(t, l.StartCapture(ctx)); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, l.Probe(ctx)); err != nil {
		t.Fatal(err)
	}
	syncCapture(t, l)
	rep := l.Report()
	if got := l.CaptureStats().Sync; got != "exact (4 connections)" {
		t.Errorf("sync %q, want exact for the four probe connections", got)
	}
	for _, a := range rep.Rows() {
		if len(a.Conns) != 1 || a.Client != "worker" {
			t.Fatalf("%s: client %q, connections %+v", a.App, a.Client, a.Conns)
		}
		// every echo round trip is two messages, plus the setup's
		if w := a.Wire; w == nil || w.Messages < uint64(2*a.Messages) {
			t.Errorf("%s: %+v on the wire right after the sync, want at least %d messages", a.App, a.Wire, 2*a.Messages)
		}
	}
}
