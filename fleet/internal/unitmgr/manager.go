// Package unitmgr is the agent's view of systemd: a Manager writes unit files
// into fleet's units directory, links them into systemd, starts and stops
// them and reports their load/active/sub states.
//
// Systemd (systemd.go) is the production implementation over go-systemd's
// D-Bus API (…Context calls only); Memory (memory.go) simulates systemd in
// process for pure tests and simulated agents.
package unitmgr

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/corekit/corekit/internal/unitfile"
)

// DefaultUnitsDir is fleet's units_directory default.
const DefaultUnitsDir = "/run/fleet/units/"

// State is a unit's systemd state.
type State struct {
	LoadState   string
	ActiveState string
	SubState    string
}

// Running reports whether systemd considers the unit started (or starting).
func (s State) Running() bool {
	switch s.ActiveState {
	case "active", "activating", "reloading":
		return true
	}
	return false
}

// Manager drives the units of one machine.
type Manager interface {
	// Units returns the units present in the units directory and the hash
	// of each file's content.
	Units(ctx context.Context) (map[string]unitfile.Hash, error)
	// Load writes the unit file, links it into systemd's runtime directory
	// and, if it has an [Install] section, enables it (runtime).
	Load(ctx context.Context, name string, f *unitfile.UnitFile) error
	// Unload disables the unit, resets its failed state and removes its file.
	Unload(ctx context.Context, name string) error
	// Reload makes systemd re-read unit files (daemon-reload).
	Reload(ctx context.Context) error
	// Start and Stop queue a start/stop job (mode "replace") without
	// waiting for it.
	Start(ctx context.Context, name string) error
	Stop(ctx context.Context, name string) error
	// States returns the systemd states of the named units.
	States(ctx context.Context, names []string) (map[string]State, error)
}

// unitsDir holds the file side shared by both implementations.
type unitsDir string

func (d unitsDir) path(name string) string { return filepath.Join(string(d), name) }

func (d unitsDir) write(name string, f *unitfile.UnitFile) error {
	if err := os.MkdirAll(string(d), 0o755); err != nil {
		return fmt.Errorf("create units directory: %w", err)
	}
	if err := os.WriteFile(d.path(name), []byte(f.String()), 0o644); err != nil {
		return fmt.Errorf("write unit %s: %w", name, err)
	}
	return nil
}

func (d unitsDir) remove(name string) error {
	if err := os.Remove(d.path(name)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove unit %s: %w", name, err)
	}
	return nil
}

// list hashes every recognized unit file in the directory.
func (d unitsDir) list() (map[string]unitfile.Hash, error) {
	ents, err := os.ReadDir(string(d))
	if os.IsNotExist(err) {
		return map[string]unitfile.Hash{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read units directory: %w", err)
	}
	out := map[string]unitfile.Hash{}
	for _, e := range ents {
		if e.IsDir() || !unitfile.Recognized(e.Name()) {
			continue
		}
		b, err := os.ReadFile(d.path(e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read unit %s: %w", e.Name(), err)
		}
		f, err := unitfile.Parse(string(b))
		if err != nil {
			continue
		}
		out[e.Name()] = f.Hash()
	}
	return out, nil
}

// SortedNames returns the keys of a unit map in order.
func SortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// SystemStater is implemented by managers that know the state of the whole
// system (systemd's Manager property SystemState: "running", "degraded",
// "stopping", ...). fleetd asks it on SIGTERM to tell a machine that is
// shutting down from a plain restart of fleetd.
type SystemStater interface {
	SystemState(ctx context.Context) (string, error)
}

// SystemStopping is the SystemState of a system that is shutting down.
const SystemStopping = "stopping"

// Watcher is implemented by managers that report unit state changes as
// they happen (systemd's PropertiesChanged signals), so the agent need not
// poll every second.
type Watcher interface {
	// WatchStates starts calling changed with the name of a unit whose
	// state may have changed ("" = any unit: re-read all), until ctx ends
	// or stop is called. An error means no watch could be set up.
	WatchStates(ctx context.Context, changed func(unit string)) (stop func(), err error)
}
