// Command protolab-tui brings up a lab for comparing HTTP, HTTPS, WebSocket
// and secure WebSocket on the wire. It turns flags into a lab configuration
// and hands the lab to the TUI or, with --headless, to the headless runner.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/capture"
	"github.com/protolab/protolab-tui/lab/headless"
	"github.com/protolab/protolab-tui/lab/probe"
	"github.com/protolab/protolab-tui/lab/proto"
	"github.com/protolab/protolab-tui/lab/providers"
	"github.com/protolab/protolab-tui/lab/sshrun"
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
	read     string
	teardown bool
	purge    bool
	ssh      sshrun.Config
	priv     string
	vdir     string
	vprov    string
	vkeep    bool
	cfg      lab.Config
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("protolab-tui", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.headless, "headless", false, "run the whole flow without a screen: up, deploy, probe, report, tear down")
	fs.BoolVar(&o.json, "json", false, "with --headless: print every event as one JSON object per line (NDJSON)")
	fs.BoolVar(&o.keep, "keep", false, "with --headless: leave the lab running at the end (the embedded lab runs until Ctrl-C)")
	fs.StringVar(&o.cfg.Provider, "provider", "local", "where the lab runs: "+strings.Join(providers.Names(), ", "))
	fs.StringVar(&o.cfg.Name, "name", "protolab", "lab name")
	fs.StringVar(&o.cfg.StateDir, "state-dir", "", "state directory (default $XDG_STATE_HOME/protolab)")
	fs.StringVar(&o.cfg.Bind, "bind", "127.0.0.1", "address the apps are published on")
	ports := map[proto.Protocol]*int{}
	for _, p := range proto.All {
		ports[p] = fs.Int(strings.TrimPrefix(p.PortFlag(), "--"), p.DefaultPort(), fmt.Sprintf("port of the %s app (0: any free port)", p))
	}
	protocols := fs.String("protocols", "", "comma-separated protocols to run (default all: http,https,ws,wss)")
	fs.IntVar(&o.cfg.Probe.Count, "count", probe.DefaultCount, "echo round trips per protocol")
	fs.IntVar(&o.cfg.Probe.Payload, "payload", 32, "bytes per echo message")
	fs.Int64Var(&o.cfg.ReadLimit, "read-limit", 64<<10, "largest WebSocket message the apps accept (bytes)")
	origins := fs.String("allowed-origins", "", "comma-separated extra browser origins the ws/wss apps accept")
	sans := fs.String("san", "", "comma-separated extra names for the lab's TLS certificate")
	fs.StringVar(&o.cfg.Capture.Mode, "capture", "auto", "capture the lab's traffic: auto (when this process may), on (socket-level if nothing better), off")
	fs.IntVar(&o.cfg.Capture.RingSize, "ring", 10000, "records kept per protocol for the packet view")
	fs.StringVar(&o.read, "read", "", "decode a pcap or pcapng file with the lab's port map (the --*-port flags) and print what is on the wire; no lab is started")
	host := fs.String("host", "", "with --provider ssh: the lab host, user@host[:port] or an alias from ~/.ssh/config")
	identity := fs.String("identity", "", "with --provider ssh: a private key file (ssh-agent keys are offered too)")
	fs.BoolVar(&o.ssh.AcceptNewHostKey, "accept-new-host-key", false, "with --provider ssh: trust an unknown host key and add it to ~/.ssh/known_hosts (a changed key is always refused)")
	fs.StringVar(&o.priv, "remote-priv", "auto", "with --provider ssh: how root-only commands (tcpdump, provisioning) get root: auto (sudo -n unless root), sudo, none")
	fs.StringVar(&o.vdir, "vagrant-dir", ".", "with --provider vagrant: the folder of the Vagrantfile")
	fs.StringVar(&o.vprov, "vagrant-provider", "", "with --provider vagrant: Vagrant's provider (virtualbox, libvirt, docker; default: Vagrant's choice)")
	fs.BoolVar(&o.vkeep, "vagrant-halt", false, "with --provider vagrant: tear down by halting the VM (vagrant halt) instead of destroying it")
	fs.BoolVar(&o.teardown, "teardown", false, "remove everything the named lab left on the provider (containers, network: found by label, even after a crash) and exit")
	fs.BoolVar(&o.purge, "purge", false, "with the docker provider: also remove the lab's images at teardown (they are kept as a cache otherwise)")
	fs.StringVar(&o.pcap, "pcap", "", "with --headless: export the capture to this pcapng file (TLS keys embedded)")
	timeout := fs.Duration("timeout", 5*time.Minute, "bound on each lifecycle step (up, deploy, teardown)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	if (o.keep || o.pcap != "") && !o.headless || o.json && !o.headless && o.read == "" {
		return o, errors.New("--json, --keep and --pcap go with --headless")
	}
	var err error
	if o.cfg.Protocols, err = proto.ParseList(*protocols); err != nil {
		return o, fmt.Errorf("--protocols: %w", err)
	}
	o.cfg.Ports = map[proto.Protocol]int{}
	for p, v := range ports {
		o.cfg.Ports[p] = *v
	}
	o.cfg.AllowedOrigins = splitList(*origins)
	o.cfg.ExtraNames = splitList(*sans)
	o.cfg.OpTimeout = *timeout
	if *host != "" {
		if o.ssh.User, o.ssh.Host, o.ssh.Port, err = sshrun.ParseTarget(*host); err != nil {
			return o, err
		}
	}
	if *identity != "" {
		o.ssh.IdentityFiles = []string{*identity}
	}
	if o.cfg.Provider == "ssh" && o.ssh.Host == "" {
		return o, errors.New("--provider ssh needs --host user@host[:port]")
	}
	if o.cfg.Probe.Count < 1 {
		return o, errors.New("--count must be at least 1")
	}
	if o.cfg.Probe.Payload < 1 {
		return o, errors.New("--payload must be at least 1")
	}
	if int64(o.cfg.Probe.Payload) > o.cfg.ReadLimit || o.cfg.Probe.Payload > 1<<20 {
		return o, fmt.Errorf("--payload %d: the apps take at most --read-limit (%d) bytes per WebSocket message and 1 MiB per HTTP body", o.cfg.Probe.Payload, o.cfg.ReadLimit)
	}
	if _, err := providers.Lookup(o.cfg.Provider); err != nil {
		return o, fmt.Errorf("--provider: %w", err)
	}
	if o.cfg, err = o.cfg.WithDefaults(); err != nil {
		return o, err
	}
	return o, nil
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
	if err != nil || o.cfg.Provider != "local" || o.cfg.Capture.Mode == "off" || o.keep || o.read != "" || o.teardown ||
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
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui:", err)
		return exitUsage
	}
	if o.read != "" {
		ports := map[uint16]proto.Protocol{}
		for _, p := range o.cfg.Protocols {
			if n := o.cfg.Ports[p]; n != 0 {
				ports[uint16(n)] = p
			}
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if _, err := headless.Replay(ctx, o.read, ports, o.cfg.Capture.RingSize, o.json, stdout); err != nil {
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
	if o.purge && o.cfg.Provider == "docker" {
		newProvider = providers.Purge()
	}
	if o.cfg.Provider == "ssh" {
		newProvider = providers.SSH(o.ssh, o.priv)
	}
	if o.cfg.Provider == "vagrant" {
		newProvider = providers.Vagrant(o.vdir, o.vprov, o.vkeep)
	}
	if o.teardown {
		l, err := lab.New(o.cfg, newProvider)
		if err != nil {
			fmt.Fprintln(stderr, "protolab-tui:", err)
			return exitFailed
		}
		ctx, cancel := context.WithTimeout(context.Background(), o.cfg.OpTimeout)
		defer cancel()
		if err := l.Provider().Teardown(ctx); err != nil {
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

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var got os.Signal
	gotc := make(chan os.Signal, 1)
	go func() {
		s, ok := <-sigs
		if !ok {
			return
		}
		gotc <- s
		cancel()
		if _, again := <-sigs; again {
			fmt.Fprintln(stderr, "protolab-tui: second signal, exiting without teardown")
			os.Exit(exitFailed)
		}
	}()

	if !o.headless {
		defer l.Close()
		err := ui.Run(ctx, l, true)
		if l.InProcess() && l.Snapshot().State != lab.Down {
			// The embedded lab lives in this process: it ends with it, cleanly.
			tctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_ = l.Teardown(tctx).Wait(tctx)
			cancel()
		}
		if err != nil {
			fmt.Fprintln(stderr, "protolab-tui:", err)
			return exitFailed
		}
		return exitOK
	}
	defer l.Close()
	_, err = headless.Run(ctx, l, headless.Options{JSON: o.json, Keep: o.keep, Out: stdout, Notes: stderr, Pcap: o.pcap})
	select {
	case got = <-gotc:
	default:
	}
	switch {
	case got == os.Interrupt:
		fmt.Fprintln(stderr, "protolab-tui: interrupted; the lab was torn down")
		return exitSIGINT
	case got == syscall.SIGTERM:
		fmt.Fprintln(stderr, "protolab-tui: terminated; the lab was torn down")
		return exitSIGTERM
	case err != nil:
		fmt.Fprintln(stderr, "protolab-tui:", err)
		return exitFailed
	}
	return exitOK
}
