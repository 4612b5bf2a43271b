// Package browser puts a real browser (Debian's chromium) on one end of the
// lab's WebSockets. Chat is the product's own browser step ('browser APP'
// in a lab file's script): it drives Chromium with chromedp (no Node at run
// time), two people chatting on the app's page. FeedKeys brings a browser's
// SSLKEYLOGFILE into the lab's key log. Its tests drive the chat page with
// playwright-core (chat.mjs, as the users would) and the web
// terminal's page with chromedp, against local-provider labs on free ports.
package browser

import (
	"fmt"
	"io"
	"os"
)

// FeedKeys copies the key log file at path (NSS format, as a browser writes
// it for SSLKEYLOGFILE) into keys — the lab's key log, which keeps what it
// learns in the run's key file — and reports how many bytes it read.
func FeedKeys(keys io.Writer, path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("browser key log: %w", err)
	}
	defer f.Close()
	n, err := io.Copy(keys, f)
	if err != nil {
		return n, fmt.Errorf("browser key log %s: %w", path, err)
	}
	return n, nil
}
