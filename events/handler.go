package events

import (
	"context"
	"log/slog"
)

// ContextHandler wraps h so that every record logged with a context carries the attributes of
// that context (see WithAttrs), after the record's own. A consumer's handler context carries
// the stream, group, worker and shard this way, so a handler's own
//
//	logger.InfoContext(ctx, "billed", "order", id)
//
// is tagged like Shardline's lines when logger's handler is wrapped:
// slog.New(events.ContextHandler(slog.NewJSONHandler(os.Stderr, nil))).
func ContextHandler(h slog.Handler) slog.Handler {
	if ch, ok := h.(*contextHandler); ok {
		return ch
	}
	return &contextHandler{next: h}
}

type contextHandler struct {
	next slog.Handler
}

func (h *contextHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if attrs := AttrsFrom(ctx); len(attrs) > 0 {
		r = r.Clone()
		r.AddAttrs(attrs...)
	}
	return h.next.Handle(ctx, r)
}

func (h *contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &contextHandler{next: h.next.WithAttrs(attrs)}
}

func (h *contextHandler) WithGroup(name string) slog.Handler {
	return &contextHandler{next: h.next.WithGroup(name)}
}
