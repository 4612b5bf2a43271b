package lab

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// LabFile is a lab file as read: its configuration (Config in YAML, no
// defaults applied yet) and where each of its values stood, so that a
// mistake found later (by WithDefaults, after the flags overlaid it) is
// reported at its line.
type LabFile struct {
	Path   string
	Config Config
	file   *ast.File
}

// LoadLabFile reads and parses the lab file at path.
func LoadLabFile(path string) (*LabFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("lab file: %w", err)
	}
	return ParseLabFile(path, data)
}

// ParseLabFile parses a lab file's contents; name is what errors call it.
// Unknown keys, values of the wrong type and YAML syntax errors fail here,
// naming the line and the fix; an app without a port gets its protocol's
// default port.
func ParseLabFile(name string, data []byte) (*LabFile, error) {
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, yamlError(name, err)
	}
	lf := &LabFile{Path: name, file: f}
	for _, doc := range f.Docs {
		if err := checkKeys(name, doc, reflect.TypeOf(Config{}), ""); err != nil {
			return nil, err
		}
	}
	if err := yaml.UnmarshalWithOptions(data, &lf.Config, yaml.Strict()); err != nil {
		return nil, yamlError(name, err)
	}
	for i := range lf.Config.Apps {
		a := &lf.Config.Apps[i]
		if _, found := lf.line(fmt.Sprintf("apps[%d].port", i)); !found && a.Protocol.Known() {
			a.Port = a.Protocol.DefaultPort()
		}
	}
	return lf, nil
}

// Explain places a configuration error at its line in the file (errors
// that are not about a place in it come back as they are).
func (lf *LabFile) Explain(err error) error {
	var ce *ConfigError
	if lf == nil || !errors.As(err, &ce) {
		return err
	}
	for path := ce.Path; path != ""; path = parent(path) {
		if line, ok := lf.line(path); ok {
			return fmt.Errorf("%s:%d: %w", lf.Path, line, err)
		}
	}
	return fmt.Errorf("%s: %w", lf.Path, err)
}

// parent is the path of the value enclosing path's ("apps[1].port" →
// "apps[1]" → "apps" → "").
func parent(path string) string {
	if i := strings.LastIndexAny(path, ".["); i > 0 {
		return path[:i]
	}
	return ""
}

// line finds the line of the value at a path such as "apps[1].port".
func (lf *LabFile) line(path string) (int, bool) {
	if lf.file == nil || path == "" {
		return 0, false
	}
	p, err := yaml.PathString("$." + path)
	if err != nil {
		return 0, false
	}
	n, err := p.FilterFile(lf.file)
	if err != nil || n == nil || n.GetToken() == nil {
		return 0, false
	}
	return n.GetToken().Position.Line, true
}

// yamlError turns the YAML library's error into one line: the file, the
// line and column, and what is wrong.
func yamlError(name string, err error) error {
	var ye yaml.Error
	if !errors.As(err, &ye) {
		return fmt.Errorf("%s: %w", name, err)
	}
	where := name
	if tk := ye.GetToken(); tk != nil && tk.Position != nil {
		where = fmt.Sprintf("%s:%d:%d", name, tk.Position.Line, tk.Position.Column)
	}
	return fmt.Errorf("%s: %s", where, ye.GetMessage())
}

