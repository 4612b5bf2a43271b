// Command protolab-tui brings up a lab for comparing web protocols (HTTP,
// HTTPS, WebSocket, secure WebSocket) on the wire. It reads the lab file
// (--lab), overlays the flags given, and hands the lab to the TUI or, with
// --headless, to the headless runner.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/protolab/protolab-tui/internal/termquiet"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/headless"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/providers"
	"github.com/protolab/protolab-tui/lab/providers/docker"
	"github.com/protolab/protolab-tui/protocol"
	"github.com/protolab/protolab-tui/ui"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitSIGINT  = 130
	exitSIGTERM = 143
)

type options struct {
	headless bool
	json     bool
	keep     bool
	pcap     string
	junit    string
	read     string
	teardown bool
	version  bool
	printLab bool
	compose  bool
	labFile  *lab.LabFile
	labPath  string
	cfg      lab.Config
}

// portFlag is --port NAME=PORT, given once per app.
type portFlag map[string]int

func (p portFlag) String() string { return fmt.Sprint(map[string]int(p)) }

func (p portFlag) Set(v string) error {
	name, port, ok := strings.Cut(v, "=")
	n, err := strconv.Atoi(port)
	if !ok || name == "" || err != nil {
		return fmt.Errorf("%q: want APP=PORT, e.g. ws=3002 (0 picks a free port)", v)
	}
	if n < 0 || n > 65535 {
		return fmt.Errorf("%q: the port is 0 (any free port) to 65535", v)
	}
	p[strings.TrimSpace(name)] = n
	return nil
}

// newFlagSet is the command's flags, unparsed: what the completion scripts
// offer.
func newFlagSet(stderr io.Writer) *flag.FlagSet {
	var fs *flag.FlagSet
	_, _ = parseFlagsOr(nil, stderr, func(f *flag.FlagSet) { fs = f })
	return fs
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	return parseFlagsOr(args, stderr, nil)
}

