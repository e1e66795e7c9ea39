package etcdmain

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordHandler keeps every log record.
type recordHandler struct {
	mu   *sync.Mutex
	recs *[]slog.Record
}

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.recs = append(*h.recs, r)
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

func (h recordHandler) warnings() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range *h.recs {
		if r.Level == slog.LevelWarn {
			n++
		}
	}
	return n
}

// newTestHook returns a hook over path with a fixed base clock that re-reads
// the file on every call (interval 0).
func newTestHook(path string) (*clockHook, recordHandler, time.Time) {
	rh := recordHandler{mu: &sync.Mutex{}, recs: &[]slog.Record{}}
	base := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	h := newClockHook(path, slog.New(rh))
	h.base = func() time.Time { return base }
	h.interval = 0
	return h, rh, base
}

func TestClockHookOffsets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	h, rh, base := newTestHook(path)
	if got := h.Now(); !got.Equal(base) {
		t.Errorf("missing file: Now() = %v, want the real clock %v", got, base)
	}
	for _, tc := range []struct {
		content string
		want    time.Duration
	}{
		{"+30s", 30 * time.Second},
		{"-45s\n", -45 * time.Second},
		{"  1m30s  ", 90 * time.Second},
		{"", 0},
		{"-5s", -5 * time.Second},
		{"0", 0},
	} {
		if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := h.Now().Sub(base); got != tc.want {
			t.Errorf("content %q: offset %v, want %v", tc.content, got, tc.want)
		}
	}
	if err := os.WriteFile(path, []byte("+10s"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.Now()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got := h.Now().Sub(base); got != 0 {
		t.Errorf("file removed: offset %v, want 0", got)
	}
	if n := rh.warnings(); n != 0 {
		t.Errorf("%d warnings for valid content, want none", n)
	}
}

func TestClockHookBadContentKeepsLastOffset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	h, rh, base := newTestHook(path)
	if err := os.WriteFile(path, []byte("+20s"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := h.Now().Sub(base); got != 20*time.Second {
		t.Fatalf("offset %v, want 20s", got)
	}
	if err := os.WriteFile(path, []byte("twenty seconds"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if got := h.Now().Sub(base); got != 20*time.Second {
			t.Errorf("bad content, read %d: offset %v, want the last good 20s", i, got)
		}
	}
	if n := rh.warnings(); n != 1 {
		t.Errorf("%d warnings for 5 reads of the same bad content, want exactly 1", n)
	}
	if err := os.WriteFile(path, []byte("-3s"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := h.Now().Sub(base); got != -3*time.Second {
		t.Errorf("good content again: offset %v, want -3s", got)
	}
	if err := os.WriteFile(path, []byte("twenty seconds"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.Now()
	if n := rh.warnings(); n != 2 {
		t.Errorf("%d warnings after bad, good, bad content, want 2", n)
	}
}

func TestClockHookRereadInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	h, _, base := newTestHook(path)
	h.interval = time.Hour
	if err := os.WriteFile(path, []byte("+7s"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := h.Now().Sub(base); got != 7*time.Second {
		t.Fatalf("first read: offset %v, want 7s", got)
	}
	if err := os.WriteFile(path, []byte("+8s"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := h.Now().Sub(base); got != 7*time.Second {
		t.Errorf("within the interval: offset %v, want the cached 7s", got)
	}
	h.mu.Lock()
	h.readAt = time.Now().Add(-2 * time.Hour) // the interval has passed
	h.mu.Unlock()
	if got := h.Now().Sub(base); got != 8*time.Second {
		t.Errorf("after the interval: offset %v, want 8s", got)
	}
}

// TestClockOffsetFlag: the flag and its ETCD_ variable set the file; --help
// does not show it.
func TestClockOffsetFlag(t *testing.T) {
	cfg, err := parseConfig([]string{"--" + flagClockOffsetFile, "/x/clock"}, nil, "h", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClockOffsetFile != "/x/clock" {
		t.Errorf("flag: ClockOffsetFile = %q", cfg.ClockOffsetFile)
	}
	cfg, err = parseConfig(nil, []string{"ETCD_EXPERIMENTAL_CLOCK_OFFSET_FILE=/y/clock"}, "h", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClockOffsetFile != "/y/clock" {
		t.Errorf("env: ClockOffsetFile = %q", cfg.ClockOffsetFile)
	}
	for _, w := range cfg.Warnings {
		if strings.Contains(w, "CLOCK") {
			t.Errorf("env var reported as unknown: %s", w)
		}
	}
	if cfg.clockNow(slog.New(slog.DiscardHandler)) == nil {
		t.Error("clockNow is nil with the flag set")
	}
	if (&Config{}).clockNow(slog.New(slog.DiscardHandler)) != nil {
		t.Error("clockNow is not nil without the flag")
	}
	var help bytes.Buffer
	if _, err := parseConfig([]string{"-h"}, nil, "h", &help); err == nil {
		t.Fatal("-h: no error")
	}
	if !strings.Contains(help.String(), "-initial-cluster-token") {
		t.Fatalf("help lacks the ordinary flags:\n%s", help.String())
	}
	if strings.Contains(help.String(), "clock") {
		t.Errorf("help shows the hidden flag:\n%s", help.String())
	}
}
