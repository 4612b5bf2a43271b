package sshserve

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

const pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@lab"

func TestReadAuthorizedKeys(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		keys       int
		err        string
	}{
		{"keys, comments and blank lines", "# who may look\n" + pub + "\n\n" + pub + "\n", 2, ""},
		{"options before the key", `from="127.0.0.1" ` + pub + "\n", 1, ""},
		{"a line that is not a key", pub + "\nssh-ed25519 not-base64!\n", 0, "keys:2: not a public key"},
		{"nothing but comments", "# nobody\n", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			keys, err := ReadAuthorizedKeys(path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || len(keys) != tc.keys {
				t.Fatalf("%d keys, %v; want %d", len(keys), err, tc.keys)
			}
		})
	}
	if _, err := ReadAuthorizedKeys(filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("a missing file: %v", err)
	}
}

// TestHostKey: made once (0600, in a folder of its own), the same key on
// the next start, and refused when others may read it.
func TestHostKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serve", "host_ed25519")
	first, err := hostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("host key file: %v %v", st, err)
	}
	if _, err := gossh.ParsePrivateKey(first); err != nil {
		t.Fatalf("not a private key: %v", err)
	}
	again, err := hostKey(path)
	if err != nil || string(again) != string(first) {
		t.Fatalf("the second start has another key (%v)", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := hostKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a host key others may read: %v", err)
	}
}
