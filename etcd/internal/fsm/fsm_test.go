package fsm

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/corekit/corekit/etcd/internal/command"
	"github.com/corekit/corekit/internal/logging"
	"github.com/corekit/corekit/internal/v2api"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func clock() time.Time { return t0 }

func entry(t *testing.T, idx uint64, c command.Command) *raft.Log {
	t.Helper()
	b, err := command.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: b}
}

func apply(t *testing.T, f *FSM, idx uint64, c command.Command) *Result {
	t.Helper()
	r, ok := f.Apply(entry(t, idx, c)).(*Result)
	if !ok {
		t.Fatalf("Apply(%T) did not return *Result", c)
	}
	return r
}

func TestApplyDispatch(t *testing.T) {
	f := New(clock, logging.Discard())
	exp := command.UnixNano(t0.Add(10 * time.Second))
	steps := []struct {
		cmd        command.Command
		action     string
		code       int // expected v2 error code, 0 for success
		storeIndex uint64
	}{
		{command.Set{Key: "/a", Value: "1"}, v2api.ActionSet, 0, 1},
		{command.Create{Key: "/a", Value: "2"}, "", v2api.EcodeNodeExist, 1},
		{command.Create{Key: "/q", Value: "job", Unique: true}, v2api.ActionCreate, 0, 2},
		{command.Update{Key: "/a", Value: "3", Expire: exp}, v2api.ActionUpdate, 0, 3},
		{command.CompareAndSwap{Key: "/a", PrevValue: "nope", Value: "4"}, "", v2api.EcodeTestFailed, 3},
		{command.CompareAndSwap{Key: "/a", PrevValue: "3", Value: "4"}, v2api.ActionCompareAndSwap, 0, 4},
		{command.Get{Key: "/a"}, v2api.ActionGet, 0, 4},
		{command.Set{Key: "/ttl", Value: "x", Expire: exp}, v2api.ActionSet, 0, 5},
		{command.Expire{Cutoff: command.UnixNano(t0.Add(9 * time.Second))}, "", 0, 5},
		{command.Expire{Cutoff: exp}, "", 0, 6},
		{command.CompareAndDelete{Key: "/a", PrevIndex: 4}, v2api.ActionCompareAndDelete, 0, 7},
		{command.Delete{Key: "/q", Dir: true, Recursive: true}, v2api.ActionDelete, 0, 8},
	}
	for i, s := range steps {
		r := apply(t, f, uint64(i+10), s.cmd)
		var ve *v2api.Error
		switch {
		case s.code != 0:
			if !errors.As(r.Err, &ve) || ve.ErrorCode != s.code {
				t.Errorf("step %d %T: err %v, want code %d", i, s.cmd, r.Err, s.code)
			}
		case r.Err != nil:
			t.Errorf("step %d %T: %v", i, s.cmd, r.Err)
		case s.action != "" && (r.Event == nil || r.Event.Action != s.action):
			t.Errorf("step %d %T: event %+v, want action %s", i, s.cmd, r.Event, s.action)
		}
		if r.StoreIndex != s.storeIndex {
			t.Errorf("step %d %T: store index %d, want %d", i, s.cmd, r.StoreIndex, s.storeIndex)
		}
		if f.AppliedIndex() != uint64(i+10) {
			t.Errorf("applied index %d, want %d (raft index, not store index)", f.AppliedIndex(), i+10)
		}
	}
	if _, err := f.Store().Get("/ttl", false, false); err == nil {
		t.Error("/ttl survived an expire command whose cutoff reached its expiry")
	}
}

func TestApplySkipsIgnorableUnknownAndNonCommands(t *testing.T) {
	f := New(clock, logging.Discard())
	if r := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: []byte{0xC2, '{', '}'}}); r != nil {
		t.Errorf("ignorable unknown command returned %v", r)
	}
	if r := f.Apply(&raft.Log{Index: 2, Type: raft.LogNoop}); r != nil {
		t.Errorf("noop returned %v", r)
	}
	if f.AppliedIndex() != 2 || f.Store().Index() != 0 {
		t.Errorf("applied %d store %d", f.AppliedIndex(), f.Store().Index())
	}
	defer func() {
		if recover() == nil {
			t.Error("unknown non-ignorable command did not panic")
		}
	}()
	f.Apply(&raft.Log{Index: 3, Type: raft.LogCommand, Data: []byte{0x42, '{', '}'}})
}

type sink struct {
	bytes.Buffer
	cancelled, closed bool
}

func (s *sink) ID() string    { return "test" }
func (s *sink) Cancel() error { s.cancelled = true; return nil }
func (s *sink) Close() error  { s.closed = true; return nil }

func TestSnapshotRestore(t *testing.T) {
	f := New(clock, logging.Discard())
	apply(t, f, 1, command.Set{Key: "/dir/a", Value: "1"})
	apply(t, f, 2, command.Set{Key: "/dir/b", Value: "2", Expire: command.UnixNano(t0.Add(time.Hour))})
	apply(t, f, 3, command.Members{Members: []command.Member{{ID: 1, Name: "m1", PeerURLs: []string{"http://a:1"}}}})

	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes after Snapshot must not leak into the persisted copy.
	apply(t, f, 4, command.Set{Key: "/dir/c", Value: "3"})
	var s sink
	if err := snap.Persist(&s); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if !s.closed || s.cancelled {
		t.Fatalf("sink closed=%v cancelled=%v", s.closed, s.cancelled)
	}

	g := New(clock, logging.Discard())
	apply(t, g, 1, command.Set{Key: "/other", Value: "x"})
	old := g.Store()
	w, err := old.Watch("/other", false, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Restore(io.NopCloser(bytes.NewReader(s.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if g.Store() == old {
		t.Error("Restore did not swap in a fresh store")
	}
	select {
	case _, ok := <-w.EventChan:
		if ok {
			t.Error("watcher on the replaced store got an event instead of being closed")
		}
	case <-time.After(5 * time.Second):
		t.Error("watcher on the replaced store was not closed")
	}
	ev, err := g.Store().Get("/dir", true, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Node.Nodes) != 2 || ev.Node.Nodes[0].StringValue() != "1" || ev.Node.Nodes[1].Expiration == nil {
		t.Errorf("restored /dir = %+v", ev.Node)
	}
	if g.Store().Index() != 2 {
		t.Errorf("restored store index %d, want 2", g.Store().Index())
	}
	if m := g.Members(); m == nil || len(m.Members) != 1 || m.Members[0].Name != "m1" {
		t.Errorf("restored members %+v", m)
	}
	if err := g.Restore(io.NopCloser(bytes.NewReader([]byte("garbage\n")))); err == nil {
		t.Error("restoring garbage succeeded")
	}
}

func TestWaitApplied(t *testing.T) {
	f := New(clock, logging.Discard())
	done := make(chan error, 1)
	go func() { done <- f.WaitApplied(t.Context(), 2) }()
	apply(t, f, 1, command.Set{Key: "/a"})
	select {
	case err := <-done:
		t.Fatalf("returned before index 2 was applied: %v", err)
	default:
	}
	apply(t, f, 2, command.Set{Key: "/b"})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
