package nspawn

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// MaxIfNameLen is the longest network interface name Linux accepts.
const MaxIfNameLen = 15

// Bridge is a Linux bridge on the host that machines join with
// --network-bridge. The host side holds Gateway (the subnet's .1).
type Bridge struct {
	Name    string       // interface name, at most 15 bytes
	Gateway netip.Prefix // host address on the bridge, e.g. 10.233.7.1/24
}

// Subnet returns the bridge's network, e.g. 10.233.7.0/24.
func (b *Bridge) Subnet() netip.Prefix { return b.Gateway.Masked() }

// HostAddr returns the host's address on the bridge (the gateway).
func (b *Bridge) HostAddr() netip.Addr { return b.Gateway.Addr() }

// GatewayFor returns the .1 address of a /24 (or any prefix) as a prefix
// carrying the subnet's length.
func GatewayFor(subnet netip.Prefix) (netip.Prefix, error) {
	if !subnet.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("nspawn: subnet %s: only IPv4 is supported", subnet)
	}
	if subnet.Bits() > 29 || subnet.Bits() < 8 {
		return netip.Prefix{}, fmt.Errorf("nspawn: subnet %s: prefix length must be between 8 and 29", subnet)
	}
	return netip.PrefixFrom(subnet.Masked().Addr().Next(), subnet.Bits()), nil
}

// HostAddrN returns the address with the last octet replaced by n, keeping the
// prefix length (10.233.7.0/24, 101 → 10.233.7.101/24).
func HostAddrN(subnet netip.Prefix, n int) (netip.Prefix, error) {
	if n < 1 || n > 254 {
		return netip.Prefix{}, fmt.Errorf("nspawn: host number %d out of range 1..254", n)
	}
	if subnet.Bits() > 24 {
		return netip.Prefix{}, fmt.Errorf("nspawn: subnet %s: need a /24 or larger for host number %d", subnet, n)
	}
	a := subnet.Masked().Addr().As4()
	a[3] = byte(n)
	return netip.PrefixFrom(netip.AddrFrom4(a), subnet.Bits()), nil
}

// LinkExists reports whether a network interface with this name exists on
// the host.
func LinkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// ValidateIfName checks that name is usable as a Linux interface name.
func ValidateIfName(name string) error {
	if name == "" || len(name) > MaxIfNameLen {
		return fmt.Errorf("nspawn: interface name %q must be 1..%d bytes", name, MaxIfNameLen)
	}
	if strings.ContainsAny(name, "/ \t\n:") || name == "." || name == ".." {
		return fmt.Errorf("nspawn: interface name %q contains invalid characters", name)
	}
	return nil
}

// CreateBridge creates the bridge name on the host, gives it gateway and sets
// it up. It fails if an interface of that name exists already, or if any
// host interface already has an address inside gateway's subnet.
func CreateBridge(ctx context.Context, name string, gateway netip.Prefix) (*Bridge, error) {
	if err := ValidateIfName(name); err != nil {
		return nil, err
	}
	if LinkExists(name) {
		return nil, fmt.Errorf("nspawn: bridge %s: an interface with this name already exists", name)
	}
	if used, err := SubnetInUse(ctx, gateway.Masked()); err != nil {
		return nil, err
	} else if used != "" {
		return nil, fmt.Errorf("nspawn: subnet %s is already used on this host (%s)", gateway.Masked(), used)
	}
	b := &Bridge{Name: name, Gateway: gateway}
	if err := runIP(ctx, "link", "add", name, "type", "bridge"); err != nil {
		return nil, fmt.Errorf("nspawn: create bridge %s: %w", name, err)
	}
	steps := [][]string{
		{"addr", "add", gateway.String(), "dev", name},
		{"link", "set", name, "up"},
	}
	for _, s := range steps {
		if err := runIP(ctx, s...); err != nil {
			_ = b.Delete(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("nspawn: configure bridge %s: %w", name, err)
		}
	}
	return b, nil
}

// Delete removes the bridge. Deleting a bridge that is already gone is not
// an error.
func (b *Bridge) Delete(ctx context.Context) error {
	if !LinkExists(b.Name) {
		return nil
	}
	if err := runIP(ctx, "link", "del", b.Name); err != nil && LinkExists(b.Name) {
		return fmt.Errorf("nspawn: delete bridge %s: %w", b.Name, err)
	}
	return nil
}

// SubnetInUse returns a description of the first host IPv4 address inside
// subnet ("eth0 10.233.7.5/24"), or "" when the subnet is free.
func SubnetInUse(ctx context.Context, subnet netip.Prefix) (string, error) {
	out, err := exec.CommandContext(ctx, "ip", "-o", "-4", "addr", "show").Output()
	if err != nil {
		return "", fmt.Errorf("nspawn: ip -4 addr show: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		// "2: eth0    inet 10.0.0.5/24 brd ... scope global eth0"
		for i := 0; i+1 < len(f); i++ {
			if f[i] != "inet" {
				continue
			}
			p, err := netip.ParsePrefix(f[i+1])
			if err != nil {
				continue
			}
			if subnet.Overlaps(p) {
				return strings.TrimSuffix(f[1], ":") + " " + f[i+1], nil
			}
		}
	}
	return "", nil
}

func runIP(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			return fmt.Errorf("ip %s: %w", strings.Join(args, " "), err)
		}
		return fmt.Errorf("ip %s: %s: %w", strings.Join(args, " "), msg, err)
	}
	return nil
}

// errNotFound is returned by lookups of processes that do not exist.
var errNotFound = errors.New("not found")
