package webapp

import (
	"slices"
	"sync"
)

// room is a chat room: names are unique, and joins, leaves and messages go
// to everyone else. M is what a member is sent: the WebSocket chat's lines
// ([]byte, websocket.go), the gRPC chat's messages (grpc.go).
type room[M any] struct {
	mu      sync.Mutex
	members map[string]*member[M]
	joined  map[*member[M]]bool
}

// member is one participant; send is drained by its writer.
type member[M any] struct {
	name   string
	send   chan M
	closed bool // guarded by room.mu
}

// memberQueue bounds what a member has not yet been sent: a member that
// lets it fill is too slow and is dropped rather than allowed to block the
// room.
const memberQueue = 64

func newRoom[M any]() *room[M] {
	return &room[M]{members: make(map[string]*member[M]), joined: make(map[*member[M]]bool)}
}

// reserve claims name, or reports false when someone already holds it.
func (r *room[M]) reserve(name string) (*member[M], bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, taken := r.members[name]; taken {
		return nil, false
	}
	m := &member[M]{name: name, send: make(chan M, memberQueue)}
	r.members[name] = m
	return m, true
}

// join makes m visible, tells everyone else (announce), and greets m with
// greeting(the joined members' names, sorted, m's included) — at once, so a
// member who has read the greeting is sure to hear of whoever joins next,
// and the greeting is the first thing m hears (its queue is empty until
// now, so the send cannot block).
func (r *room[M]) join(m *member[M], greeting func(members []string) M, announce M) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sendOthersLocked(m, announce)
	r.joined[m] = true
	m.send <- greeting(r.namesLocked())
}

// leave frees m's name and closes its queue; when announce is not nil
// everyone else is told.
func (r *room[M]) leave(m *member[M], announce *M) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.members, m.name)
	delete(r.joined, m)
	if !m.closed {
		m.closed = true
		close(m.send)
	}
	if announce != nil {
		r.sendOthersLocked(m, *announce)
	}
}

// broadcast sends msg to everyone but from.
func (r *room[M]) broadcast(from *member[M], msg M) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sendOthersLocked(from, msg)
}

// sendOthersLocked queues msg for every joined member but from. A member
// whose queue is full is too slow to keep up: its queue is closed, which
// ends its writer and so its connection.
func (r *room[M]) sendOthersLocked(from *member[M], msg M) {
	for o := range r.joined {
		if o == from || o.closed {
			continue
		}
		select {
		case o.send <- msg:
		default:
			o.closed = true
			close(o.send)
			delete(r.joined, o)
		}
	}
}

// names returns the joined members' names, sorted.
func (r *room[M]) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.namesLocked()
}

func (r *room[M]) namesLocked() []string {
	out := make([]string, 0, len(r.joined))
	for m := range r.joined {
		out = append(out, m.name)
	}
	slices.Sort(out)
	return out
}
