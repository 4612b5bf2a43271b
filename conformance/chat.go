package conformance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/protolab/protolab-tui/internal/wsraw"
	"github.com/protolab/protolab-tui/protocol/rfc6455"
)

// members numbers chat names, so cases running at once never share one.
var members atomic.Int64

func memberName(role string) string { return fmt.Sprintf("%s%d", role, members.Add(1)) }

// joined connects a member and reads its greeting.
func joined(ctx context.Context, t Target, name string) (*wsraw.Conn, error) {
	c, err := wsraw.Dial(ctx, t.Conn, t.Kind.Chat+name)
	if err != nil {
		return nil, fmt.Errorf("%s joining: %w", name, err)
	}
	f, err := c.ReadFrame(time.Now().Add(wait))
	if err != nil || f.Op != rfc6455.OpText || !strings.HasPrefix(string(f.Payload), "Hi "+name) {
		c.Close()
		return nil, fmt.Errorf("%s's greeting: %v %v", name, f, err)
	}
	return c, nil
}

// hears reads c's next message, which must be want.
func hears(c *wsraw.Conn, who, want string) error {
	f, err := c.ReadFrame(time.Now().Add(wait))
	if err != nil {
		return fmt.Errorf("%s, waiting for %q: %w", who, want, err)
	}
	if f.Op != rfc6455.OpText || string(f.Payload) != want {
		return fmt.Errorf("%s heard %v %q, want %q", who, f, f.Payload, want)
	}
	return nil
}

// room runs a chat case: an onlooker and a member join, the member sends
// frames, and the member must be closed with code (0: not at all); the
// onlooker must hear heard and nothing else, and stay connected.
func room(frames []wsraw.Frame, code uint16, heard func(member string) string) func(context.Context, Target) (string, error) {
	return func(ctx context.Context, t Target) (string, error) {
		on, mem := memberName("alice"), memberName("mallory")
		a, err := joined(ctx, t, on)
		if err != nil {
			return "", err
		}
		defer a.Close()
		m, err := joined(ctx, t, mem)
		if err != nil {
			return "", err
		}
		defer m.Close()
		if err := hears(a, on, mem+" joined"); err != nil {
			return "", err
		}
		if err := m.SendFramewise(frames...); err != nil {
			return "", err
		}
		var obs string
		if code != 0 {
			got, err := finish(m, code, nil)
			obs = "sender: " + got
			if err != nil {
				return obs, err
			}
		} else {
			obs = "sender: nothing back"
		}
		want := heard(mem)
		if err := hears(a, on, want); err != nil {
			return obs, err
		}
		obs += "; others: " + strings.ReplaceAll(strings.ReplaceAll(want, mem, "{name}"), on, "{name}")
		if code == 0 {
			// The sender hears nothing of its own message: its close is
			// the next thing it gets; then the onlooker hears it left.
			_ = m.Send(wsraw.Close(1000, ""))
			if _, err := finish(m, 1000, nil); err != nil {
				return obs, fmt.Errorf("the sender got more than the close: %w", err)
			}
			if err := hears(a, on, mem+" left"); err != nil {
				return obs, err
			}
		}
		// The onlooker is still in the room and its connection fine.
		if err := a.Send(wsraw.Close(1000, "")); err != nil {
			return obs, err
		}
		if _, err := finish(a, 1000, nil); err != nil {
			return obs, fmt.Errorf("the onlooker's connection: %w", err)
		}
		return obs, nil
	}
}

func chatCases() []Case {
	left := func(m string) string { return m + " left" }
	cs := []Case{
		{ID: "C.1", Sent: "a member sends text that is not UTF-8", Expected: "the member closed 1007; the others hear only that it left",
			Run: room([]wsraw.Frame{text("hi \xc0\xaf all")}, 1007, left)},
		{ID: "C.2", Sent: "a member sends text that turns invalid across fragments", Expected: "the member closed 1007; the others hear only that it left",
			Run: room([]wsraw.Frame{frag(opText, false, "hi \xe2\x82"), frag(opCont, true, "\x28 all")}, 1007, left)},
		{ID: "C.3", Sent: "a member sends binary", Expected: "the member closed 1003 (the chat takes text); the others hear that it left",
			Run: room([]wsraw.Frame{binary([]byte{0xff, 0x00})}, 1003, left)},
		{ID: "C.4", Sent: "a member sends valid text in 2 fragments", Expected: "the others hear it as \"{name}: text\"; the sender gets nothing back",
			Run: room([]wsraw.Frame{frag(opText, false, "καλη"), frag(opCont, true, "μέρα")}, 0, func(m string) string { return m + ": καλημέρα" })},
		{ID: "C.5", Sent: "a name that is not UTF-8 (/chat/%FF)", Expected: "400: the name would reach everyone in \"{name} joined\"",
			Run: func(ctx context.Context, t Target) (string, error) {
				_, err := wsraw.Dial(ctx, t.Conn, t.Kind.Chat+"%FF")
				var re *wsraw.RefusedError
				if !errors.As(err, &re) {
					return "not refused", fmt.Errorf("joining as %%FF: %v, want a refusal", err)
				}
				obs := fmt.Sprint(re.Status)
				if re.Status != 400 {
					return obs, fmt.Errorf("status %d, want 400", re.Status)
				}
				return obs, nil
			}},
	}
	for i := range cs {
		cs[i].Chat = true
	}
	return cs
}
