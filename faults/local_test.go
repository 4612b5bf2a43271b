package faults_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/headless"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/providers/local"
	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
)

// localLab is an embedded lab of the seed's apps on free ports, capturing.
func localLab(t *testing.T, state string) *lab.Lab {
	t.Helper()
	l, err := lab.New(lab.Config{Name: labName("local"), StateDir: state, Apps: lab.OnFreePorts(lab.SeedApps()),
		Probe: probe.Options{Count: 10}, Capture: lab.CaptureConfig{Mode: "on"}}, local.New)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = l.Teardown(ctx).Wait(ctx)
		_ = l.Close()
	})
	return l
}

// up brings a lab up, deploys, starts capture and probes once.
func up(t *testing.T, l *lab.Lab) {
	t.Helper()
	ctx := context.Background()
	do(t, l.Up(ctx))
	do(t, l.Deploy(ctx))
	do(t, l.StartCapture(ctx))
	do(t, l.Probe(ctx))
	syncCapture(t, l)
}

func exportErr(e lab.Event) bool { x, ok := e.(lab.ExportEvent); return ok && x.Error != "" }

func TestStateDirMadeReadOnly(t *testing.T) {
	testenv.NeedRoot(t)
	state := t.TempDir()
	l := localLab(t, state)
	ev := watch(t, l)
	up(t, l)
	before := keptOf(t, l, "ws")

	// Read-only from now on: a read-only bind mount over the directory
	// (files the lab holds open keep working, as they would).
	mountOrSkip(t, "mount", "--bind", state, state)
	t.Cleanup(func() { _ = exec.Command("umount", state).Run() })
	run(t, "mount", "-o", "remount,bind,ro", state)

	// An export into the state directory fails at once, saying why.
	from := ev.mark()
	_ = l.Export("")
	e := ev.await(t, from, shown, "export error", exportErr).(lab.ExportEvent)
	if !strings.Contains(e.Error, "not writable") || !strings.Contains(e.Error, "nothing captured is lost") {
		t.Errorf("export error %q does not say the directory is not writable and nothing is lost", e.Error)
	}

	// A capture started now has no spool: it decodes on and says that
	// its packets are not kept for export.
	do(t, l.StopCapture())
	from = ev.mark()
	do(t, l.StartCapture(context.Background()))
	ev.await(t, from, shown, `capture "on" noting the missing spool`, captureState("on", "not kept for export"))
	do(t, l.Probe(context.Background()))
	syncCapture(t, l)
	stillKept(t, l, "ws", before)

	// Elsewhere, the export holds every packet the first capture kept and
	// says what the second could not.
	out := filepath.Join(t.TempDir(), "elsewhere.pcapng")
	from = ev.mark()
	do(t, l.Export(out))
	x := ev.await(t, from, shown, "export", func(e lab.Event) bool { _, ok := e.(lab.ExportEvent); return ok }).(lab.ExportEvent)
	if x.Packets == 0 || packetsIn(t, out) != x.Packets || !strings.Contains(x.Note, "kept none of its") {
		t.Errorf("export elsewhere: %+v (file holds %d)", x, packetsIn(t, out))
	}

	// Writable again: the state directory takes the export.
	run(t, "umount", state)
	do(t, l.Export(""))
}

