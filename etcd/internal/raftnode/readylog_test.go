package raftnode

import (
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

type failingDelete struct {
	raft.LogStore
	err error
}

func (f failingDelete) DeleteRange(min, max uint64) error { return f.err }

// TestReadyLogStopsOnFailedDelete: a log store that cannot delete (raft-wal
// after a failed truncation answers "file exists" forever) stops the member
// instead of leaving a follower that can never accept its leader's entries
// (torture seed 70126).
func TestReadyLogStopsOnFailedDelete(t *testing.T) {
	l := &readyLog{LogStore: failingDelete{LogStore: raft.NewInmemStore(), err: errors.New("open 3185-3.wal: file exists")}}
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("DeleteRange returned after the store failed")
		}
		if msg, _ := r.(string); !strings.Contains(msg, "file exists") || !strings.Contains(msg, "3185-3190") {
			t.Fatalf("panic %v lacks the cause or the range", r)
		}
	}()
	_ = l.DeleteRange(3185, 3190)
}

// TestReadyLogLowersReadyIndexOnSuffixTruncation: a suffix truncation that
// covers the ready index lowers it to just before the truncation; a prefix
// compaction leaves it alone.
func TestReadyLogLowersReadyIndexOnSuffixTruncation(t *testing.T) {
	store := raft.NewInmemStore()
	var logs []*raft.Log
	for i := uint64(1); i <= 10; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand})
	}
	if err := store.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	l := &readyLog{LogStore: store}
	l.ready.Store(9)
	if err := l.DeleteRange(1, 3); err != nil { // compaction
		t.Fatal(err)
	}
	if got := l.ready.Load(); got != 9 {
		t.Fatalf("ready after compaction = %d, want 9", got)
	}
	if err := l.DeleteRange(7, 10); err != nil { // uncommitted tail replaced by a new leader
		t.Fatal(err)
	}
	if got := l.ready.Load(); got != 6 {
		t.Fatalf("ready after suffix truncation = %d, want 6", got)
	}
}
