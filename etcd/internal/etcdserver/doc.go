// Package etcdserver is an etcd member: it owns the raft node (package
// raftnode), the FSM and store (packages fsm, store), the expiry loop and
// the member list, and implements the Server contract in api.go that the
// HTTP layer (package v2http) calls.
//
// Read server.go: New opens the data directory and starts raft, Run drives
// the background loops, Do dispatches a /v2/keys request as etcd 2.3 does
// (local read, watch, quorum read or raft proposal).
package etcdserver
