// Package pki is the lab's certificate authority: an ECDSA P-256 CA and a leaf
// certificate for the lab's apps, kept in the lab's state directory, reused
// across runs and renewed when near expiry. Every TLS client in the lab
// verifies against this CA; nothing turns verification off.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File names inside the PKI directory.
const (
	CAFile      = "ca.pem"
	CAKeyFile   = "ca-key.pem"
	LeafFile    = "leaf.pem"
	LeafKeyFile = "leaf-key.pem"
)

// Lifetimes; a certificate is renewed once less than a third of its lifetime
// is left.
const (
	CALifetime   = 5 * 365 * 24 * time.Hour
	LeafLifetime = 90 * 24 * time.Hour
)

// DefaultNames are the subject alternative names every leaf carries.
var DefaultNames = []string{"localhost", "127.0.0.1", "::1"}

// Authority is a loaded lab CA with its current leaf certificate.
type Authority struct {
	Dir      string
	CA       *x509.Certificate
	caKey    *ecdsa.PrivateKey
	Leaf     tls.Certificate
	LeafCert *x509.Certificate
	pool     *x509.CertPool
}

// Load opens the CA in dir, creating it (and dir, mode 0700) when absent, and
// makes sure the leaf certificate covers DefaultNames plus extraNames and is
// not near expiry, issuing a new one when needed.
func Load(dir string, extraNames []string) (*Authority, error) {
	return load(dir, extraNames, time.Now())
}

func load(dir string, extraNames []string, now time.Time) (*Authority, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating PKI directory %s: %w", dir, err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	a := &Authority{Dir: dir}
	ca, key, err := readPair(filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile))
	switch {
	case err == nil && !nearExpiry(ca, now) && ca.IsCA:
		a.CA, a.caKey = ca, key
	case err == nil || errors.Is(err, os.ErrNotExist):
		if a.CA, a.caKey, err = a.newCA(now); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("lab CA in %s is unreadable (%w): delete the directory to create a new CA", dir, err)
	}
	a.pool = x509.NewCertPool()
	a.pool.AddCert(a.CA)

	names := mergeNames(extraNames)
	leaf, leafKey, err := readPair(filepath.Join(dir, LeafFile), filepath.Join(dir, LeafKeyFile))
	if err != nil || nearExpiry(leaf, now) || !covers(leaf, names) || leaf.CheckSignatureFrom(a.CA) != nil {
		if leaf, leafKey, err = a.newLeaf(names, now); err != nil {
			return nil, err
		}
	}
	a.LeafCert = leaf
	a.Leaf = tls.Certificate{
		Certificate: [][]byte{leaf.Raw, a.CA.Raw},
		PrivateKey:  leafKey,
		Leaf:        leaf,
	}
	return a, nil
}

// Pool returns a certificate pool holding only the lab CA.
func (a *Authority) Pool() *x509.CertPool { return a.pool }

// ServerTLS returns a server configuration presenting the leaf certificate.
func (a *Authority) ServerTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{a.Leaf}, MinVersion: tls.VersionTLS12}
}

// ClientTLS returns a client configuration that trusts only the lab CA.
func (a *Authority) ClientTLS(serverName string) *tls.Config {
	return &tls.Config{RootCAs: a.pool, ServerName: serverName, MinVersion: tls.VersionTLS12}
}

// Fingerprint is the SHA-256 fingerprint of the CA certificate, as
// colon-separated hex (what browsers and openssl show).
func (a *Authority) Fingerprint() string {
	sum := sha256.Sum256(a.CA.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// Path returns the path of one of the PKI files.
func (a *Authority) Path(name string) string { return filepath.Join(a.Dir, name) }

func mergeNames(extra []string) []string {
	names := slices.Clone(DefaultNames)
	for _, n := range extra {
		n = strings.TrimSpace(n)
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

func nearExpiry(c *x509.Certificate, now time.Time) bool {
	life := c.NotAfter.Sub(c.NotBefore)
	return now.Before(c.NotBefore) || c.NotAfter.Sub(now) < life/3
}

func covers(c *x509.Certificate, names []string) bool {
	for _, n := range names {
		if c.VerifyHostname(n) != nil {
			return false
		}
	}
	return true
}

func serial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	return n, nil
}

func (a *Authority) newCA(now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{Organization: []string{"protolab"}, CommonName: "protolab lab CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing new CA certificate: %w", err)
	}
	if err := writePair(filepath.Join(a.Dir, CAFile), filepath.Join(a.Dir, CAKeyFile), der, key); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func (a *Authority) newLeaf(names []string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating leaf key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{Organization: []string{"protolab"}, CommonName: names[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(LeafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.CA, &key.PublicKey, a.caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("issuing leaf certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing new leaf certificate: %w", err)
	}
	if err := writePair(filepath.Join(a.Dir, LeafFile), filepath.Join(a.Dir, LeafKeyFile), der, key); err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// readPair reads a PEM certificate and its PEM EC private key.
func readPair(certPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("%s holds no PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certPath, err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "EC PRIVATE KEY" {
		return nil, nil, fmt.Errorf("%s holds no PEM EC private key", keyPath)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s does not match %s", keyPath, certPath)
	}
	return cert, key, nil
}

// writePair writes the certificate (0644) and key (0600), each atomically.
func writePair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding key: %w", err)
	}
	if err := WriteFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return WriteFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, so readers never see a partial file, and sets mode exactly
// (whatever the umask).
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
