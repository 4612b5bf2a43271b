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
	if got := All(); len(got) != 4 || got[0] != HTTP || got[3] != WSS {
		t.Errorf("All() = %v", got)
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
		{"echo-http", WS, "kind echo-http does not speak ws (it speaks http, https)"},
		{"teapot", HTTP, `unknown kind "teapot": want one of balancer, chat-ws, echo-http, term, tls-front, ws-proxy`},
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
