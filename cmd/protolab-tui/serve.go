package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/providers"
	"github.com/protolab/protolab-tui/ui/sshserve"
)

// ownFlag is a subcommand's own flag, beside the lab's (every other flag).
type ownFlag struct {
	name, def, usage string
	arg              string // what its value is, in the usage (FILE)
	isBool           bool   // takes no value (--all; --all=false)
	required         bool   // no default: the subcommand needs it
	files            bool   // its value is a path (completions)
}

// serveFlags are serve's own flags.
var serveFlags = []ownFlag{
	{name: "listen", arg: "HOST:PORT", def: "127.0.0.1:2222", usage: "where the SSH server listens (host:port)"},
	{name: "authorized-keys", arg: "FILE", usage: "the keys that may open the explorer, one per line (authorized_keys format)", required: true, files: true},
	{name: "shell-keys", arg: "FILE", usage: "the keys whose sessions may open the debugging shell (x: a root shell on the lab host); default: none", files: true},
}

// usageOf prints a subcommand's usage line and own flags, as flag does.
func usageOf(w io.Writer, line string, flags []ownFlag) {
	fmt.Fprintln(w, line)
	for _, f := range flags {
		arg := ""
		if !f.isBool {
			arg = " " + f.arg
		}
		fmt.Fprintf(w, "  --%s%s\n    \t%s", f.name, arg, f.usage)
		switch {
		case f.required:
			fmt.Fprint(w, " (required)")
		case f.def != "":
			fmt.Fprintf(w, " (default %q)", f.def)
		}
		fmt.Fprintln(w)
	}
}

// wantsHelp says whether args ask for help.
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

