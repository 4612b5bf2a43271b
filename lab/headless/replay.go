package headless

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
)

// ReplayReport is what replaying a capture file found.
type ReplayReport struct {
	Type        string  `json:"type"` // "replay"
	File        string  `json:"file"`
	Packets     uint64  `json:"packets"`
	Undecodable uint64  `json:"undecodable"`
	Seconds     float64 `json:"seconds"`
	PacketsPerS float64 `json:"packets_per_s"`
	Secrets     int     `json:"secrets"`
	// Comment is the file's section comment: protolab's exports of an
	// interrupted run say there that they were cut short.
	Comment string `json:"comment,omitempty"`
	// Apps are the wire figures by app name; Order lists the names in the
	// lab's order.
	Apps  map[string]AppWire `json:"apps"`
	Order []string           `json:"order"`
	Error string             `json:"error,omitempty"`
}

// AppWire is one app's figures in a replay.
type AppWire struct {
	Protocol protocol.Protocol `json:"protocol"`
	Port     int               `json:"port"`
	wire.Summary
}

// Replay decodes a pcap or pcapng file (its embedded TLS secrets included)
// with the lab's apps as the port map (apps on port 0 are left out: their
// port is not known) and prints each app's wire figures. A file that breaks
// part-way is reported with everything decoded before the break.
func Replay(ctx context.Context, path string, apps []lab.App, ring int, jsonOut bool, out io.Writer) (ReplayReport, error) {
	ports := wire.PortMap{}
	var kept []lab.App
	for _, a := range apps {
		if a.Port != 0 {
			ports[uint16(a.Port)] = wire.AppRef{Name: a.Name, Protocol: a.Protocol}
			kept = append(kept, a)
		}
	}
	if len(ports) == 0 {
		return ReplayReport{}, fmt.Errorf("--read %s: no app has a fixed port to decode by: give the apps their ports (--port NAME=N or the lab file)", path)
	}
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
		Seconds: elapsed.Seconds(), PacketsPerS: float64(st.Packets) / elapsed.Seconds(), Secrets: keys.Len(), Comment: src.Comment(),
		Apps: map[string]AppWire{}}
	for _, a := range kept {
		rep.Apps[a.Name] = AppWire{Protocol: a.Protocol, Port: a.Port, Summary: c.Store().Counters(a.Name).Summarize()}
		rep.Order = append(rep.Order, a.Name)
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
		if rep.Comment != "" {
			fmt.Fprintf(out, "comment: %s\n", rep.Comment)
		}
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "app\tprotocol\tport\tpackets\tbytes\tflows\tmessages\thttp req\tws frames\ttls hellos\tdecrypted\terrors\t")
		for _, name := range rep.Order {
			s := rep.Apps[name]
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", name, s.Protocol, s.Port, s.Packets, s.Bytes, s.Flows, s.Messages, s.HTTPReqs, s.WSFrames, s.TLSHellos, s.Decrypted, s.Errors)
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