// parseFlagsOr parses args, or when describe is set hands it the flag set
// instead.
func parseFlagsOr(args []string, stderr io.Writer, describe func(*flag.FlagSet)) (options, error) {
	var o options
	fs := flag.NewFlagSet("protolab-tui", flag.ContinueOnError)
	fs.SetOutput(stderr)
	labPath := fs.String("lab", "", "the lab file (YAML: docs/lab-file.md); flags given with it overlay it; default: the seed's four apps")
	fs.BoolVar(&o.printLab, "print-lab", false, "print the effective lab file (the lab file and flags, defaults filled in) and exit: a start for your own")
	fs.BoolVar(&o.compose, "print-compose", false, "print a docker-compose file that starts the lab's apps by hand (as apps/docker-compose.yaml does the seed's) and exit")
	fs.BoolVar(&o.headless, "headless", false, "run the whole flow without a screen: up, deploy, probe, report, tear down (or the lab file's steps)")
	fs.BoolVar(&o.json, "json", false, "with --headless: print every event as one JSON object per line (NDJSON)")
	fs.BoolVar(&o.keep, "keep", false, "with --headless: leave the lab running at the end (the embedded lab runs until Ctrl-C)")
	var c lab.Config // what the flags say; only the flags given overlay the lab file
	fs.StringVar(&c.Provider, "provider", "local", "where the lab runs: "+strings.Join(providers.Names(), ", "))
	fs.StringVar(&c.Name, "name", "protolab", "lab name")
	fs.StringVar(&c.StateDir, "state-dir", "", "state directory (default $XDG_STATE_HOME/protolab)")
	fs.StringVar(&c.Bind, "bind", "127.0.0.1", "address the apps are published on")
	seedPorts := map[string]*int{}
	for _, p := range protocol.Seed() {
		seedPorts[string(p)] = fs.Int(string(p)+"-port", p.DefaultPort(), fmt.Sprintf("port of the app named %s (0: any free port)", p))
	}
	ports := portFlag{}
	fs.Var(ports, "port", "APP=PORT: the port of the named app (0: any free port); repeat for each app")
	protocols := fs.String("protocols", "", "comma-separated protocols ("+protocol.Names()+"): without --lab, one app for each; with it, only the lab's apps that speak them (default: the lab's apps, or the seed's four)")
	appNames := fs.String("apps", "", "comma-separated app names: run only these apps (default: every app)")
	fs.IntVar(&c.Probe.Count, "count", probe.DefaultCount, "echo round trips per app")
	fs.IntVar(&c.Probe.Payload, "payload", 32, fmt.Sprintf("bytes per echo message (1 to %d)", lab.MaxPayload))
	readLimit := fs.Int64("read-limit", lab.DefaultReadLimit, "largest WebSocket message every app accepts (bytes)")
	origins := fs.String("allowed-origins", "", "comma-separated extra browser origins every WebSocket app accepts")
	sans := fs.String("san", "", "comma-separated extra names for the lab's TLS certificate")
	fs.StringVar(&c.Capture.Mode, "capture", "auto", "capture the lab's traffic: auto (when this process may), on (socket-level if nothing better), off")
	fs.IntVar(&c.Capture.RingSize, "ring", 10000, fmt.Sprintf("records kept per app for the packet view (1 to %d)", lab.MaxRingSize))
	fs.StringVar(&o.read, "read", "", "decode a pcap or pcapng file with the lab's port map (the apps' ports) and print what is on the wire; no lab is started")
	fs.StringVar(&c.SSH.Host, "host", "", "with --provider ssh: the lab host, user@host[:port] or an alias from ~/.ssh/config")
	identity := fs.String("identity", "", "with --provider ssh: a private key file (ssh-agent keys are offered too)")
	fs.BoolVar(&c.SSH.AcceptNewHostKey, "accept-new-host-key", false, "with --provider ssh: trust an unknown host key and add it to ~/.ssh/known_hosts (a changed key is always refused)")
	fs.StringVar(&c.SSH.RemotePriv, "remote-priv", "auto", "with --provider ssh: how root-only commands (tcpdump, provisioning) get root: auto (sudo -n unless root), sudo, none")
	fs.StringVar(&c.Vagrant.Dir, "vagrant-dir", ".", "with --provider vagrant: the folder of the Vagrantfile (when it holds none: protolab's own, written to the state directory)")
	fs.StringVar(&c.Vagrant.Provider, "vagrant-provider", "", "with --provider vagrant: Vagrant's provider (virtualbox, libvirt, docker; default: Vagrant's choice)")
	fs.BoolVar(&c.Vagrant.Halt, "vagrant-halt", false, "with --provider vagrant: tear down by halting the VM (vagrant halt) instead of destroying it")
	fs.BoolVar(&o.teardown, "teardown", false, "remove everything the named lab left on the provider (containers, network: found by label, even after a crash) and exit")
	fs.BoolVar(&c.Docker.Purge, "purge", false, "with the docker provider: also remove the lab's images at teardown (they are kept as a cache otherwise)")
	fs.StringVar(&o.pcap, "pcap", "", "with --headless: export the capture to this pcapng file (TLS keys embedded; its folder must exist)")
	fs.StringVar(&o.junit, "junit", "", "with --headless: write a JUnit XML report to this file (a test case per app, and one for the flow or one per step of the lab file; its folder must exist)")
	fs.DurationVar(&c.OpTimeout, "timeout", 5*time.Minute, "bound on each lifecycle step (up, deploy, teardown)")
	showVersion := fs.Bool("version", false, "print the version and the commit this binary was built from, and exit")
	fs.Usage = func() { usage(fs) }
	if describe != nil {
		describe(fs)
		return o, nil
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.version = *showVersion; o.version {
		return o, nil
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (flags or a subcommand: app, completion, down --all, serve, token, version (first on the line); see -h)", fs.Arg(0))
	}
	if (o.keep || o.pcap != "" || o.junit != "") && !o.headless || o.json && !o.headless && o.read == "" {
		return o, errors.New("--json, --keep, --pcap and --junit go with --headless")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := checkRanges(fs, set); err != nil {
		return o, err
	}
	if o.pcap != "" {
		if err := checkOutPath("pcap", o.pcap, "lab.pcapng"); err != nil {
			return o, err
		}
	}
	if o.junit != "" {
		if err := checkOutPath("junit", o.junit, "protolab.xml"); err != nil {
			return o, err
		}
	}

	// The lab file, or the seed lab; then the flags that were given.
	var err error
	if o.labPath = *labPath; *labPath != "" {
		if o.labFile, err = lab.LoadLabFile(*labPath); err != nil {
			return o, err
		}
		o.cfg = o.labFile.Config
	} else {
		o.cfg = lab.Config{Name: c.Name, Provider: c.Provider, Bind: c.Bind, OpTimeout: c.OpTimeout, Probe: c.Probe,
			Capture: c.Capture, SSH: lab.SSHOptions{RemotePriv: c.SSH.RemotePriv}, Vagrant: lab.VagrantOptions{Dir: c.Vagrant.Dir}}
	}
	overlay := map[string]func(){
		"provider": func() { o.cfg.Provider = c.Provider }, "name": func() { o.cfg.Name = c.Name },
		"state-dir": func() { o.cfg.StateDir = c.StateDir }, "bind": func() { o.cfg.Bind = c.Bind },
		"count": func() { o.cfg.Probe.Count = c.Probe.Count }, "payload": func() { o.cfg.Probe.Payload = c.Probe.Payload },
		"capture": func() { o.cfg.Capture.Mode = c.Capture.Mode }, "ring": func() { o.cfg.Capture.RingSize = c.Capture.RingSize },
		"host": func() { o.cfg.SSH.Host = c.SSH.Host }, "accept-new-host-key": func() { o.cfg.SSH.AcceptNewHostKey = c.SSH.AcceptNewHostKey },
		"remote-priv": func() { o.cfg.SSH.RemotePriv = c.SSH.RemotePriv }, "identity": func() { o.cfg.SSH.Identity = []string{*identity} },
		"vagrant-dir": func() { o.cfg.Vagrant.Dir = c.Vagrant.Dir }, "vagrant-provider": func() { o.cfg.Vagrant.Provider = c.Vagrant.Provider },
		"vagrant-halt": func() { o.cfg.Vagrant.Halt = c.Vagrant.Halt }, "purge": func() { o.cfg.Docker.Purge = c.Docker.Purge },
		"timeout": func() { o.cfg.OpTimeout = c.OpTimeout }, "san": func() { o.cfg.ExtraNames = splitList(*sans) },
	}
	for name, apply := range overlay {
		if set[name] {
			apply()
		}
	}
	if o.cfg.Apps == nil {
		o.cfg.Apps = lab.SeedApps()
		if set["protocols"] {
			// No lab file: --protocols picks from every protocol the lab
			// knows, each app on its default port and named after it.
			o.cfg.Apps = lab.ProtocolApps(protocol.All())
		}
	}
	apps := make([]lab.App, len(o.cfg.Apps))
	copy(apps, o.cfg.Apps)
	for name, port := range seedPorts {
		if set[name+"-port"] {
			if other, both := ports[name]; both && other != *port {
				return o, fmt.Errorf("--%s-port %d and --port %s=%d disagree: give the port once", name, *port, name, other)
			}
			ports[name] = *port
		}
	}
	for name, port := range ports {
		found := false
		for i := range apps {
			if apps[i].Name == name {
				apps[i].Port, found = port, true
			}
		}
		if !found {
			return o, fmt.Errorf("--port %s=%d: the lab has no app named %q (it has %s)", name, port, name, strings.Join(names(apps), ", "))
		}
	}
	for i := range apps {
		if set["read-limit"] {
			apps[i].ReadLimit = *readLimit
		}
		if set["allowed-origins"] {
			apps[i].AllowedOrigins = splitList(*origins)
		}
	}
	if set["protocols"] {
		keep, err := protocol.ParseList(*protocols)
		if err != nil {
			return o, fmt.Errorf("--protocols: %w", err)
		}
		apps = slices.DeleteFunc(apps, func(a lab.App) bool { return !slices.Contains(keep, a.Protocol) })
		if len(apps) == 0 {
			return o, fmt.Errorf("--protocols %s: no app of the lab speaks them", *protocols)
		}
	}
	if set["apps"] {
		keep := splitList(*appNames)
		for _, n := range keep {
			if !slices.Contains(names(apps), n) {
				return o, fmt.Errorf("--apps: the lab has no app named %q (it has %s)", n, strings.Join(names(apps), ", "))
			}
		}
		apps = slices.DeleteFunc(apps, func(a lab.App) bool { return !slices.Contains(keep, a.Name) })
	}
	o.cfg.Apps = apps
	if o.cfg, err = o.cfg.WithDefaults(); err != nil {
		if f := flagFor(err, set); f != "" {
			return o, fmt.Errorf("--%s %s: %s", f, fs.Lookup(f).Value, err.(*lab.ConfigError).Msg)
		}
		return o, o.labFile.Explain(err)
	}
	if o.pcap != "" && len(o.cfg.Steps) > 0 {
		return o, fmt.Errorf("--pcap %s: the lab file %s has steps: export the capture with an export step (export FILE) instead", o.pcap, o.labPath)
	}
	if err := providers.Check(o.cfg); err != nil {
		if o.labFile != nil && !set["provider"] && !set["host"] {
			return o, o.labFile.Explain(err)
		}
		return o, fmt.Errorf("--provider %s: %w", o.cfg.Provider, err)
	}
	return o, nil
}

// usage is --help: how to run it, the subcommands, then the flags.
func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprint(w, `Usage: protolab-tui [flags]               the explorer of a lab (in a terminal); --headless: the whole flow without one
       protolab-tui SUBCOMMAND [flags]    (SUBCOMMAND --help lists its flags)

Subcommands:
`)
	for _, sub := range subcommands {
		fmt.Fprintf(w, "  %-11s %s\n", sub, subcommandHelp[sub])
	}
	fmt.Fprintln(w, "\nFlags (the lab's; serve and down take them too):")
	fs.PrintDefaults()
}

// ranges are the numeric flags' ranges, checked when the flag is given
// (a lab file's values are checked by lab.Config.WithDefaults).
var ranges = []struct {
	flag   string
	lo, hi int64 // hi 0: no upper bound
	want   string
}{
	{"count", 1, 0, "want 1 or more (echo round trips per app)"},
	{"payload", 1, lab.MaxPayload, fmt.Sprintf("want 1 to %d (bytes per echo message; a WebSocket app takes at most its read limit)", lab.MaxPayload)},
	{"read-limit", 1, 0, "want 1 or more (bytes in one WebSocket message)"},
	{"ring", 1, lab.MaxRingSize, fmt.Sprintf("want 1 to %d (records kept per app for the packet view)", lab.MaxRingSize)},
	{"http-port", 0, 65535, "want 0 (any free port) to 65535"},
	{"https-port", 0, 65535, "want 0 (any free port) to 65535"},
	{"ws-port", 0, 65535, "want 0 (any free port) to 65535"},
	{"wss-port", 0, 65535, "want 0 (any free port) to 65535"},
}

// checkRanges checks the values of the flags given against their ranges,
// naming the flag, its value and the range.
func checkRanges(fs *flag.FlagSet, set map[string]bool) error {
	for _, r := range ranges {
		if !set[r.flag] {
			continue
		}
		v, err := strconv.ParseInt(fs.Lookup(r.flag).Value.String(), 10, 64)
		if err != nil || v < r.lo || r.hi != 0 && v > r.hi {
			return fmt.Errorf("--%s %s: %s", r.flag, fs.Lookup(r.flag).Value, r.want)
		}
	}
	if set["timeout"] {
		if d, _ := time.ParseDuration(fs.Lookup("timeout").Value.String()); d <= 0 {
			return fmt.Errorf("--timeout %s: want a duration above 0, such as 90s or 5m (the bound on each lifecycle step)", fs.Lookup("timeout").Value)
		}
	}
	for flagName, values := range map[string][]string{"capture": {"auto", "on", "off"}, "remote-priv": {"auto", "sudo", "none"}} {
		if v := fs.Lookup(flagName).Value.String(); set[flagName] && !slices.Contains(values, v) {
			return fmt.Errorf("--%s %q: want one of %s", flagName, v, strings.Join(values, ", "))
		}
	}
	return nil
}

// configFlags maps the places in the configuration that a flag sets to the
// flag, so that a mistake there names the flag that made it.
var configFlags = map[string]string{
	"name": "name", "bind": "bind", "state_dir": "state-dir", "probe.count": "count", "probe.payload": "payload",
	"timeout": "timeout", "capture.mode": "capture", "capture.ring": "ring", "ssh.remote_priv": "remote-priv",
}

// flagFor returns the flag given that set the place err is about ("" when
// no flag did).
func flagFor(err error, set map[string]bool) string {
	var ce *lab.ConfigError
	if !errors.As(err, &ce) {
		return ""
	}
	if f, ok := configFlags[ce.Path]; ok && set[f] {
		return f
	}
	return ""
}

// writeJUnit writes the run's JUnit report to path.
func writeJUnit(path string, rep lab.Report, runErr error, took time.Duration) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--junit: %w", err)
	}
	if err := headless.WriteJUnit(f, rep, runErr, took); err != nil {
		f.Close()
		return fmt.Errorf("--junit %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--junit %s: %w", path, err)
	}
	return nil
}

