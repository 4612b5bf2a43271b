package ui

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/protolab/protolab-tui/lab/wire"
)

// The packet lists' filter language (docs/filter.md): terms combined with
// and (or just a space), or, not (or !) and parentheses. A term is a word
// (the row's text contains it, case-insensitively), a shorthand (c>s, s>c,
// packet, message, error) or a comparison field op value:
//
//	dir == s>c   port == 3002   len > 100   opcode == TEXT   status >= 400
//	text ~ "hel+o"   layer == tls   kind != packet   flags ~ SYN
//
// Fields: dir, kind, layer, len, payload, port (either end), sport, dport,
// text (the row as shown), and any field of the record's details (opcode,
// status, method, sni, close_code, flags, seq…). Ops: == (or =), !=, >, >=,
// <, <=, and ~ (regular expression, case-insensitive).

// filterFunc keeps the records a filter matches.
type filterFunc func(r *wire.Record) bool

// compileFilter parses a filter; "" matches everything. The error says
// where and what is wrong, for the prompt to show as one types.
func compileFilter(s string) (filterFunc, error) {
	toks, err := lexFilter(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return func(*wire.Record) bool { return true }, nil
	}
	p := &filterParser{toks: toks}
	f, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q at %d: combine terms with and, or, not and ( )", p.toks[p.i].text, p.toks[p.i].pos+1)
	}
	return f, nil
}

type filterToken struct {
	text   string
	pos    int
	quoted bool
}

var filterOps = []string{"==", "!=", ">=", "<=", "=", ">", "<", "~"}

// lexFilter splits a filter into words, quoted strings, operators and
// parentheses. c>s and s>c stay words.
func lexFilter(s string) ([]filterToken, error) {
	var out []filterToken
	i := 0
	for i < len(s) {
		c := rune(s[i])
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '(' || c == ')':
			out = append(out, filterToken{text: string(c), pos: i})
			i++
		case c == '"' || c == '\'':
			j := strings.IndexByte(s[i+1:], byte(c))
			if j < 0 {
				return nil, fmt.Errorf("the quote at %d is not closed", i+1)
			}
			out = append(out, filterToken{text: s[i+1 : i+1+j], pos: i, quoted: true})
			i += j + 2
		default:
			if strings.HasPrefix(s[i:], "c>s") || strings.HasPrefix(s[i:], "s>c") {
				out = append(out, filterToken{text: s[i : i+3], pos: i})
				i += 3
				continue
			}
			if op := opAt(s[i:]); op != "" {
				out = append(out, filterToken{text: op, pos: i})
				i += len(op)
				continue
			}
			if c == '!' {
				out = append(out, filterToken{text: "!", pos: i})
				i++
				continue
			}
			j := i
			for j < len(s) && !unicode.IsSpace(rune(s[j])) && s[j] != '(' && s[j] != ')' && opAt(s[j:]) == "" && s[j] != '"' {
				j++
			}
			out = append(out, filterToken{text: s[i:j], pos: i})
			i = j
		}
	}
	return out, nil
}

func opAt(s string) string {
	for _, op := range filterOps {
		if strings.HasPrefix(s, op) {
			return op
		}
	}
	return ""
}

type filterParser struct {
	toks []filterToken
	i    int
}

func (p *filterParser) peek() (filterToken, bool) {
	if p.i < len(p.toks) {
		return p.toks[p.i], true
	}
	return filterToken{}, false
}

func (p *filterParser) keyword(words ...string) bool {
	t, ok := p.peek()
	if !ok || t.quoted {
		return false
	}
	for _, w := range words {
		if strings.EqualFold(t.text, w) {
			p.i++
			return true
		}
	}
	return false
}

func (p *filterParser) or() (filterFunc, error) {
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.keyword("or", "||") {
		right, err := p.and()
		if err != nil {
			return nil, err
		}
		l := left
		left = func(r *wire.Record) bool { return l(r) || right(r) }
	}
	return left, nil
}

func (p *filterParser) and() (filterFunc, error) {
	left, err := p.not()
	if err != nil {
		return nil, err
	}
	for {
		explicit := p.keyword("and", "&&")
		t, ok := p.peek()
		if !ok || (t.text == ")" && !t.quoted) || (!t.quoted && (strings.EqualFold(t.text, "or") || t.text == "||")) {
			if explicit {
				return nil, fmt.Errorf("the filter ends where a term is expected (after and)")
			}
			return left, nil
		}
		right, err := p.not()
		if err != nil {
			return nil, err
		}
		l := left
		left = func(r *wire.Record) bool { return l(r) && right(r) }
	}
}

