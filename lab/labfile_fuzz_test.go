package lab_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/protolab/protolab-tui/lab"
)

// FuzzLabFile: any bytes as a lab file give a configuration or an error
// placed at its line — never a panic — and a configuration that is valid
// prints (--print-lab) as a lab file that reads back.
func FuzzLabFile(f *testing.F) {
	examples, _ := filepath.Glob("../examples/*.yaml")
	for _, p := range examples {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("apps:\n  - name: a\n    protocol: ws\n    port: 0\n"))
	f.Add([]byte("name: x\nprobe: {count: -1}\ncapture: {mode: sideways}\n"))
	state := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		lf, err := lab.ParseLabFile("lab.yaml", b)
		if err != nil {
			return
		}
		lf.Config.StateDir = state
		cfg, err := lf.Config.WithDefaults()
		if err != nil {
			_ = lf.Explain(err)
			return
		}
		out, err := lab.MarshalLabFile(cfg)
		if err != nil {
			t.Fatalf("a valid configuration does not print: %v", err)
		}
		if _, err := lab.ParseLabFile("printed.yaml", out); err != nil {
			t.Fatalf("the printed lab file does not read back: %v\n%s", err, out)
		}
	})
}
