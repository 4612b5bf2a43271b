package rfc6455

import "unicode/utf8"

// UTF8 validates text that arrives in pieces — a text message's fragments,
// or a frame's payload as TCP delivers it — as RFC 6455 §8.1 asks: a
// receiver fails the connection as soon as the bytes so far cannot begin a
// valid UTF-8 text, not only at the end of the message. A sequence cut
// between two pieces is carried over; a byte that no continuation could
// make valid (an overlong form, a surrogate, a code point past U+10FFFF,
// 0xC0, 0xF5…) is refused where it stands. The zero value is ready to use.
type UTF8 struct {
	state utf8State
}

// utf8State is where the validator is within a sequence (RFC 3629 §4).
type utf8State uint8

const (
	utf8Accept  utf8State = iota // between characters
	utf8Need1                    // one continuation byte (80–BF) to go
	utf8Need2                    // two to go, the next one 80–BF
	utf8Need3                    // three to go, the next one 80–BF
	utf8AfterE0                  // E0: next A0–BF (no overlong), then one
	utf8AfterED                  // ED: next 80–9F (no surrogates), then one
	utf8AfterF0                  // F0: next 90–BF (no overlong), then two
	utf8AfterF4                  // F4: next 80–8F (≤ U+10FFFF), then two
	utf8Reject                   // invalid: stays so until Reset
)

// step moves the automaton by one byte.
func (s utf8State) step(b byte) utf8State {
	switch s {
	case utf8Accept:
		switch {
		case b < 0x80:
			return utf8Accept
		case b >= 0xC2 && b <= 0xDF:
			return utf8Need1
		case b == 0xE0:
			return utf8AfterE0
		case b == 0xED:
			return utf8AfterED
		case b >= 0xE1 && b <= 0xEF:
			return utf8Need2
		case b == 0xF0:
			return utf8AfterF0
		case b >= 0xF1 && b <= 0xF3:
			return utf8Need3
		case b == 0xF4:
			return utf8AfterF4
		}
		return utf8Reject // 80–C1 (a continuation, an overlong lead), F5–FF
	case utf8Need1, utf8Need2, utf8Need3:
		if b >= 0x80 && b <= 0xBF {
			return s - 1
		}
	case utf8AfterE0:
		if b >= 0xA0 && b <= 0xBF {
			return utf8Need1
		}
	case utf8AfterED:
		if b >= 0x80 && b <= 0x9F {
			return utf8Need1
		}
	case utf8AfterF0:
		if b >= 0x90 && b <= 0xBF {
			return utf8Need2
		}
	case utf8AfterF4:
		if b >= 0x80 && b <= 0x8F {
			return utf8Need2
		}
	}
	return utf8Reject
}

// Write feeds the next piece of the text and reports whether everything
// so far can still be valid UTF-8. Once it has said false it keeps saying
// so until Reset.
func (v *UTF8) Write(p []byte) bool {
	s := v.state
	i := 0
	// Finish a sequence the previous piece left open.
	for ; i < len(p) && s != utf8Accept && s != utf8Reject; i++ {
		s = s.step(p[i])
	}
	if s == utf8Reject {
		v.state = s
		return false
	}
	rest := p[i:]
	// The bulk goes through the standard library's validator, up to the
	// start of the last character, which may be cut by the end of the piece.
	cut := len(rest)
	for k := len(rest) - 1; k >= 0 && k >= len(rest)-utf8.UTFMax; k-- {
		if utf8.RuneStart(rest[k]) {
			cut = k
			break
		}
	}
	if !utf8.Valid(rest[:cut]) {
		v.state = utf8Reject
		return false
	}
	for _, b := range rest[cut:] {
		if s = s.step(b); s == utf8Reject {
			break
		}
	}
	v.state = s
	return s != utf8Reject
}

// Valid reports whether the text so far can still be valid (it may end
// inside a character).
func (v *UTF8) Valid() bool { return v.state != utf8Reject }

// Complete reports whether the text so far is valid and ends on a
// character boundary: what a whole message must be.
func (v *UTF8) Complete() bool { return v.state == utf8Accept }

// Reset starts a new text.
func (v *UTF8) Reset() { v.state = utf8Accept }
