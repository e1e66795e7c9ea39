// Package cluster holds process-level tests of multi-member etcd clusters:
// real etcd processes (ours, and Debian's etcd 3.4 for the benchmark) on
// loopback, killed with SIGKILL, paused with SIGSTOP, grown and shrunk with
// Debian's etcdctl. It has no non-test code.
//
// The benchmarks (go test -run X -bench . ./etcd/cluster) compare a
// three-member cluster of ours with a three-member Debian etcd 3.4.
package cluster
