package raftnode

import (
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestHeartbeatsGoThroughRaftsMainLoop: our transport declines raft's
// heartbeat fast path (SetHeartbeatHandler), so a heartbeat from a leader is
// delivered on Consumer, where raft's main loop handles it in order with
// everything else, and the fast-path handler raft installs is never called.
// With the fast path, a heartbeat carrying a new term could change the term
// of a deposed leader while its loop stamps client entries, which made two
// members hold different entries with the same index and term (torture seed
// 40008; hashicorp/raft issue #695).
func TestHeartbeatsGoThroughRaftsMainLoop(t *testing.T) {
	recvNet, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	recv := newStatsTransport(recvNet, &AppendStats{followers: map[raft.ServerID]*FollowerStats{}}, newCommitNotifier(), done)
	t.Cleanup(func() { close(done); recvNet.Close() })
	fastPath := make(chan raft.RPC, 1)
	recv.SetHeartbeatHandler(func(rpc raft.RPC) { fastPath <- rpc })

	send, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { send.Close() })

	hb := &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("leader"), Addr: []byte(send.LocalAddr())},
		Term:      7,
	}
	if !isHeartbeat(hb) {
		t.Fatal("test request is not a heartbeat")
	}
	errc := make(chan error, 1)
	go func() {
		var resp raft.AppendEntriesResponse
		errc <- send.AppendEntries("follower", recvNet.LocalAddr(), hb, &resp)
	}()
	select {
	case rpc := <-recv.Consumer():
		got, ok := rpc.Command.(*raft.AppendEntriesRequest)
		if !ok || got.Term != 7 {
			t.Fatalf("consumer got %T %+v, want the heartbeat", rpc.Command, rpc.Command)
		}
		rpc.Respond(&raft.AppendEntriesResponse{Term: 7, Success: true}, nil)
	case <-fastPath:
		t.Fatal("the heartbeat took raft's fast path (handled outside the main loop)")
	case <-time.After(10 * time.Second):
		t.Fatal("heartbeat never delivered")
	}
	if err := <-errc; err != nil {
		t.Fatalf("AppendEntries: %v", err)
	}
	select {
	case <-fastPath:
		t.Fatal("the fast-path handler was called too")
	default:
	}
}
