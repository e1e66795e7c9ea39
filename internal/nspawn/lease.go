package nspawn

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// LockDir holds the lock files that keep concurrent processes on this host
// from picking the same subnet.
const LockDir = "/run/lock/corekit-nspawn"

// TestSubnets is the range test clusters take their /24 from: 10.233.X.0/24.
var TestSubnets = netip.MustParsePrefix("10.233.0.0/16")

// Lease is an exclusive hold on a /24 for as long as this process keeps it
// (an flock on a file under LockDir, released by the kernel if the process
// dies).
type Lease struct {
	Subnet netip.Prefix
	f      *os.File
}

// Release gives the subnet back.
func (l *Lease) Release() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}

// LeaseSubnet takes an exclusive lease on subnet. It fails if another process
// on this host holds it or if a host interface already has an address in it.
func LeaseSubnet(ctx context.Context, subnet netip.Prefix) (*Lease, error) {
	subnet = subnet.Masked()
	if err := os.MkdirAll(LockDir, 0o755); err != nil {
		return nil, fmt.Errorf("nspawn: lease %s: %w", subnet, err)
	}
	name := strings.NewReplacer("/", "_", ".", "-").Replace(subnet.String()) + ".lock"
	f, err := os.OpenFile(filepath.Join(LockDir, name), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("nspawn: lease %s: %w", subnet, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("nspawn: subnet %s is leased by another process", subnet)
		}
		return nil, fmt.Errorf("nspawn: lease %s: %w", subnet, err)
	}
	if used, err := SubnetInUse(ctx, subnet); err != nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		return nil, err
	} else if used != "" {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		return nil, fmt.Errorf("nspawn: subnet %s is already used on this host (%s)", subnet, used)
	}
	return &Lease{Subnet: subnet, f: f}, nil
}

// LeaseTestSubnet leases a free 10.233.X.0/24, trying X = hint mod 254 first
// and then the following ones (callers pass their pid as the hint).
func LeaseTestSubnet(ctx context.Context, hint int) (*Lease, error) {
	base := TestSubnets.Addr().As4()
	if hint < 0 {
		hint = -hint
	}
	for i := 0; i < 254; i++ {
		x := 1 + (hint+i)%254
		a := base
		a[2] = byte(x)
		l, err := LeaseSubnet(ctx, netip.PrefixFrom(netip.AddrFrom4(a), 24))
		if err == nil {
			return l, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("nspawn: no free /24 in %s", TestSubnets)
}
