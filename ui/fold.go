package ui

import (
	"fmt"
	"strings"
	"time"

	"github.com/protolab/protolab-tui/lab/wire"
)

// setupMessage says whether a decoded message belongs to a connection's
// setup rather than to what it carries: a TLS handshake record (or the
// change of cipher spec), the WebSocket upgrade request, its 101 and the
// decoder's check of its accept key.
func setupMessage(r *wire.Record) bool {
	switch r.Layer {
	case "tls":
		ct := r.Field("content_type")
		return r.Field("handshake_type") != "" || ct == "Change Cipher Spec" || ct == "ChangeCipherSpec" || strings.HasPrefix(r.Summary, "TLS ChangeCipherSpec")
	case "http":
		return strings.Contains(r.Text(), "[WebSocket upgrade]") || r.Field("status") == "101"
	case "ws":
		return r.Field("accept_valid") != "" // the decoder's check of the 101's accept
	}
	return false
}

// foldSetup folds the setup at the start of a connection's records (the
// TCP handshake, the TLS handshake, the upgrade: everything before the
// first message that carries the application's data) into one record whose
// line times each phase and whose fields list what it folded. It returns
// rows unchanged when there is nothing to fold.
func foldSetup(rows []wire.Record) []wire.Record {
	n := setupLen(rows)
	if n < 2 {
		return rows
	}
	return append([]wire.Record{foldRecord(rows[:n])}, rows[n:]...)
}

// setupLen is how many of a connection's first records are its setup (0
// when fewer than two: nothing to fold).
func setupLen(rows []wire.Record) int {
	// The setup runs to its last setup message, or (plain HTTP) to the
	// end of the payload-less handshake segments, within the records
	// before the first message that carries data; the segments after the
	// last setup message carry that data and stay.
	// A TLS record of application data only carries what was decrypted
	// from it (the upgrade, over wss): like a segment, it neither ends
	// the setup nor extends it.
	n, bare := 0, 0
	for i := range rows {
		r := &rows[i]
		carrier := r.Kind == wire.KindPacket || r.Layer == "tls" && r.Field("content_type") == "Application Data"
		if !carrier && !setupMessage(r) {
			break
		}
		if !carrier {
			n = i + 1
		} else if r.Kind == wire.KindPacket && r.Payload == 0 && bare == i {
			bare = i + 1
		}
	}
	n = max(n, bare)
	if n < 2 {
		return 0
	}
	return n
}

// foldRecord is the one row the setup records fold into: its line times
// each phase, its fields list what it folded.
func foldRecord(rows []wire.Record) wire.Record {
	n := len(rows)
	start := rows[0].Time
	var tcpEnd, tlsEnd, upEnd time.Time
	f := wire.Record{Seq: rows[0].Seq, ID: rows[0].ID, App: rows[0].App, Protocol: rows[0].Protocol, Flow: rows[0].Flow,
		Time: start, Dir: wire.ClientToServer, Kind: wire.KindMessage, Layer: "setup"}
	for i := range rows[:n] {
		r := &rows[i]
		switch {
		case r.Kind == wire.KindPacket && r.Payload == 0 && tlsEnd.IsZero() && upEnd.IsZero():
			tcpEnd = r.Time
		case r.Layer == "tls" && setupMessage(r):
			tlsEnd = r.Time
		case r.Layer == "http":
			upEnd = r.Time
		}
		f.Len += r.Len
		f.Fields = append(f.Fields, wire.Field{Name: "+" + shortDur(r.Time.Sub(start)), Value: r.Dir.String() + " " + r.Text()})
	}
	var phases []string
	at := start
	for _, p := range []struct {
		name string
		end  time.Time
	}{{"TCP", tcpEnd}, {"TLS", tlsEnd}, {"upgrade", upEnd}} {
		if !p.end.IsZero() {
			phases = append(phases, fmt.Sprintf("%s %s", p.name, shortDur(p.end.Sub(at))))
			at = p.end
		}
	}
	f.Summary = fmt.Sprintf("setup: %s (%d records folded; z unfolds)", strings.Join(phases, " · "), n)
	return f
}

// replyTo says whether r is a message a conversation's latency is
// measured on: an HTTP request or response, a WebSocket frame, an SSE
// event… — not a TLS record nor the connection's setup.
func replyTo(r *wire.Record) bool {
	return r.Kind == wire.KindMessage && r.Layer != "tls" && r.Layer != "setup" && !setupMessage(r)
}

// answers times each of rows that answers a message: a message whose
// previous message in the connection (before, the records in ctx) went
// the other way — a response to its request, a WebSocket echo to what was
// sent — gets the time since that one; the others -1. ctx ends where rows
// begin.
func answers(ctx, rows []wire.Record) []time.Duration {
	out := make([]time.Duration, len(rows))
	for i := range out {
		out[i] = -1
	}
	var last *wire.Record
	for i := range ctx {
		if replyTo(&ctx[i]) {
			last = &ctx[i]
		}
	}
	for i := range rows {
		r := &rows[i]
		if !replyTo(r) {
			continue
		}
		if last != nil && last.Dir != r.Dir && last.Flow == r.Flow {
			out[i] = r.Time.Sub(last.Time)
		}
		last = r
	}
	return out
}
