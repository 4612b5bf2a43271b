package browser

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// ChatOptions say where the chat is and how the browser runs.
type ChatOptions struct {
	// URL is the chat app's page: http://localhost:PORT/ or https://….
	URL string
	// Chromium is the browser to run; "" looks for chromium,
	// chromium-browser, google-chrome (Debian: apt-get install chromium).
	Chromium string
	// TrustSPKI trusts certificates whose key has this hash (base64
	// SHA-256 of the SubjectPublicKeyInfo, CASPKI): the lab CA's, as a user
	// would with --ignore-certificate-errors-spki-list.
	TrustSPKI string
	// KeyLog receives the browser's TLS secrets (its SSLKEYLOGFILE) as it
	// writes them, line by line: the lab's key log, so a capture shows the
	// browser's wss frames decrypted while the chat runs.
	KeyLog io.Writer
	// Screenshot, when set, is where a PNG of the first page is saved.
	Screenshot string
	// Timeout bounds each wait for the page (default 10s).
	Timeout time.Duration
}

// ChatResult is what the pages showed.
type ChatResult struct {
	// Heard is bob's page's message log once alice's message arrived.
	Heard string `json:"heard"`
	// Refused is what a second "alice" was told.
	Refused string `json:"refused"`
	// Members are the names alice's page lists in the room.
	Members []string `json:"members"`
	// Took is how long the whole chat took, browser start included.
	Took time.Duration `json:"took"`
}

// CASPKI is the hash ChatOptions.TrustSPKI takes for a CA certificate.
func CASPKI(ca *x509.Certificate) string {
	sum := sha256.Sum256(ca.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// FindChromium returns the browser's path, or an error saying how to get one.
func FindChromium() (string, error) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium found (looked for chromium, chromium-browser, google-chrome): apt-get install chromium")
}

// Chat runs the two-person chat of the lab's chat page in a headless
// Chromium: alice (30) and bob (25) join, alice says hello, bob's page shows
// it, both are listed in the room, and a second "alice" is refused with the
// page's reason. The browser sends nothing anywhere but the page's origin
// (background networking, component updates and sync are off).
func Chat(ctx context.Context, o ChatOptions) (res ChatResult, err error) {
	began := time.Now()
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	actx, stop, err := Start(ctx, o)
	if err != nil {
		return res, err
	}
	defer stop()
	alice, cancelAlice := chromedp.NewContext(actx)
	defer cancelAlice()
	if err := join(alice, o, "alice", "30"); err != nil {
		return res, err
	}
	bob, cancelBob := chromedp.NewContext(alice) // a second tab of the same browser
	defer cancelBob()
	if err := join(bob, o, "bob", "25"); err != nil {
		return res, err
	}
	if err := waitText(alice, o, "#log", "bob joined (age 25)"); err != nil {
		return res, err
	}
	const hello = "hello bob, from the browser"
	if err := chromedp.Do(alice, chromedp.SendKeys(`#say input[name=text]`, hello+"\r")); err != nil {
		return res, fmt.Errorf("alice's message: %w", err)
	}
	if err := waitText(bob, o, "#log", "alice: "+hello); err != nil {
		return res, err
	}
	if res.Heard, err = chromedp.Run(bob, chromedp.Text("#log")); err != nil {
		return res, fmt.Errorf("bob's log: %w", err)
	}
	if res.Members, err = chromedp.Run(alice, chromedp.Poll[[]string](`(() => { const m = [...document.querySelectorAll('#members li')].map(li => li.textContent); return m.length === 2 ? m : null })()`,
		chromedp.WithPollingTimeout(o.Timeout))); err != nil {
		return res, fmt.Errorf("the room's members on alice's page: %w", err)
	}
	if o.Screenshot != "" {
		png, err := chromedp.Run(alice, chromedp.FullScreenshot(100))
		if err == nil {
			err = os.WriteFile(o.Screenshot, png, 0o644)
		}
		if err != nil {
			return res, fmt.Errorf("screenshot: %w", err)
		}
	}
	dup, cancelDup := chromedp.NewContext(alice)
	defer cancelDup()
	if err := chromedp.Do(dup, chromedp.Navigate(o.URL), chromedp.SendKeys(`#join input[name=name]`, "alice\r")); err != nil {
		return res, fmt.Errorf("a second alice: %w", err)
	}
	if err := waitText(dup, o, "#status", "Refused"); err != nil {
		return res, err
	}
	if res.Refused, err = chromedp.Run(dup, chromedp.Text("#status")); err != nil {
		return res, err
	}
	res.Took = time.Since(began)
	return res, nil
}

// Start runs a headless Chromium as Chat does — o's Chromium, trust and key
// log — and returns the context its tabs are made from
// (chromedp.NewContext) and the function that ends it all.
func Start(ctx context.Context, o ChatOptions) (context.Context, func(), error) {
	if o.Chromium == "" {
		var err error
		if o.Chromium, err = FindChromium(); err != nil {
			return nil, nil, err
		}
	}
	dir, err := os.MkdirTemp("", "protolab-chromium-")
	if err != nil {
		return nil, nil, fmt.Errorf("browser profile: %w", err)
	}
	keyFile := filepath.Join(dir, "tls.keys")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(o.Chromium), chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.Flag("no-sandbox", true), chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(900, 700), chromedp.Env("SSLKEYLOGFILE="+keyFile))
	if o.TrustSPKI != "" {
		opts = append(opts, chromedp.Flag("ignore-certificate-errors-spki-list", o.TrustSPKI))
	}
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	stopTail := func() {}
	if o.KeyLog != nil {
		stopTail = tail(keyFile, o.KeyLog)
	}
	return actx, func() {
		stopTail()
		cancel()
		os.RemoveAll(dir)
	}, nil
}

// join opens the page in c and joins the room as name.
func join(c context.Context, o ChatOptions, name, age string) error {
	if err := chromedp.Do(c, chromedp.Navigate(o.URL), chromedp.SendKeys(`#join input[name=age]`, age),
		chromedp.SendKeys(`#join input[name=name]`, name+"\r")); err != nil {
		return fmt.Errorf("%s opening %s: %w", name, o.URL, err)
	}
	return waitText(c, o, "#status", "Connected as "+name)
}

// waitText waits until the element sel's text holds text, and says what it
// held when it did not.
func waitText(c context.Context, o ChatOptions, sel, text string) error {
	_, err := chromedp.Run(c, chromedp.PollFunction[bool](`(sel, text) => { const e = document.querySelector(sel); return !!e && e.textContent.includes(text) }`,
		chromedp.WithPollingArgs(sel, text), chromedp.WithPollingTimeout(o.Timeout)))
	if err != nil {
		shown, _ := chromedp.Run(c, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)))
		return fmt.Errorf("the page's %s never showed %q (it shows %q): %w", sel, text, strings.TrimSpace(shown), err)
	}
	return nil
}

// tail copies the lines the browser appends to path into w until stop is
// called (which copies what is left first).
func tail(path string, w io.Writer) (stop func()) {
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		var off int64
		var partial []byte
		copyNew := func() {
			f, err := os.Open(path)
			if err != nil {
				return // not written yet
			}
			defer f.Close()
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				return
			}
			b, _ := io.ReadAll(f)
			off += int64(len(b))
			partial = append(partial, b...)
			if i := bytes.LastIndexByte(partial, '\n'); i >= 0 {
				_, _ = w.Write(partial[:i+1])
				partial = append([]byte(nil), partial[i+1:]...)
			}
		}
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				copyNew()
			case <-done:
				copyNew()
				return
			}
		}
	}()
	return func() { close(done); <-ended }
}
