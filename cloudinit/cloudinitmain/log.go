package cloudinitmain

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// lineHandler writes records the way coreos-cloudinit's Go log package did:
// "2006/01/02 15:04:05 message", then any attributes as key=value.
type lineHandler struct {
	mu    *sync.Mutex
	w     io.Writer
	now   func() time.Time
	attrs []slog.Attr
}

func newLogger(w io.Writer, now func() time.Time) *slog.Logger {
	return slog.New(&lineHandler{mu: &sync.Mutex{}, w: w, now: now})
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(h.now().Format("2006/01/02 15:04:05 "))
	b.WriteString(r.Message)
	write := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &n
}

func (h *lineHandler) WithGroup(string) slog.Handler { return h }
