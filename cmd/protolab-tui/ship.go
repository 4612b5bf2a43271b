package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"

	"golang.org/x/term"

	"github.com/protolab/protolab-tui/apps/appmain"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/providers"
	"github.com/protolab/protolab-tui/protocol"
)

// subcommand runs the subcommands (app, version, completion, down, serve, token); handled is
// false when args name none, and the flags are the lab's.
func subcommand(args []string, stdout, stderr io.Writer) (code int, handled bool) {
	if len(args) == 0 {
		return 0, false
	}
	switch args[0] {
	case "app":
		// The lab's web apps, as the FROM scratch image runs them (there
		// under the name protolab-app): one binary carries everything.
		if err := appmain.Run(args[1:]); err != nil {
			fmt.Fprintln(stderr, "protolab-tui app:", err)
			return exitFailed, true
		}
		return exitOK, true
	case "down":
		return downAll(args[1:], os.Stdin, stdout, stderr), true
	case "token":
		return tokenCmd(args[1:], stdout, stderr), true
	case "serve":
		return serveCmd(args[1:], stdout, stderr), true
	case "version":
		fmt.Fprintln(stdout, version())
		return exitOK, true
	case "completion":
		if len(args) != 2 {
			fmt.Fprintln(stderr, "protolab-tui: completion SHELL: bash, zsh or fish (e.g. source <(protolab-tui completion bash))")
			return exitUsage, true
		}
		s, err := completion(args[1])
		if err != nil {
			fmt.Fprintln(stderr, "protolab-tui:", err)
			return exitUsage, true
		}
		_, _ = io.WriteString(stdout, s)
		return exitOK, true
	}
	return 0, false
}

