// Package buildbin builds this module's binaries for tests that must run them
// as real processes (kill -9, restarts, CLI golden runs against a server).
//
// Each binary is built once per test process into a temporary directory and
// reused; the directory is removed by Cleanup, which a TestMain calls.
package buildbin

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// Builder builds and caches binaries of this module. The zero value is not
// usable; call New.
type Builder struct {
	mu    sync.Mutex
	dir   string
	built map[string]string
}

// New returns a Builder that puts binaries in a fresh temporary directory.
func New() (*Builder, error) {
	dir, err := os.MkdirTemp("", "corekit-bin-")
	if err != nil {
		return nil, fmt.Errorf("buildbin: %w", err)
	}
	return &Builder{dir: dir, built: map[string]string{}}, nil
}

// Cleanup removes every binary the Builder made.
func (b *Builder) Cleanup() { os.RemoveAll(b.dir) }

// Build compiles the main package at pkg (a path relative to the module
// root, such as "etcd" or "fleetctl") into a binary named name, once, and
// returns its absolute path.
func (b *Builder) Build(ctx context.Context, pkg, name string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.built[pkg]; ok {
		return p, nil
	}
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(b.dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./"+strings.TrimPrefix(pkg, "./"))
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("buildbin: go build ./%s: %w\n%s", pkg, err, msg)
	}
	b.built[pkg] = out
	return out, nil
}

// ModuleRoot returns the directory that holds this module's go.mod.
func ModuleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("buildbin: cannot locate source")
	}
	// file is <root>/internal/buildbin/buildbin.go
	return filepath.Dir(filepath.Dir(filepath.Dir(file))), nil
}
