package raftnode

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// readyLog wraps the log store to keep the ready index honest.
//
// At start the ready index is the last command entry on disk: the member
// serves clients once its FSM has applied that far, so it never answers
// from a state older than the one it had before the restart. But the tail
// of a restarted member's log may hold entries that were never committed
// (it led a minority, or crashed before the leader's commit reached it).
// The new leader makes raft truncate that suffix ("clearing log suffix"),
// and those indexes are then committed only when enough new writes arrive,
// so an idle cluster kept the member from serving for as long as nobody
// wrote (a torture run saw 60 s). Raft never truncates a committed entry,
// so the state before the restart cannot have included the truncated
// entries: a suffix truncation that covers the ready index lowers it to
// just before the truncation. Prefix deletions (compaction after a
// snapshot) only cover entries the snapshot already applied and leave the
// ready index alone.
type readyLog struct {
	raft.LogStore
	ready atomic.Uint64
}

// DeleteRange implements raft.LogStore.
//
// A failed deletion is fatal: raft-wal creates the segment that replaces a
// truncated tail before it commits the change, so after a failure (a full
// disk, an fsync error) every retry fails with "file exists" and the member
// can never accept its leader's entries again — it stays up, serving an
// ever older state (a torture run saw a follower stuck this way for the rest
// of the run). Opening the WAL again deletes the orphan segment, so the
// member stops here and recovers when it is restarted (etcd likewise stops
// on WAL errors).
func (l *readyLog) DeleteRange(min, max uint64) error {
	if err := l.LogStore.DeleteRange(min, max); err != nil {
		panic(fmt.Sprintf("raftnode: cannot delete raft log entries %d-%d: %v (stopping: a restart repairs the log store)", min, max, err))
	}
	for {
		r := l.ready.Load()
		if r == 0 || min > r || max < r || min == 0 {
			return nil
		}
		if l.ready.CompareAndSwap(r, min-1) {
			return nil
		}
	}
}

// IsMonotonic forwards raft.MonotonicLogStore (raft-wal is monotonic: raft
// must delete the whole log when it installs a snapshot).
func (l *readyLog) IsMonotonic() bool {
	m, ok := l.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// Close closes the wrapped store.
func (l *readyLog) Close() error {
	if c, ok := l.LogStore.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
