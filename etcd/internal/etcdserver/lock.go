package etcdserver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDataDir takes an exclusive, non-blocking lock on <member>/lock so a
// second process on the same data directory fails at once instead of
// waiting forever on the log store's own lock. The lock goes with the
// process (kill -9 included).
func lockDataDir(memberDir string) (*os.File, error) {
	p := filepath.Join(memberDir, "lock")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("etcdserver: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("etcdserver: data dir %s is in use by another etcd process", filepath.Dir(memberDir))
		}
		return nil, fmt.Errorf("etcdserver: lock %s: %w", p, err)
	}
	return f, nil
}
