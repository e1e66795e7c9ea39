package testbed

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/corekit/corekit/internal/buildbin"
)

// GuestBinDir is where Binaries are bound in every machine, as on `make up`
// machines.
const GuestBinDir = "/opt/corekit/bin"

// Binaries builds this module's commands and returns a read-only Bind of
// the directory holding them at /opt/corekit/bin. Each spec is
// "pkgdir:name" ("cloudinit:coreos-cloudinit", "fleet:fleetd") or just
// "pkgdir" (binary named like the directory). The binaries are removed by
// t.Cleanup.
func Binaries(t testing.TB, specs ...string) Bind {
	t.Helper()
	b, err := buildbin.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Cleanup)
	dir := ""
	for _, s := range specs {
		pkg, name, ok := strings.Cut(s, ":")
		if !ok {
			name = filepath.Base(pkg)
		}
		p, err := b.Build(context.Background(), pkg, name)
		if err != nil {
			t.Fatalf("testbed: %v", err)
		}
		dir = filepath.Dir(p)
	}
	if dir == "" {
		dir = t.TempDir()
	}
	return Bind{Host: dir, Guest: GuestBinDir, ReadOnly: true}
}
