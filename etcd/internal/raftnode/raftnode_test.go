package raftnode

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// countFSM counts applied commands; enough to exercise the log.
type countFSM struct{ n atomic.Uint64 }

func (f *countFSM) Apply(*raft.Log) any                 { return f.n.Add(1) }
func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) { return &countSnap{f.n.Load()}, nil }
func (f *countFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var n uint64
	_, err := fmt.Fscan(rc, &n)
	f.n.Store(n)
	return err
}

type countSnap struct{ n uint64 }

func (s *countSnap) Persist(sink raft.SnapshotSink) error {
	fmt.Fprint(sink, s.n)
	return sink.Close()
}
func (s *countSnap) Release() {}

func startNode(tb testing.TB, dir, store string, fsm raft.FSM) (*Node, *PeerMux) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	mux := NewPeerMux([]net.Listener{l}, l.Addr())
	n, err := Open(context.Background(), Config{
		Dir: dir, ID: "1", Mux: mux, FSM: fsm, LogStore: store,
		Heartbeat: 10 * time.Millisecond, Election: 100 * time.Millisecond,
		SnapshotThreshold: 1 << 30,
		Bootstrap:         []Peer{{ID: "1", Address: l.Addr().String()}},
	})
	if err != nil {
		mux.Close()
		tb.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			tb.Fatal("no leader")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return n, mux
}

func TestApplyRestartReplays(t *testing.T) {
	for _, store := range []string{LogStoreWAL, LogStoreBolt} {
		t.Run(store, func(t *testing.T) {
			dir := t.TempDir()
			f := &countFSM{}
			n, mux := startNode(t, dir, store, f)
			for i := 0; i < 20; i++ {
				if _, _, err := n.Apply(t.Context(), []byte{1}); err != nil {
					t.Fatal(err)
				}
			}
			n.Close()
			mux.Close()

			f2 := &countFSM{}
			n2, mux2 := startNode(t, dir, store, f2)
			defer mux2.Close()
			defer n2.Close()
			if n2.ReadyIndex() == 0 {
				t.Fatal("ReadyIndex is 0 with 20 commands in the log")
			}
			deadline := time.Now().Add(10 * time.Second)
			for f2.n.Load() < 20 {
				if time.Now().After(deadline) {
					t.Fatalf("replayed %d of 20 commands", f2.n.Load())
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

func TestApplyHonoursContext(t *testing.T) {
	f := &countFSM{}
	n, mux := startNode(t, t.TempDir(), LogStoreWAL, f)
	defer mux.Close()
	defer n.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := n.Apply(ctx, []byte{1}); err == nil {
		// A cancelled wait may still have committed; only the error matters.
		t.Log("apply completed before the cancelled context was noticed")
	}
	n.Close()
	if _, _, err := n.Apply(t.Context(), []byte{1}); err != ErrStopped {
		t.Errorf("apply after Close: %v, want ErrStopped", err)
	}
}

func TestTiming(t *testing.T) {
	hb, el, lease := Timing(100*time.Millisecond, time.Second)
	if hb >= time.Second/2 || el < hb || lease > hb {
		t.Errorf("Timing = %v %v %v", hb, el, lease)
	}
	cfg := raft.DefaultConfig()
	cfg.LocalID = "x"
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = Timing(10*time.Millisecond, 50*time.Millisecond)
	if err := raft.ValidateConfig(cfg); err != nil {
		t.Errorf("smallest etcd timing rejected by raft: %v", err)
	}
}

func TestPeerMuxRoutesHTTP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := NewPeerMux([]net.Listener{l}, l.Addr())
	defer mux.Close()
	got := make(chan string, 2)
	go func() {
		c, err := mux.HTTP().Accept()
		if err == nil {
			b := make([]byte, 3)
			io.ReadFull(c, b)
			got <- "http:" + string(b)
		}
	}()
	go func() {
		c, err := mux.Raft().Accept()
		if err == nil {
			b := make([]byte, 1)
			io.ReadFull(c, b)
			got <- fmt.Sprintf("raft:%d", b[0])
		}
	}()
	for _, msg := range [][]byte{[]byte("GET"), {0}} {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(msg)
	}
	seen := map[string]bool{<-got: true, <-got: true}
	if !seen["http:GET"] || !seen["raft:0"] {
		t.Errorf("routed: %v", seen)
	}
}

// BenchmarkLogStore measures committed, fsynced, applied writes per second
// for each log store, with 1 and 64 concurrent proposers. Its numbers chose
// DefaultLogStore (etcd/README.md).
func BenchmarkLogStore(b *testing.B) {
	for _, store := range []string{LogStoreWAL, LogStoreBolt} {
		for _, conc := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/conns=%d", store, conc), func(b *testing.B) {
				f := &countFSM{}
				n, mux := startNode(b, b.TempDir(), store, f)
				defer mux.Close()
				defer n.Close()
				payload := make([]byte, 300)
				payload[0] = 1
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				for g := 0; g < conc; g++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= int64(b.N) {
							if _, _, err := n.Apply(context.Background(), payload); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
			})
		}
	}
}

// TestLogStoreSurvivesTailTruncation: a follower whose uncommitted tail is
// overwritten by a new leader truncates its log ("clearing log suffix").
// raft-wal 0.4.0 then marked the segment sealed without writing its index
// block and could not reopen the log ("sealed segment has no index block",
// hashicorp/raft-wal#31); the torture test hit it after a kill. 0.4.2 fixes
// it. Both stores must reopen and read every entry.
func TestLogStoreSurvivesTailTruncation(t *testing.T) {
	for _, kind := range []string{LogStoreWAL, LogStoreBolt} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			logs, _, err := openLogStore(kind, dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			var batch []*raft.Log
			for i := uint64(1); i <= 10; i++ {
				batch = append(batch, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte{byte(i)}})
			}
			if err := logs.StoreLogs(batch); err != nil {
				t.Fatal(err)
			}
			if err := logs.DeleteRange(9, 10); err != nil { // truncate the tail
				t.Fatal(err)
			}
			if err := logs.StoreLogs([]*raft.Log{{Index: 9, Term: 2, Type: raft.LogCommand, Data: []byte{99}}}); err != nil {
				t.Fatal(err)
			}
			logs.(io.Closer).Close()

			logs, _, err = openLogStore(kind, dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer logs.(io.Closer).Close()
			for i := uint64(1); i <= 9; i++ {
				var l raft.Log
				if err := logs.GetLog(i, &l); err != nil {
					t.Fatalf("GetLog(%d) after reopen: %v", i, err)
				}
			}
			if last, _ := logs.LastIndex(); last != 9 {
				t.Errorf("last index %d, want 9", last)
			}
		})
	}
}

func TestCommitTimeout(t *testing.T) {
	if got := raftConfig(Config{ID: "1"}, nil).CommitTimeout; got != DefaultCommitTimeout {
		t.Errorf("default CommitTimeout = %v, want %v", got, DefaultCommitTimeout)
	}
	if got := raftConfig(Config{ID: "1", CommitTimeout: 20 * time.Millisecond}, nil).CommitTimeout; got != 20*time.Millisecond {
		t.Errorf("CommitTimeout override = %v, want 20ms", got)
	}
	if err := raft.ValidateConfig(raftConfig(Config{ID: "1"}, nil)); err != nil {
		t.Errorf("default config invalid: %v", err)
	}
}
