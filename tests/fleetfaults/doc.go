// Package fleetfaults runs fleet under faults on real machines (issue #10,
// the fleet part) and measures what fleet promises: every unit ends up
// running somewhere it is allowed to, how long that takes after a fault, and
// how many duplicate copies run meanwhile (fleet is at-least-once).
//
// TestFleetFaults boots three systemd-nspawn machines the way `make up` does
// (the image's etcd.service and fleet.service from vagrant/units, the
// freshly built binaries at /opt/corekit/bin), forms a 3-member etcd store
// from our etcd (static initial cluster instead of a discovery token, so a
// machine that was powered off or killed boots again as the same member with
// its data), starts fleetd everywhere, and submits the twelve units of
// testdata/units: plain ones, two that conflict with each other, two that
// need disk=ssd, one pinned to core-03 by metadata and one global unit.
//
// A nemesis then injects one fault at a time, healing in between: poweroff
// (and boot again), kill -9 of the machine's PID 1 (and boot again), a
// partition of one machine (blackhole routes inside its network namespace),
// and kill -9 of fleetd (systemd restarts it). A sampler reads every
// machine's systemd (systemctl list-units over nsenter) every ~200 ms; from
// those samples the test computes, per fault, the recovery time, the
// duplicate runs and duplicate-seconds, lost units and units on disallowed
// machines. It asserts only the hard properties (recovery within a generous
// bound, never a disallowed placement, exactly-once at the end, the fleet API
// and fleetctl agreeing with systemd) and logs the numbers as "MEASURE" lines
// and a JSON summary (-fleetfaults.out writes it to a file).
//
// The default run is short (one round of each fault); -fleetfaults.rounds=N
// repeats the rounds for docs/reliability-fleet.md. It needs root and
// systemd-nspawn and skips, saying so, without them.
package fleetfaults
