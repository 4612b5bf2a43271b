package wire

import (
	"encoding/binary"
	"slices"
)

// wsResync finds where WebSocket frames start again after a gap hid a frame
// header. Frames carry no marker, so a start must be proved: the decoder
// tries the places where the bytes after the gap arrived in pieces (TCP
// segments, or the plaintext of TLS records — a sender writes a frame, or a
// run of them, at once, so a piece usually begins with a header), and takes
// the first from which a chain of frame headers, each valid for this side
// of this connection, ends exactly where a piece ends.
type wsResync struct {
	buf    []byte
	bounds []int // where each piece after the gap began in buf, ascending
	// next is the first of bounds not refuted yet: a refuted start stays
	// refuted as bytes come (an invalid header stays invalid).
	next int
	// dropped counts the bytes passed over, before buf.
	dropped int
}

// maxWSResync bounds the bytes held while looking for a frame boundary;
// past it the direction is given up.
const maxWSResync = 1 << 20

// add takes a piece of the stream after the gap.
func (r *wsResync) add(b []byte) {
	r.bounds = append(r.bounds, len(r.buf))
	r.buf = append(r.buf, b...)
}

// find returns the offset in buf where frames provably start again, or -1
// when no piece start proves one yet (more bytes may prove it).
func (r *wsResync) find(p *wsParser) int {
	for ; r.next < len(r.bounds); r.next++ {
		at := r.bounds[r.next]
		switch p.chainProves(r.buf, at, r.bounds[r.next+1:]) {
		case chainProved:
			return at
		case chainUndecided:
			return -1 // the earliest candidate needs more bytes before later ones count
		}
	}
	return -1
}

type chainVerdict uint8

const (
	chainRefuted chainVerdict = iota
	chainUndecided
	chainProved
)

// chainProves reads frame headers from buf[at:] one after another (by
// their lengths) and says whether a frame ends exactly at a later piece
// start or at the end of buf, every header on the way valid.
func (p *wsParser) chainProves(buf []byte, at int, later []int) chainVerdict {
	ends := func(pos int) bool {
		if pos == len(buf) {
			return true
		}
		_, found := slices.BinarySearch(later, pos)
		return found
	}
	pos, frames := at, 0
	for pos < len(buf) {
		f, n, err := parseWSHeader(buf[pos:])
		switch {
		case err != nil:
			return chainRefuted
		case f == nil:
			return chainUndecided // the header runs past what arrived
		case !p.plausible(f, buf[pos:pos+n]):
			return chainRefuted
		}
		if f.Length > maxWSResync {
			// No proof could be held: a start that needs one is refuted,
			// so it does not keep later pieces from being tried.
			return chainRefuted
		}
		end := pos + n + int(f.Length)
		if end > len(buf) {
			return chainUndecided
		}
		pos, frames = end, frames+1
		if ends(pos) {
			return chainProved
		}
	}
	if frames > 0 {
		return chainProved
	}
	return chainUndecided
}

// plausible says whether a header parsed at a candidate place is one this
// side of the connection could have sent: masked exactly when the client
// sends, RSV bits only as the agreed extension allows, and the length in
// its shortest encoding (RFC 6455 §5.2: "the minimal number of bytes").
func (p *wsParser) plausible(f *WSFrame, hdr []byte) bool {
	if f.Masked != p.client || f.RSV&3 != 0 {
		return false
	}
	if f.RSV&4 != 0 && (p.deflate == nil || f.Control() || f.Opcode == wsContinuation) {
		return false
	}
	switch hdr[1] & 0x7f {
	case 126:
		return binary.BigEndian.Uint16(hdr[2:]) >= 126
	case 127:
		return f.Length > 0xffff
	}
	return true
}

// lose gives up the frame being read after a gap that hid a header: the
// parser looks for a proven frame start in what comes next.
func (p *wsParser) lose() {
	p.resync = &wsResync{}
	p.cur, p.hdr, p.remaining, p.got = nil, p.hdr[:0], 0, 0
	p.inMsg, p.text, p.flagged, p.msgLen = false, false, false, 0
	p.utf8.Reset()
	if p.compressed && p.deflate != nil {
		p.deflate.gap()
		p.deflate.loseContext("a message was lost from the capture")
	}
	p.compressed, p.ctext = false, false
}

// resume feeds b to a parser that is looking for a frame start: it returns
// the bytes from the proven start on (nil while none is proven, or when
// the search is given up: gaveUp) and how many bytes it passed over.
func (p *wsParser) resume(b []byte) (rest []byte, dropped int, gaveUp bool) {
	r := p.resync
	r.add(b)
	if at := r.find(p); at >= 0 {
		p.resync = nil
		return r.buf[at:], r.dropped + at, false
	}
	if len(r.buf) > maxWSResync {
		p.resync = nil
		return nil, r.dropped + len(r.buf), true
	}
	return nil, 0, false
}
