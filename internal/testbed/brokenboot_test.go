package testbed_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/nspawn"
	"github.com/corekit/corekit/internal/testbed"
)

// TestBrokenBootIsDetectedAndRetried breaks the guest's system bus on
// purpose (an empty dbus-daemon configuration bound over the real one, so
// dbus.service fails as it did in a CI run where the guest had no user
// database yet). Boot must notice within seconds instead of waiting for its
// timeout, try again, and finally return ErrBootBroken with the diagnosis,
// leaving no machine or interface behind.
func TestBrokenBootIsDetectedAndRetried(t *testing.T) {
	testbed.Require(t)
	dir := t.TempDir()
	empty := filepath.Join(dir, "system.conf")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	name := fmt.Sprintf("brk%d", os.Getpid()%100000) // unique on the host
	var logs lockedBuffer
	cfg := nspawn.Config{
		Name:        name,
		Dir:         filepath.Join(dir, "m"),
		Binds:       []nspawn.Bind{{Host: empty, Guest: "/usr/share/dbus-1/system.conf", ReadOnly: true}},
		BootTimeout: 2 * time.Minute,
	}
	m, err := nspawn.Boot(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err == nil {
		_ = m.Poweroff(context.Background())
		t.Fatal("a guest without a usable D-Bus configuration booted")
	}
	t.Logf("Boot: %v", err)
	if !errors.Is(err, nspawn.ErrBootBroken) {
		t.Fatalf("error is not ErrBootBroken: %v", err)
	}
	if got := strings.Count(logs.String(), "machine boot broke, booting it again"); got != 2 {
		t.Errorf("retries logged: %d, want 2:\n%s", got, logs.String())
	}
	if !strings.Contains(err.Error(), "journal (last lines)") {
		t.Errorf("error lacks the guest's journal:\n%v", err)
	}
	if nspawn.LinkExists("vb-" + name) {
		t.Errorf("interface vb-%s left behind", name)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
