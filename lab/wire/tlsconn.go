package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// tlsConn follows one TLS connection: it reassembles records, decodes the
// plaintext handshake, and — for TLS 1.3 when the key log holds this
// connection's secrets — decrypts the rest and hands the application data to
// an inner conversation (HTTP, WebSocket), whose records are marked
// decrypted.
type tlsConn struct {
	c            *conv
	buf          [2][]byte // record reassembly
	aad          [5]byte   // the record header being opened (a field: a local would escape)
	hs           [2][]byte // plaintext handshake reassembly
	keys         [2]*trafficKeys
	epoch        [2]int // 0 plaintext, 1 handshake secrets, 2 application secrets
	noKeys       [2]bool
	clientRandom []byte
	suite        uint16
	tls13        bool
	inner        *conv
	// queue holds encrypted records (in arrival order, both directions)
	// waiting for their secrets to reach the key log.
	queue []queuedRecord
	// skip counts bytes of a record hit by a gap still to pass over;
	// resync marks a direction looking for the next record header after a
	// gap no record length spans; unsure marks a direction that lost an
	// unknown number of encrypted records (the record sequence number is
	// searched for); dropped counts bytes passed over while resyncing.
	skip    [2]int
	resync  [2]bool
	unsure  [2]bool
	dropped [2]int
	// ended marks directions that ended while records were queued.
	ended   [2]bool
	endedAt time.Time
}

type queuedRecord struct {
	dir    Dir
	t      time.Time
	header [5]byte
	body   []byte
}

// maxQueued bounds the records held back while keys are missing.
const maxQueued = 512

func newTLSConn(c *conv) *tlsConn {
	t := &tlsConn{c: c}
	t.inner = newConv(c.out, c.keys, true)
	t.inner.want = c.want // the plaintext is detected (HTTP/1, HTTP/2) as a plain connection's is
	return t
}

func (t *tlsConn) data(dir Dir, b []byte, at time.Time) {
	if n := min(t.skip[dir], len(b)); n > 0 {
		t.skip[dir] -= n
		b = b[n:]
	}
	// Whole records are parsed where they lie (nothing keeps their bytes
	// past the call); only a record's start that waits for its rest is
	// copied.
	buf := b
	if len(t.buf[dir]) > 0 {
		buf = append(t.buf[dir], b...)
	}
	if t.resync[dir] {
		at2, drop := tlsSyncPoint(buf)
		if at2 < 0 {
			t.dropped[dir] += drop
			t.buf[dir] = append(t.buf[dir][:0], buf[drop:]...)
			return
		}
		t.dropped[dir] += at2
		buf = buf[at2:]
		t.resync[dir] = false
		t.c.out.gap(dir, at, 0, fmt.Sprintf("TLS resumed at a record header after passing over %d bytes", t.dropped[dir]))
	}
	for len(buf) > 0 {
		rec, n, err := parseTLSRecord(buf)
		if err != nil {
			t.buf[dir] = nil
			t.c.fail(dir, at, err)
			return
		}
		if n == 0 {
			break
		}
		var hdr [5]byte
		copy(hdr[:], buf[:5])
		t.record(dir, at, hdr, rec)
		buf = buf[n:]
	}
	t.buf[dir] = append(t.buf[dir][:0], buf...)
}

// gap is told that n bytes of dir were lost (n < 0: an unknown number). A
// gap inside a record whose header was read skips the rest of that record
// (it cannot be decrypted: it is lost whole, and the next record is where
// its length says); otherwise the direction looks for the next plausible
// record header. It returns what it did, for the gap record.
func (t *tlsConn) gap(dir Dir, n int, at time.Time) string {
	buf := t.buf[dir]
	t.hs[dir] = t.hs[dir][:0]                          // a handshake message across the gap is lost
	if t.skip[dir] > 0 && n >= 0 && n <= t.skip[dir] { // another gap in the same record
		t.skip[dir] -= n
		return "inside the TLS record already lost: skipped by its length"
	}
	if len(buf) >= 5 && n >= 0 && t.skip[dir] == 0 && !t.resync[dir] {
		l := int(binary.BigEndian.Uint16(buf[3:]))
		if need := 5 + l - len(buf); n <= need {
			typ := buf[0]
			t.buf[dir] = buf[:0]
			t.skip[dir] = need - n
			what := fmt.Sprintf("skipped the rest of a %d-byte TLS %s record by its length: the record is lost, decoding goes on at the next", l, ContentTypeName(typ))
			if typ == tlsApplicationData && t.encrypted(dir) {
				if k := t.keys[dir]; k != nil && len(t.queue) == 0 {
					k.seq++ // one record lost: the next one's number is known
				} else {
					t.unsure[dir] = true // searched for when it decrypts
				}
				// Its plaintext: the record less the AEAD tag and the inner
				// type, when the sender did not pad (Go, OpenSSL and
				// BoringSSL do not).
				t.inner.gap(dir, max(l-17, 0), at)
			}
			return what
		}
	}
	t.buf[dir] = buf[:0]
	t.skip[dir] = 0
	t.resync[dir], t.dropped[dir] = true, 0
	if t.encrypted(dir) {
		t.unsure[dir] = true
		t.inner.gap(dir, -1, at)
	}
	return "no record length spans it: resuming at the next TLS record header"
}