// checkOutPath refuses an output file's path (--pcap, --junit) whose
// folder does not exist (the run creates no folders: as root that would be
// anywhere) or is not writable, or that is a folder itself; example is a
// file name to suggest.
func checkOutPath(flagName, path, example string) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("--%s %s is a folder: give a file name in it, such as %s", flagName, path, filepath.Join(path, example))
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("--%s %s: the folder %s does not exist: create it first (mkdir -p %s), or give a path in an existing folder", flagName, path, dir, dir)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("--%s %s: this user may not reach the folder %s (%w): give a path in a folder you own", flagName, path, dir, err)
	case err != nil:
		return fmt.Errorf("--%s %s: %w", flagName, path, err)
	case !st.IsDir():
		return fmt.Errorf("--%s %s: %s is not a folder", flagName, path, dir)
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Errorf("--%s %s: this user may not write in the folder %s (%w): give a path in a folder you own", flagName, path, dir, err)
	}
	return nil
}

func names(apps []lab.App) []string {
	out := make([]string, len(apps))
	for i, a := range apps {
		out[i] = a.Name
	}
	return out
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func main() {
	probe.ServeWorker() // as the probe worker: serve the request and exit
	termquiet.Restore() // TERM as it was: Bubble Tea's init asked the terminal nothing
	if code, handled := namespace(os.Args[1:]); handled {
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// namespace re-runs the program in a private user+network namespace when the
// embedded lab should capture but this user may not: there the process may
// capture its own loopback. handled is false when nothing was re-run (no
// need, or the kernel refused: capture then falls back to socket level).
func namespace(args []string) (code int, handled bool) {
	if capture.InNamespace() {
		if err := capture.LoopbackUp(); err != nil {
			fmt.Fprintln(os.Stderr, "protolab-tui: in the private network namespace:", err)
		}
		return 0, false
	}
	o, err := parseFlags(args, io.Discard)
	if err != nil || !providers.InProcess(o.cfg.Provider) || o.cfg.Capture.Mode == "off" || o.keep || o.read != "" || o.teardown || o.printLab || o.compose ||
		os.Getenv("PROTOLAB_NO_NETNS") == "1" || capture.CanCapture() {
		return 0, false
	}
	code, started, err := capture.ReexecInNamespace()
	if !started {
		fmt.Fprintf(os.Stderr, "protolab-tui: %v; capturing at socket level instead\n", err)
		return 0, false
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "protolab-tui:", err)
	}
	return code, true
}

func run(args []string, stdout, stderr io.Writer) int {
	if code, ok := subcommand(args, stdout, stderr); ok {
		return code
	}
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui:", err)
		return exitUsage
	}
	if o.version {
		fmt.Fprintln(stdout, version())
		return exitOK
	}
	if o.printLab {
		out := o.cfg
		if def, err := lab.DefaultStateDir(); err == nil && out.StateDir == def {
			out.StateDir = "" // the default: not this machine's path
		}
		b, err := lab.MarshalLabFile(out)
		if err != nil {
			fmt.Fprintln(stderr, "protolab-tui:", err)
			return exitFailed
		}
		_, _ = stdout.Write(b)
		return exitOK
	}
	if o.compose {
		b, err := docker.ComposeFile(o.cfg)
		if err != nil {
			fmt.Fprintln(stderr, "protolab-tui:", err)
			return exitFailed
		}
		_, _ = stdout.Write(b)
		return exitOK
	}
	if o.read != "" {
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		stop := watchStops(cancel, stderr, func() string { return "Left behind: nothing (--read starts no lab)." })
		defer stop.stop()
		_, err := headless.Replay(ctx, o.read, o.cfg.Apps, o.cfg.Capture.RingSize, o.json, stdout)
		if sig := stop.got(); sig != nil {
			fmt.Fprintf(stderr, "protolab-tui: %s: the figures above are of the packets read until then\n", describe(sig))
			return exitFor(sig)
		}
		if err != nil {
			fmt.Fprintln(stderr, "protolab-tui:", err)
			return exitFailed
		}
		return exitOK
	}
	newProvider, err := providers.Lookup(o.cfg.Provider)
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui:", err)
		return exitUsage
	}
	if o.teardown {
		l, err := lab.New(o.cfg, newProvider)
		if err != nil {
			fmt.Fprintln(stderr, "protolab-tui:", err)
			return exitFailed
		}
		ctx, cancel := context.WithTimeout(context.Background(), o.cfg.OpTimeout)
		defer cancel()
		if err := lab.RemoveLab(ctx, l.Provider()); err != nil {
			fmt.Fprintln(stderr, "protolab-tui: teardown:", err)
			return exitFailed
		}
		fmt.Fprintf(stdout, "lab %q on provider %s: nothing of it is left\n", o.cfg.Name, o.cfg.Provider)
		return exitOK
	}
	if !o.headless && (!term.IsTerminal(int(os.Stdin.Fd())) || !term.IsTerminal(int(os.Stdout.Fd()))) {
		fmt.Fprintln(stderr, "protolab-tui: the explorer needs a terminal (standard input and output are not one): run it in a terminal, or use --headless")
		return exitUsage
	}
	l, err := lab.New(o.cfg, newProvider)
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui:", err)
		return exitFailed
	}

	// SIGINT, SIGTERM and SIGHUP cancel ctx: the front end tears the lab
	// down once, and the exit code is 128+signal; a second SIGINT or
	// SIGTERM meanwhile forces the exit (signals.go).
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stop := watchStops(cancel, stderr, func() string { return leftBehind(o) })
	defer stop.stop()

	if !o.headless {
		defer l.Close()
		err := ui.Run(ctx, l, true)
		hungUp := err != nil && stop.got() == nil && terminalGone(os.Stdin)
		if hungUp {
			// The terminal closed: its reader failed before SIGHUP came
			// (or with no SIGHUP at all). The same end as SIGHUP's.
			cancel(errors.New(describe(syscall.SIGHUP)))
		}
		var tearErr error
		if stop.got() != nil || hungUp || l.InProcess() {
			// A signal tears any lab down; otherwise the embedded lab
			// (which lives in this process) ends with it, cleanly.
			tearErr = tearDown(l, max(30*time.Second, o.cfg.OpTimeout))
		}
		switch sig := stop.got(); {
		case sig != nil:
			return interrupted(stderr, describe(sig), tearErr, o, exitFor(sig))
		case hungUp:
			return interrupted(stderr, describe(syscall.SIGHUP), tearErr, o, exitFor(syscall.SIGHUP))
		}
		return explorerEnd(stderr, o, err, tearErr)
	}
	defer l.Close()
	began := time.Now()
	rep, err := headless.Run(ctx, l, headless.Options{JSON: o.json, Keep: o.keep, Out: stdout, Notes: stderr, Pcap: o.pcap})
	if o.junit != "" {
		if rep.Lab == "" { // the flow failed before the report
			rep.Lab, rep.Provider = l.Config().Name, l.Config().Provider
		}
		if jerr := writeJUnit(o.junit, rep, err, time.Since(began)); jerr != nil {
			fmt.Fprintln(stderr, "protolab-tui:", jerr)
			err = errors.Join(err, jerr)
		}
	}
	if sig := stop.got(); sig != nil {
		var tearErr error
		if errors.Is(err, headless.ErrTeardown) {
			tearErr = err
		}
		return interrupted(stderr, describe(sig), tearErr, o, exitFor(sig))
	}
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui:", err)
		return exitFailed
	}
	return exitOK
}

