package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/v2api"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestStore(t *testing.T) (*Store, *fakeClock) {
	t.Helper()
	c := &fakeClock{t: scenarioEpoch}
	return New(c.now), c
}

// must(t)(s.Op(...)) fails the test on an error and returns the event.
func must(t *testing.T) func(*v2api.Event, error) *v2api.Event {
	return func(e *v2api.Event, err error) *v2api.Event {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return e
	}
}

func asError(t *testing.T, err error) *v2api.Error {
	t.Helper()
	var ve *v2api.Error
	if !errors.As(err, &ve) {
		t.Fatalf("want *v2api.Error, got %T %v", err, err)
	}
	return ve
}

// TestErrors covers every error the store returns, with etcd's cause
// strings and the current index.
func TestErrors(t *testing.T) {
	setup := func(t *testing.T) *Store {
		s, _ := newTestStore(t)
		must(t)(s.Set("/dir/file", false, "val", Expiry{}))
		must(t)(s.Create("/empty", true, "", false, Expiry{}))
		return s // index 2
	}
	cases := []struct {
		name  string
		op    func(s *Store) error
		code  int
		cause string
	}{
		{"get missing", func(s *Store) error { _, err := s.Get("/nope", false, false); return err }, 100, "/nope"},
		{"get first missing component", func(s *Store) error { _, err := s.Get("/x/y/z", false, false); return err }, 100, "/x"},
		{"get missing under dir", func(s *Store) error { _, err := s.Get("/dir/x/y", false, false); return err }, 100, "/dir/x"},
		{"get below file", func(s *Store) error { _, err := s.Get("/dir/file/x", false, false); return err }, 104, "/dir/file"},
		{"update missing", func(s *Store) error { _, err := s.Update("/nope", "v", Expiry{}); return err }, 100, "/nope"},
		{"cas missing", func(s *Store) error { _, err := s.CompareAndSwap("/nope", "a", 0, "v", Expiry{}); return err }, 100, "/nope"},
		{"cad missing", func(s *Store) error { _, err := s.CompareAndDelete("/nope", "a", 0); return err }, 100, "/nope"},
		{"delete missing", func(s *Store) error { _, err := s.Delete("/nope", false, false); return err }, 100, "/nope"},
		{"refresh set missing", func(s *Store) error { _, err := s.Set("/nope", false, "", Expiry{Refresh: true}); return err }, 100, "/nope"},
		{"cas value", func(s *Store) error { _, err := s.CompareAndSwap("/dir/file", "x", 0, "v", Expiry{}); return err }, 101, "[x != val]"},
		{"cas index", func(s *Store) error { _, err := s.CompareAndSwap("/dir/file", "", 7, "v", Expiry{}); return err }, 101, "[7 != 1]"},
		{"cas both", func(s *Store) error { _, err := s.CompareAndSwap("/dir/file", "x", 7, "v", Expiry{}); return err }, 101, "[x != val] [7 != 1]"},
		{"cad value", func(s *Store) error { _, err := s.CompareAndDelete("/dir/file", "x", 0); return err }, 101, "[x != val]"},
		{"cad index", func(s *Store) error { _, err := s.CompareAndDelete("/dir/file", "", 7); return err }, 101, "[7 != 1]"},
		{"cad both", func(s *Store) error { _, err := s.CompareAndDelete("/dir/file", "x", 7); return err }, 101, "[x != val] [7 != 1]"},
		{"set on dir", func(s *Store) error { _, err := s.Set("/dir", false, "v", Expiry{}); return err }, 102, "/dir"},
		{"setdir on dir", func(s *Store) error { _, err := s.Set("/dir", true, "", Expiry{}); return err }, 102, "/dir"},
		{"update dir with value", func(s *Store) error { _, err := s.Update("/dir", "v", Expiry{}); return err }, 102, "/dir"},
		{"cas dir", func(s *Store) error { _, err := s.CompareAndSwap("/dir", "", 1, "v", Expiry{}); return err }, 102, "/dir"},
		{"cad dir", func(s *Store) error { _, err := s.CompareAndDelete("/dir", "", 1); return err }, 102, "/dir"},
		{"cad root", func(s *Store) error { _, err := s.CompareAndDelete("/", "x", 0); return err }, 102, ""},
		{"delete dir without dir", func(s *Store) error { _, err := s.Delete("/empty", false, false); return err }, 102, "/empty"},
		{"set below file", func(s *Store) error { _, err := s.Set("/dir/file/x", false, "v", Expiry{}); return err }, 104, "/dir/file"},
		{"create below file", func(s *Store) error { _, err := s.Create("/dir/file/x/y", false, "v", false, Expiry{}); return err }, 104, "/dir/file"},
		{"post to file", func(s *Store) error { _, err := s.Create("/dir/file", false, "v", true, Expiry{}); return err }, 104, "/dir/file"},
		{"delete below file", func(s *Store) error { _, err := s.Delete("/dir/file/x", false, false); return err }, 104, "/dir/file"},
		{"create existing file", func(s *Store) error { _, err := s.Create("/dir/file", false, "v", false, Expiry{}); return err }, 105, "/dir/file"},
		{"create existing dir", func(s *Store) error { _, err := s.Create("/dir", true, "", false, Expiry{}); return err }, 105, "/dir"},
		{"set root", func(s *Store) error { _, err := s.Set("/", false, "v", Expiry{}); return err }, 107, "/"},
		{"set root empty path", func(s *Store) error { _, err := s.Set("", true, "", Expiry{}); return err }, 107, "/"},
		{"create root", func(s *Store) error { _, err := s.Create("/", true, "", false, Expiry{}); return err }, 107, "/"},
		{"update root", func(s *Store) error { _, err := s.Update("/", "", Expiry{}); return err }, 107, "/"},
		{"cas root", func(s *Store) error { _, err := s.CompareAndSwap("/", "a", 0, "b", Expiry{}); return err }, 107, "/"},
		{"delete root", func(s *Store) error { _, err := s.Delete("/", true, true); return err }, 107, "/"},
		{"delete root dotted", func(s *Store) error { _, err := s.Delete("/a/..", true, true); return err }, 107, "/"},
		{"delete non-empty dir", func(s *Store) error { _, err := s.Delete("/dir", true, false); return err }, 108, "/dir"},
		{"watch cleared", func(s *Store) error {
			for i := range historySize + 5 {
				if _, err := s.Set("/k", false, fmt.Sprint(i), Expiry{}); err != nil {
					return err
				}
			}
			_, err := s.Watch("/k", false, false, 3)
			return err
		}, 401, "the requested history has been cleared [8/3]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := setup(t)
			err := tc.op(s)
			if err == nil {
				t.Fatal("no error")
			}
			ve := asError(t, err)
			if ve.ErrorCode != tc.code || ve.Cause != tc.cause || ve.Message != v2api.Message(tc.code) {
				t.Fatalf("got %d %q %q, want %d %q", ve.ErrorCode, ve.Message, ve.Cause, tc.code, tc.cause)
			}
			if ve.Index != s.Index() {
				t.Fatalf("error index %d, store index %d", ve.Index, s.Index())
			}
			if tc.code != 401 && s.Index() != 2 {
				t.Fatalf("failed op moved the index to %d", s.Index())
			}
		})
	}
}

// TestIndexRules: one index per successful mutation, stamped on the node;
// auto-created parents share it; set resets createdIndex, update/CAS keep it.
func TestIndexRules(t *testing.T) {
	s, _ := newTestStore(t)
	e := must(t)(s.Set("/a/b/c", false, "1", Expiry{}))
	if e.Node.CreatedIndex != 1 || e.Node.ModifiedIndex != 1 || e.Action != "set" || e.PrevNode != nil {
		t.Fatalf("first set: %+v", e)
	}
	for _, dir := range []string{"/a", "/a/b"} {
		g := must(t)(s.Get(dir, false, false))
		if g.Node.CreatedIndex != 1 || g.Node.ModifiedIndex != 1 || !g.Node.Dir {
			t.Fatalf("auto-created %s: %+v", dir, g.Node)
		}
	}
	if got := len(s.history.entries()); got != 1 {
		t.Fatalf("auto-created dirs recorded events: %d events", got)
	}
	e = must(t)(s.Set("/a/b/c", false, "2", Expiry{}))
	if e.Node.CreatedIndex != 2 || e.PrevNode.CreatedIndex != 1 || e.PrevNode.StringValue() != "1" {
		t.Fatalf("set should replace: %+v %+v", e.Node, e.PrevNode)
	}
	e = must(t)(s.Update("/a/b/c", "3", Expiry{}))
	if e.Node.CreatedIndex != 2 || e.Node.ModifiedIndex != 3 {
		t.Fatalf("update: %+v", e.Node)
	}
	e = must(t)(s.CompareAndSwap("/a/b/c", "3", 3, "4", Expiry{}))
	if e.Node.CreatedIndex != 2 || e.Node.ModifiedIndex != 4 {
		t.Fatalf("cas: %+v", e.Node)
	}
	e = must(t)(s.Delete("/a", true, true))
	if e.Node.ModifiedIndex != 5 || e.Node.CreatedIndex != 1 || e.Node.Value != nil || !e.Node.Dir {
		t.Fatalf("delete: %+v", e.Node)
	}
	if s.Index() != 5 {
		t.Fatalf("index %d", s.Index())
	}
}

// TestTTLRendering: ttl is the ceiling of the remaining seconds, omitted at
// zero, negative when overdue; expiration is UTC.
func TestTTLRendering(t *testing.T) {
	cases := []struct {
		after time.Duration
		ttl   int64
	}{
		{0, 5}, {1, 5}, {time.Second, 4}, {1800 * time.Millisecond, 4}, {4*time.Second + 999*time.Millisecond, 1},
		{5 * time.Second, 0}, {5*time.Second + 1, 0}, {6 * time.Second, -1}, {7*time.Second + 500*time.Millisecond, -2},
	}
	for _, tc := range cases {
		t.Run(tc.after.String(), func(t *testing.T) {
			s, c := newTestStore(t)
			local := time.FixedZone("X", 3600)
			must(t)(s.Set("/k", false, "v", Expiry{ExpireTime: c.t.Add(5 * time.Second).In(local)}))
			c.t = c.t.Add(tc.after)
			e := must(t)(s.Get("/k", false, false))
			if e.Node.TTL != tc.ttl {
				t.Fatalf("ttl %d, want %d", e.Node.TTL, tc.ttl)
			}
			if e.Node.Expiration == nil || e.Node.Expiration.Location() != time.UTC {
				t.Fatalf("expiration %v not UTC", e.Node.Expiration)
			}
			b, _ := json.Marshal(e.Node)
			if (tc.ttl == 0) == strings.Contains(string(b), `"ttl"`) {
				t.Fatalf("ttl %d rendered as %s", tc.ttl, b)
			}
		})
	}
}

// TestPermanentBefore2000: expiry times before 2000 (and the zero time) mean
// permanent, for every write.
func TestPermanentBefore2000(t *testing.T) {
	s, _ := newTestStore(t)
	old := Expiry{ExpireTime: time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)}
	must(t)(s.Set("/a", false, "v", old))
	must(t)(s.Create("/b", false, "v", false, old))
	must(t)(s.Update("/a", "w", old))
	must(t)(s.CompareAndSwap("/b", "v", 0, "w", old))
	if _, ok := s.NextExpiry(); ok {
		t.Fatal("a pre-2000 expiry was kept")
	}
}

// TestUpdateDropsTTL: update and CAS without expiry make a node permanent.
func TestUpdateDropsTTL(t *testing.T) {
	s, c := newTestStore(t)
	exp := Expiry{ExpireTime: c.t.Add(time.Minute)}
	must(t)(s.Set("/a", false, "v", exp))
	must(t)(s.Set("/b", false, "v", exp))
	must(t)(s.Update("/a", "w", Expiry{}))
	must(t)(s.CompareAndSwap("/b", "v", 0, "w", Expiry{}))
	s.DeleteExpiredKeys(c.t.Add(time.Hour))
	for _, k := range []string{"/a", "/b"} {
		if e := must(t)(s.Get(k, false, false)); e.Node.Expiration != nil {
			t.Fatalf("%s kept its TTL", k)
		}
	}
}

// TestHiddenListing: hidden nodes are left out of listings at any depth but
// readable directly.
func TestHiddenListing(t *testing.T) {
	s, _ := newTestStore(t)
	for _, k := range []string{"/d/_h", "/d/v", "/d/sub/_x", "/d/sub/y", "/_top/z"} {
		must(t)(s.Set(k, false, k, Expiry{}))
	}
	e := must(t)(s.Get("/", true, true))
	b, _ := json.Marshal(e)
	want := `{"action":"get","node":{"dir":true,"nodes":[{"key":"/d","dir":true,"nodes":[{"key":"/d/sub","dir":true,"nodes":[{"key":"/d/sub/y","value":"/d/sub/y","modifiedIndex":4,"createdIndex":4}],"modifiedIndex":3,"createdIndex":3},{"key":"/d/v","value":"/d/v","modifiedIndex":2,"createdIndex":2}],"modifiedIndex":1,"createdIndex":1}]}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	if e := must(t)(s.Get("/d/_h", false, false)); e.Node.StringValue() != "/d/_h" {
		t.Fatalf("hidden key not readable: %+v", e.Node)
	}
	if e := must(t)(s.Get("/_top", false, false)); len(e.Node.Nodes) != 1 {
		t.Fatalf("hidden dir's own listing: %+v", e.Node)
	}
}

// TestListingNonRecursive: one level, child dirs without nodes; empty dirs
// have no nodes field.
func TestListingNonRecursive(t *testing.T) {
	s, _ := newTestStore(t)
	must(t)(s.Set("/d/sub/x", false, "1", Expiry{}))
	must(t)(s.Create("/d/empty", true, "", false, Expiry{}))
	e := must(t)(s.Get("/d", false, false))
	if len(e.Node.Nodes) != 2 || e.Node.Nodes[0].Key != "/d/empty" || e.Node.Nodes[1].Nodes != nil {
		t.Fatalf("listing: %+v", e.Node.Nodes)
	}
	b, _ := json.Marshal(must(t)(s.Get("/d/empty", true, true)))
	if want := `{"action":"get","node":{"key":"/d/empty","dir":true,"modifiedIndex":2,"createdIndex":2}}`; string(b) != want {
		t.Fatalf("got %s", b)
	}
}

// TestInOrderNames: POST names are the new index zero-padded to 20 digits.
func TestInOrderNames(t *testing.T) {
	s, _ := newTestStore(t)
	for i := range 12 {
		must(t)(s.Set(fmt.Sprintf("/filler%d", i), false, "", Expiry{}))
	}
	e := must(t)(s.Create("/q", false, "job", true, Expiry{}))
	if e.Node.Key != "/q/00000000000000000013" || e.Action != "create" {
		t.Fatalf("got %+v", e.Node)
	}
	e = must(t)(s.Create("/q/", true, "", true, Expiry{}))
	if e.Node.Key != "/q/00000000000000000014" || !e.Node.Dir {
		t.Fatalf("got %+v", e.Node)
	}
}

// TestRefresh: refresh keeps the value, bumps the index, is recorded but
// invisible to live watchers and history scans.
func TestRefresh(t *testing.T) {
	s, c := newTestStore(t)
	must(t)(s.Set("/k", false, "v", Expiry{ExpireTime: c.t.Add(5 * time.Second)}))
	w, err := s.Watch("/k", false, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	e := must(t)(s.Update("/k", "", Expiry{ExpireTime: c.t.Add(10 * time.Second), Refresh: true}))
	if e.Node.StringValue() != "v" || e.Node.ModifiedIndex != 2 || e.Node.TTL != 10 {
		t.Fatalf("refresh: %+v", e.Node)
	}
	select {
	case ev := <-w.EventChan:
		t.Fatalf("live watcher got refresh %+v", ev)
	default:
	}
	if h, _ := s.Watch("/k", false, false, 2); len(h.EventChan) != 0 {
		t.Fatal("history scan returned a refresh")
	}
	if !s.history.at(1).refresh {
		t.Fatal("refresh not marked in history")
	}
	w.Remove()
}

// TestWatchStartIndexAndCount: StartIndex is the index at registration;
// Stats counts live watchers only.
func TestWatchStartIndexAndCount(t *testing.T) {
	s, _ := newTestStore(t)
	must(t)(s.Set("/a", false, "1", Expiry{}))
	w1, _ := s.Watch("/a", false, false, 0)
	w2, _ := s.Watch("/a", true, true, 0)
	w3, _ := s.Watch("/a", false, false, 1) // history hit: not registered
	if w1.StartIndex != 1 || w3.StartIndex != 1 {
		t.Fatalf("start indexes %d %d", w1.StartIndex, w3.StartIndex)
	}
	if got := s.Stats().Watchers; got != 2 {
		t.Fatalf("watchers %d, want 2", got)
	}
	must(t)(s.Set("/a", false, "2", Expiry{}))
	if got := s.Stats().Watchers; got != 1 {
		t.Fatalf("after firing: watchers %d, want 1 (the stream)", got)
	}
	w2.Remove()
	w2.Remove()
	w1.Remove()
	if got := s.Stats().Watchers; got != 0 {
		t.Fatalf("after remove: watchers %d", got)
	}
}

// TestJSONStatsFieldOrder: the exact body shape, no trailing newline.
func TestJSONStatsFieldOrder(t *testing.T) {
	s, _ := newTestStore(t)
	must(t)(s.Set("/a", false, "1", Expiry{}))
	s.Get("/nope", false, false)
	want := `{"getsSuccess":0,"getsFail":1,"setsSuccess":1,"setsFail":0,"deleteSuccess":0,"deleteFail":0,"updateSuccess":0,"updateFail":0,"createSuccess":0,"createFail":0,"compareAndSwapSuccess":0,"compareAndSwapFail":0,"compareAndDeleteSuccess":0,"compareAndDeleteFail":0,"expireCount":0,"watchers":0}`
	if got := string(s.JSONStats()); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// TestReturnedEventsAreCopies: mutating a returned event does not change the
// store, its history or what watchers receive.
func TestReturnedEventsAreCopies(t *testing.T) {
	s, _ := newTestStore(t)
	e := must(t)(s.Set("/a", false, "1", Expiry{}))
	*e.Node.Value = "changed"
	e.Node.Key = "/other"
	h, _ := s.Watch("/a", false, false, 1)
	got := <-h.EventChan
	if got.Node.Key != "/a" || got.Node.StringValue() != "1" {
		t.Fatalf("history corrupted: %+v", got.Node)
	}
	if g := must(t)(s.Get("/a", false, false)); g.Node.StringValue() != "1" {
		t.Fatal("store corrupted")
	}
}

// TestRecoveryRejectsBadState: bad snapshots fail and leave the store alone.
func TestRecoveryRejectsBadState(t *testing.T) {
	bad := []string{
		``, `{}`, `{"version":2,"index":0,"nodes":[],"history":[]}`,
		`{"version":1,"index":1,"nodes":[{"key":"/a/b","createdIndex":1,"modifiedIndex":1}],"history":[]}`,
		`{"version":1,"index":1,"nodes":[{"key":"a","createdIndex":1,"modifiedIndex":1}],"history":[]}`,
		`{"version":1,"index":1,"nodes":[{"key":"/a","createdIndex":9,"modifiedIndex":1}],"history":[]}`,
		`{"version":1,"index":1,"nodes":[{"key":"/a","dir":true,"value":"x","createdIndex":1,"modifiedIndex":1}],"history":[]}`,
		`{"version":1,"index":1,"nodes":[],"history":[{"action":"set"}]}`,
		`{"version":1,"index":1,"nodes":[],"history":[{"action":"set","node":{"key":"/a","modifiedIndex":3}}]}`,
		`{"version":1,"index":1,"nodes":[{"key":{"base64":"!"},"createdIndex":1,"modifiedIndex":1}],"history":[]}`,
		`{"version":1,"index":0,"nodes":[],"history":[],"extra":1}`,
	}
	for _, b := range bad {
		s, _ := newTestStore(t)
		must(t)(s.Set("/keep", false, "1", Expiry{}))
		if err := s.Recovery([]byte(b)); err == nil {
			t.Errorf("Recovery(%s) succeeded", b)
		}
		if _, err := s.Get("/keep", false, false); err != nil || s.Index() != 1 {
			t.Errorf("Recovery(%s) changed the store", b)
		}
	}
}

// TestCloneIndependent: a clone saves like the original and does not see
// later writes.
func TestCloneIndependent(t *testing.T) {
	s, c := newTestStore(t)
	must(t)(s.Set("/a/b", false, "1", Expiry{ExpireTime: c.t.Add(time.Second)}))
	cl := s.Clone()
	a, _ := s.Save()
	b, _ := cl.Save()
	if string(a) != string(b) {
		t.Fatal("clone saves differently")
	}
	must(t)(s.Set("/a/c", false, "2", Expiry{}))
	s.DeleteExpiredKeys(c.t.Add(time.Hour))
	if _, err := cl.Get("/a/b", false, false); err != nil {
		t.Fatal("clone lost /a/b")
	}
	if _, err := cl.Get("/a/c", false, false); err == nil {
		t.Fatal("clone saw a later write")
	}
	cl.DeleteExpiredKeys(c.t.Add(time.Hour))
	if _, err := cl.Get("/a/b", false, false); err == nil {
		t.Fatal("clone's TTL heap lost /a/b")
	}
}

// TestConcurrentUse runs reads, writes, watches and removes at once (meant
// for -race).
func TestConcurrentUse(t *testing.T) {
	s, _ := newTestStore(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				key := fmt.Sprintf("/k%d", i%7)
				switch g {
				case 0:
					s.Set(key, false, "v", Expiry{})
				case 1:
					s.Get("/", true, true)
					s.JSONStats()
				case 2:
					w, err := s.Watch("/", true, i%2 == 0, 0)
					if err == nil {
						w.Remove()
					}
				case 3:
					s.Delete(key, false, false)
					if i%50 == 0 {
						s.Clone().Save()
					}
				}
			}
		})
	}
	wg.Wait()
}

// TestHistoryTTL: a history scan returns the event as it was applied (ttl
// computed then, as etcd stores it); after a snapshot round trip, where no
// clock-dependent value is saved, the ttl is computed at delivery.
func TestHistoryTTL(t *testing.T) {
	s, c := newTestStore(t)
	must(t)(s.Set("/k", false, "v", Expiry{ExpireTime: c.t.Add(5 * time.Second)}))
	c.t = c.t.Add(2 * time.Second)
	w, err := s.Watch("/k", false, false, 1)
	if err != nil {
		t.Fatal(err)
	}
	if e := <-w.EventChan; e.Node.TTL != 5 {
		t.Fatalf("history ttl %d, want 5 (apply time)", e.Node.TTL)
	}
	b, _ := s.Save()
	if strings.Contains(string(b), `"ttl"`) {
		t.Fatalf("snapshot contains a clock-dependent ttl: %s", b)
	}
	r := New(c.now)
	if err := r.Recovery(b); err != nil {
		t.Fatal(err)
	}
	w, _ = r.Watch("/k", false, false, 1)
	if e := <-w.EventChan; e.Node.TTL != 3 {
		t.Fatalf("restored history ttl %d, want 3", e.Node.TTL)
	}
}

func benchStore(b *testing.B, n int) *Store {
	s := New(func() time.Time { return scenarioEpoch })
	for i := range n {
		if _, err := s.Set(fmt.Sprintf("/dir%d/key%d", i%100, i), false, "value", Expiry{}); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func BenchmarkGet(b *testing.B) {
	s := benchStore(b, 10000)
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Get(fmt.Sprintf("/dir%d/key%d", i%100, i%10000), false, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetDirListing(b *testing.B) {
	s := benchStore(b, 10000) // 100 keys per dir
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Get(fmt.Sprintf("/dir%d", i%100), true, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSet(b *testing.B) {
	s := benchStore(b, 10000)
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Set(fmt.Sprintf("/dir%d/key%d", i%100, i%10000), false, "value", Expiry{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSetWithWatchers(b *testing.B) {
	s := benchStore(b, 1000)
	for i := range 100 {
		if _, err := s.Watch(fmt.Sprintf("/dir%d", i), true, true, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		// keys outside the watched dirs: measures matching, not delivery
		if _, err := s.Set(fmt.Sprintf("/other/key%d", i%1000), false, "value", Expiry{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSnapshotArbitraryBytes: keys and values that are not UTF-8 survive a
// snapshot byte for byte (plain JSON would replace them with U+FFFD).
func TestSnapshotArbitraryBytes(t *testing.T) {
	s, _ := newTestStore(t)
	key, val := "/k\xff\xfe/x", "v\x00\xc3(<&>"
	must(t)(s.Set(key, false, val, Expiry{}))
	b, err := s.Save()
	if err != nil {
		t.Fatal(err)
	}
	r := New(nil)
	if err := r.Recovery(b); err != nil {
		t.Fatal(err)
	}
	if got := must(t)(r.Get(key, false, false)).Node.StringValue(); got != val {
		t.Fatalf("value %q, want %q", got, val)
	}
	w, _ := r.Watch(key, false, false, 1)
	if e := <-w.EventChan; e.Node.Key != key || e.Node.StringValue() != val {
		t.Fatalf("history event %q %q", e.Node.Key, e.Node.StringValue())
	}
}

// TestRecoverySeedIsValid keeps the FuzzRecovery seed meaningful: it must
// decode, with a refresh event and a non-UTF-8 value.
func TestRecoverySeedIsValid(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzRecovery", "valid"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(b), "\n", 3)
	quoted := strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")")
	state, err := strconv.Unquote(quoted)
	if err != nil {
		t.Fatal(err)
	}
	s := New(func() time.Time { return scenarioEpoch })
	if err := s.Recovery([]byte(state)); err != nil {
		t.Fatal(err)
	}
	if v := must(t)(s.Get("/a/b", false, false)).Node.StringValue(); v != "\xff" {
		t.Fatalf("value %q", v)
	}
	if !s.history.at(1).refresh || s.Index() != 3 {
		t.Fatal("history not restored")
	}
}

// BenchmarkWake1000 registers 1,000 long-poll watchers on one key and
// measures the set that wakes them all (the store's part of the bench's
// watch row).
func BenchmarkWake1000(b *testing.B) {
	s := New(func() time.Time { return scenarioEpoch })
	b.ReportAllocs()
	for range b.N {
		b.StopTimer()
		ws := make([]*Watcher, 1000)
		for i := range ws {
			w, err := s.Watch("/watched", false, false, 0)
			if err != nil {
				b.Fatal(err)
			}
			ws[i] = w
		}
		b.StartTimer()
		if _, err := s.Set("/watched", false, "go", Expiry{}); err != nil {
			b.Fatal(err)
		}
		for _, w := range ws {
			if e := <-w.EventChan; e == nil {
				b.Fatal("no event")
			}
			w.Remove()
		}
	}
}