func (p *filterParser) not() (filterFunc, error) {
	if p.keyword("not", "!") {
		f, err := p.not()
		if err != nil {
			return nil, err
		}
		return func(r *wire.Record) bool { return !f(r) }, nil
	}
	t, ok := p.peek()
	if !ok {
		return nil, fmt.Errorf("the filter ends where a term is expected")
	}
	if t.text == "(" && !t.quoted {
		p.i++
		f, err := p.or()
		if err != nil {
			return nil, err
		}
		if c, ok := p.peek(); !ok || c.text != ")" {
			return nil, fmt.Errorf("the ( at %d is not closed", t.pos+1)
		}
		p.i++
		return f, nil
	}
	return p.term()
}

func (p *filterParser) term() (filterFunc, error) {
	t := p.toks[p.i]
	p.i++
	if t.text == ")" && !t.quoted {
		return nil, fmt.Errorf("a ) at %d closes nothing", t.pos+1)
	}
	if opAt(t.text) != "" && !t.quoted {
		return nil, fmt.Errorf("%q at %d has no field before it: write field %s value, e.g. len > 100", t.text, t.pos+1, t.text)
	}
	if next, ok := p.peek(); ok && !next.quoted && opAt(next.text) == next.text {
		p.i++
		val, ok := p.peek()
		if !ok {
			return nil, fmt.Errorf("%s %s needs a value after it", t.text, next.text)
		}
		p.i++
		return comparison(strings.ToLower(t.text), next.text, val.text)
	}
	if !t.quoted {
		switch w := strings.ToLower(t.text); w {
		case "c>s", "c→s", "client":
			return func(r *wire.Record) bool { return r.Dir == wire.ClientToServer }, nil
		case "s>c", "s→c", "server":
			return func(r *wire.Record) bool { return r.Dir == wire.ServerToClient }, nil
		case "packet", "message", "error":
			return func(r *wire.Record) bool { return r.Kind.String() == w }, nil
		}
	}
	word := strings.ToLower(t.text)
	return func(r *wire.Record) bool { return strings.Contains(strings.ToLower(r.Text()), word) }, nil
}

// comparison builds field op value.
func comparison(field, op, value string) (filterFunc, error) {
	get, numeric, err := filterField(field)
	if err != nil {
		return nil, err
	}
	if op == "~" {
		re, err := regexp.Compile("(?i)" + value)
		if err != nil {
			return nil, fmt.Errorf("%s ~ %q: not a regular expression: %v", field, value, err)
		}
		return func(r *wire.Record) bool {
			for _, v := range get(r) {
				if re.MatchString(v) {
					return true
				}
			}
			return false
		}, nil
	}
	if op == "=" {
		op = "=="
	}
	want, werr := strconv.ParseFloat(value, 64)
	if op != "==" && op != "!=" && werr != nil {
		if numeric {
			return nil, fmt.Errorf("%s %s %q: %s is a number: compare it with one", field, op, value, field)
		}
		return nil, fmt.Errorf("%s %s %q: > and < compare numbers; use ==, != or ~ for words", field, op, value)
	}
	one := func(v string) bool {
		if werr == nil {
			if n, err := strconv.ParseFloat(v, 64); err == nil {
				switch op {
				case "==":
					return n == want
				case "!=":
					return n != want
				case ">":
					return n > want
				case ">=":
					return n >= want
				case "<":
					return n < want
				case "<=":
					return n <= want
				}
			}
		}
		return (op == "==" || op == "!=") && strings.EqualFold(v, value)
	}
	// equal: any of the value's forms matches ("TEXT (0x1)" is TEXT and 1).
	equal := func(v string) bool {
		for _, alt := range alternatives(v) {
			if one(alt) {
				return true
			}
		}
		return false
	}
	return func(r *wire.Record) bool {
		vals := get(r)
		if op == "!=" {
			if len(vals) == 0 {
				return false
			}
			for _, v := range vals {
				for _, alt := range alternatives(v) {
					if strings.EqualFold(alt, value) || (werr == nil && numberIs(alt, want)) {
						return false
					}
				}
			}
			return true
		}
		for _, v := range vals {
			if equal(v) {
				return true
			}
		}
		return false
	}, nil
}

// alternatives are the forms a decoded value can be compared as: itself,
// its first word, and a number in parentheses (hex or decimal).
func alternatives(v string) []string {
	out := []string{v}
	if f := strings.Fields(v); len(f) > 1 {
		out = append(out, f[0])
	}
	if i, j := strings.IndexByte(v, '('), strings.IndexByte(v, ')'); i >= 0 && j > i {
		in := v[i+1 : j]
		if n, err := strconv.ParseInt(in, 0, 64); err == nil {
			in = strconv.FormatInt(n, 10)
		}
		out = append(out, in)
	}
	return out
}

