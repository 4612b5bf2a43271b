// Package browser tests the lab's chat page in a real browser: Debian's
// chromium, driven by playwright-core (chat.mjs), against a local-provider
// lab brought up on free ports. FeedKeys brings a browser's SSLKEYLOGFILE
// into the lab's key log.
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
