// Package e2e holds fleetd's real-systemd tests: three systemd-nspawn
// machines (internal/testbed) each run the built fleetd against one etcd on
// the host's bridge address, and the tests drive them through the API and
// systemctl. They skip loudly where machines cannot be booted.
package e2e
