// Package nspawn boots real systemd machines on this host with
// systemd-nspawn, joins them to a host bridge, runs commands inside them and
// tears them down. It is the machinery behind internal/testbed (tests) and
// the `make up` provider (vagrant/nspawn).
//
// Every machine is started exactly one way, the only way that is safe on a
// shared host (see docs: TESTBED):
//
//	systemd-nspawn --register=no --keep-unit --volatile=yes -D / -M NAME \
//	    --hostname=HOST --network-bridge=BR --bind-ro=… --boot --console=pipe \
//	    -- systemd.mask=systemd-networkd-wait-online.service systemd.mask=systemd-firstboot.service
//
// The guest's root is a fresh tmpfs and its /usr is the host's, read-only, so
// nothing the guest writes reaches the host. A preset file that enables only
// D-Bus is bound at /etc/systemd/system-preset/00-corekit.preset, so the
// first boot does not start every service installed on the host's /usr.
//
// Machines are stopped with SIGRTMIN+4 to the guest's PID 1 (poweroff).
// A hard failure is simulated with SIGKILL to the guest's PID 1, which makes
// the kernel kill every process in the guest's PID namespace. The
// systemd-nspawn process itself is only ever SIGKILLed once PID 1 is gone.
//
// Bridges carry a private IPv4 /24; the host side holds the gateway address
// (.1). Nothing here enables ip_forward, adds NAT or routes: machines reach
// each other and the host's bridge address, nothing else.
package nspawn
