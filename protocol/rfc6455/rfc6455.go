// Package rfc6455 holds what RFC 6455 (The WebSocket Protocol) asks a
// receiver to check, in one place for the three parts of protolab that care:
// the apps, which enforce it (closing 1002, 1007…), the lab's decoder, which
// flags a breach it sees on the wire, and the conformance suite, which
// expects it. It covers opcodes, close status codes and UTF-8 validation of
// text that arrives a piece at a time (fragments, TCP segments). Like its
// parent it imports nothing of the project: the apps stand alone.
package rfc6455

import (
	"crypto/sha1"
	"encoding/base64"
)

// Opcodes (RFC 6455 §5.2).
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// Close status codes (RFC 6455 §7.4.1, and the IANA registry for
// 1012–1014).
const (
	CloseNormal          uint16 = 1000
	CloseGoingAway       uint16 = 1001
	CloseProtocolError   uint16 = 1002
	CloseUnsupportedData uint16 = 1003
	CloseNoStatus        uint16 = 1005 // never on the wire: "the frame had no code"
	CloseAbnormal        uint16 = 1006 // never on the wire: "the connection dropped"
	CloseInvalidPayload  uint16 = 1007
	ClosePolicyViolation uint16 = 1008
	CloseTooBig          uint16 = 1009
	CloseMandatoryExt    uint16 = 1010
	CloseInternalError   uint16 = 1011
	CloseServiceRestart  uint16 = 1012
	CloseTryAgainLater   uint16 = 1013
	CloseBadGateway      uint16 = 1014
	CloseTLSHandshake    uint16 = 1015 // never on the wire
)

// MaxControlPayload is the largest payload of a control frame (§5.5).
const MaxControlPayload = 125

// Control reports whether op is a control opcode (close, ping, pong and the
// reserved 0xB–0xF).
func Control(op byte) bool { return op&0x8 != 0 }

// KnownOpcode reports whether op is defined (the others are reserved and
// fail the connection, §5.2).
func KnownOpcode(op byte) bool {
	switch op {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
		return true
	}
	return false
}

// ValidCloseCode reports whether a Close frame may carry code (§7.4): the
// codes defined for use (1000–1003, 1007–1011, and 1012–1014 from the IANA
// registry), the registered and private ranges 3000–4999. 1004 is reserved,
// 1005, 1006 and 1015 must never be sent, everything else below 3000 is
// reserved for the protocol and 5000 and up are not defined.
func ValidCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// CloseName names a close code for people ("1007 invalid payload data").
func CloseName(code uint16) string {
	switch code {
	case CloseNormal:
		return "normal closure"
	case CloseGoingAway:
		return "going away"
	case CloseProtocolError:
		return "protocol error"
	case CloseUnsupportedData:
		return "unsupported data"
	case CloseNoStatus:
		return "no status received"
	case CloseAbnormal:
		return "abnormal closure"
	case CloseInvalidPayload:
		return "invalid payload data"
	case ClosePolicyViolation:
		return "policy violation"
	case CloseTooBig:
		return "message too big"
	case CloseMandatoryExt:
		return "mandatory extension"
	case CloseInternalError:
		return "internal error"
	case CloseServiceRestart:
		return "service restart"
	case CloseTryAgainLater:
		return "try again later"
	case CloseBadGateway:
		return "bad gateway"
	case CloseTLSHandshake:
		return "TLS handshake"
	}
	if code >= 3000 && code <= 4999 {
		return "application-defined"
	}
	return "reserved"
}

// keyGUID is the GUID RFC 6455 §1.3 appends to the client's key.
const keyGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey is the Sec-WebSocket-Accept a server answers to the client's
// Sec-WebSocket-Key (§4.2.2): base64(SHA-1(key + GUID)).
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + keyGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// ValidKey reports whether a Sec-WebSocket-Key is what §4.1 asks for: the
// base64 encoding of 16 bytes.
func ValidKey(key string) bool {
	b, err := base64.StdEncoding.DecodeString(key)
	return err == nil && len(b) == 16
}
