package browser_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/moby/moby/client"

	"github.com/protolab/protolab-tui/browser"
	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/providers/docker"
	"github.com/protolab/protolab-tui/lab/providers/local"
	"github.com/protolab/protolab-tui/protocol"
)

// TestWebTerminalInChromium: the term app's page in a real Chromium, over
// wss (the lab CA trusted by its key): xterm.js draws the shell, `echo hi`
// typed into it shows hi on a line of its own, and a screenshot is kept.
// Closing the page ends the shell (the server side is TestWebTerminal's).
func TestWebTerminalInChromium(t *testing.T) {
	needChromium(t)
	if _, err := os.Stat("../apps/webapp/term/xterm.js"); err != nil {
		testenv.Missing(t, "the web terminal's assets are not built: scripts/term-assets.sh (scripts/test.sh runs it)")
	}
	cfg := lab.Config{Name: "t13-term", StateDir: t.TempDir(),
		Apps: lab.OnFreePorts([]lab.App{{Name: "term", Kind: protocol.KindTerm, Protocol: protocol.WSS}}), Capture: lab.CaptureConfig{Mode: "off"}}
	l, err := lab.New(cfg, local.New)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Cleanup(func() { _ = l.Teardown(context.Background()).Wait(context.Background()); _ = l.Close() })
	for _, step := range []func(context.Context) *lab.Job{l.Up, l.Deploy} {
		if err := step(ctx).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tg, err := l.Target("term")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(tg.Addr)
	bctx, stop, err := browser.Start(ctx, browser.ChatOptions{TrustSPKI: browser.CASPKI(l.PKI().CA)})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if status, _ := termEchoHi(t, bctx, "https://localhost:"+port+"/", "term-wss.png"); !strings.HasPrefix(status, "connected: a shell on the lab host (pid ") {
		t.Errorf("the page's status: %q, want a shell on the lab host", status)
	}
}

// TestWebTerminalInChromiumDocker: the term app of a docker lab in a real
// Chromium: the page's shell is an exec in the app's container (the status
// names it, the engine lists it), echo hi shows hi, and closing the tab
// ends the exec.
func TestWebTerminalInChromiumDocker(t *testing.T) {
	needChromium(t)
	if _, err := os.Stat("../apps/webapp/term/xterm.js"); err != nil {
		testenv.Missing(t, "the web terminal's assets are not built: scripts/term-assets.sh (scripts/test.sh runs it)")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		testenv.Missing(t, "no static busybox: apt-get install busybox-static (scripts/test.sh does)")
	}
	cli, err := client.New(client.FromEnv)
	if err != nil {
		testenv.Missing(t, "no Docker client: "+err.Error())
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		testenv.Missing(t, "no Docker engine answers: "+err.Error())
	}
	cfg := lab.Config{Name: "t13-dterm", Provider: "docker", StateDir: t.TempDir(),
		Apps: lab.OnFreePorts([]lab.App{{Name: "term", Kind: protocol.KindTerm, Protocol: protocol.WS}}), Capture: lab.CaptureConfig{Mode: "off"}}
	l, err := lab.New(cfg, docker.New)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = l.Teardown(tctx).Wait(tctx)
		_ = l.Close()
	})
	for _, step := range []func(context.Context) *lab.Job{l.Up, l.Deploy} {
		if err := step(ctx).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tg, err := l.Target("term")
	if err != nil {
		t.Fatal(err)
	}
	bctx, stop, err := browser.Start(ctx, browser.ChatOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	status, closeTab := termEchoHi(t, bctx, "http://"+tg.Addr+"/", "term-docker.png")
	const name = "protolab-t13-dterm-term"
	m := regexp.MustCompile(`^connected: a shell in container ` + name + ` \(exec ([0-9a-f]{12}), pid \d+\)`).FindStringSubmatch(status)
	if m == nil {
		t.Fatalf("the page's status: %q, want a shell in container %s", status, name)
	}
	in, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var exec string
	for _, id := range in.Container.ExecIDs {
		if strings.HasPrefix(id, m[1]) {
			exec = id
		}
	}
	if exec == "" {
		t.Fatalf("the engine lists execs %v for %s, not the page's %s", in.Container.ExecIDs, name, m[1])
	}
	closeTab()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ex, err := cli.ExecInspect(ctx, exec, client.ExecInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !ex.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exec %s still runs 10s after its tab closed", exec)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// termEchoHi opens a term app's page at url in a new tab of the browser,
// waits for its shell, types echo hi and one Enter as a person would, sees
// hi on a line of its own and keeps a screenshot named shot. It returns the
// page's status line, and closes the tab when closeTab is called.
func termEchoHi(t *testing.T, bctx context.Context, url, shot string) (status string, closeTab func()) {
	t.Helper()
	page, closePage := chromedp.NewContext(bctx)
	t.Cleanup(closePage)
	if err := chromedp.Do(page, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	wait := func(what, js string) {
		t.Helper()
		if _, err := chromedp.Run(page, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
			shown, _ := chromedp.Run(page, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("%s: %v; the page shows %q", what, err, shown)
		}
	}
	wait("connected", `document.getElementById('status').textContent.startsWith('connected')`)
	wait("a prompt", `document.querySelector('.xterm-rows') && document.querySelector('.xterm-rows').textContent.trim().length > 0`)
	// As a person types: text inserted in the focused terminal (key events
	// with text would reach xterm.js twice, as keydown and as input), then
	// one press of Enter: a raw key down (no char event, which xterm.js
	// would take as a second Enter) and its key up.
	typeText := func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, input.InsertText, input.InsertTextParams{Text: "echo hi"})
		return chromedp.Void{}, err
	}
	enter := func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, input.DispatchKeyEventParams{Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}); err != nil {
				return chromedp.Void{}, err
			}
		}
		return chromedp.Void{}, nil
	}
	if err := chromedp.Do(page, chromedp.Focus(".xterm-helper-textarea"), typeText, enter); err != nil {
		t.Fatal(err)
	}
	wait("hi on a line of its own", `[...document.querySelectorAll('.xterm-rows > div')].some(d => d.textContent.trim() === 'hi')`)
	png, err := chromedp.Run(page, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot = filepath.Join(artefacts(t), shot)
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)
	rows, _ := chromedp.Run(page, chromedp.Evaluate[string](`document.querySelector('.xterm-rows').innerText`))
	if !strings.Contains(rows, "echo hi") {
		t.Errorf("the terminal does not show the typed command: %q", rows)
	}
	// One Enter: after hi, one prompt on one line and nothing else (a
	// second Enter would leave a second prompt on a line of its own).
	if _, after, ok := strings.Cut(rows, "\nhi\n"); !ok || strings.TrimSpace(after) == "" || strings.Contains(strings.TrimSpace(after), "\n") {
		t.Errorf("after hi the terminal shows %q, want one prompt", after)
	}
	status, _ = chromedp.Run(page, chromedp.Evaluate[string](`document.getElementById('status').textContent`))
	return status, closePage
}
