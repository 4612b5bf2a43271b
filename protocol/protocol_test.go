package protocol

import (
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	for _, tc := range []struct {
		p         Protocol
		port      int
		tls, ws   bool
		kind      string
		recognise Recognition
		unit      Unit
	}{
		{HTTP, 3000, false, false, KindEchoHTTP, RecogniseHTTP, UnitHTTPMessage},
		{HTTPS, 3001, true, false, KindEchoHTTP, RecogniseHTTP, UnitHTTPMessage},
		{WS, 3002, false, true, KindChatWS, RecogniseWebSocket, UnitWSFrame},
		{WSS, 3003, true, true, KindChatWS, RecogniseWebSocket, UnitWSFrame},
		{SSE, 3004, false, false, KindSSE, RecogniseSSE, UnitSSEEvent},
		{H2, 3005, true, false, KindEchoHTTP, RecogniseHTTP2, UnitHTTP2Message},
		{H2C, 3006, false, false, KindEchoHTTP, RecogniseHTTP2, UnitHTTP2Message},
		{GRPC, 3007, false, false, KindGRPC, RecogniseGRPC, UnitGRPCMessage},
		{GRPCS, 3008, true, false, KindGRPC, RecogniseGRPC, UnitGRPCMessage},
	} {
		d, ok := Lookup(tc.p)
		if !ok || d.DefaultPort != tc.port || tc.p.Secure() != tc.tls || tc.p.WebSocket() != tc.ws ||
			d.DefaultKind != tc.kind || d.Recognise != tc.recognise || d.Message != tc.unit || d.Title == "" {
			t.Errorf("%s: %+v", tc.p, d)
		}
		if _, err := CheckApp("", tc.p); err != nil {
			t.Errorf("%s with its default kind: %v", tc.p, err)
		}
	}
	if got := Seed(); len(got) != 4 || got[0] != HTTP || got[3] != WSS {
		t.Errorf("Seed() = %v", got)
	}
	if got := All(); len(got) != len(table) || got[0] != HTTP || got[4] != SSE {
		t.Errorf("All() = %v", got)
	}
	ports := map[int]Protocol{}
	for _, p := range All() {
		d := p.Desc()
		if q, dup := ports[d.DefaultPort]; dup {
			t.Errorf("%s and %s share the default port %d", p, q, d.DefaultPort)
		}
		ports[d.DefaultPort] = p
		if d.TLS != (d.Plain != "") || (d.TLS && len(d.ALPN) == 0) {
			t.Errorf("%s: TLS %v, plain %q, ALPN %v", p, d.TLS, d.Plain, d.ALPN)
		}
		if d.TLS && d.Plain.Desc().Recognise != d.Recognise {
			t.Errorf("%s carries %s, which is recognised otherwise", p, d.Plain)
		}
		if p.HTTP2() != (d.Recognise == RecogniseHTTP2 || d.Recognise == RecogniseGRPC) || (p.HTTP2() && d.TLS && d.ALPN[0] != "h2") {
			t.Errorf("%s: HTTP/2 %v, ALPN %v", p, p.HTTP2(), d.ALPN)
		}
		if strings.HasPrefix(d.Recognise.String(), "recognition(") || strings.HasPrefix(d.Message.String(), "unit(") {
			t.Errorf("%s: %v / %v have no names", p, d.Recognise, d.Message)
		}
	}
	for i, p := range All() {
		if p.Order() != i {
			t.Errorf("%s order %d", p, p.Order())
		}
	}
	if Protocol("gopher").Known() || Protocol("gopher").Order() != len(All()) {
		t.Error("an unknown protocol is known")
	}
}

func TestParse(t *testing.T) {
	if p, err := Parse(" WSS "); err != nil || p != WSS {
		t.Errorf("Parse: %v %v", p, err)
	}
	if _, err := Parse("gopher"); err == nil || !strings.Contains(err.Error(), "want one of http, https, ws, wss") {
		t.Errorf("Parse(gopher): %v", err)
	}
	if ps, err := ParseList("ws, wss,ws"); err != nil || len(ps) != 2 {
		t.Errorf("ParseList: %v %v", ps, err)
	}
	if _, err := ParseList(" , "); err == nil {
		t.Error("an empty list was accepted")
	}
}

func TestCheckApp(t *testing.T) {
	for _, tc := range []struct {
		kind string
		p    Protocol
		want string
	}{
		{"echo-http", WS, "kind echo-http does not speak ws (it speaks http, https, h2, h2c)"},
		{"teapot", HTTP, `unknown kind "teapot": want one of balancer, chat-ws, echo-http, grpc, sse, term, tls-front, ws-proxy`},
		{"", "gopher", `unknown protocol "gopher"`},
	} {
		if _, err := CheckApp(tc.kind, tc.p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckApp(%q, %q) = %v, want %q", tc.kind, tc.p, err, tc.want)
		}
	}
}

func TestUpstreamRules(t *testing.T) {
	for _, tc := range []struct {
		kind    string
		own, up Protocol
		ok      bool
	}{
		{KindTLSFront, WSS, WS, true},
		{KindTLSFront, WSS, WSS, false},
		{KindTLSFront, HTTPS, HTTP, true},
		{KindTLSFront, HTTPS, WS, false},
		{KindBalancer, WS, WS, true},
		{KindBalancer, WS, HTTP, false},
		{KindBalancer, HTTP, HTTP, true},
		{KindWSProxy, WS, WSS, true},
		{KindWSProxy, WS, HTTP, false},
		{KindChatWS, WS, WS, false},
	} {
		k, ok := LookupKind(tc.kind)
		if !ok {
			t.Fatalf("no kind %s", tc.kind)
		}
		if got, want := k.Upstreams.Allows(tc.own, tc.up); got != tc.ok || want == "" {
			t.Errorf("%s %s → %s: %v (%q), want %v", tc.kind, tc.own, tc.up, got, want, tc.ok)
		}
		if k.Intermediary() != (k.Upstreams != UpstreamNone) || (k.Intermediary() && k.Echo != "") {
			t.Errorf("%s: an intermediary echoes by itself", k.Name)
		}
	}
}

func TestCheckCompression(t *testing.T) {
	chat, _ := LookupKind(KindChatWS)
	echo, _ := LookupKind(KindEchoHTTP)
	for _, tc := range []struct {
		k    Kind
		c    string
		want string // "" for no error
	}{
		{chat, "", ""},
		{chat, CompressionNone, ""},
		{chat, CompressionDeflate, ""},
		{chat, "brotli", `compression "brotli": want none or deflate`},
		{echo, CompressionNone, ""},
		{echo, CompressionDeflate, "kind echo-http compresses nothing"},
	} {
		err := tc.k.CheckCompression(tc.c)
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s.CheckCompression(%q) = %v, want %q", tc.k.Name, tc.c, err, tc.want)
		}
	}
}
