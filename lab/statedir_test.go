package lab_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/capture"
)

// TestStateDirIsBounded: a stale named spool is swept (the capture event
// says so), the default export folder is created and keeps the newest 20
// exports, an export elsewhere needs its folder, and a cut-short export
// says so in the file and the event.
func TestStateDirIsBounded(t *testing.T) {
	testenv.NeedRoot(t) // live capture: exports need packets
	state := t.TempDir()
	spool := filepath.Join(state, "spool")
	if err := os.MkdirAll(spool, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(spool, "capture-123.pcap"), make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	captures := filepath.Join(state, "captures")
	l := newLab(t, lab.Config{StateDir: state, Capture: lab.CaptureConfig{Mode: "on"}})
	rec := record(l)
	upAndDeployed(t, l)
	ctx := context.Background()
	if err := wait(t, l.StartCapture(ctx)); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, l.Probe(ctx)); err != nil {
		t.Fatal(err)
	}
	syncCapture(t, l)

	// 21 old exports of their own; the next one in the folder leaves 20.
	if err := os.MkdirAll(captures, 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for i := range 21 {
		f := filepath.Join(captures, fmt.Sprintf("old-%02d.pcapng", i))
		os.WriteFile(f, []byte("x"), 0o600)
		os.Chtimes(f, old.Add(time.Duration(i)*time.Second), old.Add(time.Duration(i)*time.Second))
	}
	if err := wait(t, l.Export("")); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(captures, "*.pcapng"))
	if len(left) != 20 {
		t.Errorf("%d exports in %s, want 20", len(left), captures)
	}
	for _, gone := range []string{"old-00", "old-01"} {
		if _, err := os.Stat(filepath.Join(captures, gone+".pcapng")); err == nil {
			t.Errorf("%s was kept: it is among the oldest", gone)
		}
	}

	missing := filepath.Join(t.TempDir(), "missing", "lab.pcapng")
	if err := wait(t, l.Export(missing)); err == nil || !strings.Contains(err.Error(), "is not there") {
		t.Errorf("export into a missing folder: %v", err)
	}
	cut := filepath.Join(t.TempDir(), "cut.pcapng")
	if err := wait(t, l.ExportCutShort(cut, "interrupted (SIGINT)")); err != nil {
		t.Fatal(err)
	}
	f, err := capture.OpenFile(cut, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !strings.HasPrefix(f.Comment(), "cut short: interrupted (SIGINT) at ") {
		t.Errorf("section comment %q", f.Comment())
	}

	var sweptNote, pruneNote, cutNote bool
	for _, e := range rec.finish() {
		switch e := e.(type) {
		case lab.CaptureEvent:
			sweptNote = sweptNote || e.State == "on" && strings.Contains(e.Note, "removed 1 spool file(s)")
		case lab.ExportEvent:
			pruneNote = pruneNote || strings.Contains(e.Note, "removed the 2 oldest exports of "+captures)
			cutNote = cutNote || e.CutShort && e.Path == cut && strings.Contains(e.Note, "cut short: interrupted (SIGINT)")
		}
	}
	if !sweptNote || !pruneNote || !cutNote {
		t.Errorf("notes: swept %v, pruned %v, cut short %v", sweptNote, pruneNote, cutNote)
	}
	if named, _ := filepath.Glob(filepath.Join(spool, "*")); len(named) != 0 {
		t.Errorf("spool folder holds %v", named)
	}
}

func TestPruneOldBySize(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().Add(-time.Hour)
	for i, size := range []int{100, 100, 100, 500} { // the newest is the largest
		f := filepath.Join(dir, fmt.Sprintf("c-%d.pcapng", i))
		os.WriteFile(f, make([]byte, size), 0o600)
		os.Chtimes(f, base.Add(time.Duration(i)*time.Minute), base.Add(time.Duration(i)*time.Minute))
	}
	if n := lab.PruneOld(dir, ".pcapng", 10, 650); n != 2 {
		t.Errorf("removed %d, want 2", n)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(left) != 2 || filepath.Base(left[0]) != "c-2.pcapng" || filepath.Base(left[1]) != "c-3.pcapng" {
		t.Errorf("left %v", left)
	}
	// The newest stays, however large.
	if n := lab.PruneOld(dir, ".pcapng", 10, 1); n != 1 {
		t.Errorf("removed %d, want 1", n)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 1 || filepath.Base(left[0]) != "c-3.pcapng" {
		t.Errorf("left %v, want the newest", left)
	}
}
