package webapp

import "sync"

// liveSet is what a server holds open that its shutdown must end: live
// WebSocket peers, a front's connections, a proxy's relays — each with a
// value of its own (a peer's done channel). Once shut, nothing more is
// added: a connection that comes in during the shutdown is turned away.
type liveSet[C comparable, V any] struct {
	mu   sync.Mutex
	m    map[C]V
	shut bool
}

// add holds c (with v) unless the set is shut.
func (l *liveSet[C, V]) add(c C, v V) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shut {
		return false
	}
	if l.m == nil {
		l.m = map[C]V{}
	}
	l.m[c] = v
	return true
}

// remove lets c go.
func (l *liveSet[C, V]) remove(c C) {
	l.mu.Lock()
	delete(l.m, c)
	l.mu.Unlock()
}

// shutDown shuts the set (no more adds) and calls f on each held connection,
// under the set's lock: f must not block long (a close, a one-second close
// frame).
func (l *liveSet[C, V]) shutDown(f func(C, V)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shut = true
	for c, v := range l.m {
		f(c, v)
	}
}

// len is how many connections the set holds.
func (l *liveSet[C, V]) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
