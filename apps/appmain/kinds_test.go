package appmain

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/protocol/labrpc"
)

// pemFiles writes a self-signed certificate for localhost and its key, and
// returns their paths and a pool trusting it.
func pemFiles(t *testing.T) (cert, key string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "leaf.pem"), filepath.Join(dir, "leaf-key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return cert, key, pool
}

// lockedBuf is a process's standard error, read while it runs.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// app runs this test binary as protolab-app (the name under which init
// runs the app, as in the lab's FROM scratch image) with env only, waits
// for its GET /health over HTTP/1.1 and stops it with SIGTERM at the end,
// checking it exits 0.
func app(t *testing.T, pool *x509.CertPool, env ...string) (addr string, stderr *lockedBuf) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), Name)
	if err := os.Symlink(self, bin); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"PROTOLAB_ADDR=" + addr}, env...)
	stderr = &lockedBuf{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("%v: exit %v\n%s", env, err, stderr)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("%v: still running 10 s after SIGTERM", env)
		}
	})
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: time.Second}
	scheme := "http"
	if pool != nil {
		scheme = "https"
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := c.Get(scheme + "://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && resp.ProtoMajor == 1 {
				return addr, stderr
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("%v: exited %v\n%s", env, err, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v: no GET /health within 10 s (%v)\n%s", env, err, stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNewKindsFromTheEnvironment runs the issue-14 kinds as a container
// runs them, from PROTOLAB_* alone: a wss chat; an sse app fed by it
// (PROTOLAB_UPSTREAMS, the CA in PROTOLAB_CA, its TLS secrets on standard
// error with the key-log prefix) whose chat stream joins the room; a grpcs
// app answering gRPC and HTTP/1.1 on one port; an h2 echo-http; a chat-ws
// with PROTOLAB_COMPRESSION=deflate.
func TestNewKindsFromTheEnvironment(t *testing.T) {
	if os.Getenv("PROTOLAB_MODE") != "" {
		t.Skip("PROTOLAB_MODE is set in the environment")
	}
	cert, key, pool := pemFiles(t)
	tlsEnv := []string{"PROTOLAB_TLS_CERT=" + cert, "PROTOLAB_TLS_KEY=" + key}

	hub, _ := app(t, pool, append(tlsEnv, "PROTOLAB_MODE=wss", "PROTOLAB_NAME=protolab-hub")...)
	sse, sseErr := app(t, nil, "PROTOLAB_MODE=sse", "PROTOLAB_UPSTREAMS=hub=wss://"+hub, "PROTOLAB_CA="+cert, "PROTOLAB_KEYLOG_STDERR=1")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+sse+"/chat/events?name=ann", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /chat/events: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	var events []string
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() && len(events) < 2 {
		if e, ok := strings.CutPrefix(lines.Text(), "event: "); ok {
			events = append(events, e)
		}
	}
	resp.Body.Close()
	if strings.Join(events, ",") != protocol.SSEHello+","+protocol.SSEChat {
		t.Errorf("the chat stream's first events: %v, want hello then the chat's greeting", events)
	}
	if !strings.Contains(sseErr.String(), protocol.KeyLogPrefix) {
		t.Errorf("no key-log line on the sse app's standard error:\n%s", sseErr)
	}

	grpcs, _ := app(t, pool, append(tlsEnv, "PROTOLAB_MODE=grpcs")...)
	cc, err := grpc.NewClient("passthrough:///"+grpcs, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "localhost"})))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if reply, err := labrpc.NewEchoClient(cc).Say(ctx, &labrpc.EchoRequest{Text: "hi", Seq: 9}); err != nil || reply.GetApp() != "protolab-grpcs" || reply.GetSeq() != 9 {
		t.Errorf("Say on grpcs: %v %v", reply, err)
	}

	h2, _ := app(t, pool, append(tlsEnv, "PROTOLAB_MODE=h2")...)
	var ps http.Protocols
	ps.SetHTTP2(true)
	resp, err = (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Protocols: &ps}}).Get("https://" + h2 + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || !strings.Contains(string(body), `"protocol":"h2"`) {
		t.Errorf("GET / on h2: %s %s", resp.Proto, body)
	}

	ws, _ := app(t, nil, "PROTOLAB_MODE=ws", "PROTOLAB_COMPRESSION=deflate")
	nc, err := net.Dial("tcp", ws)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(nc, "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || !strings.HasPrefix(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
		t.Errorf("a compressing chat-ws answered %s, extensions %q", resp.Status, resp.Header.Get("Sec-WebSocket-Extensions"))
	}
}