// checkKeys walks the document beside the Go type it decodes into and
// refuses a key the type does not have, at its line, listing the keys that
// would be right there (a typo is then obvious).
func checkKeys(name string, n ast.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n := n.(type) {
	case *ast.DocumentNode:
		if n.Body == nil {
			return nil
		}
		return checkKeys(name, n.Body, t, path)
	case *ast.MappingNode:
		if t.Kind() != reflect.Struct {
			return nil
		}
		for _, kv := range n.Values {
			if err := checkKey(name, kv, t, path); err != nil {
				return err
			}
		}
	case *ast.MappingValueNode:
		if t.Kind() == reflect.Struct {
			return checkKey(name, n, t, path)
		}
	case *ast.SequenceNode:
		if t.Kind() != reflect.Slice {
			return nil
		}
		for i, v := range n.Values {
			at := fmt.Sprintf("%s[%d]", path, i)
			if t.Elem().Kind() == reflect.String {
				if msg := checkScalar(v, t.Elem()); msg != "" {
					if path == "steps" {
						msg += `: write each step on one line, such as - send ws "hello"`
					}
					pos := v.GetToken().Position
					return fmt.Errorf("%s:%d:%d: %s: %s", name, pos.Line, pos.Column, at, msg)
				}
			}
			if err := checkKeys(name, v, t.Elem(), at); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkKey(name string, kv *ast.MappingValueNode, t reflect.Type, path string) error {
	key := kv.Key.String()
	fields := yamlFields(t)
	f, ok := fields[key]
	if !ok {
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		where := "at the top level"
		if path != "" {
			where = "in " + path
		}
		pos := kv.Key.GetToken().Position
		return fmt.Errorf("%s:%d:%d: unknown key %q %s: the keys there are %s (docs/lab-file.md)", name, pos.Line, pos.Column, key, where, strings.Join(keys, ", "))
	}
	sub := key
	if path != "" {
		sub = path + "." + key
	}
	if err := checkScalar(kv.Value, f); err != "" {
		pos := kv.Value.GetToken().Position
		return fmt.Errorf("%s:%d:%d: %s: %s", name, pos.Line, pos.Column, sub, err)
	}
	return checkKeys(name, kv.Value, f, sub)
}

// checkScalar says what is wrong with a value for a field of type t ("" when
// nothing is): durations are strings such as "30s", numbers are numbers,
// switches are true or false, lists are lists.
func checkScalar(n ast.Node, t reflect.Type) string {
	if _, null := n.(*ast.NullNode); null {
		return ""
	}
	if t == reflect.TypeOf(time.Duration(0)) {
		switch v := n.(type) {
		case *ast.StringNode:
			if _, err := time.ParseDuration(v.Value); err != nil {
				return fmt.Sprintf("%q is not a duration: write it as 30s, 5m or 1h30m", v.Value)
			}
			return ""
		case *ast.IntegerNode, *ast.FloatNode:
			return fmt.Sprintf("%s has no unit: write it as %ss (seconds), or 5m, 1h30m", n.String(), n.String())
		}
		return "want a duration such as 30s, 5m or 1h30m"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint16:
		if _, ok := n.(*ast.IntegerNode); !ok {
			return fmt.Sprintf("%s is not a whole number", n.String())
		}
	case reflect.Bool:
		if _, ok := n.(*ast.BoolNode); !ok {
			return fmt.Sprintf("%s is not true or false", n.String())
		}
	case reflect.String:
		switch n.(type) {
		case *ast.MappingNode, *ast.MappingValueNode, *ast.SequenceNode:
			return "want a single value, not a list or a mapping"
		}
	case reflect.Slice:
		if _, ok := n.(*ast.SequenceNode); !ok {
			return "want a list, e.g. [a, b] or one \"- item\" per line"
		}
	case reflect.Struct:
		switch n.(type) {
		case *ast.MappingNode, *ast.MappingValueNode:
		default:
			return "want a mapping of keys (key: value, one per line)"
		}
	}
	return ""
}

// yamlFields maps a struct's YAML keys to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name != "" && name != "-" && f.IsExported() {
			out[name] = f.Type
		}
	}
	return out
}

// MarshalLabFile writes cfg as a lab file, with a header that says what it
// is and how to use it.
func MarshalLabFile(cfg Config) ([]byte, error) {
	body, err := yaml.MarshalWithOptions(cfg, yaml.IndentSequence(true))
	if err != nil {
		return nil, fmt.Errorf("writing the lab file: %w", err)
	}
	head := "# protolab lab file (docs/lab-file.md): run it with\n#   protolab-tui --lab FILE            (the explorer)\n#   protolab-tui --lab FILE --headless (the whole flow, then the comparison)\n# Flags given with --lab overlay it. Ports: 0 picks a free port.\n"
	return append([]byte(head), body...), nil
}
