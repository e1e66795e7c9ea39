// Package fsm is the raft.FSM of an etcd member: it decodes each committed
// log entry (package command), calls exactly one store method, and returns a
// *Result that the proposer receives from its ApplyFuture.
//
// Apply is deterministic: it reads no clock and does no I/O; expiry uses the
// cutoff carried by the Expire command. Snapshot saves the store (a copy made
// under the store's lock) and returns at once; Persist writes that copy;
// Restore decodes into a fresh store and swaps it in, closing the old store's
// watchers. Read FSM.Apply first.
package fsm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/corekit/corekit/etcd/internal/command"
	"github.com/corekit/corekit/etcd/internal/store"
	"github.com/corekit/corekit/internal/v2api"
)

// Result is what Apply returns for every command: the store's event or its
// domain error (*v2api.Error), and the store index after the command.
type Result struct {
	Event *v2api.Event
	Err   error
	// StoreIndex is the store index right after this command (X-Etcd-Index).
	StoreIndex uint64
}

// FSM applies commands to a store. Create it with New.
type FSM struct {
	now     func() time.Time
	log     *slog.Logger
	st      atomic.Pointer[store.Store]
	mem     atomic.Pointer[command.Members]
	applied atomic.Uint64

	mu      sync.Mutex
	waiters map[chan struct{}]uint64
}

// New returns an FSM over an empty store whose reads report TTLs against now.
func New(now func() time.Time, log *slog.Logger) *FSM {
	f := &FSM{now: now, log: log, waiters: map[chan struct{}]uint64{}}
	f.st.Store(store.New(now))
	return f
}

// Store returns the current store. It changes only on Restore; callers should
// not cache it across requests.
func (f *FSM) Store() *store.Store { return f.st.Load() }

// Members returns the replicated member list, nil when none was ever applied.
func (f *FSM) Members() *command.Members { return f.mem.Load() }

// AppliedIndex is the raft index of the last entry applied (or restored).
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// WaitApplied blocks until AppliedIndex() >= idx or ctx ends.
func (f *FSM) WaitApplied(ctx context.Context, idx uint64) error {
	if f.applied.Load() >= idx {
		return nil
	}
	ch := make(chan struct{})
	f.mu.Lock()
	f.waiters[ch] = idx
	f.mu.Unlock()
	if f.applied.Load() >= idx {
		f.mu.Lock()
		delete(f.waiters, ch)
		f.mu.Unlock()
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		delete(f.waiters, ch)
		f.mu.Unlock()
		return ctx.Err()
	}
}

func (f *FSM) setApplied(idx uint64) {
	f.applied.Store(idx)
	f.mu.Lock()
	for ch, want := range f.waiters {
		if want <= idx {
			close(ch)
			delete(f.waiters, ch)
		}
	}
	f.mu.Unlock()
}

// Apply implements raft.FSM. It returns *Result for every command entry. An
// undecodable entry is a corrupted log and panics; an unknown command marked
// command.IgnoreUnknown is skipped (nil result).
func (f *FSM) Apply(l *raft.Log) any {
	defer f.setApplied(l.Index)
	if l.Type != raft.LogCommand {
		return nil
	}
	c, err := command.Decode(l.Data)
	if errors.Is(err, command.ErrIgnored) {
		f.log.Warn("skipping unknown ignorable command", "index", l.Index, "err", err)
		return nil
	}
	if err != nil {
		panic(fmt.Sprintf("fsm: log entry %d: %v", l.Index, err))
	}
	return f.ApplyCommand(c)
}

