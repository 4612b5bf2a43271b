package capture

import (
	"encoding/binary"
	"errors"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// The spool is a pcap file (nanosecond timestamps, little-endian, as
// pcapgo writes it): a 24-byte header, then per packet a 16-byte header
// (seconds, nanoseconds, captured length, length on the wire) and its
// bytes. Packet finds one packet in it by when it was captured and its
// length on the wire — a packet record's identity (wire.Record's Time and
// Len) — so the explorer can show a packet whole while records keep only
// the first bytes of their payload.

const (
	spoolHeader    = 24
	spoolRecHeader = 16
	markEvery      = 256 // packets between two marks of the spool's index
)

// spoolMark is where in the spool a packet captured at ts starts.
type spoolMark struct {
	ts  time.Time
	off int64
}

// spoolIndex is a sparse index of the spool: a mark every markEvery
// packets, so that a look-up reads a few hundred packets, not the file.
type spoolIndex struct {
	mu    sync.Mutex
	marks []spoolMark
	kept  int
}

// note records that a packet captured at ts was written at offset off of
// the spool's packets (after the file header).
func (x *spoolIndex) note(ts time.Time, off int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.kept%markEvery == 0 {
		x.marks = append(x.marks, spoolMark{ts, off})
	}
	x.kept++
}

// from is the offset to read from for a packet captured at ts: the last
// mark before it (timestamps may step back a little: one mark earlier).
func (x *spoolIndex) from(ts time.Time) int64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	i := sort.Search(len(x.marks), func(i int) bool { return !x.marks[i].ts.Before(ts) })
	if i -= 2; i < 0 {
		return 0
	}
	return x.marks[i].off
}

// ErrNoPacket says the spool does not hold the packet asked for.
var ErrNoPacket = errors.New("the capture's spool does not hold that packet")

// Packet returns the bytes of the packet captured at ts whose length on the
// wire is length, and the link type they start with, from the spool (safe
// while capturing goes on: it reads at offsets of its own). ErrNoPacket
// when the spool does not hold it (not kept: the spool was full, or the
// capture keeps none).
func (c *Capture) Packet(ts time.Time, length int) ([]byte, layers.LinkType, error) {
	if c.spoolFile == nil {
		if c.spoolErr != nil {
			return nil, c.linkType, c.spoolErr
		}
		return nil, c.linkType, ErrNoPacket
	}
	c.flushSpool() // the packets buffered for the spool, into the file
	off := spoolHeader + c.index.from(ts)
	var h [spoolRecHeader]byte
	for {
		if _, err := c.spoolFile.ReadAt(h[:], off); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, c.linkType, ErrNoPacket
			}
			return nil, c.linkType, err
		}
		at := time.Unix(int64(binary.LittleEndian.Uint32(h[0:])), int64(binary.LittleEndian.Uint32(h[4:])))
		caplen, wirelen := int64(binary.LittleEndian.Uint32(h[8:])), int(binary.LittleEndian.Uint32(h[12:]))
		if at.After(ts.Add(time.Second)) {
			return nil, c.linkType, ErrNoPacket // well past it: not kept
		}
		if at.Equal(ts) && wirelen == length {
			data := make([]byte, caplen)
			if _, err := c.spoolFile.ReadAt(data, off+spoolRecHeader); err != nil {
				return nil, c.linkType, ErrNoPacket // half-written: not yet whole
			}
			return data, c.linkType, nil
		}
		off += spoolRecHeader + caplen
	}
}
