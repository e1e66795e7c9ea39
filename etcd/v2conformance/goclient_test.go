package v2conformance

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
	etcdclient "go.etcd.io/etcd/client/v2"
)

// TestGoClient drives both servers with the official Go v2 client.
func TestGoClient(t *testing.T) {
	etcdtest.ForEach(t, testGoClient)
}

func testGoClient(t *testing.T, s *etcdtest.Server) {
	settle(t, s)
	cl, err := etcdclient.New(etcdclient.Config{Endpoints: []string{s.ClientURL}, HeaderTimeoutPerRequest: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := cl.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if eps := cl.Endpoints(); len(eps) != 1 || eps[0] != s.ClientURL {
		t.Errorf("endpoints after sync %v", eps)
	}
	kapi := etcdclient.NewKeysAPI(cl)

	set, err := kapi.Set(ctx, "/gc/k", "v1", nil)
	if err != nil || set.Action != "set" || set.Node.Value != "v1" || set.Index != set.Node.ModifiedIndex {
		t.Fatalf("Set: %+v %v", set, err)
	}
	get, err := kapi.Get(ctx, "/gc/k", nil)
	if err != nil || get.Node.Value != "v1" || get.Node.ModifiedIndex != set.Node.ModifiedIndex {
		t.Fatalf("Get: %+v %v", get, err)
	}
	if _, err := kapi.Create(ctx, "/gc/k", "x"); !isCode(err, etcdclient.ErrorCodeNodeExist) {
		t.Errorf("Create existing: %v, want 105", err)
	}
	cr, err := kapi.Create(ctx, "/gc/new", "n")
	if err != nil || cr.Action != "create" {
		t.Errorf("Create: %+v %v", cr, err)
	}
	cas, err := kapi.Set(ctx, "/gc/k", "v2", &etcdclient.SetOptions{PrevValue: "v1", PrevIndex: set.Node.ModifiedIndex})
	if err != nil || cas.Action != "compareAndSwap" || cas.PrevNode == nil || cas.PrevNode.Value != "v1" {
		t.Errorf("CAS: %+v %v", cas, err)
	}
	if _, err := kapi.Set(ctx, "/gc/k", "v3", &etcdclient.SetOptions{PrevValue: "nope"}); !isCode(err, etcdclient.ErrorCodeTestFailed) {
		t.Errorf("failed CAS: %v, want 101", err)
	}
	up, err := kapi.Update(ctx, "/gc/k", "v4")
	if err != nil || up.Action != "update" {
		t.Errorf("Update: %+v %v", up, err)
	}
	ttl, err := kapi.Set(ctx, "/gc/t", "t", &etcdclient.SetOptions{TTL: 10 * time.Second})
	if err != nil || ttl.Node.TTL != 10 || ttl.Node.Expiration == nil {
		t.Errorf("Set TTL: %+v %v", ttl, err)
	}
	if _, err := kapi.Set(ctx, "/gc/dir", "", &etcdclient.SetOptions{Dir: true}); err != nil {
		t.Errorf("mkdir: %v", err)
	}
	if _, err := kapi.Set(ctx, "/gc/dir/a", "1", nil); err != nil {
		t.Fatal(err)
	}
	ls, err := kapi.Get(ctx, "/gc", &etcdclient.GetOptions{Recursive: true, Sort: true})
	if err != nil || !ls.Node.Dir || len(ls.Node.Nodes) != 4 || ls.Node.Nodes[0].Key != "/gc/dir" || len(ls.Node.Nodes[0].Nodes) != 1 {
		t.Errorf("recursive get: %+v %v", ls, err)
	}
	cad, err := kapi.Delete(ctx, "/gc/k", &etcdclient.DeleteOptions{PrevValue: "v4"})
	if err != nil || cad.Action != "compareAndDelete" {
		t.Errorf("CAD: %+v %v", cad, err)
	}
	if _, err := kapi.Delete(ctx, "/gc/dir", &etcdclient.DeleteOptions{Dir: true}); !isCode(err, etcdclient.ErrorCodeDirNotEmpty) {
		t.Errorf("rmdir non-empty: %v, want 108", err)
	}
	if _, err := kapi.Delete(ctx, "/gc/dir", &etcdclient.DeleteOptions{Recursive: true}); err != nil {
		t.Errorf("rm -r: %v", err)
	}
	if _, err := kapi.Get(ctx, "/gc/k", nil); !isCode(err, etcdclient.ErrorCodeKeyNotFound) {
		t.Errorf("Get deleted: %v, want 100", err)
	}

	w := kapi.Watcher("/gc/w", &etcdclient.WatcherOptions{Recursive: true})
	got := make(chan *etcdclient.Response, 2)
	go func() {
		for range 2 {
			r, err := w.Next(ctx)
			if err != nil {
				close(got)
				return
			}
			got <- r
		}
	}()
	// The client registers its watch from the index after the last one it
	// saw (none yet), so wait until the first write is observed.
	deadline := time.Now().Add(10 * time.Second)
	var first *etcdclient.Response
	for first == nil && time.Now().Before(deadline) {
		if _, err := kapi.Set(ctx, "/gc/w/a", "1", nil); err != nil {
			t.Fatal(err)
		}
		select {
		case first = <-got:
		case <-time.After(200 * time.Millisecond):
		}
	}
	if first == nil || first.Node.Key != "/gc/w/a" {
		t.Fatalf("watcher: first event %+v", first)
	}
	if _, err := kapi.Set(ctx, "/gc/w/b", "2", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case r, ok := <-got:
		if !ok || r.Node.Key != "/gc/w/b" || r.Node.ModifiedIndex <= first.Node.ModifiedIndex {
			t.Errorf("watcher second event %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Error("watcher: no second event")
	}

	mapi := etcdclient.NewMembersAPI(cl)
	ms, err := mapi.List(ctx)
	if err != nil || len(ms) != 1 || ms[0].Name != "default" || ms[0].PeerURLs[0] != s.PeerURL {
		t.Errorf("members: %+v %v", ms, err)
	}
	lead, err := mapi.Leader(ctx)
	if err != nil || lead == nil || lead.ID != ms[0].ID {
		t.Errorf("leader: %+v %v", lead, err)
	}
}

func isCode(err error, code int) bool {
	var ce etcdclient.Error
	return errors.As(err, &ce) && ce.Code == code
}
