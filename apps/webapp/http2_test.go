package webapp

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/protocol"
)

// clientSpeaking is an HTTP client for r that speaks only the protocols
// set in ps (HTTP/2 alone forces h2 by ALPN, UnencryptedHTTP2 alone is h2c
// with prior knowledge).
func (r *running) clientSpeaking(ps http.Protocols) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.pool}, Protocols: &ps}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func protocols(http1, http2, h2c bool) http.Protocols {
	var ps http.Protocols
	ps.SetHTTP1(http1)
	ps.SetHTTP2(http2)
	ps.SetUnencryptedHTTP2(h2c)
	return ps
}

// get GETs path and returns the response with its body read.
func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp, string(b)
}

// TestEchoHTTPOverHTTP2: echo-http on h2 (TLS, ALPN h2) and h2c (prior
// knowledge) answers GET /, POST /echo, /health and /metrics over HTTP/2,
// and an HTTP/1.1 client (the lab's health check) is still served.
func TestEchoHTTPOverHTTP2(t *testing.T) {
	for _, tc := range []struct {
		p     protocol.Protocol
		h2    http.Protocols
		h1    http.Protocols
		proto string // the TLS connection's ALPN, "" for h2c
	}{
		{protocol.H2, protocols(false, true, false), protocols(true, false, false), "h2"},
		{protocol.H2C, protocols(false, false, true), protocols(true, false, false), ""},
	} {
		t.Run(string(tc.p), func(t *testing.T) {
			r := start(t, Config{Protocol: tc.p})
			c := r.clientSpeaking(tc.h2)

			resp, body := get(t, c, r.url("/"))
			if resp.ProtoMajor != 2 {
				t.Fatalf("GET / over %s answered %s, want HTTP/2", tc.p, resp.Proto)
			}
			if tc.proto != "" && (resp.TLS == nil || resp.TLS.NegotiatedProtocol != tc.proto) {
				t.Errorf("ALPN = %+v, want %s", resp.TLS, tc.proto)
			}
			var info Info
			if err := json.Unmarshal([]byte(body), &info); err != nil {
				t.Fatalf("GET / = %q: %v", body, err)
			}
			if want := (Info{App: "protolab-" + string(tc.p), Protocol: string(tc.p), Version: Version}); info != want {
				t.Errorf("GET / = %+v, want %+v", info, want)
			}

			resp, err := c.Post(r.url("/echo"), "text/plain", strings.NewReader("over HTTP/2"))
			if err != nil {
				t.Fatal(err)
			}
			echoed, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 || resp.StatusCode != 200 || string(echoed) != "over HTTP/2" {
				t.Errorf("POST /echo = %s %d %q", resp.Proto, resp.StatusCode, echoed)
			}

			resp, body = get(t, c, r.url("/health"))
			if resp.ProtoMajor != 2 || resp.StatusCode != 200 || !strings.Contains(body, `"status":"ok"`) {
				t.Errorf("GET /health = %s %d %s", resp.Proto, resp.StatusCode, body)
			}
			resp, body = get(t, c, r.url(protocol.MetricsPath))
			if resp.ProtoMajor != 2 || resp.StatusCode != 200 || !strings.Contains(body, protocol.MetricRequests+`{code="200",route="POST /echo"} 1`) {
				t.Errorf("GET /metrics = %s %d:\n%s", resp.Proto, resp.StatusCode, body)
			}

			// HTTP/1.1 on the same port: the lab's health checks.
			resp, body = get(t, r.clientSpeaking(tc.h1), r.url("/health"))
			if resp.ProtoMajor != 1 || resp.StatusCode != 200 || !strings.Contains(body, `"status":"ok"`) {
				t.Errorf("GET /health over HTTP/1.1 = %s %d %s", resp.Proto, resp.StatusCode, body)
			}
		})
	}
}

// TestHTTP1OnlyProtocolsStayHTTP1: https and wss offer only http/1.1 by
// ALPN, and http serves no prior-knowledge HTTP/2: a client that would
// rather speak HTTP/2 gets HTTP/1.1 (the lab shows HTTP/1.1 on the wire).
func TestHTTP1OnlyProtocolsStayHTTP1(t *testing.T) {
	for _, p := range []protocol.Protocol{protocol.HTTPS, protocol.WSS} {
		r := start(t, Config{Protocol: p})
		resp, _ := get(t, r.clientSpeaking(protocols(true, true, false)), r.url("/health"))
		if resp.ProtoMajor != 1 || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "http/1.1" {
			t.Errorf("%s: a client offering h2 got %s (ALPN %q), want HTTP/1.1", p, resp.Proto, resp.TLS.NegotiatedProtocol)
		}
	}
	r := start(t, Config{Protocol: protocol.HTTP})
	if _, err := r.clientSpeaking(protocols(false, false, true)).Get(r.url("/health")); err == nil {
		t.Errorf("http answered prior-knowledge HTTP/2")
	}
}