// terminalGone reports whether f is a terminal that has hung up (closed).
func terminalGone(f *os.File) bool {
	fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n == 1 && fds[0].Revents&unix.POLLHUP != 0
}

// explorerEnd says how the explorer ended, as the user chose — the lab
// torn down, or left running with what is left and the command that
// removes it — and returns the exit code: 130 after Ctrl-C, 1 when
// something failed, else 0. err is ui.Run's; tearErr a teardown's here.
func explorerEnd(stderr io.Writer, o options, err, tearErr error) int {
	if errors.Is(err, ui.ErrTeardownFailed) && tearErr == nil {
		tearErr = err // the explorer's own teardown (t) failed
	}
	ctrlC := errors.Is(err, ui.ErrInterrupted)
	switch {
	case errors.Is(err, ui.ErrLeftRunning):
		why, code := "quit", exitOK
		if ctrlC {
			why, code = "interrupted (Ctrl-C)", exitSIGINT
		}
		fmt.Fprintf(stderr, "protolab-tui: %s; the lab %q was left running, as asked.\n%s\n", why, o.cfg.Name, leftBehind(o))
		return code
	case ctrlC:
		return interrupted(stderr, "interrupted (Ctrl-C)", tearErr, o, exitSIGINT)
	case tearErr != nil:
		fmt.Fprintf(stderr, "protolab-tui: teardown: %v\n%s\n", tearErr, leftBehind(o))
		return exitFailed
	case err != nil:
		fmt.Fprintln(stderr, "protolab-tui:", err)
		return exitFailed
	}
	return exitOK
}

// interrupted reports the end of an interrupted run and returns code.
func interrupted(stderr io.Writer, why string, tearErr error, o options, code int) int {
	if tearErr != nil {
		fmt.Fprintf(stderr, "protolab-tui: %s; the teardown failed: %v\n%s\n", why, tearErr, leftBehind(o))
		return code
	}
	fmt.Fprintf(stderr, "protolab-tui: %s; the lab was torn down\n", why)
	return code
}
