// Package bench holds fleetd's real-machine benchmark: three systemd-nspawn
// machines, each running the built fleetd under systemd, against one etcd on
// the host bridge, behind a counting reverse proxy. It submits many trivial
// units through fleetd's HTTP API and measures the time until systemd runs
// every one of them, the store requests per scheduling decision and the
// memory of fleetd and etcd at the end. It has no tests, only benchmarks:
//
//	go test -run '^$' -bench RealCluster -benchtime 1x -timeout 15m ./fleet/bench/
//
// FLEET_BENCH_UNITS (1000) sets the number of units; FLEET_BENCH_ETCD=reference
// uses Debian's etcd 3.4 instead of ours. See docs/performance-fleet.md.
package bench
