package capture

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
)

// tcpFile writes a pcap of n TCP packets from a client to port 3000.
func tcpFile(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(SnapLen, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{0, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{0, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IPv4(127, 0, 0, 1), DstIP: net.IPv4(127, 0, 0, 1)}
		tcp := &layers.TCP{SrcPort: 40000, DstPort: 3000, Seq: uint32(1000 + i), ACK: true, PSH: true, Window: 1024}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload("x")); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(int64(i+1), 0), CaptureLength: len(b), Length: len(b)}, b); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// spooled runs the file through a capture that spools into dir.
func spooled(t *testing.T, dir string, n int) *Capture {
	t.Helper()
	src, err := OpenFile(tcpFile(t, n), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(src, ModeFile, Options{Ports: wire.SeedPorts(map[uint16]protocol.Protocol{3000: protocol.HTTP}), SpoolDir: dir, Block: true})
	if err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSpoolHasNoName: the spool never shows in its folder, so nothing of it
// can outlive the run however the run ends; the export still reads it all.
func TestSpoolHasNoName(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	c := spooled(t, dir, 25)
	defer c.Close()
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Fatalf("the spool folder holds %v (%v), want nothing", entries, err)
	}
	out := filepath.Join(t.TempDir(), "out.pcapng")
	res, err := ExportAllWith(out, nil, ExportOptions{Comment: "cut short: test"}, c)
	if err != nil || res.Packets != 25 {
		t.Fatalf("export: %d packets, %v; want 25", res.Packets, err)
	}
	f, err := OpenFile(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Comment() != "cut short: test" {
		t.Errorf("section comment %q", f.Comment())
	}
	if capinfos, err := exec.LookPath("capinfos"); err == nil {
		b, err := exec.Command(capinfos, "-k", out).CombinedOutput()
		if err != nil || !strings.Contains(string(b), "cut short: test") {
			t.Errorf("capinfos -k does not show the comment (%v): %s", err, b)
		}
	} else {
		testenv.Missing(t, "capinfos (wireshark-common) is not installed")
	}
}

// TestSpoolEndsWithAKilledProcess: a process killed with SIGKILL mid-capture
// leaves nothing in the spool folder.
func TestSpoolEndsWithAKilledProcess(t *testing.T) {
	if os.Getenv("SPOOL_HELPER_DIR") != "" {
		src, err := OpenFile(os.Getenv("SPOOL_HELPER_FILE"), nil)
		if err != nil {
			os.Exit(3)
		}
		if _, err := Start(src, ModeFile, Options{Ports: wire.SeedPorts(map[uint16]protocol.Protocol{3000: protocol.HTTP}), SpoolDir: os.Getenv("SPOOL_HELPER_DIR"), Block: true}); err != nil {
			os.Exit(4)
		}
		os.Stdout.WriteString("capturing\n")
		select {} // until killed
	}
	dir := filepath.Join(t.TempDir(), "spool")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolEndsWithAKilledProcess$")
	cmd.Env = append(os.Environ(), "SPOOL_HELPER_DIR="+dir, "SPOOL_HELPER_FILE="+tcpFile(t, 100))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 10)
	if _, err := out.Read(line); err != nil || string(line[:9]) != "capturing" {
		t.Fatalf("helper: %q %v", line, err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("after kill -9 the spool folder holds %v (%v)", entries, err)
	}
}

func TestSweepSpool(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"capture-1.pcap", "capture-2.pcap", "other.pcap"} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, 1000), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// One is open: a run of an older version still writing it.
	busy, err := os.OpenFile(filepath.Join(dir, "capture-3.pcap"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	res := SweepSpool(dir)
	if res.Files != 2 || res.Bytes != 2000 {
		t.Errorf("swept %+v, want 2 files of 2000 bytes", res)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(left) != 2 {
		t.Errorf("left %v, want other.pcap and the open capture-3.pcap", left)
	}
	if note := res.Note(dir); !strings.Contains(note, "removed 2 spool file(s)") || !strings.Contains(note, dir) {
		t.Errorf("note %q", note)
	}
	if again := SweepSpool(dir); again.Files != 0 || again.Note(dir) != "" {
		t.Errorf("second sweep %+v", again)
	}
}

func TestExportIntoAMissingFolder(t *testing.T) {
	c := spooled(t, t.TempDir(), 3)
	defer c.Close()
	missing := filepath.Join(t.TempDir(), "no", "such")
	_, err := ExportAll(filepath.Join(missing, "x.pcapng"), nil, c)
	if err == nil || !strings.Contains(err.Error(), "the folder "+missing+" is not there") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("the export created %s", missing)
	}
}
