package server

import (
	"context"
	"log/slog"
)

// routineToDebug passes a library's records on with everything below warn
// turned into debug: its routine reports are there for whoever debugs, and
// info stays for what an operator acts on.
type routineToDebug struct{ slog.Handler }

func routineLevel(l slog.Level) slog.Level {
	if l < slog.LevelWarn {
		return slog.LevelDebug
	}
	return l
}

func (h routineToDebug) Enabled(ctx context.Context, l slog.Level) bool {
	return h.Handler.Enabled(ctx, routineLevel(l))
}

func (h routineToDebug) Handle(ctx context.Context, r slog.Record) error {
	r.Level = routineLevel(r.Level)
	return h.Handler.Handle(ctx, r)
}

func (h routineToDebug) WithAttrs(attrs []slog.Attr) slog.Handler {
	return routineToDebug{h.Handler.WithAttrs(attrs)}
}

func (h routineToDebug) WithGroup(name string) slog.Handler {
	return routineToDebug{h.Handler.WithGroup(name)}
}