func numberIs(v string, want float64) bool {
	n, err := strconv.ParseFloat(v, 64)
	return err == nil && n == want
}

// filterField returns how to read a field of a record (all the values it
// has: port has two), and whether it is a number.
func filterField(name string) (func(*wire.Record) []string, bool, error) {
	one := func(f func(*wire.Record) string) func(*wire.Record) []string {
		return func(r *wire.Record) []string { return []string{f(r)} }
	}
	switch name {
	case "dir":
		return one(func(r *wire.Record) string {
			if r.Dir == wire.ServerToClient {
				return "s>c"
			}
			return "c>s"
		}), false, nil
	case "kind":
		return one(func(r *wire.Record) string { return r.Kind.String() }), false, nil
	case "layer":
		return one(func(r *wire.Record) string { return r.Layer }), false, nil
	case "len":
		return one(func(r *wire.Record) string { return strconv.Itoa(r.Len) }), true, nil
	case "payload":
		return one(func(r *wire.Record) string { return strconv.Itoa(r.Payload) }), true, nil
	case "port":
		return func(r *wire.Record) []string {
			return []string{strconv.Itoa(int(r.Flow.Client.Port())), strconv.Itoa(int(r.Flow.Server.Port()))}
		}, true, nil
	case "sport", "dport":
		src := name == "sport"
		return one(func(r *wire.Record) string {
			c, s := r.Flow.Client.Port(), r.Flow.Server.Port()
			if (r.Dir == wire.ClientToServer) == src {
				return strconv.Itoa(int(c))
			}
			return strconv.Itoa(int(s))
		}), true, nil
	case "text":
		return one(func(r *wire.Record) string { return r.Text() }), false, nil
	case "app":
		return one(func(r *wire.Record) string { return r.App }), false, nil
	case "flow", "conn":
		// A connection: its client's address:port (what f follows), its
		// server's, or both as the detail view shows them.
		return func(r *wire.Record) []string {
			return []string{r.Flow.Client.String(), r.Flow.Server.String(), r.Flow.String()}
		}, false, nil
	case "":
		return nil, false, fmt.Errorf("a comparison needs a field name")
	}
	if alias, ok := wiresharkNames[name]; ok {
		return filterField(alias)
	}
	if !detailFields[name] && !strings.HasPrefix(name, "header.") {
		return nil, false, fmt.Errorf("unknown field %q: the fields are dir, kind, layer, len, payload, port, sport, dport, text, app, header.NAME and %s", name, strings.Join(sortedKeys(detailFields), ", "))
	}
	numeric := numericDetails[name]
	// A field of the record's details; a record without it does not match.
	return func(r *wire.Record) []string {
		if v := r.Field(name); v != "" {
			return []string{v}
		}
		return nil
	}, numeric, nil
}

// detailFields are the names of the decoded fields records carry (their
// detail view), which the filter can compare.
var detailFields = map[string]bool{
	"accept_valid": true, "ack": true, "alpn": true, "body_bytes": true, "cipher_suite": true, "close_code": true,
	"close_reason": true, "content_type": true, "description": true, "fin": true, "flags": true, "frame_length": true,
	"handshake_type": true, "header_bytes": true, "length": true, "level": true, "mask": true, "method": true,
	"opcode": true, "payload_length": true, "plaintext_length": true, "reason": true, "record_length": true,
	"retransmission": true, "rsv": true, "seq": true, "sni": true, "status": true, "target": true, "tcp_payload": true,
	"version": true, "window": true,
}

var numericDetails = map[string]bool{"ack": true, "body_bytes": true, "close_code": true, "frame_length": true, "header_bytes": true,
	"length": true, "payload_length": true, "plaintext_length": true, "record_length": true, "seq": true, "status": true,
	"tcp_payload": true, "window": true}

// wiresharkNames lets the display-filter names people know stand for ours.
var wiresharkNames = map[string]string{
	"tcp.port": "port", "tcp.srcport": "sport", "tcp.dstport": "dport", "frame.len": "len", "tcp.len": "payload",
	"tcp.flags": "flags", "http.request.method": "method", "http.response.code": "status", "http.request.uri": "target",
	"websocket.opcode": "opcode", "tls.handshake.extensions_server_name": "sni", "tls.handshake.type": "handshake_type",
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
