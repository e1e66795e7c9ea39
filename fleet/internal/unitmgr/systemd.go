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
//
// ctx bounds only the connection attempt: the connection itself lives until
// Close, so that work after ctx ends (the purge when fleetd receives
// SIGTERM) still reaches systemd.
func NewSystemd(ctx context.Context, dir string) (*Systemd, error) {
	if dir == "" {
		dir = DefaultUnitsDir
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	// go-systemd closes a connection when the context it was opened with
	// ends; the connection must outlive a cancelled ctx.
	life := context.WithoutCancel(ctx)
	conn, err := dial(ctx, func() (*sddbus.Conn, error) { return sddbus.NewSystemConnectionContext(life) })
	if err != nil {
		var err2 error
		if conn, err2 = dial(ctx, func() (*sddbus.Conn, error) { return sddbus.NewSystemdConnectionContext(life) }); err2 != nil {
			return nil, fmt.Errorf("connect to systemd: %w (private socket: %v)", err, err2)
		}
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		conn.Close()
		return nil, fmt.Errorf("create units directory: %w", err)
	}
	return &Systemd{conn: conn, dir: unitsDir(abs)}, nil
}

// dial runs connect, giving up when ctx ends first (the connection's own
// context cannot be cancelled, so ctx bounds the attempt here).
func dial(ctx context.Context, connect func() (*sddbus.Conn, error)) (*sddbus.Conn, error) {
	type res struct {
		c   *sddbus.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := connect(); ch <- res{c, err} }()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
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

// SystemState implements SystemStater: systemd's SystemState property. If
// the bus connection fails (dbus-daemon may already be stopping during a
// shutdown), it asks once more over systemd's private socket.
func (s *Systemd) SystemState(ctx context.Context) (string, error) {
	st, err := systemState(ctx, s.conn)
	if err == nil {
		return st, nil
	}
	conn, err2 := dial(ctx, func() (*sddbus.Conn, error) { return sddbus.NewSystemdConnectionContext(context.WithoutCancel(ctx)) })
	if err2 != nil {
		return "", fmt.Errorf("system state: %w (private socket: %v)", err, err2)
	}
	defer conn.Close()
	return systemState(ctx, conn)
}

func systemState(ctx context.Context, conn *sddbus.Conn) (string, error) {
	p, err := conn.SystemStateContext(ctx)
	if err != nil {
		return "", fmt.Errorf("system state: %w", err)
	}
	v, ok := p.Value.Value().(string)
	if !ok {
		return "", fmt.Errorf("system state: unexpected value %s", p.Value)
	}
	return v, nil
}

// WatchStates implements Watcher over systemd's D-Bus signals: it
// subscribes to the manager's events and reports every unit whose
// LoadState, ActiveState or SubState changed (PropertiesChanged on
// org.freedesktop.systemd1.Unit). A dropped update (full channel) is
// reported as "" so the caller re-reads everything.
func (s *Systemd) WatchStates(ctx context.Context, changed func(unit string)) (func(), error) {
	if err := s.conn.Subscribe(); err != nil {
		return nil, fmt.Errorf("subscribe to systemd signals: %w", err)
	}
	updates := make(chan *sddbus.PropertiesUpdate, 1024)
	errs := make(chan error, 16)
	s.conn.SetPropertiesSubscriber(updates, errs)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-wctx.Done():
				return
			case u := <-updates:
				for _, p := range []string{"ActiveState", "SubState", "LoadState"} {
					if _, ok := u.Changed[p]; ok {
						changed(u.UnitName)
						break
					}
				}
			case <-errs:
				changed("")
			}
		}
	}()
	stop := func() {
		cancel()
		<-done
		s.conn.SetPropertiesSubscriber(nil, nil)
	}
	return stop, nil
}
