// Package labtoken is the lab's access token for a WebSocket proxy (kind
// ws-proxy): it names the targets (app names) a client may reach through the
// proxy and when it expires, signed with HMAC-SHA256 under the lab's secret.
//
// A token is two base64url (unpadded) parts joined by a dot:
//
//	base64url(payload) "." base64url(HMAC-SHA256(secret, base64url(payload)))
//
// where payload is the JSON {"targets":["ws","wss"],"exp":1767225600}
// (exp in Unix seconds). It is signed, not encrypted: anyone holding a token
// can read its targets, and only the secret's holder can make or change one.
// Like the lab's other packages under protocol it imports nothing of the
// project, so the apps (which check tokens) and the lab (which mints them)
// share it.
package labtoken

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// SecretSize is the size of a lab secret in bytes.
const SecretSize = 32

// MaxLen bounds a token's length (a longer one is refused unread).
const MaxLen = 4096

// Claims are what a token says.
type Claims struct {
	Targets []string `json:"targets"`
	Expires int64    `json:"exp"`
}

// ExpiresAt is the claims' expiry as a time.
func (c Claims) ExpiresAt() time.Time { return time.Unix(c.Expires, 0) }

// Allows reports whether the claims name target.
func (c Claims) Allows(target string) bool { return slices.Contains(c.Targets, target) }

// The reasons a token is refused. Each maps to an HTTP status with Status.
var (
	// ErrMalformed: not two base64url parts, or a payload that is not the
	// claims' JSON.
	ErrMalformed = errors.New("malformed token")
	// ErrForged: the signature does not match (made without the lab's
	// secret, or changed since).
	ErrForged = errors.New("token signature does not match the lab's secret")
	// ErrExpired: past its expiry.
	ErrExpired = errors.New("token expired")
	// ErrTarget: valid, but not for this target.
	ErrTarget = errors.New("token does not allow this target")
)

// Status is the HTTP status a refusal for err gets: 403 for a valid token
// that does not allow the target, 401 for any other token error.
func Status(err error) int {
	if errors.Is(err, ErrTarget) {
		return 403
	}
	return 401
}

// enc is strict: a part whose last character carries bits the encoding
// leaves out is refused, so one token has one spelling (a token's string
// cannot be varied to slip past a list of refused or logged tokens).
var enc = base64.RawURLEncoding.Strict()

func sign(secret []byte, payload string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// Mint makes a token for targets that expires ttl after now.
func Mint(secret []byte, targets []string, ttl time.Duration, now time.Time) (string, error) {
	if len(secret) < 16 {
		return "", errors.New("the lab secret is too short (want at least 16 bytes)")
	}
	if len(targets) == 0 {
		return "", errors.New("a token needs at least one target")
	}
	for _, t := range targets {
		if t == "" || strings.ContainsAny(t, "/.") {
			return "", fmt.Errorf("target %q: want an app name", t)
		}
	}
	if ttl <= 0 {
		return "", fmt.Errorf("ttl %s: want a positive duration", ttl)
	}
	b, err := json.Marshal(Claims{Targets: targets, Expires: now.Add(ttl).Unix()})
	if err != nil {
		return "", err
	}
	p := enc.EncodeToString(b)
	return p + "." + enc.EncodeToString(sign(secret, p)), nil
}

// Parse checks token's signature and expiry and returns its claims. The
// errors wrap ErrMalformed, ErrForged or ErrExpired; the signature is checked
// before the payload is read.
func Parse(secret []byte, token string, now time.Time) (Claims, error) {
	if len(token) > MaxLen {
		return Claims{}, fmt.Errorf("%w: %d bytes (at most %d)", ErrMalformed, len(token), MaxLen)
	}
	p, sig, ok := strings.Cut(token, ".")
	if !ok || p == "" || sig == "" {
		return Claims{}, fmt.Errorf("%w: want payload.signature", ErrMalformed)
	}
	got, err := enc.DecodeString(sig)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: signature is not base64url: %v", ErrMalformed, err)
	}
	if !hmac.Equal(got, sign(secret, p)) {
		return Claims{}, ErrForged
	}
	b, err := enc.DecodeString(p)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: payload is not base64url: %v", ErrMalformed, err)
	}
	var c Claims
	if err := json.Unmarshal(b, &c); err != nil {
		return Claims{}, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if len(c.Targets) == 0 || c.Expires == 0 {
		return Claims{}, fmt.Errorf("%w: payload names no targets or no expiry", ErrMalformed)
	}
	if !now.Before(c.ExpiresAt()) {
		return c, fmt.Errorf("%w at %s", ErrExpired, c.ExpiresAt().UTC().Format(time.RFC3339))
	}
	return c, nil
}

// Check parses token and checks that it allows target.
func Check(secret []byte, token, target string, now time.Time) (Claims, error) {
	c, err := Parse(secret, token, now)
	if err != nil {
		return c, err
	}
	if !c.Allows(target) {
		return c, fmt.Errorf("%w: %q (it allows %s)", ErrTarget, target, strings.Join(c.Targets, ", "))
	}
	return c, nil
}

// SecretFile is the lab secret's file name in the state directory.
const SecretFile = "token-secret"

// LoadSecret reads the secret at path, or makes one (random, written 0600)
// when there is none. A secret file others can read or write is refused.
func LoadSecret(path string) ([]byte, error) {
	if b, err := ReadSecret(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return b, err
	}
	b := make([]byte, SecretSize)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lab secret: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // made by another process meanwhile
		return ReadSecret(path)
	}
	if err != nil {
		return nil, fmt.Errorf("lab secret: %w", err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("lab secret %s: %w", path, err)
	}
	return b, nil
}

// ReadSecret reads an existing secret file, refusing one that group or
// others may read or write, or one of the wrong size.
func ReadSecret(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("lab secret %s is mode %04o: it must be readable by its owner only (chmod 600 %s)", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("lab secret: %w", err)
	}
	if len(b) != SecretSize {
		return nil, fmt.Errorf("lab secret %s holds %d bytes, not %d: remove it and a new one is made (tokens made with the old one stop working)", path, len(b), SecretSize)
	}
	return b, nil
}
