package nspawn

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestArgsAreTheSafeCommandLine(t *testing.T) {
	cfg := Config{
		Name: "core-01", Bridge: "br0", Dir: "/tmp/m1",
		Binds: []Bind{{Host: "/h/bin", Guest: "/opt/corekit/bin", ReadOnly: true}, {Host: "/h/rw", Guest: "/rw"}},
	}
	got := strings.Join(Args(cfg), " ")
	want := "--register=no --keep-unit --volatile=yes -D / -M core-01 --hostname=core-01 --network-bridge=br0 " +
		"--bind-ro=/tmp/m1/preset:/etc/systemd/system-preset/00-corekit.preset " +
		"--bind-ro=/h/bin:/opt/corekit/bin --bind=/h/rw:/rw --boot --console=pipe -- " +
		"systemd.mask=systemd-networkd-wait-online.service systemd.mask=systemd-firstboot.service"
	if got != want {
		t.Errorf("Args:\n got %s\nwant %s", got, want)
	}
	cfg.Bridge = ""
	if !slices.Contains(Args(cfg), "--private-network") {
		t.Error("no bridge must mean --private-network")
	}
}

func TestPresetDisablesAllButDBus(t *testing.T) {
	lines := strings.Split(strings.TrimSpace(Preset), "\n")
	if lines[len(lines)-1] != "disable *" {
		t.Errorf("preset must end with 'disable *', got %q", lines[len(lines)-1])
	}
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "enable dbus.") {
			t.Errorf("unexpected preset line %q", l)
		}
	}
}

func TestAddressing(t *testing.T) {
	sub := netip.MustParsePrefix("10.233.7.0/24")
	gw, err := GatewayFor(sub)
	if err != nil || gw.String() != "10.233.7.1/24" {
		t.Errorf("GatewayFor = %v, %v", gw, err)
	}
	a, err := HostAddrN(sub, 101)
	if err != nil || a.String() != "10.233.7.101/24" {
		t.Errorf("HostAddrN = %v, %v", a, err)
	}
	for _, n := range []int{0, 255, -1} {
		if _, err := HostAddrN(sub, n); err == nil {
			t.Errorf("HostAddrN(%d) accepted", n)
		}
	}
	if _, err := GatewayFor(netip.MustParsePrefix("fd00::/64")); err == nil {
		t.Error("IPv6 subnet accepted")
	}
	if _, err := GatewayFor(netip.MustParsePrefix("10.0.0.0/30")); err == nil {
		t.Error("/30 accepted")
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"good", Config{Name: "core-01", Dir: dir, Binds: []Bind{{Host: dir, Guest: "/x"}}}, true},
		{"long name", Config{Name: "core-0123456789", Dir: dir}, false},
		{"empty name", Config{Dir: dir}, false},
		{"relative dir", Config{Name: "a", Dir: "rel"}, false},
		{"relative bind", Config{Name: "a", Dir: dir, Binds: []Bind{{Host: "rel", Guest: "/x"}}}, false},
		{"colon", Config{Name: "a", Dir: dir, Binds: []Bind{{Host: dir, Guest: "/x:y"}}}, false},
		{"missing host path", Config{Name: "a", Dir: dir, Binds: []Bind{{Host: dir + "/nope", Guest: "/x"}}}, false},
	} {
		err := tc.cfg.validate()
		if (err == nil) != tc.ok {
			t.Errorf("%s: validate() = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
