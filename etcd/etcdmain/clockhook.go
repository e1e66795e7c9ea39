package etcdmain

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// flagClockOffsetFile is the hidden, test-only flag (ETCD_EXPERIMENTAL_CLOCK_OFFSET_FILE)
// that shifts the wall clock this member uses for TTLs: expirations stamped
// on writes (v2http) and the leader's expiry sweep. etcd/torture uses it to
// inject clock jumps, which Go programs cannot get from libfaketime or time
// namespaces (those shift only monotonic clocks).
const flagClockOffsetFile = "experimental-clock-offset-file"

// isHiddenFlag reports whether a flag is registered and parsed like every
// flag (and read from its ETCD_* variable) but left out of --help.
func isHiddenFlag(name string) bool { return name == flagClockOffsetFile }

// clockReread is how long a read offset is used before the file is read
// again.
const clockReread = 100 * time.Millisecond

// clockHook is a wall clock shifted by the signed duration in a file
// ("+30s", "-45s"; missing or empty means 0). Now re-reads the file at most
// every interval; content that does not parse logs one warning and keeps
// the last good offset.
type clockHook struct {
	path     string
	log      *slog.Logger
	base     func() time.Time // the real clock (time.Now)
	interval time.Duration

	mu      sync.Mutex
	offset  time.Duration
	readAt  time.Time // monotonic time of the last read; zero: never read
	badSeen string    // bad content already warned about
}

func newClockHook(path string, log *slog.Logger) *clockHook {
	return &clockHook{path: path, log: log, base: time.Now, interval: clockReread}
}

// Now is the shifted wall clock. The monotonic reading is dropped, so
// durations between two readings see the jump too, as they would with a
// wall clock that was stepped.
func (h *clockHook) Now() time.Time {
	return h.base().Round(0).Add(h.Offset())
}

// Offset returns the current offset, re-reading the file when the last read
// is older than the interval.
func (h *clockHook) Offset() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.readAt.IsZero() && time.Since(h.readAt) < h.interval {
		return h.offset
	}
	h.readAt = time.Now()
	off, err := readClockOffset(h.path)
	if err != nil {
		if msg := err.Error(); msg != h.badSeen {
			h.badSeen = msg
			h.log.Warn("ignoring clock offset file; keeping the last offset", "path", h.path, "offset", h.offset, "err", err)
		}
		return h.offset
	}
	if off != h.offset {
		h.log.Info("clock offset changed", "path", h.path, "from", h.offset, "to", off)
	}
	h.offset, h.badSeen = off, ""
	return h.offset
}

// readClockOffset parses the file's content as a signed Go duration; a
// missing or empty file is 0.
func readClockOffset(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("clock offset %q: want a signed duration such as +30s or -45s", s)
	}
	return d, nil
}

// clockNow returns the clock embed should use: nil (time.Now) unless
// --experimental-clock-offset-file is set.
func (c *Config) clockNow(log *slog.Logger) func() time.Time {
	if c.ClockOffsetFile == "" {
		return nil
	}
	log.Warn("using a shifted wall clock for TTLs (test only)", "file", c.ClockOffsetFile)
	return newClockHook(c.ClockOffsetFile, log).Now
}