// tlsSyncPoint finds the next plausible record header in b: a content type
// 20–23, version 0x0301–0x0304 and a length within the limit, followed (when
// b holds that far) by another such header. With none it returns -1 and how
// many bytes can go.
func tlsSyncPoint(b []byte) (at, drop int) {
	for i := 0; i+5 <= len(b); i++ {
		if !plausibleHeader(b[i:]) {
			continue
		}
		next := i + 5 + int(binary.BigEndian.Uint16(b[i+3:]))
		switch {
		case next+5 <= len(b) && plausibleHeader(b[next:]):
			return i, 0
		case next+5 > len(b):
			return -1, i // wait for the next header to check it
		}
	}
	return -1, max(len(b)-4, 0)
}

func plausibleHeader(b []byte) bool {
	if len(b) < 5 {
		return false
	}
	v := binary.BigEndian.Uint16(b[1:])
	return b[0] >= tlsChangeCipherSpec && b[0] <= tlsApplicationData && v >= 0x0301 && v <= 0x0304 &&
		int(binary.BigEndian.Uint16(b[3:])) <= maxTLSRecord
}

// encrypted reports whether records of this direction are TLS 1.3
// ciphertext (after ServerHello).
func (t *tlsConn) encrypted(dir Dir) bool { return t.tls13 && t.epoch[dir] > 0 }

func (t *tlsConn) record(dir Dir, at time.Time, hdr [5]byte, rec TLSRecord) {
	if rec.Type == tlsApplicationData && t.encrypted(dir) && !t.noKeys[dir] {
		if len(t.queue) > 0 || !t.ready(dir) {
			if len(t.queue) >= maxQueued {
				t.flushQueue(at, "the key log never got this connection's secrets")
			}
			body := append([]byte(nil), rec.Body...) // held past this call
			t.queue = append(t.queue, queuedRecord{dir: dir, t: at, header: hdr, body: body})
			return
		}
		t.decrypt(dir, at, hdr, rec.Body)
		return
	}
	t.plain(dir, at, rec)
}

// ready makes sure dir has keys for its epoch, loading them from the key log.
func (t *tlsConn) ready(dir Dir) bool {
	if t.keys[dir] != nil {
		return true
	}
	label := labelClientHS
	switch {
	case dir == ClientToServer && t.epoch[dir] == 2:
		label = labelClientApp
	case dir == ServerToClient && t.epoch[dir] == 1:
		label = labelServerHS
	case dir == ServerToClient && t.epoch[dir] == 2:
		label = labelServerApp
	}
	if t.c.keys == nil || t.clientRandom == nil {
		return false
	}
	secret := t.c.keys.Secret(label, t.clientRandom)
	if secret == nil {
		return false
	}
	k, err := newTrafficKeys(t.suite, secret)
	if err != nil {
		t.noKeys[dir] = true
		return false
	}
	t.keys[dir] = k
	return true
}

// retry decrypts queued records whose keys have arrived, in order.
func (t *tlsConn) retry() {
	for len(t.queue) > 0 {
		q := t.queue[0]
		if t.noKeys[q.dir] {
			t.plain(q.dir, q.t, TLSRecord{Type: tlsApplicationData, Body: q.body})
		} else if !t.ready(q.dir) {
			return
		} else {
			t.decrypt(q.dir, q.t, q.header, q.body)
		}
		t.queue = t.queue[1:]
	}
	t.queue = nil
	t.finishEnded()
}