// ApplyCommand applies one decoded command to the store. It is Apply without
// the raft envelope, for tests and for replay tools.
func (f *FSM) ApplyCommand(c command.Command) *Result {
	st := f.st.Load()
	var ev *v2api.Event
	var err error
	switch c := c.(type) {
	case command.Set:
		ev, err = st.Set(c.Key, c.Dir, c.Value, expiry(c.Expire, c.Refresh))
	case command.Create:
		ev, err = st.Create(c.Key, c.Dir, c.Value, c.Unique, expiry(c.Expire, false))
	case command.Update:
		ev, err = st.Update(c.Key, c.Value, expiry(c.Expire, c.Refresh))
	case command.CompareAndSwap:
		ev, err = st.CompareAndSwap(c.Key, c.PrevValue, c.PrevIndex, c.Value, expiry(c.Expire, c.Refresh))
	case command.Delete:
		ev, err = st.Delete(c.Key, c.Dir, c.Recursive)
	case command.CompareAndDelete:
		ev, err = st.CompareAndDelete(c.Key, c.PrevValue, c.PrevIndex)
	case command.Expire:
		st.DeleteExpiredKeys(command.Time(c.Cutoff))
	case command.Get:
		ev, err = st.Get(c.Key, c.Recursive, c.Sorted)
	case command.Members:
		m := c
		f.mem.Store(&m)
	case command.MemberAttrs:
		f.publish(c)
	default:
		panic(fmt.Sprintf("fsm: no store method for %T", c))
	}
	return &Result{Event: ev, Err: err, StoreIndex: st.Index()}
}

// publish records a member's attributes in a copy of the member list (the
// list is read concurrently without locks).
func (f *FSM) publish(a command.MemberAttrs) {
	var next command.Members
	if cur := f.mem.Load(); cur != nil {
		next.Removed = cur.Removed
		next.Members = append([]command.Member(nil), cur.Members...)
	}
	for i := range next.Members {
		if next.Members[i].ID == a.ID {
			next.Members[i].Name, next.Members[i].ClientURLs = a.Name, a.ClientURLs
			f.mem.Store(&next)
			return
		}
	}
	next.Members = append(next.Members, command.Member{ID: a.ID, Name: a.Name, ClientURLs: a.ClientURLs})
	f.mem.Store(&next)
}

func expiry(ns int64, refresh bool) store.Expiry {
	return store.Expiry{ExpireTime: command.Time(ns), Refresh: refresh}
}

// snapshotHeader precedes the store's Save bytes in a snapshot.
type snapshotHeader struct {
	Format  int              `json:"format"`
	Members *command.Members `json:"members,omitempty"`
}

const snapshotFormat = 1

// Snapshot implements raft.FSM: it saves the store now (raft does not call
// Apply concurrently) and lets Persist write the bytes later.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	data, err := f.st.Load().Save()
	if err != nil {
		return nil, fmt.Errorf("fsm: snapshot: %w", err)
	}
	return &snapshot{hdr: snapshotHeader{Format: snapshotFormat, Members: f.mem.Load()}, data: data}, nil
}

// Restore implements raft.FSM: it replaces the state with a snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 1<<16)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("fsm: restore: header: %w", err)
	}
	var hdr snapshotHeader
	if err := json.Unmarshal(line, &hdr); err != nil {
		return fmt.Errorf("fsm: restore: header: %w", err)
	}
	if hdr.Format != snapshotFormat {
		return fmt.Errorf("fsm: restore: unknown snapshot format %d", hdr.Format)
	}
	data, err := io.ReadAll(br)
	if err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	fresh := store.New(f.now)
	if err := fresh.Recovery(data); err != nil {
		return fmt.Errorf("fsm: restore: %w", err)
	}
	old := f.st.Swap(fresh)
	f.mem.Store(hdr.Members)
	// Close the old store's watchers (clients re-watch on the new store) and
	// let it free its nodes.
	if empty, err := store.New(f.now).Save(); err == nil {
		_ = old.Recovery(empty)
	}
	return nil
}

type snapshot struct {
	hdr  snapshotHeader
	data []byte
}

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	hdr, err := json.Marshal(s.hdr)
	if err == nil {
		var buf bytes.Buffer
		buf.Write(hdr)
		buf.WriteByte('\n')
		if _, err = sink.Write(buf.Bytes()); err == nil {
			_, err = sink.Write(s.data)
		}
	}
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	return sink.Close()
}

// Release drops the saved copy and returns the freed memory to the OS: a
// snapshot briefly doubles the store's footprint, and without this the
// process would keep that peak as resident memory until the scavenger
// catches up.
func (s *snapshot) Release() {
	s.data = nil
	debug.FreeOSMemory()
}
