package rfc6455

import (
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

// canStillBeValid is the oracle for a prefix: some ending makes it valid
// UTF-8. The endings tried cover every continuation byte range a lead byte
// can ask for (80–8F after F4, 90–BF after F0, 80–9F after ED, A0–BF after
// E0).
func canStillBeValid(p []byte) bool {
	if utf8.Valid(p) {
		return true
	}
	for n := 1; n <= 3; n++ {
		for _, first := range []byte{0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF} {
			end := append([]byte{first}, []byte(strings.Repeat("\x80", n-1))...)
			if utf8.Valid(append(append([]byte(nil), p...), end...)) {
				return true
			}
		}
	}
	return false
}

// feed writes p in pieces of n bytes and checks the verdict after each
// piece against the oracle.
func feed(t testing.TB, p []byte, n int) (v UTF8) {
	t.Helper()
	// Once a prefix cannot be repaired no longer one can: the first such
	// length is found by bisection.
	dead := sort.Search(len(p)+1, func(k int) bool { return !canStillBeValid(p[:k]) })
	for i := 0; i < len(p); i += n {
		j := min(i+n, len(p))
		got := v.Write(p[i:j])
		if want := j < dead; got != want {
			t.Fatalf("%x in pieces of %d: after %d bytes Write says %v, want %v", p, n, j, got, want)
		}
		if v.Valid() != got {
			t.Fatalf("%x: Valid %v after Write said %v", p, v.Valid(), got)
		}
	}
	return v
}

func TestUTF8(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"empty", "", true},
		{"ascii", "Hello-µ@ßöäüàá-UTF-8!!", true},
		{"greek", "κόσμε", true},
		{"first of each length", "\x00\xc2\x80\xe0\xa0\x80\xf0\x90\x80\x80", true},
		{"last of each length", "\x7f\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf", true},
		{"around the surrogates", "\xed\x9f\xbf\xee\x80\x80", true},
		{"noncharacters are valid", "\xef\xbf\xbe\xef\xbf\xbf\xf0\x9f\xbf\xbe", true},
		{"replacement character", "\xef\xbf\xbd", true},
		{"past U+10FFFF", "\xf4\x90\x80\x80", false},
		{"5-byte form", "\xf8\x88\x80\x80\x80", false},
		{"6-byte form", "\xfc\x84\x80\x80\x80\x80", false},
		{"lone continuation", "a\x80b", false},
		{"lonely start", "\xc0 ", false},
		{"missing continuation", "\xdf", false},
		{"missing two", "\xef\xbf", false},
		{"overlong slash", "\xc0\xaf", false},
		{"overlong 3", "\xe0\x80\xaf", false},
		{"overlong 4", "\xf0\x80\x80\xaf", false},
		{"overlong NUL", "\xc0\x80", false},
		{"max overlong", "\xc1\xbf", false},
		{"surrogate", "\xed\xa0\x80", false},
		{"paired surrogates", "\xed\xa0\x80\xed\xb0\x80", false},
		{"impossible bytes", "\xfe\xff", false},
		{"invalid then valid", "κόσμε\xce\xbaedited\xed\xa0\x80edited", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for n := 1; n <= len(tc.in)+1; n++ {
				v := feed(t, []byte(tc.in), n)
				if v.Complete() != tc.ok {
					t.Errorf("pieces of %d: Complete %v, want %v", n, v.Complete(), tc.ok)
				}
			}
		})
	}
}

func TestUTF8FailsFast(t *testing.T) {
	// The verdict comes at the first byte no ending could repair — before
	// the rest of the message arrives.
	for _, tc := range []struct {
		in     string
		failAt int // bytes written when Write first says false
	}{
		{"κόσμε\xf4\x90\x80\x80edited", 12},
		{"ab\xed\xa0", 4},
		{"\xe0\x80", 2},
		{"\xc0", 1},
		{"ok\xf5", 3},
	} {
		var v UTF8
		for i := range len(tc.in) {
			if ok := v.Write([]byte{tc.in[i]}); !ok {
				if i+1 != tc.failAt {
					t.Errorf("%q: refused at byte %d, want %d", tc.in, i+1, tc.failAt)
				}
				break
			}
		}
		if v.Valid() {
			t.Errorf("%q: never refused", tc.in)
		}
	}
	var v UTF8
	v.Write([]byte{0xff})
	if v.Write([]byte("fine")) || v.Valid() {
		t.Error("the validator forgot an earlier invalid byte")
	}
	v.Reset()
	if !v.Write([]byte("fine")) || !v.Complete() {
		t.Error("Reset did not start a new text")
	}
}

func TestCloseCodes(t *testing.T) {
	valid := []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999}
	invalid := []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}
	for _, c := range valid {
		if !ValidCloseCode(c) {
			t.Errorf("%d refused", c)
		}
	}
	for _, c := range invalid {
		if ValidCloseCode(c) {
			t.Errorf("%d accepted", c)
		}
	}
	if CloseName(1007) != "invalid payload data" || CloseName(4001) != "application-defined" || CloseName(2000) != "reserved" {
		t.Error("close names")
	}
	for op := range byte(16) {
		if KnownOpcode(op) != (op <= 2 || (op >= 8 && op <= 10)) {
			t.Errorf("opcode 0x%x", op)
		}
	}
}

func FuzzUTF8(f *testing.F) {
	f.Add([]byte("κόσμε"), uint8(1))
	f.Add([]byte("\xf4\x90\x80\x80"), uint8(2))
	f.Add([]byte("\xed\xa0\x80\xed\xb0\x80"), uint8(3))
	f.Add([]byte("plain ascii text and then \xe2\x82\xac"), uint8(7))
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8) {
		v := feed(t, b, int(chunk%16)+1)
		if v.Complete() != utf8.Valid(b) {
			t.Fatalf("%x: Complete %v, utf8.Valid %v", b, v.Complete(), utf8.Valid(b))
		}
	})
}

func BenchmarkUTF8(b *testing.B) {
	text := []byte(strings.Repeat("Hello, κόσμε! ", 4096))
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		var v UTF8
		for i := 0; i < len(text); i += 1000 {
			v.Write(text[i:min(i+1000, len(text))])
		}
		if !v.Complete() {
			b.Fatal("invalid")
		}
	}
}

func TestAcceptKey(t *testing.T) {
	// The example of RFC 6455 §1.3.
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("AcceptKey = %q", got)
	}
	for key, ok := range map[string]bool{"dGhlIHNhbXBsZSBub25jZQ==": true, "a2V5": false, "not base64!": false, "": false} {
		if ValidKey(key) != ok {
			t.Errorf("ValidKey(%q) = %v", key, !ok)
		}
	}
}
