package raftnode

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestCommitNotifierHeartbeat(t *testing.T) {
	commit := uint64(10)
	c := newCommitNotifier()
	c.commitIndex = func() uint64 { return commit }
	c.logTerm = func(i uint64) (uint64, bool) { return 2, i > 0 && i <= 20 }
	hb := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{}, Term: 2}

	if got := c.heartbeat("f", hb); got != hb {
		t.Fatalf("heartbeat to a follower with no acknowledged entries rewritten: %+v", got)
	}
	// The follower acknowledged entries 6..8: it may learn commit 8.
	app := &raft.AppendEntriesRequest{Term: 2, PrevLogEntry: 5, PrevLogTerm: 2, Entries: make([]*raft.Log, 3), LeaderCommitIndex: 4}
	c.sending("f", app)
	c.acked("f", app, &raft.AppendEntriesResponse{Success: true})
	if !c.pending() {
		t.Error("pending() = false with commit 10, match 8, told 4")
	}
	got := c.heartbeat("f", hb)
	if got == hb || got.PrevLogEntry != 8 || got.PrevLogTerm != 2 || got.LeaderCommitIndex != 8 || len(got.Entries) != 0 {
		t.Fatalf("rewritten heartbeat = %+v, want prev 8/term 2, commit 8", got)
	}
	if !isHeartbeat(hb) {
		t.Fatal("raft's heartbeat request was modified")
	}
	if c.pending() || c.heartbeat("f", hb) != hb {
		t.Error("the same commit index is sent twice")
	}
	// A failed append teaches nothing.
	c.acked("f", &raft.AppendEntriesRequest{Term: 2, PrevLogEntry: 8, Entries: make([]*raft.Log, 5)}, &raft.AppendEntriesResponse{Success: false})
	if c.heartbeat("f", hb) != hb {
		t.Error("a rejected append raised the match index")
	}
	// A heartbeat of an older term is left alone; a newer term forgets.
	c.acked("f", &raft.AppendEntriesRequest{Term: 3, PrevLogEntry: 9, Entries: make([]*raft.Log, 1)}, &raft.AppendEntriesResponse{Success: true})
	if got := c.heartbeat("f", hb); got != hb {
		t.Errorf("heartbeat of an old term rewritten: %+v", got)
	}
	hb3 := &raft.AppendEntriesRequest{Term: 3}
	if got := c.heartbeat("f", hb3); got.PrevLogEntry != 10 || got.LeaderCommitIndex != 10 {
		t.Errorf("term 3 heartbeat = %+v, want commit 10", got)
	}
	// A stale match (the rewritten heartbeat was refused) is forgotten.
	commit = 12
	c.acked("f", &raft.AppendEntriesRequest{Term: 3, PrevLogEntry: 10, Entries: make([]*raft.Log, 2)}, &raft.AppendEntriesResponse{Success: true})
	c.forget("f")
	if got := c.heartbeat("f", hb3); got != hb3 {
		t.Errorf("heartbeat rewritten after forget: %+v", got)
	}
	// Compacted entries: no rewrite.
	commit = 30
	c.acked("f", &raft.AppendEntriesRequest{Term: 3, PrevLogEntry: 20, Entries: make([]*raft.Log, 5)}, &raft.AppendEntriesResponse{Success: true})
	if got := c.heartbeat("f", hb3); got != hb3 {
		t.Errorf("heartbeat rewritten without the entry's term: %+v", got)
	}
}

// TestFollowerLearnsCommitWithoutCommitTimeout: with a CommitTimeout far
// longer than the test's deadline, a follower still applies a committed
// entry promptly after NudgeCommit (the commit index rides on heartbeats).
func TestFollowerLearnsCommitWithoutCommitTimeout(t *testing.T) {
	const n = 3
	var ls []net.Listener
	var peers []Peer
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		peers = append(peers, Peer{ID: string(rune('a' + i)), Address: l.Addr().String()})
	}
	nodes := make([]*Node, n)
	fsms := make([]*countFSM, n)
	for i := 0; i < n; i++ {
		mux := NewPeerMux(ls[i:i+1], ls[i].Addr())
		fsms[i] = &countFSM{}
		node, err := Open(context.Background(), Config{
			Dir: t.TempDir(), ID: peers[i].ID, Mux: mux, FSM: fsms[i],
			Heartbeat: 20 * time.Millisecond, Election: 300 * time.Millisecond,
			CommitTimeout: time.Minute, SnapshotThreshold: 1 << 30, Bootstrap: peers,
		})
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = node
		t.Cleanup(func() { node.Close(); mux.Close() })
	}
	var leader *Node
	deadline := time.Now().Add(15 * time.Second)
	for leader == nil {
		for _, nd := range nodes {
			if nd.IsLeader() {
				leader = nd
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for round := 1; round <= 5; round++ {
		if _, _, err := leader.Apply(t.Context(), []byte("x")); err != nil {
			t.Fatal(err)
		}
		want := fsms[0].n.Load()
		for i := range fsms {
			if nodes[i] == leader {
				want = fsms[i].n.Load()
			}
		}
		leader.NudgeCommit()
		// Far below the one-minute CommitTimeout.
		deadline := time.Now().Add(10 * time.Second)
		for i := range nodes {
			for fsms[i].n.Load() < want {
				if time.Now().After(deadline) {
					t.Fatalf("round %d: node %d applied %d of %d", round, i, fsms[i].n.Load(), want)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
	}
}
