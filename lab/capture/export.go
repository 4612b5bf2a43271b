package capture

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/protolab/protolab-tui/lab/wire"
)

// ExportResult is what an export wrote and what it could not include.
type ExportResult struct {
	// Packets is how many packets the file holds.
	Packets int
	// Interfaces is how many captures the file holds (one pcapng interface
	// each).
	Interfaces int
	// LeftOut says, one sentence per capture, what the file lacks of what
	// the captures decoded (a socket-level capture keeps no packets; a full
	// spool keeps no more): empty when the file holds every packet.
	LeftOut []string
}

// Note is LeftOut as one line ("" when nothing is left out).
func (r ExportResult) Note() string { return strings.Join(r.LeftOut, "; ") }

// noPacketsAdvice says how to get packets where only socket-level capture ran.
const noPacketsAdvice = "socket-level capture sees payloads, not packets: run as root, with CAP_NET_RAW, or where user namespaces are allowed"

// ExportOptions tune ExportAllWith.
type ExportOptions struct {
	// Comment is the section header's comment (shb_comment): Wireshark
	// shows it as the capture's comment, capinfos -k prints it, and
	// OpenFile's Comment returns it.
	Comment string
}

// ExportAll writes one pcapng file of several captures (stopped or running,
// in the order given, normally the order they ran): a section header, one
// interface per capture that kept packets (its own link type and name), a
// Decryption Secrets Block holding keys' TLS key log (before any packet, so
// Wireshark and tshark decrypt https and wss with no settings), then each
// capture's packets in the order it read them. The file is written
// atomically with mode 0600 (it holds key material). A running capture
// contributes what it captured until then.
//
// Captures that kept no packets (socket-level capture) are named in the
// result's LeftOut; when none of them kept any, ExportAll fails and writes
// nothing. keys may be nil (no secrets block). The file's folder must
// exist: ExportAll creates none.
func ExportAll(path string, keys *wire.KeyLog, captures ...*Capture) (ExportResult, error) {
	return ExportAllWith(path, keys, ExportOptions{}, captures...)
}

// ExportAllWith is ExportAll with options.
func ExportAllWith(path string, keys *wire.KeyLog, o ExportOptions, captures ...*Capture) (ExportResult, error) {
	var res ExportResult
	var kept []*Capture
	for _, c := range captures {
		if c.spoolFile == nil {
			if c.spoolErr != nil && c.packets.Load() > 0 {
				res.LeftOut = append(res.LeftOut, fmt.Sprintf("%s kept none of its %d packets: %v", c.title(), c.packets.Load(), c.spoolErr))
			}
			if n := c.chunks.Load(); n > 0 {
				res.LeftOut = append(res.LeftOut, fmt.Sprintf("%s kept no packets: its %d packet records (socket reads and writes) are not in the file", c.title(), n))
			}
			continue
		}
		if n := c.spoolDrops.Load(); n > 0 {
			res.LeftOut = append(res.LeftOut, fmt.Sprintf("%d packets of %s are not in the file: its spool was full or could not be written", n, c.title()))
		}
		kept = append(kept, c)
	}
	if len(captures) == 0 {
		return res, errors.New("export: no capture to export: start capture first")
	}
	if len(kept) == 0 {
		if len(res.LeftOut) == 0 {
			return res, errors.New("export: the capture keeps no packets to export (" + noPacketsAdvice + ")")
		}
		return res, fmt.Errorf("export: no packets to export: %s (%s)", res.Note(), noPacketsAdvice)
	}

	res, err := exportTo(path, keys, o, kept, res)
	if err != nil {
		res.Packets, res.Interfaces = 0, 0 // no file was written
		err = diskAdvice(filepath.Dir(path), err)
	}
	return res, err
}

// diskAdvice adds what to do to an export's error when the disk is full or
// read-only; what was captured is kept either way.
func diskAdvice(dir string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w (the disk of %s is full: free space there or export elsewhere; nothing captured is lost, and no partial file is left)", err, dir)
	case errors.Is(err, syscall.EROFS), errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%w (%s is not writable: export elsewhere or make it writable; nothing captured is lost)", err, dir)
	}
	return err
}

