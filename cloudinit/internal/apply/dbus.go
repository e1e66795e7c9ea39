package apply

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	sd "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
)

// DBus is the production [Systemd]: systemd's manager over D-Bus, through
// go-systemd's …Context calls.
type DBus struct {
	conn *sd.Conn
}

// PrivateSocket returns the path of systemd's private D-Bus socket of the
// system whose root is root ("/run/systemd/private" for "/"; for
// /proc/PID/root it is the socket of that PID namespace's systemd).
func PrivateSocket(root string) string {
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, "run/systemd/private")
}

// DialPrivate connects to systemd's private socket at socket (root only; no
// dbus-daemon needed), authenticating with EXTERNAL as this uid.
func DialPrivate(ctx context.Context, socket string) (*DBus, error) {
	return dial(ctx, socket, false, "systemd private socket", "connect to systemd at")
}

// SystemBusSocket returns the path of the D-Bus system bus socket of the
// system whose root is root.
func SystemBusSocket(root string) string {
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, "run/dbus/system_bus_socket")
}

// DialBus connects to systemd through the system bus (dbus-daemon) listening
// at socket. Unlike the private socket, this also works from outside the
// machine's PID namespace (systemd refuses private connections whose peer
// PID it cannot see, e.g. from the host to an nspawn guest).
func DialBus(ctx context.Context, socket string) (*DBus, error) {
	return dial(ctx, socket, true, "system bus socket", "connect to systemd on the system bus at")
}

// dial connects to the D-Bus socket at socket, authenticating with EXTERNAL
// as this uid; hello is the bus handshake (dbus-daemon wants it, systemd's
// private socket does not). what and how name the socket in errors.
func dial(ctx context.Context, socket string, hello bool, what, how string) (*DBus, error) {
	if _, err := os.Stat(socket); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	conn, err := sd.NewConnection(func() (*godbus.Conn, error) {
		c, err := godbus.Dial("unix:path="+socket, godbus.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		if err := c.Auth([]godbus.Auth{godbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
			c.Close()
			return nil, err
		}
		if hello {
			if err := c.Hello(); err != nil {
				c.Close()
				return nil, err
			}
		}
		return c, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", how, socket, err)
	}
	return &DBus{conn: conn}, nil
}

// Close closes the connection.
func (d *DBus) Close() { d.conn.Close() }

// Reload implements [Systemd].
func (d *DBus) Reload(ctx context.Context) error { return d.conn.ReloadContext(ctx) }

// EnableUnitFiles implements [Systemd] (force=true, as the anchor did).
func (d *DBus) EnableUnitFiles(ctx context.Context, names []string, runtime bool) error {
	_, _, err := d.conn.EnableUnitFilesContext(ctx, names, runtime, true)
	return err
}

// RunCommand implements [Systemd].
func (d *DBus) RunCommand(ctx context.Context, unit, command string) (string, error) {
	var f func(context.Context, string, string, chan<- string) (int, error)
	switch command {
	case "start":
		f = d.conn.StartUnitContext
	case "stop":
		f = d.conn.StopUnitContext
	case "restart":
		f = d.conn.RestartUnitContext
	case "reload":
		f = d.conn.ReloadUnitContext
	case "try-restart":
		f = d.conn.TryRestartUnitContext
	case "reload-or-restart":
		f = d.conn.ReloadOrRestartUnitContext
	case "reload-or-try-restart":
		f = d.conn.ReloadOrTryRestartUnitContext
	default:
		return "", fmt.Errorf("unknown unit command %q", command)
	}
	ch := make(chan string, 1)
	if _, err := f(ctx, unit, "replace", ch); err != nil {
		return "", err
	}
	return wait(ctx, ch)
}

// StartTransient implements [Systemd].
func (d *DBus) StartTransient(ctx context.Context, name, description string, argv []string) (string, error) {
	ch := make(chan string, 1)
	props := []sd.Property{sd.PropDescription(description), sd.PropExecStart(argv, false)}
	if _, err := d.conn.StartTransientUnitContext(ctx, name, "replace", props, ch); err != nil {
		return "", err
	}
	return wait(ctx, ch)
}

func wait(ctx context.Context, ch <-chan string) (string, error) {
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
