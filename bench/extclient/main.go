// Command extclient is the independent client of bench/run.sh honesty: a
// separate process that knows nothing of protolab's probe code, measuring an
// echo app with plain net/http or gorilla/websocket the way a user's client
// would. It prints one JSON line: p50, p99 (µs) and messages per second.
//
//	extclient -proto wss -addr 127.0.0.1:3003 -ca ca.pem -n 2000 -warmup 200 -payload 32
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	proto := flag.String("proto", "ws", "http, https, ws or wss")
	addr := flag.String("addr", "", "host:port of the app")
	caFile := flag.String("ca", "", "the lab CA (PEM) for https and wss")
	n := flag.Int("n", 2000, "measured echo round trips")
	warmup := flag.Int("warmup", 200, "unmeasured round trips first")
	payload := flag.Int("payload", 32, "bytes per message")
	flag.Parse()
	if err := run(*proto, *addr, *caFile, *n, *warmup, *payload); err != nil {
		fmt.Fprintln(os.Stderr, "extclient:", err)
		os.Exit(1)
	}
}

func run(proto, addr, caFile string, n, warmup, payload int) error {
	tc := &tls.Config{ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return err
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s holds no certificate", caFile)
		}
	}
	var echo func(string) (string, error)
	switch proto {
	case "http", "https":
		tr := &http.Transport{TLSClientConfig: tc, MaxConnsPerHost: 1, DisableCompression: true}
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		client := &http.Client{Transport: tr}
		url := proto + "://" + addr + "/echo"
		echo = func(msg string) (string, error) {
			resp, err := client.Post(url, "text/plain; charset=utf-8", strings.NewReader(msg))
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return string(b), err
		}
	case "ws", "wss":
		d := websocket.Dialer{TLSClientConfig: tc}
		c, _, err := d.Dial(proto+"://"+addr+"/echo", nil)
		if err != nil {
			return err
		}
		defer c.Close()
		echo = func(msg string) (string, error) {
			if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
				return "", err
			}
			_, b, err := c.ReadMessage()
			return string(b), err
		}
	default:
		return fmt.Errorf("unknown protocol %q", proto)
	}
	msg := strings.Repeat("x", payload)
	for range warmup {
		if _, err := echo(msg); err != nil {
			return err
		}
	}
	rtts := make([]time.Duration, 0, n)
	begin := time.Now()
	for range n {
		start := time.Now()
		got, err := echo(msg)
		if err != nil {
			return err
		}
		rtts = append(rtts, time.Since(start))
		if got != msg {
			return fmt.Errorf("echo came back different: %q", got)
		}
	}
	elapsed := time.Since(begin)
	slices.Sort(rtts)
	pct := func(p float64) float64 {
		r := max(1, min(int(math.Ceil(p/100*float64(n))), n))
		return float64(rtts[r-1]) / 1e3
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]float64{
		"p50_us": pct(50), "p99_us": pct(99), "msgs_per_s": float64(n) / elapsed.Seconds(),
	})
}
