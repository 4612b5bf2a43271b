package probe

import (
	"bytes"
	"context"
	"crypto/x509"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/protolab/protolab-tui/internal/labapps"
	"github.com/protolab/protolab-tui/lab/pki"
	"github.com/protolab/protolab-tui/protocol"
)

// TestMain lets this test binary be the probe worker.
func TestMain(m *testing.M) {
	ServeWorker()
	os.Exit(m.Run())
}

// lockedBuffer is a key log written from the worker's relay goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestWorkerRunsEveryProtocolInAnotherProcess(t *testing.T) {
	auth, err := pki.Load(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := labapps.Start(auth)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	for _, p := range protocol.All() {
		t.Run(string(p), func(t *testing.T) {
			var keys lockedBuffer
			tg := Target{App: "app-" + string(p), Protocol: p, Addr: a.Addrs[p], ServerName: "localhost",
				RootCAs: auth.Pool(), Roots: []*x509.Certificate{auth.CA}, KeyLog: &keys}
			res, err := RunClient(context.Background(), tg, Options{Count: 30, Warmup: 5, Payload: 40})
			if err != nil {
				t.Fatal(err)
			}
			if !res.OK || res.Client != ClientWorker || res.Messages != 30 || res.Warmup != 5 || res.App != tg.App || res.Addr != tg.Addr {
				t.Errorf("result %+v: want ok from the worker, 30 measured round trips after 5 warm-up", res)
			}
			if res.RTTP50Ms <= 0 || res.MsgsPerS <= 0 || res.SentB < 30*40 {
				t.Errorf("implausible figures from the worker: %+v", res)
			}
			if got := strings.Count(keys.String(), "CLIENT_TRAFFIC_SECRET_0 "); p.Secure() != (got == 1) {
				t.Errorf("%s: %d client traffic secrets came back from the worker's key log:\n%s", p, got, keys.String())
			}
			sent, err := SendClient(context.Background(), tg, "hello from the worker", Options{})
			if err != nil || sent.Reply != "hello from the worker" {
				t.Errorf("send through the worker: %+v, %v", sent, err)
			}
		})
	}
}

// A dialer that lives only in the lab's process (a socket tap) still carries
// the worker's bytes, through the relay.
func TestWorkerRelaysThroughTheLabsDialer(t *testing.T) {
	auth, err := pki.Load(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := labapps.Start(auth)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	var dials atomic.Int32
	tg := Target{Protocol: protocol.WSS, Addr: a.Addrs[protocol.WSS], ServerName: "localhost",
		RootCAs: auth.Pool(), Roots: []*x509.Certificate{auth.CA},
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
	res, err := RunClient(context.Background(), tg, Options{Count: 20})
	if err != nil {
		t.Fatal(err)
	}
	if res.Client != ClientWorkerRelay || res.Messages != 20 || dials.Load() != 1 {
		t.Errorf("client %q, %d messages, %d dials through the lab's dialer: want the relay, 20, 1", res.Client, res.Messages, dials.Load())
	}
}

func TestWorkerErrors(t *testing.T) {
	// A secure target without the CA's certificates cannot be handed over.
	_, err := RunClient(context.Background(), Target{Protocol: protocol.HTTPS, Addr: "127.0.0.1:1"}, Options{})
	if err == nil || !strings.Contains(err.Error(), "no lab CA certificate") {
		t.Errorf("secure target without roots: %v", err)
	}
	// A refused connection comes back as the worker's error, with a result.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res, err := RunClient(context.Background(), Target{App: "gone", Protocol: protocol.HTTP, Addr: addr}, Options{})
	if err == nil || res.OK || !strings.Contains(res.Error, "connecting to "+addr) || res.Client != ClientWorker {
		t.Errorf("refused: %+v, %v", res, err)
	}
	// In-process when asked.
	res, _ = RunClient(context.Background(), Target{App: "gone", Protocol: protocol.HTTP, Addr: addr}, Options{Client: ClientInProcess})
	if res.Client != ClientInProcess {
		t.Errorf("client %q, want in-process", res.Client)
	}
}

func TestPinProcess(t *testing.T) {
	var was unix.CPUSet
	if err := unix.SchedGetaffinity(0, &was); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pinSet(&was) })
	if err := pinProcess([]int{0}); err != nil {
		t.Skipf("this machine does not allow pinning: %v", err)
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "Cpus_allowed_list:\t0\n") {
		t.Errorf("after pinning to cpu 0, /proc/self/status says:\n%s", b)
	}
}