// serveCmd is `protolab-tui serve`: the explorer of a lab over SSH
// (`ssh -p 2222 lab@host`) until a signal ends the run. When a lab of the
// name runs on the provider already (kept by another run), serve attaches
// to it — its apps as they run, read from the provider — and leaves it
// running at the end; otherwise it brings one up (every lab flag works:
// --lab, --provider, …) and tears down what it brought up.
func serveCmd(args []string, stdout, stderr io.Writer) int {
	own, rest, err := takeFlags(args, serveFlags)
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui serve:", err)
		return exitUsage
	}
	if wantsHelp(rest) {
		usageOf(stdout, "Usage: protolab-tui serve --authorized-keys FILE [serve flags] [lab flags]: the explorer of a lab over SSH (ssh -p 2222 lab@host);\n"+
			"a lab of the --name running on the --provider is attached to (and left running), else one is brought up (and torn down at the end)", serveFlags)
		fmt.Fprintln(stdout, "and the flags of the lab (protolab-tui --help):")
		fs := newFlagSet(stdout)
		fs.PrintDefaults()
		return exitOK
	}
	o, err := parseFlags(rest, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui serve:", err)
		return exitUsage
	}
	if o.headless || o.read != "" || o.teardown || o.printLab || o.compose {
		fmt.Fprintln(stderr, "protolab-tui serve: serves the explorer of a running lab; --headless, --read, --teardown, --print-lab and --print-compose are not for it")
		return exitUsage
	}
	newProvider, err := providers.Lookup(o.cfg.Provider)
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui serve:", err)
		return exitUsage
	}
	found, err := findRunning(o.cfg, newProvider)
	if err != nil {
		fmt.Fprintf(stderr, "protolab-tui serve: looking for a running lab %q on provider %s: %v\n", o.cfg.Name, o.cfg.Provider, err)
		return exitFailed
	}
	attached := found != nil
	if attached {
		o.cfg.Apps, o.cfg.Attach = found.Apps, true
		fmt.Fprintf(stderr, "protolab-tui serve: lab %q runs on %s (%s, %d running): serving it as it runs (its apps: %s); it stays running when serve stops\n",
			o.cfg.Name, found.Where, lab.Containers(found.Containers), found.Running, strings.Join(names(found.Apps), ", "))
	}
	l, err := lab.New(o.cfg, newProvider)
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui serve:", err)
		return exitFailed
	}
	defer l.Close()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	srv, err := sshserve.New(l, sshserve.Options{Listen: own["listen"], HostKey: filepath.Join(o.cfg.StateDir, "serve", "host_ed25519"),
		AuthorizedKeys: own["authorized-keys"], ShellKeys: own["shell-keys"], Log: log})
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui", err)
		return exitUsage
	}
	// A signal ends the run: the sessions close and the lab is torn down
	// (a second signal forces the exit, as everywhere: signals.go).
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stop := watchStops(cancel, stderr, func() string { return leftBehind(o) })
	defer stop.stop()
	l.Interactive(true) // host keys, passphrases: a session answers
	defer l.Interactive(false)

	steps := []struct {
		what string
		run  func() *lab.Job
	}{{"bringing the lab up", func() *lab.Job { return l.Up(ctx) }}, {"deploying the apps", func() *lab.Job { return l.Deploy(ctx) }}}
	if o.cfg.Capture.Mode != "off" {
		steps = append(steps, struct {
			what string
			run  func() *lab.Job
		}{"starting the capture", func() *lab.Job { return l.StartCapture(ctx) }})
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }() // sessions may watch the lab come up
	h, p, _ := net.SplitHostPort(srv.Addr())
	fmt.Fprintf(stderr, "protolab-tui serve: the explorer of lab %q on %s: ssh -p %s lab@%s (host key %s)\n",
		o.cfg.Name, srv.Addr(), p, h, srv.HostKeyFingerprint)
	var upErr error
	for _, s := range steps {
		log.Info(s.what)
		if err := s.run().Wait(ctx); err != nil {
			upErr = fmt.Errorf("%s: %w", s.what, err)
			break
		}
	}
	if upErr != nil && ctx.Err() == nil {
		// The sessions show the error; the server stays for them to look.
		log.Error("the lab did not come up: the sessions show why; Ctrl-C ends the server", "err", upErr)
	}
	select {
	case <-ctx.Done():
	case err := <-served:
		if err != nil {
			fmt.Fprintln(stderr, "protolab-tui serve:", err)
		}
	}
	_ = srv.Close()
	tearErr := tearDown(l, max(30*time.Second, o.cfg.OpTimeout))
	if sig := stop.got(); sig != nil {
		if attached && tearErr == nil {
			fmt.Fprintf(stderr, "protolab-tui serve: %s; lab %q ran before serve attached to it, and is left running (%s removes it)\n",
				describe(sig), o.cfg.Name, teardownCommand(o))
			return exitFor(sig)
		}
		return interrupted(stderr, describe(sig), tearErr, o, exitFor(sig))
	}
	if tearErr != nil {
		fmt.Fprintln(stderr, "protolab-tui serve: teardown:", tearErr)
	}
	return exitFailed
}

// findRunning looks for a lab of cfg's name running on its provider (nil
// when none runs, or the provider keeps no lab outside this process),
// within the lab's lifecycle bound.
func findRunning(cfg lab.Config, newProvider providers.Constructor) (*lab.RunningLab, error) {
	l, err := lab.New(cfg, newProvider)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.OpTimeout)
	defer cancel()
	return l.FindRunning(ctx)
}

// takeFlags takes a subcommand's own flags (-name value, --name=value; a
// bool flag alone, or --name=true|false) out of args, and returns them
// (defaults filled in: "true"/"false" for bool flags) and the rest.
func takeFlags(args []string, flags []ownFlag) (map[string]string, []string, error) {
	own := map[string]string{}
	isBool := map[string]bool{}
	for _, f := range flags {
		own[f.name] = f.def
		if f.isBool {
			own[f.name], isBool[f.name] = "false", true
		}
	}
	var rest []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if _, ok := own[name]; !ok || !strings.HasPrefix(args[i], "-") {
			rest = append(rest, args[i])
			continue
		}
		if isBool[name] {
			if !hasValue {
				value = "true"
			}
			b, err := strconv.ParseBool(value)
			if err != nil {
				return nil, nil, fmt.Errorf("invalid boolean value %q for -%s", value, name)
			}
			own[name] = strconv.FormatBool(b)
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, nil, fmt.Errorf("flag needs an argument: -%s", name)
			}
			i++
			value = args[i]
		}
		own[name] = value
	}
	return own, rest, nil
}
