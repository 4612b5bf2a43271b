package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"

	"github.com/protolab/protolab-tui/apps/appmain"
	"github.com/protolab/protolab-tui/lab"
	"github.com/protolab/protolab-tui/lab/providers"
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
		return downAll(args[1:], stdout, stderr), true
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

// fileFlags take a path.
var fileFlags = map[string]bool{"lab": true, "pcap": true, "read": true, "identity": true, "state-dir": true, "vagrant-dir": true, "junit": true}

func completionFlags() []completionFlag {
	var out []completionFlag
	fs := newFlagSet(io.Discard)
	fs.VisitAll(func(f *flag.Flag) {
		b, isBool := f.Value.(interface{ IsBoolFlag() bool })
		c := completionFlag{name: f.Name, usage: strings.SplitN(f.Usage, ";", 2)[0], takesValue: !isBool || !b.IsBoolFlag(), files: fileFlags[f.Name]}
		switch f.Name {
		case "provider":
			c.values = providers.Names()
		case "capture":
			c.values = []string{"auto", "on", "off"}
		case "remote-priv":
			c.values = []string{"auto", "sudo", "none"}
		}
		out = append(out, c)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// completion is the completion script for shell.
func completion(shell string) (string, error) {
	flags := completionFlags()
	var b strings.Builder
	switch shell {
	case "bash":
		var words, files []string
		b.WriteString("# bash completion for protolab-tui: source <(protolab-tui completion bash)\n_protolab_tui() {\n")
		b.WriteString("\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n\tcase $prev in\n")
		for _, f := range flags {
			words = append(words, "--"+f.name)
			if f.files {
				files = append(files, "--"+f.name)
			}
			if f.values != nil {
				fmt.Fprintf(&b, "\t--%s) COMPREPLY=($(compgen -W '%s' -- \"$cur\")); return ;;\n", f.name, strings.Join(f.values, " "))
			}
		}
		fmt.Fprintf(&b, "\t%s) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n", strings.Join(files, "|"))
		b.WriteString("\tcompletion) COMPREPLY=($(compgen -W 'bash zsh fish' -- \"$cur\")); return ;;\n\tesac\n")
		fmt.Fprintf(&b, "\tif [[ $COMP_CWORD -eq 1 && $cur != -* ]]; then COMPREPLY=($(compgen -W '%s' -- \"$cur\")); return; fi\n", strings.Join(subcommands, " "))
		fmt.Fprintf(&b, "\tCOMPREPLY=($(compgen -W '%s' -- \"$cur\"))\n}\ncomplete -F _protolab_tui protolab-tui\n", strings.Join(words, " "))
	case "zsh":
		b.WriteString("#compdef protolab-tui\n# zsh completion for protolab-tui: protolab-tui completion zsh > \"${fpath[1]}/_protolab-tui\"\n_arguments -s \\\n")
		for _, f := range flags {
			spec := "--" + f.name + "[" + zshEscape(f.usage) + "]"
			switch {
			case f.files:
				spec += ":path:_files"
			case f.values != nil:
				spec += ":value:(" + strings.Join(f.values, " ") + ")"
			case f.takesValue:
				spec += ":value: "
			}
			fmt.Fprintf(&b, "\t%s \\\n", shQuote(spec))
		}
		fmt.Fprintf(&b, "\t%s\n", shQuote("1:subcommand:("+strings.Join(subcommands, " ")+")"))
	case "fish":
		b.WriteString("# fish completion for protolab-tui: protolab-tui completion fish > ~/.config/fish/completions/protolab-tui.fish\n")
		fmt.Fprintf(&b, "complete -c protolab-tui -n __fish_use_subcommand -f -a %s\n", shQuote(strings.Join(subcommands, " ")))
		for _, f := range flags {
			line := "complete -c protolab-tui -l " + f.name + " -d " + shQuote(f.usage)
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
	Labs(ctx context.Context) ([]string, error)
}

// downAll is `protolab-tui down --all [--match GLOB] [flags]`: every lab
// protolab left on the provider (found by label; with --match only the names
// matching), listed, then removed.
func downAll(args []string, stdout, stderr io.Writer) int {
	all := slices.Contains(args, "--all") || slices.Contains(args, "-all")
	args = slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "--all" || a == "-all" })
	match := "*"
	if i := slices.Index(args, "--match"); i >= 0 && i+1 < len(args) {
		match = args[i+1]
		args = slices.Delete(args, i, i+2)
		if _, err := path.Match(match, ""); err != nil {
			fmt.Fprintf(stderr, "protolab-tui: down --match %q: %v\n", match, err)
			return exitUsage
		}
	}
	if !all {
		fmt.Fprintln(stderr, "protolab-tui: down takes --all (every lab protolab left on the provider); one lab: --teardown --name NAME")
		return exitUsage
	}
	o, err := parseFlags(args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui:", err)
		return exitUsage
	}
	newProvider, err := providers.Lookup(o.cfg.Provider)
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui:", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.cfg.OpTimeout)
	defer cancel()
	l, err := lab.New(o.cfg, newProvider)
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui:", err)
		return exitFailed
	}
	ll, ok := l.Provider().(labLister)
	if !ok {
		fmt.Fprintf(stderr, "protolab-tui: down --all: the %s provider cannot list its labs; remove one with --teardown --name NAME\n", o.cfg.Provider)
		return exitUsage
	}
	names, err := ll.Labs(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "protolab-tui: down --all:", err)
		return exitFailed
	}
	names = slices.DeleteFunc(names, func(n string) bool { ok, _ := path.Match(match, n); return !ok })
	if len(names) == 0 {
		fmt.Fprintf(stdout, "no lab of protolab is left on provider %s\n", o.cfg.Provider)
		return exitOK
	}
	fmt.Fprintf(stdout, "labs left on provider %s: %s\n", o.cfg.Provider, strings.Join(names, ", "))
	code := exitOK
	for _, name := range names {
		cfg := o.cfg
		cfg.Name = name
		one, err := lab.New(cfg, newProvider)
		if err == nil {
			err = lab.RemoveLab(ctx, one.Provider())
		}
		if err != nil {
			fmt.Fprintf(stderr, "protolab-tui: removing lab %q: %v\n", name, err)
			code = exitFailed
			continue
		}
		fmt.Fprintf(stdout, "lab %q removed\n", name)
	}
	return code
}
