package wire

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// TLS record content types.
const (
	tlsChangeCipherSpec = 20
	tlsAlert            = 21
	tlsHandshake        = 22
	tlsApplicationData  = 23
)

// TLS handshake message types.
const (
	hsClientHello         = 1
	hsServerHello         = 2
	hsNewSessionTicket    = 4
	hsEncryptedExtensions = 8
	hsCertificate         = 11
	hsCertificateVerify   = 15
	hsFinished            = 20
	hsKeyUpdate           = 24
)

// maxTLSRecord is the largest record body allowed (RFC 8446 §5.2).
const maxTLSRecord = 1<<14 + 256

// TLSRecord is one record-layer header and body.
type TLSRecord struct {
	Type    byte
	Version uint16
	Body    []byte
}

// parseTLSRecord reads one record from b; n is 0 when b holds no whole
// record yet.
func parseTLSRecord(b []byte) (rec TLSRecord, n int, err error) {
	if len(b) < 5 {
		if len(b) > 0 && (b[0] < tlsChangeCipherSpec || b[0] > tlsApplicationData) {
			return rec, 0, fmt.Errorf("not a TLS record: content type %d", b[0])
		}
		return rec, 0, nil
	}
	rec.Type, rec.Version = b[0], binary.BigEndian.Uint16(b[1:])
	l := int(binary.BigEndian.Uint16(b[3:]))
	switch {
	case rec.Type < tlsChangeCipherSpec || rec.Type > tlsApplicationData:
		return rec, 0, fmt.Errorf("not a TLS record: content type %d", rec.Type)
	case rec.Version>>8 != 3:
		return rec, 0, fmt.Errorf("not a TLS record: version 0x%04x", rec.Version)
	case l > maxTLSRecord:
		return rec, 0, fmt.Errorf("TLS record of %d bytes (the limit is %d)", l, maxTLSRecord)
	}
	if len(b) < 5+l {
		return rec, 0, nil
	}
	rec.Body = b[5 : 5+l]
	return rec, 5 + l, nil
}

// ContentTypeName names a record content type.
func ContentTypeName(t byte) string {
	switch t {
	case tlsChangeCipherSpec:
		return "ChangeCipherSpec"
	case tlsAlert:
		return "Alert"
	case tlsHandshake:
		return "Handshake"
	case tlsApplicationData:
		return "Application Data"
	}
	return fmt.Sprintf("content type %d", t)
}

// HandshakeName names a handshake message type.
func HandshakeName(t byte) string {
	switch t {
	case hsClientHello:
		return "ClientHello"
	case hsServerHello:
		return "ServerHello"
	case hsNewSessionTicket:
		return "NewSessionTicket"
	case hsEncryptedExtensions:
		return "EncryptedExtensions"
	case hsCertificate:
		return "Certificate"
	case hsCertificateVerify:
		return "CertificateVerify"
	case hsFinished:
		return "Finished"
	case hsKeyUpdate:
		return "KeyUpdate"
	case 12:
		return "ServerKeyExchange"
	case 13:
		return "CertificateRequest"
	case 14:
		return "ServerHelloDone"
	case 16:
		return "ClientKeyExchange"
	}
	return fmt.Sprintf("handshake type %d", t)
}

