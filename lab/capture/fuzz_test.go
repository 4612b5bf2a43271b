package capture

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
)

// seedCapture writes a small pcapng (secrets block + one packet) and a pcap.
func seedCaptures(f *testing.F) {
	var ng bytes.Buffer
	w, _ := pcapgo.NewNgWriter(&ng, layers.LinkTypeEthernet)
	_ = w.WriteDecryptionSecretsBlock(secretsTLSKeyLog, []byte("CLIENT_TRAFFIC_SECRET_0 "+string(bytes.Repeat([]byte("ab"), 32))+" "+string(bytes.Repeat([]byte("cd"), 32))+"\n"))
	pkt := make([]byte, 60)
	_ = w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: 60, Length: 60}, pkt)
	_ = w.Flush()
	f.Add(ng.Bytes())
	var pc bytes.Buffer
	pw := pcapgo.NewWriter(&pc)
	_ = pw.WriteFileHeader(65535, layers.LinkTypeEthernet)
	_ = pw.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: 60, Length: 60}, pkt)
	f.Add(pc.Bytes())
	f.Add([]byte{0x0a, 0x0d, 0x0d, 0x0a})
}

// FuzzCaptureFile reads arbitrary bytes as a capture file, secrets and all:
// an error, never a panic, and whatever decoded before it stays.
func FuzzCaptureFile(f *testing.F) {
	seedCaptures(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		keys := wire.NewKeyLog(nil)
		_ = LoadSecrets(bytes.NewReader(b), keys)
		r, err := newReader(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		s := wire.NewStore(8)
		d, err := wire.NewDecoder(r.LinkType(), wire.SeedPorts(map[uint16]protocol.Protocol{3000: protocol.HTTP}), keys, s)
		if err != nil {
			return // a link type protolab does not decode: said so
		}
		for range 1000 {
			data, ci, err := r.ReadPacketData()
			if err != nil {
				break
			}
			_ = d.Packet(data, ci)
		}
		d.Flush(time.Now())
	})
}

func TestOpenFileOnFuzzSeeds(t *testing.T) {
	// The seeds as real files through OpenFile, the path users take.
	var ng bytes.Buffer
	w, _ := pcapgo.NewNgWriter(&ng, layers.LinkTypeEthernet)
	_ = w.WriteDecryptionSecretsBlock(secretsTLSKeyLog, []byte("CLIENT_TRAFFIC_SECRET_0 "+string(bytes.Repeat([]byte("ab"), 32))+" "+string(bytes.Repeat([]byte("cd"), 32))+"\n"))
	_ = w.Flush()
	path := filepath.Join(t.TempDir(), "s.pcapng")
	if err := os.WriteFile(path, ng.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := wire.NewKeyLog(nil)
	src, err := OpenFile(path, keys)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if keys.Len() != 1 {
		t.Errorf("secrets loaded from the pcapng: %d, want 1", keys.Len())
	}
}
