package labtoken

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTokens(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	other := []byte("fedcba9876543210fedcba9876543210")
	now := time.Unix(1_800_000_000, 0)
	good, err := Mint(secret, []string{"ws", "wss"}, 10*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := Mint(other, []string{"ws", "wss"}, 10*time.Minute, now)
	payload, sig, _ := strings.Cut(good, ".")
	// The payload changed, the signature kept: a widened token.
	wider, _ := Mint(other, []string{"ws", "wss", "admin"}, 10*time.Minute, now)
	widened := strings.Split(wider, ".")[0] + "." + sig
	for _, tc := range []struct {
		name, token, target string
		at                  time.Time
		want                error
		status              int
	}{
		{"valid", good, "wss", now, nil, 0},
		{"other target", good, "http", now, ErrTarget, 403},
		{"expired", good, "ws", now.Add(10 * time.Minute), ErrExpired, 401},
		{"forged", forged, "ws", now, ErrForged, 401},
		{"widened", widened, "admin", now, ErrForged, 401},
		{"no dot", payload, "ws", now, ErrMalformed, 401},
		{"empty", "", "ws", now, ErrMalformed, 401},
		{"bad base64", payload + ".!!!", "ws", now, ErrMalformed, 401},
		{"huge", strings.Repeat("a", MaxLen+1), "ws", now, ErrMalformed, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Check(secret, tc.token, tc.target, tc.at)
			if tc.want == nil {
				if err != nil || !c.Allows("ws") || c.ExpiresAt() != now.Add(10*time.Minute) {
					t.Fatalf("Check = %+v, %v", c, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if Status(err) != tc.status {
				t.Errorf("status %d, want %d", Status(err), tc.status)
			}
		})
	}
	for _, bad := range []struct {
		secret  []byte
		targets []string
		ttl     time.Duration
	}{
		{[]byte("short"), []string{"ws"}, time.Minute},
		{secret, nil, time.Minute},
		{secret, []string{"a/b"}, time.Minute},
		{secret, []string{"ws"}, 0},
	} {
		if _, err := Mint(bad.secret, bad.targets, bad.ttl, now); err == nil {
			t.Errorf("Mint(%q, %v, %s) made a token", bad.secret, bad.targets, bad.ttl)
		}
	}
}

func TestSecretFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", SecretFile)
	a, err := LoadSecret(path)
	if err != nil || len(a) != SecretSize {
		t.Fatalf("LoadSecret: %d bytes, %v", len(a), err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	b, err := LoadSecret(path)
	if err != nil || string(a) != string(b) {
		t.Fatalf("a second load made another secret (%v)", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSecret(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable secret was used: %v", err)
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("short"), 0o600)
	if _, err := LoadSecret(path); err == nil || !strings.Contains(err.Error(), "holds 5 bytes") {
		t.Errorf("a short secret: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	good, _ := Mint(secret, []string{"ws"}, time.Minute, now)
	f.Add(good)
	f.Add("e30.")
	f.Add("..")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := Parse(secret, tok, now)
		if err == nil {
			// Only what the secret signed parses: it must mint back the same.
			again, merr := Mint(secret, c.Targets, c.ExpiresAt().Sub(now), now)
			if merr == nil && again != tok && len(c.Targets) > 0 {
				// Different JSON spelling of the same claims is possible
				// only if someone had the secret; a fuzzer does not.
				t.Fatalf("parsed a token the secret did not make: %q", tok)
			}
		}
	})
}

// TestOneSpellingPerToken: the last character of a base64url part carries
// bits the encoding leaves out; a token whose signature differs from a good
// one only there is refused, not taken as the same token.
func TestOneSpellingPerToken(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	good, err := Mint(secret, []string{"ws"}, time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(secret, good, now); err != nil {
		t.Fatalf("the minted token: %v", err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, good[len(good)-1])
	// A 32-byte signature is 43 characters: the last carries 4 bits, the
	// 2 below them unused; flipping those gives the same bytes leniently.
	for _, flip := range []int{1, 2, 3} {
		other := good[:len(good)-1] + string(alphabet[last^flip])
		if _, err := Parse(secret, other, now); err == nil {
			t.Errorf("%q (the good token's last character changed in bits the encoding leaves out) parsed", other)
		}
	}
}
