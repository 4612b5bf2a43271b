package appmain

import (
	"net"
	"strings"
	"testing"
)

func TestRunRejectsBadInput(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--mode", "gopher"}, "unknown protocol"},
		{[]string{"--mode", "https"}, "needs --cert and --key"},
		{[]string{"--mode", "wss", "--cert", "/nonexistent.pem", "--key", "/nonexistent-key.pem"}, "loading TLS certificate /nonexistent.pem"},
		{[]string{"--read-limit", "-5"}, "--read-limit"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--mode", "ws", "--addr", taken.Addr().String()}, "choose another address with --addr"},
	} {
		err := Run(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run(%v) = %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}

func TestEnvironmentConfiguresTheApp(t *testing.T) {
	t.Setenv("PROTOLAB_MODE", "gopher")
	if err := Run(nil); err == nil || !strings.Contains(err.Error(), `unknown protocol "gopher"`) {
		t.Errorf("PROTOLAB_MODE was not used: %v", err)
	}
}
