package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLoadCreatesAndReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	a, err := Load(dir, []string{"lab.test", "10.1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("PKI dir mode = %v, %v; want 0700", st.Mode().Perm(), err)
	}
	for name, want := range map[string]os.FileMode{CAFile: 0o644, CAKeyFile: 0o600, LeafFile: 0o644, LeafKeyFile: 0o600} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode = %v, want %v", name, st.Mode().Perm(), want)
		}
	}
	for _, n := range []string{"localhost", "127.0.0.1", "::1", "lab.test", "10.1.2.3"} {
		if err := a.LeafCert.VerifyHostname(n); err != nil {
			t.Errorf("leaf does not cover %s: %v", n, err)
		}
	}
	if a.CA.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("CA key algorithm = %v, want ECDSA", a.CA.PublicKeyAlgorithm)
	}

	b, err := Load(dir, []string{"lab.test"})
	if err != nil {
		t.Fatal(err)
	}
	if b.Fingerprint() != a.Fingerprint() {
		t.Error("second Load made a new CA instead of reusing the first")
	}
	if !b.LeafCert.Equal(a.LeafCert) {
		t.Error("second Load issued a new leaf although the old one still fits")
	}

	c, err := Load(dir, []string{"other.test"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Fingerprint() != a.Fingerprint() || c.LeafCert.Equal(a.LeafCert) {
		t.Error("a new name should issue a new leaf from the same CA")
	}
	if err := c.LeafCert.VerifyHostname("other.test"); err != nil {
		t.Error(err)
	}
}

func TestRenewsNearExpiry(t *testing.T) {
	dir := t.TempDir()
	a, err := Load(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Two thirds of the leaf's life later, the leaf is renewed, the CA kept.
	later := time.Now().Add(LeafLifetime * 2 / 3).Add(time.Hour)
	b, err := load(dir, nil, later)
	if err != nil {
		t.Fatal(err)
	}
	if b.Fingerprint() != a.Fingerprint() {
		t.Error("CA renewed although it is far from expiry")
	}
	if b.LeafCert.Equal(a.LeafCert) {
		t.Error("leaf near expiry was not renewed")
	}
	// Near the CA's expiry, both are renewed.
	c, err := load(dir, nil, time.Now().Add(CALifetime*2/3).Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if c.Fingerprint() == a.Fingerprint() {
		t.Error("CA near expiry was not renewed")
	}
	if err := c.LeafCert.CheckSignatureFrom(c.CA); err != nil {
		t.Errorf("leaf not signed by the new CA: %v", err)
	}
}

func TestCorruptCAIsAClearError(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CAKeyFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(dir, nil)
	if err == nil {
		t.Fatal("a corrupt CA key loaded")
	}
	t.Log(err)
}

// serve runs a TLS echo-once server with the lab leaf.
func serve(t *testing.T, a *Authority) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", a.ServerTLS())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.WriteString(c, "hello")
			}()
		}
	}()
	return l.Addr().String()
}

func TestClientsTrustOnlyTheLabCA(t *testing.T) {
	a, err := Load(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, a)
	_, port, _ := net.SplitHostPort(addr)

	for _, name := range []string{"localhost", "127.0.0.1"} {
		c, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", port), a.ClientTLS(name))
		if err != nil {
			t.Fatalf("client trusting the lab CA (name %s): %v", name, err)
		}
		b, _ := io.ReadAll(c)
		c.Close()
		if string(b) != "hello" {
			t.Errorf("read %q", b)
		}
	}

	other, err := Load(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = tls.Dial("tcp", addr, other.ClientTLS("localhost"))
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("client trusting another CA: err = %v, want unknown authority", err)
	}
	_, err = tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost"}) // system roots
	if err == nil {
		t.Error("a client with the system roots accepted the lab certificate")
	}
	_, err = tls.Dial("tcp", addr, a.ClientTLS("not-in-the-cert.example"))
	var host x509.HostnameError
	if !errors.As(err, &host) {
		t.Errorf("wrong server name: err = %v, want hostname error", err)
	}
}

func TestFingerprintFormat(t *testing.T) {
	a, err := Load(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	fp := a.Fingerprint()
	if len(fp) != 32*3-1 || fp[2] != ':' {
		t.Errorf("fingerprint %q is not 32 colon-separated bytes", fp)
	}
}
