// Package store is corekit's etcd v2 key space: the deterministic, in-memory
// tree of keys and directories that raft replicates, with etcd's index rules,
// TTLs, hidden keys, in-order keys, the 1000-event watch history and live
// watchers.
//
// It is a pure state machine. Writes depend only on their arguments and the
// current state: expiry times arrive absolute (computed by the member that
// received the request) and expiry happens only when DeleteExpiredKeys is
// applied with the leader's clock reading. The clock given to New is read
// only to report the remaining ttl of returned nodes. The package does no
// I/O, starts no goroutines and has no package-level mutable state; watcher
// notification never blocks (a stream watcher that falls behind is dropped).
//
// It is not the HTTP layer (etcd/internal/v2http parses requests and maps
// errors to statuses), not raft (etcd/internal/raftnode and the FSM decide
// what is applied and when) and not membership: the store's root is the
// user's root, with no /0 /1 /2 namespaces. Errors are *v2api.Error values
// with etcd's codes, causes and the current index.
//
// Where etcd 2.3 and 3.4 differ it follows 3.4, and it deliberately fixes
// etcd's watch-history bugs: history scans filter hidden keys like live
// watches, match a deleted directory on a '/' boundary, a stream watch that
// starts in the history keeps streaming, and a stream watcher never gets a
// delete or expire twice. Directory listings are always in byte order.
//
// Read store.go first (the API and the write paths), then watcher_hub.go and
// event_history.go for watch matching, snapshot.go for Save/Recovery/Clone
// (and the version 1 JSON snapshots Recovery still reads), snapshot_bin.go
// for the binary format Save and WriteTo write.
// testdata/scenarios/*.txt are executable examples of the semantics
// (scenario_test.go explains the commands; -update rewrites them), and
// reference_test.go replays them against Debian's etcd 3.4 as an oracle.
package store
