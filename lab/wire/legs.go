package wire

import (
	"bytes"
	"slices"
	"time"
)

// LegWindow is how far apart in time two legs of one message may be: a
// message crosses every hop of a lab in well under it.
const LegWindow = 2 * time.Second

// SameMessage reports whether a and b carry the same message on two legs of
// its way (a client's frame to a TLS front, and the front's to the
// balancer): both messages of one layer, in one direction, with the same
// payload size and first bytes. Without a payload (a GET, an empty frame)
// their summaries must agree too.
func SameMessage(a, b *Record) bool {
	if a.Kind != KindMessage || b.Kind != KindMessage || a.Layer != b.Layer || a.Dir != b.Dir ||
		a.Payload != b.Payload || !bytes.Equal(a.Data, b.Data) {
		return false
	}
	return a.Payload > 0 || a.Text() == b.Text()
}

// Legs finds r's message in each of apps (r's own app left out): the
// record of each that carries the same message (SameMessage) nearest to r in
// time, within LegWindow. It returns them with r, in time order — the
// message's way through the lab's hops.
func (s *Store) Legs(r Record, apps []string) []Record {
	out := []Record{r}
	for _, app := range apps {
		if app == r.App {
			continue
		}
		var best Record
		found := false
		gap := LegWindow
		s.Scan(app, 0, func(c *Record) bool {
			d := c.Time.Sub(r.Time)
			if d > gap {
				return false // later ones are farther still
			}
			if d < 0 {
				d = -d
			}
			if d <= gap && SameMessage(&r, c) {
				gap, best, found = d, c.clone(), true
			}
			return true
		})
		if found {
			out = append(out, best)
		}
	}
	slices.SortStableFunc(out, func(a, b Record) int { return a.Time.Compare(b.Time) })
	return out
}
