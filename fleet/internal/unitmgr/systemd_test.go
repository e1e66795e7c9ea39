package unitmgr

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path=SOCKET</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// startBus runs a private dbus-daemon (a real bus without systemd on it)
// and returns its address.
func startBus(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Skip("SKIP: dbus-daemon not installed (apt-get install dbus-daemon)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(strings.Replace(busConfig, "SOCKET", filepath.Join(dir, "bus"), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-file="+conf, "--nofork", "--nopidfile", "--print-address")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon: %v", err)
	}
	return strings.TrimSpace(line)
}

// The connection must outlive the context NewSystemd was given: fleetd
// opens it with its signal context and purges units after SIGTERM.
func TestSystemdConnectionOutlivesContext(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", startBus(t))
	ctx, cancel := context.WithCancel(context.Background())
	sd, err := NewSystemd(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sd.Close)
	cancel()
	// go-systemd closes a context-bound connection from a goroutine soon
	// after the context ends; keep calling for a while to catch it.
	for i := 0; i < 20; i++ {
		err := sd.Stop(context.Background(), "hello.service")
		if err == nil {
			t.Fatal("StopUnit on a bus without systemd succeeded")
		}
		if errors.Is(err, dbus.ErrClosed) || strings.Contains(err.Error(), "connection closed") {
			t.Fatalf("call after the context ended: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	sd.Close()
	if err := sd.Stop(context.Background(), "hello.service"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("call after Close = %v, want a closed connection", err)
	}
}

// fakeSystemd answers Manager.Subscribe on a private bus, so the
// signal path can be tested without systemd.
type fakeSystemd struct{}

func (fakeSystemd) Subscribe() *dbus.Error { return nil }

// WatchStates reports the unit named by a PropertiesChanged signal of
// org.freedesktop.systemd1.Unit that changes its state, and nothing for
// other properties.
func TestSystemdWatchStatesFromSignals(t *testing.T) {
	addr := startBus(t)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)
	pid1, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pid1.Close() })
	if err := pid1.Export(fakeSystemd{}, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager"); err != nil {
		t.Fatal(err)
	}
	if r, err := pid1.RequestName("org.freedesktop.systemd1", dbus.NameFlagDoNotQueue); err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own org.freedesktop.systemd1: %v %v", r, err)
	}
	sd, err := NewSystemd(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sd.Close)
	got := make(chan string, 16)
	stop, err := sd.WatchStates(t.Context(), func(u string) { got <- u })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	emit := func(unitPath string, changed map[string]dbus.Variant) {
		t.Helper()
		if err := pid1.Emit(dbus.ObjectPath("/org/freedesktop/systemd1/unit/"+unitPath), "org.freedesktop.DBus.Properties.PropertiesChanged",
			"org.freedesktop.systemd1.Unit", changed, []string{}); err != nil {
			t.Fatal(err)
		}
	}
	emit("other_2eservice", map[string]dbus.Variant{"Description": dbus.MakeVariant("x")})
	emit("hello_2eservice", map[string]dbus.Variant{"ActiveState": dbus.MakeVariant("failed"), "SubState": dbus.MakeVariant("failed")})
	select {
	case u := <-got:
		if u != "hello.service" {
			t.Fatalf("changed unit = %q, want hello.service (a non-state change must not count)", u)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported for a PropertiesChanged signal")
	}
}
