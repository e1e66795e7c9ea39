// Package logging sets up log/slog loggers for corekit's binaries and adapts
// them to the hclog.Logger interface that hashicorp/raft requires.
//
// Read New first, then HCLog. Nothing here keeps global state: every logger is
// built by a constructor and handed to the component that uses it.
package logging

import (
	"io"
	"log/slog"
	"strings"
)

// New returns a text slog logger writing to w at the given level. It is what
// every binary's main package builds once and passes down.
func New(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// Discard returns a logger that drops everything (for tests and benchmarks).
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// ParseLevel maps "debug", "info", "warn" and "error" (any case) to a level;
// anything else is info.
func ParseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug", "trace":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}
