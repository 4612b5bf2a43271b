package webapp

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/protolab/protolab-tui/internal/testenv"
	"github.com/protolab/protolab-tui/protocol"
)

// busyboxContainer starts a container on the local engine from a FROM
// scratch image holding only this machine's static busybox at path (run as
// a shell that waits on its open stdin), and removes both at the end.
func busyboxContainer(t *testing.T, path string) (*client.Client, string) {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		testenv.Missing(t, "no Docker client: "+err.Error())
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		testenv.Missing(t, "no Docker engine answers: "+err.Error())
	}
	sh, err := os.ReadFile("/bin/busybox")
	if err != nil {
		testenv.Missing(t, "no static busybox: apt-get install busybox-static (scripts/test.sh does)")
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{"Dockerfile", 0o644, []byte("FROM scratch\nCOPY busybox " + path + "\n")}, {"busybox", 0o755, sh}} {
		_ = tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))})
		_, _ = tw.Write(f.data)
	}
	_ = tw.Close()
	id := make([]byte, 6)
	_, _ = rand.Read(id)
	name := "protolab-t-termexec-" + hex.EncodeToString(id)
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{Tags: []string{name}, Remove: true, ForceRemove: true})
	if err != nil {
		t.Fatalf("building %s: %v", name, err)
	}
	out, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if bytes.Contains(out, []byte(`"error"`)) {
		t.Fatalf("building %s: %s", name, out)
	}
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), name, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	})
	cmd := []string{path} // sh, or busybox's sh applet
	if !strings.HasSuffix(path, "/sh") {
		cmd = append(cmd, "sh")
	}
	if _, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name,
		Config: &container.Config{Image: name, Cmd: cmd, OpenStdin: true, Labels: map[string]string{"protolab.test": "termexec"}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = cli.ContainerRemove(context.Background(), name, client.ContainerRemoveOptions{Force: true})
	})
	if _, err := cli.ContainerStart(ctx, name, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	return cli, name
}

// closeReason reads until the socket closes and returns the close error.
func closeReason(t *testing.T, c *websocket.Conn) *websocket.CloseError {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("the socket ended with %v, want a close frame", err)
		}
		return ce
	}
}

// TestWebTerminalExecBridge: a term app configured as a bridge to another
// container (here from this process, in another PID namespace) runs each
// session's shell as an exec there through the Engine API: the exec is the
// container's, its pid the shell's, keys and output relayed, resized with
// the exec resize API; when the socket goes the shell is ended from a
// second exec in that container. A name the engine does not know, a stopped
// container, and a container removed under a session close the socket 1011
// with a reason that says which.
func TestWebTerminalExecBridge(t *testing.T) {
	cli, name := busyboxContainer(t, "/bin/sh")
	ctx := context.Background()
	r, log := startLogged(t, Config{Protocol: protocol.WS, Kind: protocol.KindTerm, TermExec: &TermExec{Container: name, User: "65534:65534"}})

	c := r.dial(t, "/term", nil)
	sess := session(t, c)
	if sess.Mode != "exec" || sess.Container != name || sess.Exec == "" {
		t.Fatalf("session %+v, want an exec in %s", sess, name)
	}
	in, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(in.Container.ExecIDs, sess.Exec) {
		t.Errorf("the engine lists execs %v for %s, not the session's %s", in.Container.ExecIDs, name, sess.Exec)
	}
	_ = c.WriteMessage(websocket.BinaryMessage, []byte("echo hi; echo pid=$$ uid=$(id -u)\n"))
	out := readUntil(t, c, "\nhi\r\n")
	for !regexp.MustCompile(`pid=\d+ uid=\d+\r\n`).MatchString(out) {
		out += readUntil(t, c, "\n")
	}
	m := regexp.MustCompile(`pid=(\d+) uid=(\d+)\r\n`).FindStringSubmatch(out)
	if m[1] != itoa(sess.PID) || m[2] != "65534" {
		t.Errorf("the shell says pid %s uid %s; want the session's pid %d, as 65534", m[1], m[2], sess.PID)
	}
	rs, _ := json.Marshal(TermResize{Type: "resize", Cols: 120, Rows: 33})
	_ = c.WriteMessage(websocket.TextMessage, rs)
	_ = c.WriteMessage(websocket.BinaryMessage, []byte("stty size\n"))
	readUntil(t, c, "33 120")

	// The socket goes: the shell is ended through the engine.
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ex, err := cli.ExecInspect(ctx, sess.Exec, client.ExecInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !ex.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exec %s still runs 10s after its socket closed; log:\n%s", sess.Exec, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for !strings.Contains(log.String(), "web terminal closed") {
		if time.Now().After(deadline) {
			t.Fatalf("the session never closed; log:\n%s", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(log.String(), `signalled="through an exec in the container"`) {
		t.Errorf("the shell was not ended through an exec in the container; log:\n%s", log)
	}

	// exit: close 1000.
	c = r.dial(t, "/term", nil)
	session(t, c)
	_ = c.WriteMessage(websocket.BinaryMessage, []byte("exit\n"))
	if ce := closeReason(t, c); ce.Code != websocket.CloseNormalClosure || ce.Text != "the shell exited" {
		t.Errorf("after exit: %v, want 1000 the shell exited", ce)
	}
	c.Close()

	// The container removed under a session.
	c = r.dial(t, "/term", nil)
	session(t, c)
	if _, err := cli.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if ce := closeReason(t, c); ce.Code != websocket.CloseInternalServerErr || !strings.HasPrefix(ce.Text, "the shell is lost: container "+name) {
		t.Errorf("the container removed: %v, want 1011 the shell is lost: container %s…", ce, name)
	}
	c.Close()
	// …and gone: the next session is refused, saying so.
	c = r.dial(t, "/term", nil)
	if ce := closeReason(t, c); ce.Code != websocket.CloseInternalServerErr || !strings.HasPrefix(ce.Text, "no shell: container "+name+" is not on the engine") {
		t.Errorf("no such container: %v, want 1011 no shell: container %s is not on the engine…", ce, name)
	}
	c.Close()
}

// TestWebTerminalExecRefused: a stopped target container, and one with no
// /bin/sh for the wrapper, refuse the session with their reasons.
func TestWebTerminalExecRefused(t *testing.T) {
	cli, stopped := busyboxContainer(t, "/bin/sh")
	timeout := 0
	if _, err := cli.ContainerStop(context.Background(), stopped, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	_, noShell := busyboxContainer(t, "/bin/busybox")
	for _, tc := range []struct{ container, want string }{
		{stopped, "no shell: container " + stopped + " is not running"},
		{noShell, "no shell: container " + noShell + ": "}, // the runtime's words, which name /bin/sh
	} {
		r, log := startLogged(t, Config{Protocol: protocol.WS, Kind: protocol.KindTerm, TermExec: &TermExec{Container: tc.container}})
		c := r.dial(t, "/term", nil)
		if ce := closeReason(t, c); ce.Code != websocket.CloseInternalServerErr || !strings.HasPrefix(ce.Text, tc.want) || (tc.container == noShell && !strings.Contains(ce.Text, "/bin/sh")) {
			t.Errorf("got %v, want 1011 %s…", ce, tc.want)
		} else {
			t.Logf("%s: %q", tc.container, ce.Text)
		}
		c.Close()
		if !strings.Contains(log.String(), "web terminal: no shell") {
			t.Errorf("the refusal is not logged:\n%s", log)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
