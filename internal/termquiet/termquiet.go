// Package termquiet keeps Bubble Tea v1 from asking the terminal anything
// while the program starts.
//
// Bubble Tea v1's package init calls lipgloss.HasDarkBackground, which makes
// termenv write an OSC 11 query (the background colour) and a cursor
// position query to the terminal and wait up to 5 s for the answers. A
// terminal that never answers — CI logs, script(1), serial consoles, some
// SSH setups — stalls every command that way, --help included. termenv
// skips the queries when TERM is "dumb", so this package's init sets TERM to
// "dumb" and Restore puts it back; the explorer then asks the terminal
// itself, with a short timeout (internal/termbg).
//
// Go initialises packages in the order of their import paths among those
// whose imports are initialised (the language spec, since Go 1.21). This
// package imports only syscall, and its path sorts before "os", which
// termenv needs: so it is initialised before os, and so before termenv,
// lipgloss and bubbletea. Import it (blank) from main and call Restore
// first thing in main.
package termquiet

import "syscall"

// saved is TERM as the program found it.
var saved, hadTerm = syscall.Getenv("TERM")

func init() {
	_ = syscall.Setenv("TERM", "dumb")
}

// Restore puts TERM back as it was before this package's init.
func Restore() {
	if hadTerm {
		_ = syscall.Setenv("TERM", saved)
		return
	}
	_ = syscall.Unsetenv("TERM")
}
