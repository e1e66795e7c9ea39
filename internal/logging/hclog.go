package logging

import (
	"context"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// HCLog adapts l to hclog.Logger for libraries such as hashicorp/raft. The
// name becomes a "component" attribute. hclog's Trace maps to slog's Debug-4.
// The returned logger's level starts at min and can be changed with SetLevel;
// records below it are dropped before they reach slog.
func HCLog(l *slog.Logger, name string, min hclog.Level) hclog.Logger {
	a := &hcAdapter{base: l, name: name, level: new(atomic.Int32)}
	a.level.Store(int32(min))
	a.rebuild()
	return a
}

type hcAdapter struct {
	base    *slog.Logger // without component and implied args
	l       *slog.Logger
	name    string
	implied []any
	level   *atomic.Int32
}

func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (a *hcAdapter) enabled(l hclog.Level) bool {
	if l == hclog.Off || hclog.Level(a.level.Load()) == hclog.Off {
		return false
	}
	return l >= hclog.Level(a.level.Load()) &&
		a.l.Enabled(context.Background(), slogLevel(l))
}

func (a *hcAdapter) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.NoLevel || level == hclog.DefaultLevel {
		level = hclog.Info
	}
	if !a.enabled(level) {
		return
	}
	a.l.Log(context.Background(), slogLevel(level), msg, args...)
}

func (a *hcAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *hcAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *hcAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *hcAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hcAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }
func (a *hcAdapter) IsTrace() bool                 { return a.enabled(hclog.Trace) }
func (a *hcAdapter) IsDebug() bool                 { return a.enabled(hclog.Debug) }
func (a *hcAdapter) IsInfo() bool                  { return a.enabled(hclog.Info) }
func (a *hcAdapter) IsWarn() bool                  { return a.enabled(hclog.Warn) }
func (a *hcAdapter) IsError() bool                 { return a.enabled(hclog.Error) }
func (a *hcAdapter) ImpliedArgs() []any            { return a.implied }
func (a *hcAdapter) Name() string                  { return a.name }
func (a *hcAdapter) SetLevel(l hclog.Level)        { a.level.Store(int32(l)) }
func (a *hcAdapter) GetLevel() hclog.Level         { return hclog.Level(a.level.Load()) }

func (a *hcAdapter) With(args ...any) hclog.Logger {
	b := *a
	b.implied = append(append([]any(nil), a.implied...), args...)
	b.rebuild()
	return &b
}

func (a *hcAdapter) Named(name string) hclog.Logger {
	if a.name != "" {
		name = a.name + "." + name
	}
	return a.ResetNamed(name)
}

func (a *hcAdapter) ResetNamed(name string) hclog.Logger {
	b := *a
	b.name = name
	b.rebuild()
	return &b
}

func (a *hcAdapter) rebuild() {
	a.l = a.base
	if a.name != "" {
		a.l = a.l.With("component", a.name)
	}
	if len(a.implied) > 0 {
		a.l = a.l.With(a.implied...)
	}
}

func (a *hcAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *hcAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		a.Info(strings.TrimRight(string(p), "\n"))
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
