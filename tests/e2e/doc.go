// Package e2e is corekit's acceptance test: the user's story of DESIGN.md,
// steps 1–6, against the cluster `make up` boots (three systemd-nspawn
// machines from vagrant/user-data.sample, etcd formed through our discovery
// service, fleetd on every machine). `make e2e` runs it alone and verbosely;
// `make test` runs it with the rest. It needs root and systemd-nspawn and
// skips, saying so, without them.
//
// The test drives the provider binary (vagrant/nspawn, bin/corekit-nspawn)
// exactly as `make up` does, with flags that only keep it apart from a
// cluster the user may have up: its own state directory, a leased test
// subnet, bridge and machine-name prefix. Machine commands go through
// `corekit-nspawn ssh` (what `make ssh` runs); host commands use the
// environment of .corekit/cluster.env, as a user who sourced it would.
//
// Besides asserting, it logs the numbers vagrant/README.md reports (lines
// starting with "MEASURE"): time to a formed cluster, failover time after a
// poweroff, and memory per machine.
package e2e
