package testbed

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/nspawn"
)

// Bind is a host path bound into every machine.
type Bind = nspawn.Bind

// UnitDir is where Options.Units are bound in each guest.
const UnitDir = "/etc/systemd/system"

// Options configure NewCluster.
type Options struct {
	// N is the number of machines (default 1).
	N int
	// Prefix is the hostname prefix (default "core": core-01, core-02, …).
	Prefix string
	// Subnet is a /24 to use instead of a leased 10.233.X.0/24.
	Subnet string
	// Binds are bound into every machine.
	Binds []Bind
	// Units are host paths of unit files (or drop-in directories such as
	// "x.service.d") bound read-only into /etc/systemd/system/<base name>.
	Units []string
	// BootTimeout bounds each machine's boot (default 90 s).
	BootTimeout time.Duration
	// Logger receives progress (default: t.Log).
	Logger *slog.Logger
}

// Cluster is a set of machines on one bridge.
type Cluster struct {
	Bridge   *nspawn.Bridge
	Machines []*Machine
	t        testing.TB
}

// HostAddr is the host's address on the bridge (.1): guests reach services
// the test runs on the host there.
func (c *Cluster) HostAddr() netip.Addr { return c.Bridge.HostAddr() }

// Subnet is the cluster's /24.
func (c *Cluster) Subnet() netip.Prefix { return c.Bridge.Subnet() }

// Machine returns the machine with this hostname, or fails the test.
func (c *Cluster) Machine(hostname string) *Machine {
	c.t.Helper()
	for _, m := range c.Machines {
		if m.Hostname() == hostname {
			return m
		}
	}
	c.t.Fatalf("testbed: no machine %q", hostname)
	return nil
}

// Machine is one guest of a Cluster.
type Machine struct {
	*nspawn.Machine
	t testing.TB
}

// Addr returns the guest's IPv4 address on the bridge (without prefix length).
func (m *Machine) Addr() netip.Addr { return m.Machine.Addr().Addr() }

// Result is what Run returns.
type Result = nspawn.Result

// MustRun runs args in the guest and fails the test unless it exits 0; it
// returns stdout.
func (m *Machine) MustRun(ctx context.Context, args ...string) string {
	m.t.Helper()
	r := m.Run(ctx, args...)
	if !r.OK() {
		m.t.Fatalf("testbed: %s: %s: %v\nstdout: %s\nstderr: %s", m.Hostname(), strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// MustWriteFile writes a guest file or fails the test.
func (m *Machine) MustWriteFile(guestPath string, data []byte, perm os.FileMode) {
	m.t.Helper()
	if err := m.WriteFile(guestPath, data, perm); err != nil {
		m.t.Fatal(err)
	}
}

// MustReadFile reads a guest file or fails the test.
func (m *Machine) MustReadFile(guestPath string) []byte {
	m.t.Helper()
	b, err := m.ReadFile(guestPath)
	if err != nil {
		m.t.Fatal(err)
	}
	return b
}

// Require skips the test, loudly, unless this process can boot machines
// (root, systemd-nspawn, nsenter and ip installed).
func Require(t testing.TB) {
	t.Helper()
	if err := nspawn.Check(); err != nil {
		t.Skipf("SKIP (needs real systemd machines): %v", err)
	}
}

// NewCluster boots opts.N machines on a new bridge. Everything is torn down
// by t.Cleanup. It calls Require first.
func NewCluster(t testing.TB, opts Options) *Cluster {
	t.Helper()
	Require(t)
	if opts.N <= 0 {
		opts.N = 1
	}
	if opts.N > 99 {
		t.Fatalf("testbed: N=%d: at most 99 machines", opts.N)
	}
	if opts.Prefix == "" {
		opts.Prefix = "core"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	ctx := context.Background()

	var lease *nspawn.Lease
	var err error
	if opts.Subnet != "" {
		p, perr := netip.ParsePrefix(opts.Subnet)
		if perr != nil {
			t.Fatalf("testbed: Subnet %q: %v", opts.Subnet, perr)
		}
		lease, err = nspawn.LeaseSubnet(ctx, p)
	} else {
		lease, err = nspawn.LeaseTestSubnet(ctx, os.Getpid())
	}
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	// The lease makes the subnet, and so this id, unique on the host while
	// the cluster lives: bridge br-tX, machines tX-01… (veths vb-tX-01…).
	id := fmt.Sprintf("t%d", lease.Subnet.Addr().As4()[2])
	gw, err := nspawn.GatewayFor(lease.Subnet)
	if err != nil {
		lease.Release()
		t.Fatalf("testbed: %v", err)
	}
	dir := t.TempDir()
	c := &Cluster{t: t}
	var mu sync.Mutex
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		mu.Lock()
		ms := append([]*Machine(nil), c.Machines...)
		mu.Unlock()
		if t.Failed() {
			for _, m := range ms {
				if m.Running() {
					t.Logf("testbed: journal of %s (last 40 lines):\n%s", m.Hostname(), m.JournalTail(cctx, "", 40))
				}
			}
		}
		var wg sync.WaitGroup
		for _, m := range ms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := m.Poweroff(cctx); err != nil {
					t.Errorf("testbed: poweroff %s: %v", m.Hostname(), err)
				}
			}()
		}
		wg.Wait()
		if c.Bridge != nil {
			if err := c.Bridge.Delete(cctx); err != nil {
				t.Errorf("testbed: %v", err)
			}
		}
		lease.Release()
	})

	br, err := nspawn.CreateBridge(ctx, "br-"+id, gw)
	if err != nil {
		t.Fatalf("testbed: %v", err)
	}
	c.Bridge = br

	binds := append([]Bind(nil), opts.Binds...)
	for _, u := range opts.Units {
		abs, err := filepath.Abs(u)
		if err != nil {
			t.Fatalf("testbed: unit %s: %v", u, err)
		}
		binds = append(binds, Bind{Host: abs, Guest: filepath.Join(UnitDir, filepath.Base(abs)), ReadOnly: true})
	}

	type booted struct {
		i   int
		m   *nspawn.Machine
		err error
	}
	results := make(chan booted, opts.N)
	for i := 1; i <= opts.N; i++ {
		addr, err := nspawn.HostAddrN(lease.Subnet, 100+i)
		if err != nil {
			t.Fatalf("testbed: %v", err)
		}
		cfg := nspawn.Config{
			Name:        fmt.Sprintf("%s-%02d", id, i),
			Hostname:    fmt.Sprintf("%s-%02d", opts.Prefix, i),
			Bridge:      br.Name,
			Addr:        addr,
			Binds:       binds,
			Dir:         filepath.Join(dir, fmt.Sprintf("m%02d", i)),
			BootTimeout: opts.BootTimeout,
		}
		go func() {
			m, err := nspawn.Boot(ctx, cfg, log)
			results <- booted{i, m, err}
		}()
	}
	ms := make([]*Machine, opts.N)
	var errs []string
	for range opts.N {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err.Error())
			continue
		}
		ms[r.i-1] = &Machine{Machine: r.m, t: t}
		mu.Lock()
		c.Machines = append(c.Machines, ms[r.i-1])
		mu.Unlock()
	}
	if len(errs) > 0 {
		t.Fatalf("testbed: boot failed:\n%s", strings.Join(errs, "\n"))
	}
	mu.Lock()
	c.Machines = ms
	mu.Unlock()
	return c
}

// tWriter sends log lines to t.Log.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
