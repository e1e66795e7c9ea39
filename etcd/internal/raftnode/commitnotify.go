package raftnode

import (
	"sync"

	"github.com/hashicorp/raft"
)

// commitNotifier lets a heartbeat tell a follower the commit index.
//
// hashicorp/raft's heartbeats carry no commit index (they skip the log
// consistency check so that they are never stuck behind disk I/O); a
// follower learns that entries committed only from the next AppendEntries
// with entries, or from the one the leader sends after CommitTimeout
// (50–100 ms) without new entries. A write forwarded by a follower, which
// answers only once the follower applied it, waited that long.
//
// etcd's leader puts min(commit, the follower's match index) in every
// heartbeat. This does the same, only when it tells the follower something
// new: it rewrites such a heartbeat into an empty AppendEntries whose
// previous entry is that index and its term, so the follower checks its log
// there (Log Matching) before it commits up to it. Node.NudgeCommit forces
// a round of heartbeats right after a commit.
type commitNotifier struct {
	commitIndex func() uint64                     // the leader's commit index
	logTerm     func(index uint64) (uint64, bool) // term of a log entry

	mu    sync.Mutex
	term  uint64                   // leader term the maps below belong to
	match map[raft.ServerID]uint64 // highest index the follower acknowledged in term
	told  map[raft.ServerID]uint64 // highest commit index sent to the follower in term
}

func newCommitNotifier() *commitNotifier {
	return &commitNotifier{match: map[raft.ServerID]uint64{}, told: map[raft.ServerID]uint64{}}
}

// isHeartbeat is NetworkTransport's own test for its heartbeat fast path.
func isHeartbeat(a *raft.AppendEntriesRequest) bool {
	return a.Term != 0 && a.PrevLogEntry == 0 && a.PrevLogTerm == 0 && len(a.Entries) == 0 && a.LeaderCommitIndex == 0
}

// syncTerm resets the maps when a request of a new leader term goes out.
// Callers hold mu.
func (c *commitNotifier) syncTerm(term uint64) bool {
	if term < c.term {
		return false
	}
	if term > c.term {
		c.term = term
		clear(c.match)
		clear(c.told)
	}
	return true
}

// sending records the commit index an append request carries.
func (c *commitNotifier) sending(id raft.ServerID, a *raft.AppendEntriesRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.syncTerm(a.Term) && a.LeaderCommitIndex > c.told[id] {
		c.told[id] = a.LeaderCommitIndex
	}
}

// acked records a successful append: the follower's log now matches the
// leader's up to the request's last entry.
func (c *commitNotifier) acked(id raft.ServerID, a *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) {
	if isHeartbeat(a) || resp == nil || !resp.Success {
		return
	}
	last := a.PrevLogEntry + uint64(len(a.Entries))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.syncTerm(a.Term) && last > c.match[id] {
		c.match[id] = last
	}
}

// heartbeat returns the request to send instead of heartbeat a, or a
// itself when the follower knows every commit it could apply.
func (c *commitNotifier) heartbeat(id raft.ServerID, a *raft.AppendEntriesRequest) *raft.AppendEntriesRequest {
	if c.commitIndex == nil || c.logTerm == nil {
		return a
	}
	commit := c.commitIndex()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.syncTerm(a.Term) {
		return a
	}
	idx := min(commit, c.match[id])
	if idx == 0 || idx <= c.told[id] {
		return a
	}
	term, ok := c.logTerm(idx)
	if !ok {
		return a // compacted away: the regular replication will tell it
	}
	cp := *a // raft reuses its heartbeat request: never modify it
	cp.PrevLogEntry, cp.PrevLogTerm, cp.LeaderCommitIndex = idx, term, idx
	c.told[id] = idx
	return &cp
}

// pending reports whether some follower has acknowledged entries that are
// committed but has not been told so.
func (c *commitNotifier) pending() bool {
	if c.commitIndex == nil {
		return false
	}
	commit := c.commitIndex()
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, m := range c.match {
		if min(commit, m) > c.told[id] {
			return true
		}
	}
	return false
}

// forget drops what is known of the follower's log (a rewritten heartbeat
// failed its consistency check).
func (c *commitNotifier) forget(id raft.ServerID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.match, id)
}
