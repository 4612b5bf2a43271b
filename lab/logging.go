package lab

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// Logger returns a slog.Logger whose records become LogEvents from source, so
// what a provider or an in-process app logs shows in the TUI and headless
// output. Records below level are dropped.
func (e Env) Logger(source string, level slog.Level) *slog.Logger {
	return slog.New(&eventHandler{env: e, source: source, level: level})
}

type eventHandler struct {
	env    Env
	source string
	level  slog.Level
	attrs  []slog.Attr
	group  string
}

func (h *eventHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *eventHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	write := func(a slog.Attr) bool {
		if a.Equal(slog.Attr{}) {
			return true
		}
		key := a.Key
		if h.group != "" {
			key = h.group + "." + key
		}
		fmt.Fprintf(&b, " %s=%v", key, a.Value.Resolve())
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	h.env.Log(strings.ToLower(r.Level.String()), h.source, b.String())
	return nil
}

func (h *eventHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &c
}

func (h *eventHandler) WithGroup(name string) slog.Handler {
	c := *h
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}