// VersionName names a TLS protocol version.
func VersionName(v uint16) string {
	switch v {
	case 0x0300:
		return "SSL 3.0"
	case 0x0301:
		return "TLS 1.0"
	case 0x0302:
		return "TLS 1.1"
	case 0x0303:
		return "TLS 1.2"
	case 0x0304:
		return "TLS 1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

// AlertName names an alert description.
func AlertName(d byte) string {
	names := map[byte]string{0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 40: "handshake_failure",
		42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
		46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca", 50: "decode_error", 51: "decrypt_error",
		70: "protocol_version", 80: "internal_error", 90: "user_canceled", 109: "missing_extension",
		112: "unrecognized_name", 116: "certificate_required", 120: "no_application_protocol"}
	if n, ok := names[d]; ok {
		return n
	}
	return fmt.Sprintf("alert %d", d)
}

// Hello is what the lab shows of a ClientHello or ServerHello.
type Hello struct {
	Type    byte
	Version uint16 // negotiated (ServerHello's supported_versions) or offered maximum
	Random  []byte
	SNI     string
	ALPN    []string
	Suites  []uint16 // ClientHello
	Suite   uint16   // ServerHello
}

// reader is a bounds-checked big-endian reader; any short read sets err.
type reader struct {
	b   []byte
	err error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errors.New("truncated")
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() int {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return int(b[0])
}

func (r *reader) u16() int {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(b))
}

// parseHello decodes a ClientHello or ServerHello body.
func parseHello(typ byte, body []byte) (*Hello, error) {
	r := &reader{b: body}
	h := &Hello{Type: typ, Version: uint16(r.u16())}
	h.Random = append([]byte(nil), r.bytes(32)...) // body is a reused buffer
	r.bytes(r.u8())                                // session id
	if typ == hsClientHello {
		suites := &reader{b: r.bytes(r.u16())}
		for len(suites.b) >= 2 {
			h.Suites = append(h.Suites, uint16(suites.u16()))
		}
		r.bytes(r.u8()) // compression methods
	} else {
		h.Suite = uint16(r.u16())
		r.u8() // compression method
	}
	if r.err != nil {
		return nil, fmt.Errorf("%s: %w", HandshakeName(typ), r.err)
	}
	if len(r.b) == 0 {
		return h, nil // no extensions
	}
	exts := &reader{b: r.bytes(r.u16())}
	for exts.err == nil && len(exts.b) > 0 {
		typ16, data := exts.u16(), exts.bytes(exts.u16())
		if exts.err != nil {
			break
		}
		e := &reader{b: data}
		switch typ16 {
		case 0: // server_name
			if typ == hsClientHello {
				list := &reader{b: e.bytes(e.u16())}
				for list.err == nil && len(list.b) > 0 {
					kind, name := list.u8(), list.bytes(list.u16())
					if kind == 0 && list.err == nil {
						h.SNI = string(name)
					}
				}
			}
		case 16: // ALPN
			list := &reader{b: e.bytes(e.u16())}
			for list.err == nil && len(list.b) > 0 {
				if p := list.bytes(list.u8()); list.err == nil {
					h.ALPN = append(h.ALPN, string(p))
				}
			}
		case 43: // supported_versions
			if typ == hsClientHello {
				list := &reader{b: e.bytes(e.u8())}
				for list.err == nil && len(list.b) >= 2 {
					if v := uint16(list.u16()); v&0x0f0f != 0x0a0a && v > h.Version { // skip GREASE
						h.Version = v
					}
				}
			} else if v := e.u16(); e.err == nil {
				h.Version = uint16(v)
			}
		}
	}
	if exts.err != nil {
		return nil, fmt.Errorf("%s extensions: %w", HandshakeName(typ), exts.err)
	}
	return h, nil
}

func (h *Hello) format(r *Record) {
	s := "TLS " + HandshakeName(h.Type)
	r.add("handshake_type", "%s", HandshakeName(h.Type))
	r.add("version", "%s", VersionName(h.Version))
	r.add("random", "%x", h.Random)
	if h.Type == hsClientHello {
		if h.SNI != "" {
			r.add("sni", "%s", h.SNI)
			s += " SNI=" + h.SNI
		}
		names := make([]string, 0, len(h.Suites))
		for _, c := range h.Suites {
			names = append(names, tls.CipherSuiteName(c))
		}
		r.add("cipher_suites", "%s", strings.Join(names, ", "))
	} else {
		r.add("cipher_suite", "%s", tls.CipherSuiteName(h.Suite))
		s += " " + VersionName(h.Version) + " " + tls.CipherSuiteName(h.Suite)
	}
	if len(h.ALPN) > 0 {
		r.add("alpn", "%s", strings.Join(h.ALPN, ","))
		s += " ALPN=" + strings.Join(h.ALPN, ",")
	}
	r.Summary = s
}

// encryptedExtensionsALPN reads the protocol a TLS 1.3 server chose from
// its EncryptedExtensions ("" when none, or unreadable).
func encryptedExtensionsALPN(body []byte) string {
	r := &reader{b: body}
	exts := &reader{b: r.bytes(r.u16())}
	for exts.err == nil && len(exts.b) > 0 {
		typ, data := exts.u16(), exts.bytes(exts.u16())
		if exts.err != nil || typ != 16 {
			continue
		}
		e := &reader{b: data}
		list := &reader{b: e.bytes(e.u16())}
		if p := list.bytes(list.u8()); list.err == nil {
			return string(p)
		}
	}
	return ""
}
