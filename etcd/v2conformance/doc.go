// Package v2conformance is a test-only, black-box suite for etcd's v2 client
// API. Every test runs through etcdtest.ForEach against two real processes,
// our etcd and Debian's etcd 3.4 with --enable-v2, so each expectation is
// proved on the reference before it is demanded of us.
//
// Bodies are compared byte for byte after normalisation of what legitimately
// differs between implementations (absolute indexes become deltas from the
// index at the start of the test, expiration timestamps become "EXP"; see
// helpers_test.go). Read helpers_test.go first, then keys_test.go.
package v2conformance
