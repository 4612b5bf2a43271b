package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlagValues checks every flag with a range at its edges: the message
// names the flag, its value and the range.
func TestFlagValues(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "taken.pcapng")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string // "" means accepted
	}{
		{[]string{"--ring", "-1"}, "--ring -1: want 1 to 1000000"},
		{[]string{"--ring", "0"}, "--ring 0: want 1 to 1000000"},
		{[]string{"--ring", "1"}, ""},
		{[]string{"--ring", "1000000"}, ""},
		{[]string{"--ring", "1000001"}, "--ring 1000001: want 1 to 1000000"},
		{[]string{"--timeout", "-1s"}, "--timeout -1s: want a duration above 0"},
		{[]string{"--timeout", "0"}, "--timeout 0s: want a duration above 0"},
		{[]string{"--timeout", "1ms"}, ""},
		{[]string{"--count", "0"}, "--count 0: want 1 or more"},
		{[]string{"--count", "-5"}, "--count -5: want 1 or more"},
		{[]string{"--count", "1"}, ""},
		{[]string{"--payload", "0"}, "--payload 0: want 1 to 1048576"},
		{[]string{"--payload", "1048577"}, "--payload 1048577: want 1 to 1048576"},
		{[]string{"--payload", "65536"}, ""},
		{[]string{"--payload", "65537"}, "--payload 65537: payload 65537 is more than app ws accepts"},
		{[]string{"--payload", "65537", "--read-limit", "1048576"}, ""},
		{[]string{"--read-limit", "0"}, "--read-limit 0: want 1 or more"},
		{[]string{"--http-port", "-1"}, "--http-port -1: want 0 (any free port) to 65535"},
		{[]string{"--wss-port", "65536"}, "--wss-port 65536: want 0 (any free port) to 65535"},
		{[]string{"--ws-port", "0"}, ""},
		{[]string{"--https-port", "65535"}, ""},
		{[]string{"--port", "ws=65536"}, `"ws=65536": the port is 0 (any free port) to 65535`},
		{[]string{"--port", "ws=-1"}, `"ws=-1": the port is 0 (any free port) to 65535`},
		{[]string{"--capture", "maybe"}, `--capture "maybe": want one of auto, on, off`},
		{[]string{"--remote-priv", "root"}, `--remote-priv "root": want one of auto, sudo, none`},
		{[]string{"--name", "no/slash"}, `--name no/slash: lab name "no/slash": use letters`},
		{[]string{"--bind", "localhost"}, `--bind localhost: bind address "localhost" is not an IP address`},
		{[]string{"--protocols", ""}, "--protocols: no protocol named"},
		{[]string{"--pcap", filepath.Join(dir, "missing", "lab.pcapng")}, "--pcap " + filepath.Join(dir, "missing", "lab.pcapng") + ": the folder " + filepath.Join(dir, "missing") + " does not exist"},
		{[]string{"--pcap", filepath.Join(file, "lab.pcapng")}, "is not a folder"},
		{[]string{"--pcap", dir}, "--pcap " + dir + " is a folder: give a file name in it"},
		{[]string{"--pcap", filepath.Join(dir, "lab.pcapng")}, ""},
		{[]string{"--pcap", file}, ""}, // an existing file is replaced
	} {
		args := append([]string{"--headless", "--state-dir", dir}, tc.args...)
		_, err := parseFlags(args, io.Discard)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: refused: %v", tc.args, err)
		case tc.want != "" && err == nil:
			t.Errorf("%v: accepted, want %q", tc.args, tc.want)
		case tc.want != "" && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%v: %q, want %q", tc.args, err, tc.want)
		}
	}
}

// TestPcapFolderNotWritable runs as nobody: a folder it may not write is
// refused at parse time, naming it.
func TestPcapFolderNotWritable(t *testing.T) {
	top, err := os.MkdirTemp("", "protolab-pcap-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	dir := filepath.Join(top, "roots")
	if err := os.Chmod(top, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil { // root's: others may look, not write
		t.Fatal(err)
	}
	private := filepath.Join(top, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		filepath.Join(dir, "lab.pcapng"):          "may not write in the folder " + dir,
		filepath.Join(private, "x", "lab.pcapng"): "may not reach the folder " + filepath.Join(private, "x"),
	} {
		out, err := asNobody(t, nil, "--headless", "--pcap", path).CombinedOutput()
		if exitCode(err) != 2 || !strings.Contains(string(out), want) {
			t.Errorf("--pcap %s: exit %d: %s", path, exitCode(err), out)
		}
	}
}

// TestProtocolsPickApps: without a lab file --protocols names the apps to
// run, from every protocol the lab knows; with one, it filters the file's.
func TestProtocolsPickApps(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string // the apps, "name/protocol/port" joined by spaces
	}{
		{nil, "http/http/3000 https/https/3001 ws/ws/3002 wss/wss/3003"},
		{[]string{"--protocols", "h2c,grpc,sse"}, "sse/sse/3004 h2c/h2c/3006 grpc/grpc/3007"},
		{[]string{"--protocols", "ws,h2", "--port", "h2=0"}, "ws/ws/3002 h2/h2/0"},
		{[]string{"--lab", "../../examples/two-ws.yaml", "--protocols", "ws"}, "ws-a/ws/3002 ws-b/ws/3012"},
	} {
		o, err := parseFlags(append([]string{"--headless", "--state-dir", dir}, tc.args...), io.Discard)
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		var got []string
		for _, a := range o.cfg.Apps {
			got = append(got, fmt.Sprintf("%s/%s/%d", a.Name, a.Protocol, a.Port))
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("%v: apps %v, want %s", tc.args, got, tc.want)
		}
	}
	if _, err := parseFlags([]string{"--headless", "--state-dir", dir, "--lab", "../../examples/two-ws.yaml", "--protocols", "grpc"}, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "no app of the lab speaks them") {
		t.Errorf("--protocols grpc on a lab without one: %v", err)
	}
}
