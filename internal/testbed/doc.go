// Package testbed boots real systemd machines for tests: N systemd-nspawn
// guests on a private bridge, each running the host's systemd with a fresh
// tmpfs root (see internal/nspawn for how, and why that is safe).
//
// Typical use:
//
//	func TestSomething(t *testing.T) {
//		testbed.Require(t) // skips loudly unless root with systemd-nspawn
//		bins := testbed.Binaries(t, "cloudinit:coreos-cloudinit", "fleet:fleetd") // → /opt/corekit/bin
//		c := testbed.NewCluster(t, testbed.Options{
//			N:     3,
//			Binds: []testbed.Bind{bins},
//			Units: []string{"testdata/hello.service"},
//		})
//		m := c.Machines[0]                       // hostname core-01, address .101
//		m.MustRun(t.Context(), "systemctl", "start", "hello.service")
//		r := m.Run(t.Context(), "systemctl", "is-active", "hello.service")
//		...
//	}
//
// NewCluster leases a free 10.233.X.0/24 (X starts from the test process's
// pid; an flock under /run/lock keeps concurrent test processes apart),
// creates a bridge with the host at .1, boots machines core-01… at .101…,
// and registers a t.Cleanup that powers them off, deletes the bridge and
// releases the subnet, even when the test fails. When the test failed, the
// cleanup first logs each machine's journal tail.
//
// The host reaches every guest at Machine.Addr and guests reach the host at
// Cluster.HostAddr (the bridge's .1): a host-side service for the guests
// (discovery, a seed etcd) listens there. Nothing is routed beyond the bridge.
//
// Machine.Run enters the guest's namespaces with nsenter; ReadFile and
// WriteFile go through /proc/PID1/root; SystemBus and PrivateBus give the
// host paths of the guest's D-Bus sockets; Poweroff is a clean shutdown and
// Kill a hard failure (the whole guest PID namespace is SIGKILLed).
package testbed