// flushQueue gives up on the queued records: they are shown encrypted.
func (t *tlsConn) flushQueue(at time.Time, why string) {
	q := t.queue
	t.queue = nil
	for _, r := range q {
		t.noKeys[r.dir] = true
		t.plainWithNote(r.dir, r.t, TLSRecord{Type: tlsApplicationData, Body: r.body}, why)
	}
}

// maxLostRecords bounds the record numbers tried after a gap lost an
// unknown number of records.
const maxLostRecords = 64

func (t *tlsConn) decrypt(dir Dir, at time.Time, hdr [5]byte, body []byte) {
	k := t.keys[dir]
	t.aad = hdr
	inner, plain, err := k.open(t.aad[:], body)
	if err != nil && t.unsure[dir] {
		base := k.seq
		for i := uint64(1); i <= maxLostRecords && err != nil; i++ {
			k.seq = base + i
			inner, plain, err = k.open(t.aad[:], body)
		}
		if err != nil {
			k.seq = base
		}
	}
	if err != nil {
		t.noKeys[dir] = true
		t.c.out.failure(dir, at, err)
		t.plain(dir, at, TLSRecord{Type: tlsApplicationData, Body: body})
		return
	}
	switch inner {
	case tlsHandshake:
		t.handshake(dir, at, plain, true)
	case tlsAlert:
		t.alert(dir, at, plain, true)
	case tlsApplicationData:
		bodyLen, plainLen := len(body), len(plain)
		t.c.out.message(dir, at, true, classTLS, func(r *Record) {
			r.Layer, r.Len, r.Payload, r.lazy = "tls", bodyLen+5, plainLen, decryptedText
		})
		t.inner.data(dir, plain, at)
	default:
		t.c.out.failure(dir, at, fmt.Errorf("decrypted record has inner content type %d", inner))
	}
}

// decryptedText formats a decrypted Application Data record from its sizes
// alone (Len is the record's, Payload the plaintext's): a function, not a
// closure per record.
func decryptedText(r *Record) {
	bodyLen, plainLen := r.Len-5, r.Payload
	r.Summary = fmt.Sprintf("TLS Application Data len=%d (decrypted: %d bytes)", bodyLen, plainLen)
	r.add("content_type", "Application Data")
	r.add("record_length", "%d", bodyLen)
	r.add("plaintext_length", "%d", plainLen)
}

// plain handles a record that is not (or cannot be) decrypted.
func (t *tlsConn) plain(dir Dir, at time.Time, rec TLSRecord) {
	t.plainWithNote(dir, at, rec, "")
}

func (t *tlsConn) plainWithNote(dir Dir, at time.Time, rec TLSRecord, note string) {
	switch rec.Type {
	case tlsHandshake:
		t.handshake(dir, at, rec.Body, false)
	case tlsAlert:
		t.alert(dir, at, rec.Body, false)
	default:
		typ, n := rec.Type, len(rec.Body)
		t.c.out.message(dir, at, false, classTLS, func(r *Record) {
			r.Layer, r.Len, r.Payload = "tls", n+5, n
			r.Data = preview(rec.Body)
			r.lazy = func(r *Record) {
				r.add("content_type", "%s", ContentTypeName(typ))
				r.add("record_length", "%d", n)
				r.Summary = fmt.Sprintf("TLS %s len=%d", ContentTypeName(typ), n)
				if typ == tlsApplicationData {
					r.Summary += " (encrypted)"
					if note != "" {
						r.add("note", "%s", note)
					}
				}
			}
		})
	}
}

func (t *tlsConn) alert(dir Dir, at time.Time, body []byte, decrypted bool) {
	body = append([]byte(nil), body...)
	t.c.out.message(dir, at, decrypted, classTLS, func(r *Record) {
		r.Layer = "tls"
		r.Len = len(body)
		r.lazy = func(r *Record) { alertText(r, body) }
	})
}

func alertText(r *Record, body []byte) {
	r.add("content_type", "Alert")
	if len(body) < 2 {
		r.Summary = "TLS Alert (truncated)"
		return
	}
	level := "warning"
	if body[0] == 2 {
		level = "fatal"
	}
	r.add("level", "%s", level)
	r.add("description", "%s", AlertName(body[1]))
	r.Summary = fmt.Sprintf("TLS Alert %s %s", level, AlertName(body[1]))
}