func TestPcapDiskFull(t *testing.T) {
	testenv.NeedRoot(t)
	disk := t.TempDir()
	mountOrSkip(t, "mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", disk)
	t.Cleanup(func() { _ = exec.Command("umount", disk).Run() })
	// Nearly full: a capture of the seed's probes does not fit.
	if err := os.WriteFile(filepath.Join(disk, "filler"), bytes.Repeat([]byte{1}, 1016<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	l := localLab(t, state)
	ev := watch(t, l)
	pcap := filepath.Join(disk, "lab.pcapng")
	var out bytes.Buffer
	rep, err := headless.Run(context.Background(), l, headless.Options{Out: &out, Pcap: pcap})
	if err == nil || !strings.Contains(err.Error(), "no space left") || !strings.Contains(err.Error(), "saved in") {
		t.Fatalf("headless with --pcap on a full disk: %v, want the disk-full error and where the capture went", err)
	}
	e := ev.await(t, 0, shown, "export error", exportErr).(lab.ExportEvent)
	if !strings.Contains(e.Error, "is full") || e.Packets != 0 {
		t.Errorf("export event %+v: want the disk named full and no packets claimed", e)
	}
	// No partial file is left on the full disk.
	left, _ := filepath.Glob(filepath.Join(disk, "*lab.pcapng*"))
	if len(left) != 0 {
		t.Errorf("left on the full disk: %v", left)
	}
	// Nothing captured is lost: it is in the state directory, whole.
	saved, _ := filepath.Glob(filepath.Join(state, "captures", "*.pcapng"))
	if len(saved) != 1 {
		t.Fatalf("saved captures: %v (output:\n%s)", saved, out.String())
	}
	want := uint64(0)
	for _, a := range rep.Rows() {
		if a.Wire != nil {
			want += a.Wire.Packets
		}
	}
	if n := packetsIn(t, saved[0]); uint64(n) != want || n == 0 {
		t.Errorf("the saved capture holds %d packets; the lab counted %d", n, want)
	}
}

// TestLoopbackDownInANamespace takes down the interface the lab's
// AF_PACKET socket captures on — lo, inside a network namespace of its own
// (the test runs itself again under unshare --net) — then brings it back.
func TestLoopbackDownInANamespace(t *testing.T) {
	if os.Getenv("PROTOLAB_FAULT_NETNS") != "1" {
		testenv.NeedRoot(t)
		unshare := testenv.NeedCommand(t, "unshare")
		testenv.NeedCommand(t, "ip")
		cmd := exec.Command(unshare, "--net", "--", os.Args[0], "-test.run=^TestLoopbackDownInANamespace$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "PROTOLAB_FAULT_NETNS=1")
		out, err := cmd.CombinedOutput()
		t.Logf("in the namespace:\n%s", out)
		if err != nil {
			t.Fatalf("the test in a network namespace failed: %v", err)
		}
		if !strings.Contains(string(out), "--- PASS: TestLoopbackDownInANamespace") {
			t.Fatal("the test did not run in the namespace")
		}
		return
	}
	run(t, "ip", "link", "set", "lo", "up")
	l := localLab(t, t.TempDir())
	ev := watch(t, l)
	up(t, l)
	before := keptOf(t, l, "wss")

	from := ev.mark()
	run(t, "ip", "link", "set", "lo", "down")
	lost := ev.await(t, from, shown, `capture "lost"`, captureState("lost", "interface lo is down")).(lab.CaptureEvent)
	t.Logf("%s", lost.Note)
	ev.await(t, from, 5*time.Second, "the restart's failure", logged("capture", "interface lo is down"))
	if on, _ := l.Capturing(); on {
		t.Error("capturing while lo is down")
	}

	from = ev.mark()
	run(t, "ip", "link", "set", "lo", "up")
	ev.await(t, from, 5*time.Second, `capture "on" again`, captureState("on", "restarted"))
	do(t, l.Probe(context.Background()))
	syncCapture(t, l)
	stillKept(t, l, "wss", before)
	out := filepath.Join(t.TempDir(), "both.pcapng")
	do(t, l.Export(out))
	if n := packetsIn(t, out); uint64(n) < l.Wire().Counters("wss").Packets {
		t.Errorf("the export holds %d packets, fewer than wss alone counted", n)
	}

	// Stopped while it restarts, capture is off — and stays so.
	from = ev.mark()
	run(t, "ip", "link", "set", "lo", "down")
	ev.await(t, from, shown, `capture "lost"`, captureState("lost", "interface lo is down"))
	do(t, l.StopCapture())
	ev.await(t, from, shown, `capture "off"`, captureState("off", "stopped while it was restarting"))
	run(t, "ip", "link", "set", "lo", "up")
	from = ev.mark()
	do(t, l.StartCapture(context.Background()))
	ev.await(t, from, shown, `capture "on"`, captureState("on", ""))
	if err := l.StartCapture(context.Background()).Err(); !errors.Is(err, lab.ErrCaptureOn) {
		t.Errorf("a second start: %v, want ErrCaptureOn (one capture at a time)", err)
	}
}

// tcpdumpProvider is the embedded lab captured by a local tcpdump's pcap
// stream (as a remote lab host is, without the SSH link).
type tcpdumpProvider struct{ lab.Provider }

func (p tcpdumpProvider) OpenCapture(ctx context.Context, ports wire.PortMap) (capture.Source, capture.Mode, wire.PortMap, error) {
	var list []int
	for port := range ports {
		list = append(list, int(port))
	}
	src, err := capture.OpenStream(ctx, lab.CaptureRunner(lab.LocalRunner{}), capture.TcpdumpArgs("lo", list), "tcpdump on lo")
	return src, capture.ModeStream, ports, err
}

func TestTcpdumpKilledLocally(t *testing.T) {
	testenv.NeedRoot(t)
	testenv.NeedCommand(t, "tcpdump")
	l, err := lab.New(lab.Config{Name: labName("tcpdump"), StateDir: t.TempDir(), Apps: lab.OnFreePorts([]lab.App{{Name: "ws", Protocol: protocol.WS}}),
		Probe: probe.Options{Count: 10}, Capture: lab.CaptureConfig{Mode: "on"}},
		func(env lab.Env) (lab.Provider, error) { p, err := local.New(env); return tcpdumpProvider{p}, err })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = l.Teardown(ctx).Wait(ctx)
		_ = l.Close()
	})
	ev := watch(t, l)
	up(t, l)
	before := keptOf(t, l, "ws")
	port := wsPort(t, l)
	from := ev.mark()
	killTcpdump(t, port)
	e := ev.await(t, from, shown, `capture "lost"`, captureState("lost", "tcpdump")).(lab.CaptureEvent)
	t.Logf("%s", e.Note)
	ev.await(t, from, 5*time.Second, `capture "on" again`, captureState("on", "restarted"))
	do(t, l.Probe(context.Background()))
	syncCapture(t, l)
	stillKept(t, l, "ws", before)
}
