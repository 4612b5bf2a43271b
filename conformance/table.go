package conformance

import (
	"fmt"
	"sort"
	"strings"
)

// Result is what one case did on one target.
type Result struct {
	Observed string
	// Err says how it differs from what is expected ("" when it passed).
	Err string
}

// Table renders the results as the Markdown of docs/websocket-conformance.md:
// one table per group, a row per case, a column per target. results is by
// target name, then case ID; a case a target does not run shows "—".
func Table(cases []Case, targets []Target, results map[string]map[string]Result) string {
	var b strings.Builder
	total, failed := 0, 0
	for _, t := range targets {
		for _, r := range results[t.Name] {
			total++
			if r.Err != "" {
				failed++
			}
		}
	}
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = "`" + t.Name + "`"
	}
	b.WriteString("# WebSocket conformance\n\n")
	b.WriteString("<!-- Written by `go test ./conformance -update`; `go test ./conformance` fails when this file differs from what it observes. -->\n\n")
	fmt.Fprintf(&b, "The suite in `conformance/` plays %d cases with a raw-socket client against every WebSocket app the protocol table lists (%s): ", len(cases), strings.Join(names, ", "))
	b.WriteString("the groups of the Autobahn|Testsuite that apply to a server (1 framing, 2 pings and pongs, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close handling, 9 limits and performance, bounded by the apps' read limit), ")
	b.WriteString("the opening handshake (H) and the chat room (C, on kinds that have one). What each case expects comes from RFC 6455. ")
	b.WriteString("\"TCP closed\" means the server closed the connection after the closing handshake; \"(before the rest was sent)\" that it failed the connection before the client sent the rest of the message.\n\n")
	if failed == 0 {
		fmt.Fprintf(&b, "**Result: %d of %d runs pass.**\n", total, total)
	} else {
		fmt.Fprintf(&b, "**Result: %d of %d runs fail** (marked ✗).\n", failed, total)
	}
	for _, g := range GroupTitles {
		var rows []Case
		for _, c := range cases {
			if c.Group() == g.ID {
				rows = append(rows, c)
			}
		}
		if len(rows) == 0 {
			continue
		}
		sort.SliceStable(rows, func(i, j int) bool { return Before(rows[i].ID, rows[j].ID) })
		fmt.Fprintf(&b, "\n## %s %s\n\n", g.ID, g.Title)
		b.WriteString("| case | sent | expected | " + strings.Join(names, " | ") + " |\n")
		b.WriteString("|---|---|---|" + strings.Repeat("---|", len(targets)) + "\n")
		for _, c := range rows {
			fmt.Fprintf(&b, "| %s | %s | %s |", c.ID, cell(c.Sent), cell(c.Expected))
			for _, t := range targets {
				r, ok := results[t.Name][c.ID]
				switch {
				case !ok:
					b.WriteString(" — |")
				case r.Err != "":
					fmt.Fprintf(&b, " ✗ %s: %s |", cell(r.Observed), cell(r.Err))
				default:
					fmt.Fprintf(&b, " %s |", cell(r.Observed))
				}
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func cell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }
