package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/v2api"
)

// opKeys are the keys random op sequences use: nested, hidden, the root and
// a path that clean() rewrites, so that sequences hit every error path.
var opKeys = []string{"/a", "/a/b", "/a/b/c", "/a/_h", "/a/_h/x", "/b", "/", "/c/d", "/q", "/a/./b/", "/_top"}

// opMachine applies an op sequence decoded from bytes to a store and checks
// invariants after every step: the index never decreases, a successful
// write adds exactly one, a failed one adds nothing, expiry adds one per
// expired node, every watcher sees strictly increasing indexes at or after
// its start, and Save/Recovery round-trips byte for byte.
type opMachine struct {
	t        testing.TB
	s        *Store
	now      time.Time
	data     []byte
	watchers []*opWatcher
}

type opWatcher struct {
	w      *Watcher
	since  uint64
	last   uint64
	closed bool
}

func newOpMachine(t testing.TB, data []byte) *opMachine {
	m := &opMachine{t: t, now: scenarioEpoch, data: data}
	m.s = New(func() time.Time { return m.now })
	return m
}

func (m *opMachine) byte() byte {
	if len(m.data) == 0 {
		return 0
	}
	b := m.data[0]
	m.data = m.data[1:]
	return b
}

func (m *opMachine) key() string { return opKeys[int(m.byte())%len(opKeys)] }
func (m *opMachine) value() string {
	b := m.byte() % 5
	if b == 4 {
		return "bad\xff\xfeutf8"
	}
	return fmt.Sprintf("v%d", b)
}

func (m *opMachine) expiry() Expiry {
	b := m.byte() % 8
	if b < 4 {
		return Expiry{}
	}
	return Expiry{ExpireTime: m.now.Add(time.Duration(b-4) * time.Second)}
}

func (m *opMachine) run() {
	for len(m.data) > 0 {
		m.step()
	}
	m.drain()
	m.roundTrip()
}

// step applies one op and checks the index rule.
func (m *opMachine) step() {
	before := m.s.Index()
	var err error
	write := true
	switch m.byte() % 16 {
	case 0:
		_, err = m.s.Set(m.key(), m.byte()%4 == 0, m.value(), m.expiry())
	case 1:
		_, err = m.s.Create(m.key(), m.byte()%4 == 0, m.value(), false, m.expiry())
	case 2:
		_, err = m.s.Create(m.key(), m.byte()%4 == 0, m.value(), true, m.expiry())
	case 3:
		v := m.value()
		if m.byte()%3 == 0 {
			v = ""
		}
		_, err = m.s.Update(m.key(), v, m.expiry())
	case 4:
		pv := m.value()
		if m.byte()%2 == 0 {
			pv = ""
		}
		_, err = m.s.CompareAndSwap(m.key(), pv, uint64(m.byte())%(before+2), m.value(), m.expiry())
	case 5:
		_, err = m.s.CompareAndDelete(m.key(), m.value(), uint64(m.byte())%(before+2))
	case 6:
		f := m.byte()
		_, err = m.s.Delete(m.key(), f&1 != 0, f&2 != 0)
	case 7:
		write = false
		f := m.byte()
		_, err = m.s.Get(m.key(), f&1 != 0, f&2 != 0)
	case 8:
		write = false
		m.now = m.now.Add(time.Duration(m.byte()%5) * time.Second)
	case 9:
		write = false
		m.s.DeleteExpiredKeys(m.now)
		m.checkExpired(before)
	case 10:
		write = false
		f := m.byte()
		since := uint64(m.byte()) % (before + 3)
		w, werr := m.s.Watch(m.key(), f&1 != 0, f&2 != 0, since)
		if werr != nil {
			if !isCode(werr, v2api.EcodeEventIndexCleared) {
				m.t.Fatalf("watch: unexpected error %v", werr)
			}
			break
		}
		if since == 0 {
			since = before + 1
		}
		m.watchers = append(m.watchers, &opWatcher{w: w, since: since})
	case 11:
		e := m.expiry()
		e.Refresh = true
		switch m.byte() % 3 {
		case 0:
			_, err = m.s.Set(m.key(), false, "", e)
		case 1:
			_, err = m.s.Update(m.key(), "", e)
		default:
			_, err = m.s.CompareAndSwap(m.key(), "", uint64(m.byte())%(before+2), "", e)
		}
	case 12:
		write = false
		if len(m.watchers) > 0 {
			m.watchers[int(m.byte())%len(m.watchers)].w.Remove()
		}
	case 13:
		write = false
		m.drain()
	case 14:
		write = false
		m.roundTrip()
	case 15:
		write = false
		c := m.s.Clone()
		a, _ := m.s.Save()
		b, _ := c.Save()
		if !bytes.Equal(a, b) {
			m.t.Fatalf("Clone().Save() differs from Save()")
		}
	}
	after := m.s.Index()
	if err != nil {
		if _, ok := err.(*v2api.Error); !ok {
			m.t.Fatalf("error is %T, want *v2api.Error: %v", err, err)
		}
		if err.(*v2api.Error).Index != before {
			m.t.Fatalf("error index %d, want %d: %v", err.(*v2api.Error).Index, before, err)
		}
	}
	switch {
	case after < before:
		m.t.Fatalf("index went back from %d to %d", before, after)
	case write && err == nil && after != before+1:
		m.t.Fatalf("successful write moved index from %d to %d", before, after)
	case (!write || err != nil) && after != before && !m.expiredStep(before, after):
		m.t.Fatalf("failed write or read moved index from %d to %d (err %v)", before, after, err)
	}
}

// expiredStep reports whether the indexes between before and after are all
// expire events (the only non-write op that may move the index).
func (m *opMachine) expiredStep(before, after uint64) bool {
	for _, e := range m.s.history.entries() {
		if e.index() > before && e.index() <= after && e.ev.Action != v2api.ActionExpire {
			return false
		}
	}
	return true
}

// checkExpired: nothing due remains and every new event is an expire.
func (m *opMachine) checkExpired(before uint64) {
	if at, ok := m.s.NextExpiry(); ok && !at.After(m.now) {
		m.t.Fatalf("key due at %v survived expiry at %v", at, m.now)
	}
	if !m.expiredStep(before, m.s.Index()) {
		m.t.Fatalf("DeleteExpiredKeys recorded a non-expire event")
	}
}

// drain reads what every watcher holds, checking index order.
func (m *opMachine) drain() {
	for _, ow := range m.watchers {
		for !ow.closed {
			select {
			case e, ok := <-ow.w.EventChan:
				if !ok {
					ow.closed = true
					continue
				}
				idx := e.Node.ModifiedIndex
				if idx < ow.since || idx <= ow.last {
					m.t.Fatalf("watcher since %d got index %d after %d", ow.since, idx, ow.last)
				}
				ow.last = idx
				continue
			default:
			}
			break
		}
	}
}

// roundTrip checks Save → Recovery → Save is byte-identical.
func (m *opMachine) roundTrip() {
	a, err := m.s.Save()
	if err != nil {
		m.t.Fatal(err)
	}
	fresh := New(m.s.now)
	if err := fresh.Recovery(a); err != nil {
		m.t.Fatalf("Recovery of own Save: %v", err)
	}
	b, err := fresh.Save()
	if err != nil {
		m.t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		m.t.Fatalf("Save→Recovery→Save differs:\n%s\n%s", a, b)
	}
	if d1, d2 := dump(m.s), dump(fresh); d1 != d2 {
		m.t.Fatalf("recovered state differs:\n%s\n%s", d1, d2)
	}
}

// dump renders the whole state exactly (%q keeps every byte): nodes, the
// nodes in the TTL heap (sorted), and the history.
func dump(s *Store) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var b bytes.Buffer
	fmt.Fprintf(&b, "index %d\n", s.index)
	s.root.walkSubtree(func(n *node) {
		fmt.Fprintf(&b, "%q dir=%v value=%q c=%d m=%d exp=%v heap=%v\n", n.path, n.dir, n.value,
			n.createdIndex, n.modifiedIndex, n.expiry(), n.heapIndex >= 0)
	})
	if len(s.ttl.nodes) > 0 && s.ttl.top() == nil {
		b.WriteString("broken heap\n")
	}
	for i, n := range s.ttl.nodes {
		if int(n.heapIndex) != i {
			fmt.Fprintf(&b, "heap index of %q is %d, at %d\n", n.path, n.heapIndex, i)
		}
	}
	node := func(n *v2api.Node) string {
		if n == nil {
			return "nil"
		}
		v := "<nil>"
		if n.Value != nil {
			v = fmt.Sprintf("%q", *n.Value)
		}
		e := "<nil>"
		if n.Expiration != nil {
			e = n.Expiration.String()
		}
		return fmt.Sprintf("{%q %s %v %s %d %d %d}", n.Key, v, n.Dir, e, n.TTL, n.ModifiedIndex, n.CreatedIndex)
	}
	for _, e := range s.history.entries() {
		fmt.Fprintf(&b, "ev %v %q %s %s\n", e.refresh, e.ev.Action, node(e.ev.Node), node(e.ev.PrevNode))
	}
	return b.String()
}

// TestDeterminism applies the same random op sequences to two stores and
// requires identical Save bytes and identical states, and that Save
// round-trips through Recovery.
func TestDeterminism(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 42))
		data := make([]byte, 3000)
		for i := range data {
			data[i] = byte(rng.UintN(256))
		}
		m1 := newOpMachine(t, bytes.Clone(data))
		m1.run()
		m2 := newOpMachine(t, bytes.Clone(data))
		m2.run()
		a, _ := m1.s.Save()
		b, _ := m2.s.Save()
		if !bytes.Equal(a, b) {
			t.Fatalf("seed %d: two stores diverged:\n%s\n%s", seed, a, b)
		}
		if d1, d2 := dump(m1.s), dump(m2.s); d1 != d2 {
			t.Fatalf("seed %d: two stores diverged:\n%s\n%s", seed, d1, d2)
		}
		if m1.s.Index() == 0 {
			t.Fatalf("seed %d: nothing applied", seed)
		}
	}
}

// FuzzStoreOps decodes the input into an op sequence (see opMachine.step)
// and checks that nothing panics, the index rules hold and Save/Recovery
// round-trips. Seeds are in testdata/fuzz/FuzzStoreOps.
func FuzzStoreOps(f *testing.F) {
	f.Add([]byte{0, 1, 2, 5, 9, 10, 3, 3, 0, 6, 1, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			data = data[:4096]
		}
		newOpMachine(t, data).run()
	})
}

// FuzzRecovery feeds arbitrary bytes to Recovery: it must fail cleanly or
// produce a state that saves and recovers again identically. Seeds are in
// testdata/fuzz/FuzzRecovery.
func FuzzRecovery(f *testing.F) {
	m := newOpMachine(f, []byte{0, 1, 2, 5, 0, 2, 9, 5, 0, 7, 3, 4, 4, 3, 8, 4, 9, 6, 5, 3, 0, 3, 0, 4, 0})
	m.run()
	good, _ := m.s.Save()
	f.Add(good)
	f.Add([]byte(`{"version":1,"index":0,"nodes":[],"history":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := New(func() time.Time { return scenarioEpoch })
		if err := s.Recovery(data); err != nil {
			return
		}
		a, err := s.Save()
		if err != nil {
			t.Fatal(err)
		}
		s2 := New(nil)
		if err := s2.Recovery(a); err != nil {
			t.Fatalf("Recovery of a recovered state's Save: %v", err)
		}
		b, _ := s2.Save()
		if !bytes.Equal(a, b) {
			t.Fatalf("round trip differs")
		}
		if d1, d2 := dump(s), dump(s2); d1 != d2 {
			t.Fatalf("recovered states differ:\n%s\n%s", d1, d2)
		}
		s.Set("/fuzz/after", false, "x", Expiry{})
		s.DeleteExpiredKeys(scenarioEpoch.Add(time.Hour))
		s.Watch("/", true, true, 1)
	})
}
