package headless

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/proto"
	"github.com/protolab/protolab-tui/lab/wire"
)

// ReplayReport is what replaying a capture file found.
type ReplayReport struct {
	Type        string                          `json:"type"` // "replay"
	File        string                          `json:"file"`
	Packets     uint64                          `json:"packets"`
	Undecodable uint64                          `json:"undecodable"`
	Seconds     float64                         `json:"seconds"`
	PacketsPerS float64                         `json:"packets_per_s"`
	Secrets     int                             `json:"secrets"`
	Protocols   map[proto.Protocol]wire.Summary `json:"protocols"`
	Error       string                          `json:"error,omitempty"`
}

// Replay decodes a pcap or pcapng file (its embedded TLS secrets included)
// with the lab's port map and prints the per-protocol wire figures. A file
// that breaks part-way is reported with everything decoded before the break.
func Replay(ctx context.Context, path string, ports map[uint16]proto.Protocol, ring int, jsonOut bool, out io.Writer) (ReplayReport, error) {
	keys := wire.NewKeyLog(nil)
	src, err := capture.OpenFile(path, keys)
	if err != nil {
		return ReplayReport{}, err
	}
	start := time.Now()
	c, err := capture.Start(src, capture.ModeFile, capture.Options{Ports: ports, Keys: keys, Store: wire.NewStore(ring), Queue: 4096, Block: true})
	if err != nil {
		src.Close()
		return ReplayReport{}, err
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
	}
	readErr := c.Stop()
	elapsed := time.Since(start)
	st := c.Stats()
	rep := ReplayReport{Type: "replay", File: path, Packets: st.Packets, Undecodable: c.Undecodable(),
		Seconds: elapsed.Seconds(), PacketsPerS: float64(st.Packets) / elapsed.Seconds(), Secrets: keys.Len(),
		Protocols: map[proto.Protocol]wire.Summary{}}
	for _, p := range proto.All {
		rep.Protocols[p] = c.Store().Counters(p).Summarize()
	}
	if readErr != nil {
		rep.Error = fmt.Sprintf("reading %s stopped after %d packets: %v", path, st.Packets, readErr)
	}
	if jsonOut {
		b, _ := json.Marshal(rep)
		fmt.Fprintf(out, "%s\n", b)
	} else {
		fmt.Fprintf(out, "%s: %d packets in %.2fs (%.0f packets/s), %d TLS secrets, %d undecodable\n",
			path, rep.Packets, rep.Seconds, rep.PacketsPerS, rep.Secrets, rep.Undecodable)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "protocol\tpackets\tbytes\tflows\tmessages\thttp req\tws frames\ttls hellos\tdecrypted\terrors\t")
		for _, p := range proto.All {
			s := rep.Protocols[p]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", p, s.Packets, s.Bytes, s.Flows, s.Messages, s.HTTPReqs, s.WSFrames, s.TLSHellos, s.Decrypted, s.Errors)
		}
		tw.Flush()
		if rep.Error != "" {
			fmt.Fprintln(out, rep.Error)
		}
	}
	if readErr != nil {
		return rep, fmt.Errorf("%s", rep.Error)
	}
	return rep, ctx.Err()
}
