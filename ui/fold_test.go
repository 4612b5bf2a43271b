package ui

import (
	"testing"
	"time"

	"github.com/protolab/protolab-tui/lab/wire"
)

// TestFoldSetup: a connection's TCP handshake, TLS handshake and upgrade
// become one row timing each phase; the first data and what follows stay.
func TestFoldSetup(t *testing.T) {
	ms := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Millisecond))) }
	seg := func(at float64, payload int) wire.Record {
		return wire.Record{Kind: wire.KindPacket, Layer: "tcp", Payload: payload, Time: ms(at)}
	}
	msg := func(at float64, layer string, fields ...string) wire.Record {
		r := wire.Record{Kind: wire.KindMessage, Layer: layer, Time: ms(at), Summary: layer + " message"}
		for i := 0; i+1 < len(fields); i += 2 {
			r.Fields = append(r.Fields, wire.Field{Name: fields[i], Value: fields[i+1]})
		}
		return r
	}
	for _, c := range []struct {
		name    string
		rows    []wire.Record
		summary string // the folded row's ("" when nothing folds)
		left    int    // rows after the folded one
	}{
		{"plain http", []wire.Record{seg(0, 0), seg(0.1, 0), seg(0.2, 0), seg(0.3, 80), msg(0.3, "http", "method", "GET")},
			"setup: TCP 200µs (3 records folded; z unfolds)", 2},
		{"wss", []wire.Record{seg(0, 0), seg(0.1, 0), seg(0.2, 0),
			seg(1, 300), msg(1, "tls", "handshake_type", "ClientHello"), seg(2, 900), msg(2, "tls", "handshake_type", "ServerHello"),
			msg(2, "tls", "content_type", "Change Cipher Spec"), msg(3, "tls", "handshake_type", "Finished"),
			seg(4, 200), msg(4, "http", "method", "GET"), // not an upgrade: the first data
			msg(5, "ws", "opcode", "TEXT")},
			"setup: TCP 200µs · TLS 2.800ms (9 records folded; z unfolds)", 3},
		{"wss upgrade, TLS 1.3", []wire.Record{seg(0, 0), seg(0.1, 0), seg(0.2, 0),
			seg(1, 300), msg(1, "tls", "handshake_type", "ClientHello"), seg(2, 900), msg(2, "tls", "handshake_type", "ServerHello"),
			msg(2, "tls", "content_type", "ChangeCipherSpec"), msg(2, "tls", "handshake_type", "Finished"),
			msg(3, "tls", "content_type", "ChangeCipherSpec"), msg(3, "tls", "handshake_type", "Finished"),
			seg(4, 200), msg(4, "tls", "content_type", "Application Data"), msg(4, "http", "status", "101"), msg(4, "ws", "accept_valid", "true"),
			seg(5, 30), msg(5, "tls", "content_type", "Application Data"), msg(5, "ws", "opcode", "TEXT")},
			"setup: TCP 200µs · TLS 2.800ms · upgrade 1.000ms (15 records folded; z unfolds)", 3},
		{"ws upgrade", []wire.Record{seg(0, 0), seg(0.1, 0), seg(0.2, 0), seg(1, 120), msg(1, "http", "status", "101"),
			msg(1, "ws", "accept_valid", "true"), seg(2, 12), msg(2, "ws", "opcode", "TEXT")},
			"setup: TCP 200µs · upgrade 800µs (6 records folded; z unfolds)", 2},
		{"nothing to fold", []wire.Record{msg(0, "ws", "opcode", "TEXT"), seg(1, 0)}, "", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := foldSetup(c.rows)
			if c.summary == "" {
				if len(got) != len(c.rows) || got[0].Layer == "setup" {
					t.Fatalf("folded %d rows into %q", len(c.rows)-len(got)+1, got[0].Text())
				}
				return
			}
			if got[0].Text() != c.summary || len(got)-1 != c.left {
				t.Fatalf("got %q and %d rows after, want %q and %d", got[0].Text(), len(got)-1, c.summary, c.left)
			}
			if n := len(got[0].Details()); n != len(c.rows)-c.left {
				t.Errorf("the folded row lists %d records, want %d", n, len(c.rows)-c.left)
			}
		})
	}
}