// exportTo writes the file (a temporary one, renamed into place) into a
// folder that must be there: an export creates no folders.
func exportTo(path string, keys *wire.KeyLog, o ExportOptions, kept []*Capture, res ExportResult) (ExportResult, error) {
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		if err == nil {
			err = errors.New("not a folder")
		}
		return res, fmt.Errorf("export to %s: the folder %s is not there (%w): create it first, or export elsewhere", path, dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return res, fmt.Errorf("export to %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	fail := func(err error) (ExportResult, error) {
		tmp.Close()
		return res, err
	}
	if err := tmp.Chmod(0o600); err != nil {
		return fail(fmt.Errorf("export: %w", err))
	}
	w, err := pcapgo.NewNgWriterInterface(tmp, kept[0].ngInterface(len(kept) > 1),
		pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "protolab-tui", Comment: o.Comment}})
	if err != nil {
		return fail(fmt.Errorf("export: %w", err))
	}
	for _, c := range kept[1:] {
		if _, err := w.AddInterface(c.ngInterface(true)); err != nil {
			return fail(fmt.Errorf("export: adding the interface of %s: %w", c.title(), err))
		}
	}
	res.Interfaces = len(kept)
	if keys != nil {
		if secrets := keys.Bytes(); len(secrets) > 0 {
			if err := w.WriteDecryptionSecretsBlock(secretsTLSKeyLog, secrets); err != nil {
				return fail(fmt.Errorf("export: writing the TLS secrets: %w", err))
			}
		}
	}
	for i, c := range kept {
		n, err := c.copySpool(w, i)
		res.Packets += n
		if err != nil {
			return fail(err)
		}
	}
	if err := w.Flush(); err != nil {
		return fail(fmt.Errorf("export: %w", err))
	}
	if err := tmp.Close(); err != nil {
		return res, fmt.Errorf("export: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return res, fmt.Errorf("export: %w", err)
	}
	return res, nil
}

// title names the capture for people: "the live capture of 15:04:05".
func (c *Capture) title() string {
	kind := string(c.mode)
	switch c.mode {
	case ModeSocket:
		kind = "socket-level"
	case ModeNamespace:
		kind = "live (private namespace)"
	case ModeStream:
		kind = "pcap-stream"
	}
	return fmt.Sprintf("the %s capture of %s", kind, c.started.Format("15:04:05"))
}

// ngInterface describes the capture as a pcapng interface; several
// captures in one file are told apart by when they started.
func (c *Capture) ngInterface(several bool) pcapgo.NgInterface {
	name := c.Describe()
	if several {
		name += " (capture of " + c.started.Format("15:04:05") + ")"
	}
	return pcapgo.NgInterface{
		Name: name, Description: fmt.Sprintf("protolab %s capture started %s", c.mode, c.started.Format("2006-01-02 15:04:05 MST")),
		LinkType: c.linkType, SnapLength: SnapLen, TimestampResolution: 9,
	}
}

// copySpool writes the packets of the capture's spool to w as interface
// intf and returns how many it wrote.
func (c *Capture) copySpool(w *pcapgo.NgWriter, intf int) (packets int, err error) {
	// The spool has no name: read it through its file, at offsets of its
	// own (pread), which never disturbs the writer; what the writer still
	// buffers goes to the file first.
	c.flushSpool()
	pr, err := pcapgo.NewReader(io.NewSectionReader(c.spoolFile, 0, math.MaxInt64))
	if err != nil {
		return 0, fmt.Errorf("export: reading the spool of %s: %w", c.title(), err)
	}
	for {
		data, ci, err := pr.ReadPacketData()
		if err != nil {
			// The spool's last record may be half-written while capturing
			// goes on: stop at the last whole packet.
			return packets, nil
		}
		ci.InterfaceIndex = intf
		if err := w.WritePacket(ci, data); err != nil {
			return packets, fmt.Errorf("export: %w", err)
		}
		packets++
	}
}
