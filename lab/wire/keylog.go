package wire

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeyLog holds TLS secrets in the NSS key log format that Go's
// tls.Config.KeyLogWriter writes ("LABEL <client random> <secret>"). It is an
// io.Writer, safe for concurrent use: the lab's clients write to it while the
// decoder reads from it.
type KeyLog struct {
	mu      sync.Mutex
	secrets map[string][]byte // label + " " + client random (hex) → secret
	raw     bytes.Buffer      // every valid line, for the pcapng secrets block
	partial []byte
	version atomic.Uint64 // bumped on every new secret
	sink    io.Writer     // optional copy (a 0600 file)
}

// NewKeyLog returns an empty key log; every line written is also copied to
// sink when it is not nil.
func NewKeyLog(sink io.Writer) *KeyLog {
	return &KeyLog{secrets: make(map[string][]byte), sink: sink}
}

// Write implements io.Writer. Lines that are not key log lines are ignored.
func (k *KeyLog) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	data := append(k.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		k.addLocked(data[:i])
		data = data[i+1:]
	}
	k.partial = append(k.partial[:0], data...)
	if k.sink != nil {
		if _, err := k.sink.Write(p); err != nil {
			return len(p), fmt.Errorf("copying TLS key log: %w", err)
		}
	}
	return len(p), nil
}

// SetSink makes every secret, those held now and those to come, also go to
// w (a 0600 file that keeps the run's key log).
func (k *KeyLog) SetSink(w io.Writer) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sink = w
	if w == nil || k.raw.Len() == 0 {
		return nil
	}
	if _, err := w.Write(k.raw.Bytes()); err != nil {
		return fmt.Errorf("writing the TLS key log: %w", err)
	}
	return nil
}

// Load reads a key log (a file, or a pcapng secrets block).
func (k *KeyLog) Load(r io.Reader) error {
	sc := bufio.NewScanner(r)
	k.mu.Lock()
	defer k.mu.Unlock()
	for sc.Scan() {
		k.addLocked(sc.Bytes())
	}
	return sc.Err()
}

func (k *KeyLog) addLocked(line []byte) {
	f := strings.Fields(string(line))
	if len(f) != 3 || strings.HasPrefix(f[0], "#") {
		return
	}
	cr, err1 := hex.DecodeString(f[1])
	secret, err2 := hex.DecodeString(f[2])
	if err1 != nil || err2 != nil || len(cr) != 32 || len(secret) == 0 {
		return
	}
	key := f[0] + " " + strings.ToLower(f[1])
	if _, dup := k.secrets[key]; dup {
		return
	}
	k.secrets[key] = secret
	k.raw.WriteString(strings.Join(f, " "))
	k.raw.WriteByte('\n')
	k.version.Add(1)
}

// Secret returns the secret logged under label for a client random.
func (k *KeyLog) Secret(label string, clientRandom []byte) []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.secrets[label+" "+hex.EncodeToString(clientRandom)]
}

// Bytes returns every secret as key log text.
func (k *KeyLog) Bytes() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return bytes.Clone(k.raw.Bytes())
}

// Len is the number of secrets held.
func (k *KeyLog) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.secrets)
}

// Version changes whenever a secret is added.
func (k *KeyLog) Version() uint64 { return k.version.Load() }

// Key-log labels of TLS 1.3 traffic secrets.
const (
	labelClientHS  = "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
	labelServerHS  = "SERVER_HANDSHAKE_TRAFFIC_SECRET"
	labelClientApp = "CLIENT_TRAFFIC_SECRET_0"
	labelServerApp = "SERVER_TRAFFIC_SECRET_0"
)

// suiteHash returns the hash and key length of a TLS 1.3 cipher suite.
func suiteHash(suite uint16) (func() hash.Hash, int, bool) {
	switch suite {
	case 0x1301: // TLS_AES_128_GCM_SHA256
		return sha256.New, 16, true
	case 0x1302: // TLS_AES_256_GCM_SHA384
		return sha512.New384, 32, true
	case 0x1303: // TLS_CHACHA20_POLY1305_SHA256
		return sha256.New, 32, true
	}
	return nil, 0, false
}

// expandLabel is HKDF-Expand-Label from RFC 8446 §7.1.
func expandLabel(h func() hash.Hash, secret []byte, label string, length int) ([]byte, error) {
	full := "tls13 " + label
	info := make([]byte, 0, 4+len(full))
	info = binary.BigEndian.AppendUint16(info, uint16(length))
	info = append(info, byte(len(full)))
	info = append(info, full...)
	info = append(info, 0) // empty context
	return hkdf.Expand(h, secret, string(info), length)
}

// trafficKeys is one direction's record protection for one secret.
type trafficKeys struct {
	suite  uint16
	secret []byte
	aead   cipher.AEAD
	iv     []byte
	seq    uint64
	nonce  [12]byte
	plain  []byte // reused: callers copy what they keep
}

func newTrafficKeys(suite uint16, secret []byte) (*trafficKeys, error) {
	h, keyLen, ok := suiteHash(suite)
	if !ok {
		return nil, fmt.Errorf("cipher suite 0x%04x is not a TLS 1.3 suite protolab can decrypt", suite)
	}
	key, err := expandLabel(h, secret, "key", keyLen)
	if err != nil {
		return nil, err
	}
	iv, err := expandLabel(h, secret, "iv", 12)
	if err != nil {
		return nil, err
	}
	var aead cipher.AEAD
	if suite == 0x1303 {
		aead, err = chacha20poly1305.New(key)
	} else {
		var block cipher.Block
		if block, err = aes.NewCipher(key); err == nil {
			aead, err = cipher.NewGCM(block)
		}
	}
	if err != nil {
		return nil, err
	}
	return &trafficKeys{suite: suite, secret: secret, aead: aead, iv: iv}, nil
}

// next derives the keys after a KeyUpdate (RFC 8446 §7.2).
func (t *trafficKeys) next() (*trafficKeys, error) {
	h, _, _ := suiteHash(t.suite)
	secret, err := expandLabel(h, t.secret, "traffic upd", h().Size())
	if err != nil {
		return nil, err
	}
	return newTrafficKeys(t.suite, secret)
}

// open decrypts one TLS 1.3 record and returns the inner content type and
// the plaintext (padding removed). The plaintext is valid until the next
// open: the decoder copies what it keeps.
func (t *trafficKeys) open(header, body []byte) (byte, []byte, error) {
	nonce := t.nonce[:]
	copy(nonce, t.iv)
	for i := 0; i < 8; i++ {
		nonce[4+i] ^= byte(t.seq >> (56 - 8*i))
	}
	plain, err := t.aead.Open(t.plain[:0], nonce, body, header)
	t.plain = plain
	if err != nil {
		return 0, nil, fmt.Errorf("record %d does not decrypt with the logged key: %w", t.seq, err)
	}
	t.seq++
	i := len(plain) - 1
	for i >= 0 && plain[i] == 0 {
		i--
	}
	if i < 0 {
		return 0, nil, fmt.Errorf("record %d has no inner content type", t.seq-1)
	}
	return plain[i], plain[:i], nil
}
