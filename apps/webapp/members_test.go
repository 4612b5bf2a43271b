package webapp

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/protolab/protolab-tui/protocol"
)

// members asks GET /chat who is in the room.
func (r *running) members(t *testing.T) []string {
	t.Helper()
	resp, err := r.httpClient().Get(r.url("/chat"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /chat: %s", resp.Status)
	}
	var m Members
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("GET /chat: %v", err)
	}
	return m.Members
}

// waitMembers polls GET /chat until it lists want (leaving is seen by the
// server a moment after the client closes).
func (r *running) waitMembers(t *testing.T, want []string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := r.members(t)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /chat lists %q, want %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestChatMembers(t *testing.T) {
	for _, p := range []protocol.Protocol{protocol.WS, protocol.WSS} {
		t.Run(string(p), func(t *testing.T) {
			r := start(t, Config{Protocol: p})
			r.waitMembers(t, []string{})
			bob := r.dial(t, "/chat/bob", nil)
			read(t, bob)
			alice := r.dial(t, "/chat/alice?age=3", nil)
			read(t, alice)
			r.waitMembers(t, []string{"alice", "bob"})
			// A refused duplicate is not listed twice.
			if _, resp, err := r.dialer().Dial(r.wsURL("/chat/bob"), nil); err == nil || resp == nil || resp.StatusCode != http.StatusConflict {
				t.Fatalf("duplicate bob: err %v, want 409", err)
			}
			r.waitMembers(t, []string{"alice", "bob"})
			_ = bob.Close()
			r.waitMembers(t, []string{"alice"})
		})
	}
}