// version is the module version and the VCS commit the binary was built
// from, as the Go toolchain recorded them.
func version() string {
	v, rev, when, dirty := "(unknown)", "", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		v = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	out := "protolab-tui " + v
	if rev != "" {
		out += " commit " + rev
		if dirty {
			out += "+modified"
		}
		if when != "" {
			out += " (" + when + ")"
		}
	}
	return out + fmt.Sprintf(" %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// completionFlag is one flag as the completion scripts offer it.
type completionFlag struct {
	name, usage string
	takesValue  bool
	files       bool     // the value is a path
	values      []string // the value is one of these
}

var subcommands = []string{"app", "completion", "down", "serve", "token", "version"}

// subcommandHelp says what each subcommand does (--help).
var subcommandHelp = map[string]string{
	"app":        "run one of the lab's web apps, as its container image does: app --mode ws",
	"completion": "print a shell's completion script: completion bash|zsh|fish",
	"down":       "list, or remove, the labs protolab left on a Docker engine: down --list, down --all",
	"serve":      "serve the explorer of a lab over SSH: serve --authorized-keys FILE",
	"token":      "mint a token for a lab's ws-proxy apps: token --targets ws,wss",
	"version":    "print the version and the commit this binary was built from",
}

// fileFlags take a path.
var fileFlags = map[string]bool{"lab": true, "pcap": true, "read": true, "identity": true, "state-dir": true, "vagrant-dir": true, "junit": true,
	"cert": true, "key": true, "ca": true, "secret-file": true}

// flagValues are the values a flag takes, when it takes one of a few.
func flagValues(name string) []string {
	switch name {
	case "provider":
		return providers.Names()
	case "capture":
		return []string{"auto", "on", "off"}
	case "remote-priv":
		return []string{"auto", "sudo", "none"}
	case "mode":
		return strings.Split(protocol.Names(), ", ")
	case "kind":
		return strings.Split(protocol.KindNames(), ", ")
	case "compression":
		return []string{"none", "deflate"}
	case "affinity":
		return []string{"none", "cookie"}
	case "log-level":
		return []string{"debug", "info", "warn", "error"}
	}
	return nil
}

// fromFlagSet is fs's flags as the completion scripts offer them, by name.
func fromFlagSet(fs *flag.FlagSet) []completionFlag {
	var out []completionFlag
	fs.VisitAll(func(f *flag.Flag) {
		b, isBool := f.Value.(interface{ IsBoolFlag() bool })
		out = append(out, completionFlag{name: f.Name, usage: strings.SplitN(f.Usage, ";", 2)[0], takesValue: !isBool || !b.IsBoolFlag(),
			files: fileFlags[f.Name], values: flagValues(f.Name)})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// fromOwn is a subcommand's own flags as the completion scripts offer them.
func fromOwn(flags []ownFlag) []completionFlag {
	var out []completionFlag
	for _, f := range flags {
		out = append(out, completionFlag{name: f.name, usage: strings.SplitN(f.usage, ";", 2)[0], takesValue: !f.isBool, files: f.files})
	}
	return out
}

// completionFlags is the lab's flags (the command's own, and serve's and
// down's beside theirs).
func completionFlags() []completionFlag { return fromFlagSet(newFlagSet(io.Discard)) }

// completionSets are the flags of the command ("") and of each subcommand
// that takes flags, in the order the scripts list them.
func completionSets() ([]string, map[string][]completionFlag) {
	lab := completionFlags()
	tok, _, _, _ := tokenFlags(io.Discard)
	return []string{"serve", "down", "token", "app", ""}, map[string][]completionFlag{
		"":      lab,
		"serve": append(fromOwn(serveFlags), lab...),
		"down":  append(fromOwn(downFlags), lab...),
		"token": fromFlagSet(tok),
		"app":   fromFlagSet(appmain.FlagSet()),
	}
}

// completion is the completion script for shell: the subcommands first,
// then each one's flags (serve's and down's own beside the lab's), and
// the values of those that take one of a few, or a path.
func completion(shell string) (string, error) {
	order, sets := completionSets()
	var b strings.Builder
	switch shell {
	case "bash":
		b.WriteString("# bash completion for protolab-tui: source <(protolab-tui completion bash)\n_protolab_tui() {\n")
		b.WriteString("\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} sub= words\n")
		fmt.Fprintf(&b, "\tcase ${COMP_WORDS[1]} in %s) ((COMP_CWORD > 1)) && sub=${COMP_WORDS[1]} ;; esac\n", strings.Join(subcommands, "|"))
		b.WriteString("\tcase $sub in\n\tcompletion) ((COMP_CWORD == 2)) && COMPREPLY=($(compgen -W 'bash zsh fish' -- \"$cur\")); return ;;\n\tversion) return ;;\n\tesac\n")
		b.WriteString("\tcase $sub:$prev in\n")
		var files []string
		for _, sub := range order {
			for _, f := range sets[sub] {
				key := sub + ":--" + f.name
				switch {
				case f.values != nil:
					fmt.Fprintf(&b, "\t%s) COMPREPLY=($(compgen -W '%s' -- \"$cur\")); return ;;\n", key, strings.Join(f.values, " "))
				case f.files:
					files = append(files, key)
				}
			}
		}
		fmt.Fprintf(&b, "\t%s) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n\tesac\n", strings.Join(files, "|"))
		fmt.Fprintf(&b, "\tif [[ $COMP_CWORD -eq 1 && $cur != -* ]]; then COMPREPLY=($(compgen -W '%s' -- \"$cur\")); return; fi\n", strings.Join(subcommands, " "))
		b.WriteString("\tcase $sub in\n")
		for _, sub := range order {
			var words []string
			for _, f := range sets[sub] {
				words = append(words, "--"+f.name)
			}
			pat := sub
			if sub == "" {
				pat = "*"
			}
			fmt.Fprintf(&b, "\t%s) words='%s' ;;\n", pat, strings.Join(words, " "))
		}
		b.WriteString("\tesac\n\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\ncomplete -F _protolab_tui protolab-tui\n")
	case "zsh":
		b.WriteString("#compdef protolab-tui\n# zsh completion for protolab-tui: protolab-tui completion zsh > \"${fpath[1]}/_protolab-tui\"\n")
		b.WriteString("_protolab_tui() {\n\tlocal sub\n")
		for _, sub := range order {
			name := "lab"
			if sub != "" {
				name = sub
			}
			fmt.Fprintf(&b, "\tlocal -a %s_flags=(\n", name)
			own := sets[sub]
			if sub == "serve" || sub == "down" {
				own = own[:len(sets[sub])-len(sets[""])] // the lab's follow: $lab_flags
			}
			for _, f := range own {
				spec := "--" + f.name + "[" + zshEscape(f.usage) + "]"
				switch {
				case f.files:
					spec += ":path:_files"
				case f.values != nil:
					spec += ":value:(" + strings.Join(f.values, " ") + ")"
				case f.takesValue:
					spec += ":value: "
				}
				fmt.Fprintf(&b, "\t\t%s\n", shQuote(spec))
			}
			b.WriteString("\t)\n")
		}
		fmt.Fprintf(&b, "\tcase $words[2] in\n\t%s)\n\t\tsub=$words[2]\n\t\tshift words\n\t\t(( CURRENT-- ))\n\t\tcase $sub in\n", strings.Join(subcommands, "|"))
		b.WriteString("\t\tserve) _arguments -s $serve_flags $lab_flags ;;\n\t\tdown) _arguments -s $down_flags $lab_flags ;;\n")
		b.WriteString("\t\ttoken) _arguments -s $token_flags ;;\n\t\tapp) _arguments -s $app_flags ;;\n")
		b.WriteString("\t\tcompletion) _arguments '1:shell:(bash zsh fish)' ;;\n\t\tesac ;;\n")
		fmt.Fprintf(&b, "\t*) _arguments -s $lab_flags %s ;;\n\tesac\n}\n_protolab_tui \"$@\"\n", shQuote("1:subcommand:("+strings.Join(subcommands, " ")+")"))
	case "fish":
		b.WriteString("# fish completion for protolab-tui: protolab-tui completion fish > ~/.config/fish/completions/protolab-tui.fish\n")
		fmt.Fprintf(&b, "complete -c protolab-tui -n __fish_use_subcommand -f -a %s\n", shQuote(strings.Join(subcommands, " ")))
		for _, sub := range subcommands {
			fmt.Fprintf(&b, "complete -c protolab-tui -n __fish_use_subcommand -f -a %s -d %s\n", sub, shQuote(subcommandHelp[sub]))
		}
		b.WriteString("complete -c protolab-tui -n '__fish_seen_subcommand_from completion' -f -a 'bash zsh fish'\n")
		for _, sub := range order {
			cond := "__fish_seen_subcommand_from " + sub
			flags := sets[sub]
			switch sub {
			case "":
				cond = "not __fish_seen_subcommand_from app completion token version" // the lab's flags: the command's, serve's and down's
			case "serve", "down":
				flags = flags[:len(sets[sub])-len(sets[""])]
			}
			for _, f := range flags {
				line := "complete -c protolab-tui -n " + shQuote(cond) + " -l " + f.name + " -d " + shQuote(f.usage)
				switch {
				case f.files:
					line += " -r -F"
				case f.values != nil:
					line += " -x -a " + shQuote(strings.Join(f.values, " "))
				case f.takesValue:
					line += " -x"
				}
				b.WriteString(line + "\n")
			}
		}
	default:
		return "", fmt.Errorf("completion %q: the shells are bash, zsh and fish", shell)
	}
	return b.String(), nil
}

func zshEscape(s string) string {
	return strings.NewReplacer("[", `\[`, "]", `\]`, ":", `\:`).Replace(s)
}

// shQuote quotes s for sh, zsh and fish alike (single quotes; a quote inside
// is closed, escaped and reopened — fish reads \' inside quotes as a quote
// too, but the close-escape-reopen form works in all three).
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// labLister is a provider that can find every lab protolab left on it.
type labLister interface {
	Labs(ctx context.Context) ([]lab.LabSummary, error)
}

// downFlags are down's own flags.
var downFlags = []ownFlag{
	{name: "all", isBool: true, usage: "remove every lab protolab left on the provider (found by label, whichever run brought it up), after a confirmation"},
	{name: "list", isBool: true, usage: "only list the labs on the provider and their containers; remove nothing"},
	{name: "match", arg: "GLOB", def: "*", usage: "only the labs whose name matches this glob (*, ?, [a-z]: path.Match)"},
	{name: "yes", isBool: true, usage: "remove without asking (scripts; without a terminal, down --all needs it)"},
}

// downAll is `protolab-tui down --all|--list [--match GLOB] [--yes] [flags]`:
// every lab protolab left on the provider (found by label; with --match
// only the names matching), listed, then — confirmed at a terminal, or
// with --yes — removed. The provider is docker unless one is given.
func downAll(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	own, rest, err := takeFlags(args, downFlags)
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui down:", err)
		return exitUsage
	}
	if wantsHelp(rest) {
		usageOf(stdout, "Usage: protolab-tui down --all|--list [--match GLOB] [--yes] [--provider docker|ssh --host user@host] [--state-dir DIR]:\n"+
			"list, or remove, every lab protolab left on a provider (default: docker, this machine's engine or DOCKER_HOST's); one lab: --teardown --name NAME", downFlags)
		fmt.Fprintln(stdout, "and the flags of the lab that find the provider (protolab-tui --help lists them all): --provider, --host, --identity, --accept-new-host-key, --remote-priv, --lab, --state-dir, --timeout")
		return exitOK
	}
	all, list, yes, match := own["all"] == "true", own["list"] == "true", own["yes"] == "true", own["match"]
	if _, err := path.Match(match, ""); err != nil {
		fmt.Fprintf(stderr, "protolab-tui down: --match %q: %v (a glob: *, ?, [a-z])\n", match, err)
		return exitUsage
	}
	if !all && !list {
		fmt.Fprintln(stderr, "protolab-tui down: give --all (remove every lab protolab left on the provider) or --list (only list them); one lab: --teardown --name NAME; down --help says more")
		return exitUsage
	}
	o, err := parseFlags(rest, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui down:", err)
		return exitUsage
	}
	// The provider: the one given (flag or lab file), else docker — the
	// embedded provider's labs end with their process, leaving nothing.
	if !slices.ContainsFunc(rest, func(a string) bool {
		return a == "-provider" || a == "--provider" || strings.HasPrefix(a, "--provider=") || strings.HasPrefix(a, "-provider=")
	}) &&
		(o.labFile == nil || o.labFile.Config.Provider == "") {
		o.cfg.Provider = "docker"
	}
	newProvider, err := providers.Lookup(o.cfg.Provider)
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui down:", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.cfg.OpTimeout)
	defer cancel()
	l, err := lab.New(o.cfg, newProvider)
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui down:", err)
		return exitFailed
	}
	defer l.Close()
	ll, ok := l.Provider().(labLister)
	if !ok {
		why := map[string]string{
			"local":   "the embedded (local) provider's labs live in the process that runs them and end with it: nothing is left to list or remove",
			"vagrant": "the vagrant provider's lab is its VM: remove one with --provider vagrant --vagrant-dir DIR --name NAME --teardown",
		}[o.cfg.Provider]
		if why == "" {
			why = "the " + o.cfg.Provider + " provider cannot list its labs; remove one with --teardown --name NAME"
		}
		fmt.Fprintf(stderr, "protolab-tui down: %s; labs on a Docker engine: --provider docker (this machine's, or DOCKER_HOST's) or --provider ssh --host user@host\n", why)
		return exitUsage
	}
	labs, err := ll.Labs(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui down:", err)
		return exitFailed
	}
	labs = slices.DeleteFunc(labs, func(s lab.LabSummary) bool { ok, _ := path.Match(match, s.Name); return !ok })
	where := "provider " + o.cfg.Provider
	if o.cfg.SSH.Host != "" && o.cfg.Provider == "ssh" {
		where += " (" + o.cfg.SSH.Host + ")"
	}
	if len(labs) == 0 {
		fmt.Fprintf(stdout, "no lab of protolab is left on %s\n", where)
		return exitOK
	}
	fmt.Fprintf(stdout, "labs of protolab on %s (%d):\n", where, len(labs))
	for _, s := range labs {
		fmt.Fprintf(stdout, "  %s\n", s)
	}
	if list && !all {
		fmt.Fprintln(stdout, "(--list: nothing removed; down --all removes them)")
		return exitOK
	}
	if list {
		fmt.Fprintln(stdout, "(--list: nothing removed)")
		return exitOK
	}
	if !yes {
		if !term.IsTerminal(int(stdin.Fd())) {
			fmt.Fprintf(stderr, "protolab-tui down --all: no terminal to confirm on: give --yes to remove %s (whichever run brought them up), or --list only to list them\n", plural(len(labs), "lab"))
			return exitUsage
		}
		fmt.Fprintf(stdout, "Remove %s — their containers and networks, whichever run brought them up? [y/N] ", plural(len(labs), "lab"))
		answer, _ := bufio.NewReader(stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(stdout, "nothing removed")
			return exitFailed
		}
	}
	code := exitOK
	for _, s := range labs {
		cfg := o.cfg
		cfg.Name = s.Name
		one, err := lab.New(cfg, newProvider)
		if err == nil {
			err = lab.RemoveLab(ctx, one.Provider())
			one.Close()
		}
		if err != nil {
			fmt.Fprintf(stderr, "protolab-tui: removing lab %q: %v\n", s.Name, err)
			code = exitFailed
			continue
		}
		fmt.Fprintf(stdout, "lab %q removed\n", s.Name)
	}
	return code
}

// plural says n things ("1 lab", "2 labs").
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