// handshake reassembles handshake messages of one direction and reports each.
func (t *tlsConn) handshake(dir Dir, at time.Time, b []byte, decrypted bool) {
	buf := append(t.hs[dir], b...)
	for len(buf) >= 4 {
		typ := buf[0]
		l := int(buf[1])<<16 | int(buf[2])<<8 | int(buf[3])
		if l > 1<<20 {
			t.hs[dir] = nil
			t.c.fail(dir, at, fmt.Errorf("TLS %s of %d bytes", HandshakeName(typ), l))
			return
		}
		if len(buf) < 4+l {
			break
		}
		t.handshakeMessage(dir, at, typ, buf[4:4+l], decrypted)
		buf = buf[4+l:]
	}
	t.hs[dir] = append(t.hs[dir][:0], buf...)
}

func (t *tlsConn) handshakeMessage(dir Dir, at time.Time, typ byte, body []byte, decrypted bool) {
	n := len(body)
	var extra func(r *Record)
	format := func(r *Record) {
		r.add("handshake_type", "%s", HandshakeName(typ))
		r.add("length", "%d", n)
		r.Summary = "TLS " + HandshakeName(typ)
		if extra != nil {
			extra(r)
		}
	}
	class := classTLS
	switch typ {
	case hsClientHello, hsServerHello:
		h, err := parseHello(typ, body)
		if err != nil {
			t.c.out.failure(dir, at, err)
			return
		}
		if typ == hsClientHello {
			class = classClientHello
			t.clientRandom = append([]byte(nil), h.Random...)
		} else {
			if len(h.ALPN) > 0 { // TLS 1.2 agrees on it here
				t.inner.alpn = h.ALPN[0]
			}
			t.suite = h.Suite
			if h.Version == 0x0304 {
				t.tls13 = true
				t.epoch = [2]int{1, 1}
			}
		}
		format = h.format
	case hsFinished:
		if t.tls13 && decrypted {
			defer func() { // later records of this direction use the application secret
				t.epoch[dir], t.keys[dir] = 2, nil
			}()
		}
	case hsKeyUpdate:
		if t.tls13 && decrypted && t.keys[dir] != nil {
			defer func() {
				if k, err := t.keys[dir].next(); err == nil {
					t.keys[dir] = k
				} else {
					t.noKeys[dir] = true
				}
			}()
		}
	case hsEncryptedExtensions:
		if alpn := encryptedExtensionsALPN(body); alpn != "" {
			t.inner.alpn = alpn
			extra = func(r *Record) {
				r.add("alpn", "%s", alpn)
				r.Summary += " ALPN=" + alpn
			}
		}
	case hsNewSessionTicket:
		if len(body) >= 4 {
			life := binary.BigEndian.Uint32(body)
			extra = func(r *Record) { r.add("ticket_lifetime_s", "%d", life) }
		}
	}
	t.c.out.message(dir, at, decrypted, class, func(r *Record) {
		r.Layer, r.Len, r.Payload, r.lazy = "tls", n+4, n, format
	})
}

// end is called when a direction ends. While records still wait for their
// keys, the end waits too (the keys may come after the connection closed:
// another program's key log, read later); giveUp ends it for good.
func (t *tlsConn) end(dir Dir, at time.Time) {
	if len(t.queue) > 0 {
		t.retry()
	}
	if len(t.queue) > 0 {
		t.ended[dir], t.endedAt = true, at
		return
	}
	t.finish(dir, at)
}

// giveUp shows what still waits for keys as encrypted and ends both
// directions.
func (t *tlsConn) giveUp(at time.Time) {
	t.retry()
	if len(t.queue) > 0 {
		t.flushQueue(at, "no key for this record in the key log")
	}
	t.finishEnded()
}

// finishEnded completes the ends that waited for the queue.
func (t *tlsConn) finishEnded() {
	for d := range 2 {
		if t.ended[d] {
			t.ended[d] = false
			t.finish(Dir(d), t.endedAt)
		}
	}
}

func (t *tlsConn) finish(dir Dir, at time.Time) {
	t.inner.end(dir, at)
	if len(t.buf[dir]) > 0 {
		t.buf[dir] = nil
		t.c.out.failure(dir, at, errors.New("connection ended inside a TLS record (truncated)"))
	}
}
