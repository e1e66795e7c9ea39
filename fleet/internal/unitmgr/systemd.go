package unitmgr

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	sddbus "github.com/coreos/go-systemd/v22/dbus"

	"github.com/corekit/corekit/internal/unitfile"
)

// Systemd drives the real systemd over D-Bus.
type Systemd struct {
	conn *sddbus.Conn
	dir  unitsDir
}

// NewSystemd connects to the system bus (falling back to systemd's private
// socket, as fleet does when running as root) and manages units written to
// unitsDir ("" = DefaultUnitsDir). Close the manager when done.
func NewSystemd(ctx context.Context, dir string) (*Systemd, error) {
	if dir == "" {
		dir = DefaultUnitsDir
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	conn, err := sddbus.NewSystemConnectionContext(ctx)
	if err != nil {
		var err2 error
		if conn, err2 = sddbus.NewSystemdConnectionContext(ctx); err2 != nil {
			return nil, fmt.Errorf("connect to systemd: %w (private socket: %v)", err, err2)
		}
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		conn.Close()
		return nil, fmt.Errorf("create units directory: %w", err)
	}
	return &Systemd{conn: conn, dir: unitsDir(abs)}, nil
}

// Close closes the D-Bus connection.
func (s *Systemd) Close() { s.conn.Close() }

// Units implements Manager.
func (s *Systemd) Units(ctx context.Context) (map[string]unitfile.Hash, error) { return s.dir.list() }

// Load implements Manager.
func (s *Systemd) Load(ctx context.Context, name string, f *unitfile.UnitFile) error {
	if err := s.dir.write(name, f); err != nil {
		return err
	}
	p := s.dir.path(name)
	if _, err := s.conn.LinkUnitFilesContext(ctx, []string{p}, true, true); err != nil {
		return fmt.Errorf("link unit %s: %w", name, err)
	}
	if f.HasSection("Install") {
		if _, _, err := s.conn.EnableUnitFilesContext(ctx, []string{p}, true, true); err != nil {
			_ = s.dir.remove(name)
			return fmt.Errorf("enable unit %s: %w", name, err)
		}
	}
	return nil
}

// Unload implements Manager.
func (s *Systemd) Unload(ctx context.Context, name string) error {
	if _, err := s.conn.DisableUnitFilesContext(ctx, []string{name}, true); err != nil {
		return fmt.Errorf("disable unit %s: %w", name, err)
	}
	_ = s.conn.ResetFailedUnitContext(ctx, name) // fails when the unit is not failed
	// Remove a runtime link left by LinkUnitFiles if it still points to us.
	link := filepath.Join("/run/systemd/system", name)
	if dst, err := os.Readlink(link); err == nil && dst == s.dir.path(name) {
		_ = os.Remove(link)
	}
	return s.dir.remove(name)
}

// Reload implements Manager.
func (s *Systemd) Reload(ctx context.Context) error {
	if err := s.conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("daemon-reload: %w", err)
	}
	return nil
}

// Start implements Manager.
func (s *Systemd) Start(ctx context.Context, name string) error {
	if _, err := s.conn.StartUnitContext(ctx, name, "replace", nil); err != nil {
		return fmt.Errorf("failed to trigger systemd unit %s start: %w", name, err)
	}
	return nil
}

// Stop implements Manager.
func (s *Systemd) Stop(ctx context.Context, name string) error {
	if _, err := s.conn.StopUnitContext(ctx, name, "replace", nil); err != nil {
		return fmt.Errorf("failed to trigger systemd unit %s stop: %w", name, err)
	}
	return nil
}

// States implements Manager.
func (s *Systemd) States(ctx context.Context, names []string) (map[string]State, error) {
	out := map[string]State{}
	if len(names) == 0 {
		return out, nil
	}
	sts, err := s.conn.ListUnitsByNamesContext(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("list units: %w", err)
	}
	for _, u := range sts {
		out[u.Name] = State{LoadState: u.LoadState, ActiveState: u.ActiveState, SubState: u.SubState}
	}
	return out, nil
}
