package browser_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/browser"
	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/providers/local"
	"github.com/protolab/protolab-tui/lab/wire"
	"github.com/protolab/protolab-tui/protocol"
)

// result is what chat.mjs prints.
type result struct {
	AliceLog string   `json:"aliceLog"`
	BobLog   string   `json:"bobLog"`
	Refused  string   `json:"refused"`
	Members  []string `json:"members"`
	Foreign  []string `json:"foreign"`
}

func need(t *testing.T) string {
	t.Helper()
	node := testenv.NeedCommand(t, "node")
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		testenv.Missing(t, "Debian's chromium (/usr/bin/chromium) is not installed: scripts/test.sh installs it")
	}
	if _, err := os.Stat("node_modules/playwright-core"); err != nil {
		testenv.Missing(t, "playwright-core is not installed: run `npm ci` in browser/ (scripts/test.sh does)")
	}
	return node
}

// artefacts is where the screenshots go: $PROTOLAB_ARTEFACTS/browser, else
// the test's temporary folder.
func artefacts(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if a := os.Getenv("PROTOLAB_ARTEFACTS"); a != "" {
		dir = filepath.Join(a, "browser")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startLab brings up a local-provider lab of one ws and one wss chat app on
// free ports, capturing when capture is set.
func startLab(t *testing.T, capture bool) *lab.Lab {
	t.Helper()
	cfg := lab.Config{Name: fmt.Sprintf("t13-browser-%d", os.Getpid()), StateDir: t.TempDir(),
		Apps:  lab.OnFreePorts([]lab.App{{Name: "ws", Protocol: protocol.WS}, {Name: "wss", Protocol: protocol.WSS}}),
		Probe: probe.Options{Count: 1}}
	if capture {
		cfg.Capture = lab.CaptureConfig{Mode: "on"}
	}
	l, err := lab.New(cfg, local.New)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = l.Teardown(ctx).Wait(ctx)
		_ = l.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	do := func(j *lab.Job) {
		if err := j.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	do(l.Up(ctx))
	do(l.Deploy(ctx))
	if capture {
		do(l.StartCapture(ctx))
	}
	return l
}

// caSPKI is how a user trusts the lab CA in Chromium: the base64 SHA-256 of
// the CA's SubjectPublicKeyInfo, for --ignore-certificate-errors-spki-list
// (Chromium accepts a chain holding a certificate with that key).
func caSPKI(l *lab.Lab) string {
	sum := sha256.Sum256(l.PKI().CA.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// runChat runs chat.mjs against app's page; keyLog, when set, is the
// browser's SSLKEYLOGFILE. It returns what the pages showed, or the error
// and the script's stderr.
func runChat(t *testing.T, l *lab.Lab, node, app, spki, shot, keyLog string) (result, error) {
	t.Helper()
	tg, err := l.Target(app)
	if err != nil {
		t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(tg.Addr)
	if err != nil {
		t.Fatalf("%s endpoint %q: %v", app, tg.Addr, err)
	}
	scheme := "http"
	if tg.Protocol.Secure() {
		scheme = "https"
	}
	url := scheme + "://localhost:" + port + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "chat.mjs", url, spki, shot)
	cmd.Env = os.Environ()
	if keyLog != "" {
		cmd.Env = append(cmd.Env, "SSLKEYLOGFILE="+keyLog)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("node chat.mjs %s: %w\n%s", url, err, stderr.String())
	}
	var r result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("chat.mjs printed %q: %v", b, err)
	}
	return r, nil
}

func checkChat(t *testing.T, r result) {
	t.Helper()
	if !strings.Contains(r.BobLog, "alice: hello bob, from the browser") {
		t.Errorf("bob's page shows %q, want alice's message", r.BobLog)
	}
	if !strings.Contains(r.AliceLog, "bob: hi alice") || !strings.Contains(r.AliceLog, "bob joined (age 25)") {
		t.Errorf("alice's page shows %q, want bob's join and message", r.AliceLog)
	}
	if !strings.Contains(r.Refused, `the name "alice" is already taken`) {
		t.Errorf("the duplicate's page shows %q, want the refusal reason", r.Refused)
	}
	if strings.Join(r.Members, ",") != "alice,bob" {
		t.Errorf("alice's page lists %q in the room, want alice and bob", r.Members)
	}
	if len(r.Foreign) > 0 {
		t.Errorf("the page fetched from outside the lab: %v", r.Foreign)
	}
}

// TestChatInChromium: two users talk and a duplicate name is refused, over
// ws and over wss (the lab CA trusted by its SPKI hash); a screenshot of
// each run is kept.
func TestChatInChromium(t *testing.T) {
	node := need(t)
	l := startLab(t, false)
	out := artefacts(t)
	for _, tc := range []struct{ app, spki string }{
		{"ws", ""},
		{"wss", caSPKI(l)},
	} {
		t.Run(tc.app, func(t *testing.T) {
			shot := filepath.Join(out, "chat-"+tc.app+".png")
			r, err := runChat(t, l, node, tc.app, tc.spki, shot, "")
			if err != nil {
				t.Fatal(err)
			}
			checkChat(t, r)
			if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
				t.Errorf("no screenshot at %s: %v", shot, err)
			}
			t.Logf("screenshot: %s", shot)
		})
	}
	// Without the CA's SPKI the browser refuses the lab's certificate: the
	// trust above is what made wss work.
	t.Run("wss-untrusted", func(t *testing.T) {
		_, err := runChat(t, l, node, "wss", "", "", "")
		if err == nil || !strings.Contains(err.Error(), "ERR_CERT_AUTHORITY_INVALID") {
			t.Errorf("wss without the CA's SPKI: got %v, want ERR_CERT_AUTHORITY_INVALID", err)
		}
	})
}

// TestChromiumKeysDecryptWSS: Chromium's TLS keys (SSLKEYLOGFILE) go into
// the lab's key log, so the capture shows the browser's wss chat decrypted.
func TestChromiumKeysDecryptWSS(t *testing.T) {
	node := need(t)
	testenv.NeedRoot(t)
	l := startLab(t, true)
	keyLog := filepath.Join(t.TempDir(), "chromium.keys")
	r, err := runChat(t, l, node, "wss", caSPKI(l), "", keyLog)
	if err != nil {
		t.Fatal(err)
	}
	checkChat(t, r)
	n, err := browser.FeedKeys(l.Keys(), keyLog)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("chromium wrote no TLS keys to %s", keyLog)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := l.SyncCapture(ctx); err != nil {
		t.Fatal(err)
	}
	want := "hello bob, from the browser"
	var seen []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		found := l.Wire().Matching("wss", func(rec *wire.Record) bool {
			return rec.Layer == "ws" && rec.Decrypted && strings.Contains(string(rec.Data), want)
		})
		if len(found) > 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, rec := range l.Wire().All("wss") {
				if rec.Layer == "ws" || rec.Layer == "tls" {
					seen = append(seen, fmt.Sprintf("%s %s dec=%v %q", rec.Layer, rec.Summary, rec.Decrypted, rec.Data))
				}
			}
			t.Fatalf("no decrypted WebSocket message with %q in the wss capture; saw:\n%s", want, strings.Join(seen, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
		_ = l.SyncCapture(ctx)
	}
}
