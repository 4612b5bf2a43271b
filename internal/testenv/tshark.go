package testenv

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Tshark runs tshark with args and returns what it printed; the test fails
// with tshark's own words when it fails (a test without tshark skips, or
// fails under the test command, as NeedCommand says).
func Tshark(t testing.TB, args ...string) []byte {
	t.Helper()
	tshark := NeedCommand(t, "tshark")
	out, err := exec.Command(tshark, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("tshark %v: %v %s", args, err, stderr)
	}
	return out
}

// TsharkWSFrames runs tshark once over a capture file and counts the
// WebSocket frames it decodes on each of ports (a packet may carry
// several), each port's traffic decoded as HTTP — or, when tls[port], as
// TLS, decrypted through the file's decryption secrets block. A frame
// counts for every listed port its packet has, source or destination.
func TsharkWSFrames(t testing.TB, file string, ports []uint16, tls map[uint16]bool) map[uint16]int {
	t.Helper()
	args := []string{"-r", file, "-n"}
	for _, p := range ports {
		as := "http"
		if tls[p] {
			as = "tls"
		}
		args = append(args, "-d", fmt.Sprintf("tcp.port==%d,%s", p, as))
	}
	args = append(args, "-Y", "websocket", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
		"-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "websocket.opcode")
	out := Tshark(t, args...)
	want := map[uint16]bool{}
	for _, p := range ports {
		want[p] = true
	}
	counts := map[uint16]int{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 || f[2] == "" {
			continue
		}
		frames := len(strings.Split(f[2], ","))
		for _, s := range f[:2] {
			if p, err := strconv.ParseUint(s, 10, 16); err == nil && want[uint16(p)] {
				counts[uint16(p)] += frames
			}
		}
	}
	return counts
}
