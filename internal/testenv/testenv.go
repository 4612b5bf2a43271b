// Package testenv decides what a test does when a component it needs (a
// binary, root, a Docker engine) is missing: skip with the reason when run
// by hand, fail when run by the project's test command (scripts/test.sh sets
// PROTOLAB_TEST_STRICT=1 after installing everything the tests need).
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Strict reports whether missing components are failures.
func Strict() bool { return os.Getenv("PROTOLAB_TEST_STRICT") == "1" }

// Missing skips (or, under the test command, fails) t because of why.
func Missing(t testing.TB, why string) {
	t.Helper()
	if Strict() {
		t.Fatalf("%s (scripts/test.sh should have provided it)", why)
	}
	t.Skipf("%s; run scripts/test.sh to install it and run this test", why)
}

// NeedCommand returns the path of a command, or skips/fails when it is not
// on PATH.
func NeedCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" is not installed")
	}
	return p
}

// NeedRoot skips/fails unless the test runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "this test needs root (or CAP_NET_RAW)")
	}
}
