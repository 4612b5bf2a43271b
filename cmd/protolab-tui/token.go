package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/protocol/labtoken"
)

// tokenFlags are token's flags.
func tokenFlags(stderr io.Writer) (fs *flag.FlagSet, targets *string, ttl *time.Duration, stateDir *string) {
	fs = flag.NewFlagSet("protolab-tui token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	targets = fs.String("targets", "", "comma-separated app names the token lets its holder reach through a ws-proxy (required)")
	ttl = fs.Duration("ttl", 10*time.Minute, "how long the token is good for")
	stateDir = fs.String("state-dir", "", "the lab's state directory, which holds the secret (default $XDG_STATE_HOME/protolab)")
	return fs, targets, ttl, stateDir
}

// tokenCmd mints a token for a lab's ws-proxy apps with the lab secret of
// the state directory (made, 0600, when there is none): `protolab-tui token
// --targets ws,wss --ttl 10m`. The token goes to stdout alone, so scripts
// can take it; how to use it goes to stderr.
func tokenCmd(args []string, stdout, stderr io.Writer) int {
	fs, targets, ttl, stateDir := tokenFlags(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "protolab-tui token: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	var names []string
	for _, n := range strings.Split(*targets, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		fmt.Fprintln(stderr, "protolab-tui token: --targets names the apps the token reaches (e.g. --targets ws,wss)")
		return exitUsage
	}
	if *ttl <= 0 {
		fmt.Fprintf(stderr, "protolab-tui token: --ttl %s: want a positive duration such as 10m\n", *ttl)
		return exitUsage
	}
	dir := *stateDir
	if dir == "" {
		d, err := lab.DefaultStateDir()
		if err != nil {
			fmt.Fprintln(stderr, "protolab-tui token:", err)
			return exitFailed
		}
		dir = d
	}
	secret, err := labtoken.LoadSecret(lab.SecretPath(dir))
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui token:", err)
		return exitFailed
	}
	tok, err := labtoken.Mint(secret, names, *ttl, time.Now())
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui token:", err)
		return exitUsage
	}
	fmt.Fprintln(stdout, tok)
	fmt.Fprintf(stderr, "good for %s, for %s: connect to ws://HOST:PORT/<token>/%s/echo (or /chat/NAME?age=N) on a ws-proxy app of a lab using %s\n",
		*ttl, strings.Join(names, ", "), names[0], dir)
	return exitOK
}
