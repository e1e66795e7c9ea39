package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// NewCapnslog returns a logger that writes lines in the shape of etcd 2.x's
// capnslog, so messages read as etcd's do:
//
//	2026-01-02 15:04:05.000000 I | etcdmain: listening for peers on http://localhost:2380
//
// The "pkg" attribute (see With) names the package after the level letter;
// other attributes follow the message as key=value.
func NewCapnslog(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(&capnsHandler{w: w, level: level, mu: &sync.Mutex{}})
}

type capnsHandler struct {
	w     io.Writer
	level slog.Level
	mu    *sync.Mutex
	pkg   string
	attrs string // pre-rendered " k=v" pairs
	group string
}

func (h *capnsHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func levelLetter(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "D"
	case l < slog.LevelWarn:
		return "I"
	case l < slog.LevelError:
		return "W"
	default:
		return "E"
	}
}

func (h *capnsHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	b.WriteString(t.Format("2006-01-02 15:04:05.000000"))
	b.WriteString(" ")
	b.WriteString(levelLetter(r.Level))
	b.WriteString(" | ")
	pkg := h.pkg
	var rest strings.Builder
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "pkg" && h.group == "" {
			pkg = a.Value.String()
			return true
		}
		writeAttr(&rest, h.group, a)
		return true
	})
	if pkg != "" {
		b.WriteString(pkg)
		b.WriteString(": ")
	}
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	b.WriteString(rest.String())
	b.WriteString("\n")
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func writeAttr(b *strings.Builder, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		g := a.Key
		if group != "" {
			g = group + "." + a.Key
		}
		for _, ga := range a.Value.Group() {
			writeAttr(b, g, ga)
		}
		return
	}
	key := a.Key
	if group != "" {
		key = group + "." + key
	}
	v := a.Value.String()
	if a.Value.Kind() == slog.KindAny {
		v = fmt.Sprint(a.Value.Any())
	}
	if v == "" || strings.ContainsAny(v, " \t\"=") {
		v = strconv.Quote(v)
	}
	b.WriteString(" ")
	b.WriteString(key)
	b.WriteString("=")
	b.WriteString(v)
}

func (h *capnsHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		if a.Key == "pkg" && h.group == "" {
			c.pkg = a.Value.String()
			continue
		}
		writeAttr(&b, h.group, a)
	}
	c.attrs = b.String()
	return &c
}

func (h *capnsHandler) WithGroup(name string) slog.Handler {
	c := *h
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}
