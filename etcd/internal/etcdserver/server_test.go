package etcdserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/etcd/embed"
	"github.com/corekit/corekit/etcd/internal/etcdserver"
	"github.com/corekit/corekit/internal/v2api"
)

func start(t *testing.T) *etcdserver.EtcdServer {
	t.Helper()
	e, err := embed.Start(t.Context(), embed.Config{DataDir: t.TempDir(),
		HeartbeatInterval: 10 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e.Server
}

func ptr[T any](v T) *T { return &v }

func TestDoDispatch(t *testing.T) {
	s := start(t)
	ctx := t.Context()
	steps := []struct {
		name   string
		req    etcdserver.Request
		action string
		code   int
	}{
		{"set", etcdserver.Request{Method: "PUT", Path: "/a", Val: "1"}, "set", 0},
		{"create exists", etcdserver.Request{Method: "PUT", Path: "/a", Val: "x", PrevExist: ptr(false)}, "", 105},
		{"update", etcdserver.Request{Method: "PUT", Path: "/a", Val: "2", PrevExist: ptr(true)}, "update", 0},
		{"cas via prevExist", etcdserver.Request{Method: "PUT", Path: "/a", Val: "3", PrevExist: ptr(true), PrevValue: "2"}, "compareAndSwap", 0},
		{"cas fails", etcdserver.Request{Method: "PUT", Path: "/a", Val: "4", PrevIndex: 1}, "", 101},
		{"get", etcdserver.Request{Method: "GET", Path: "/a"}, "get", 0},
		{"quorum get wins over wait", etcdserver.Request{Method: "GET", Path: "/a", Quorum: true, Wait: true}, "get", 0},
		{"post", etcdserver.Request{Method: "POST", Path: "/q", Val: "job"}, "create", 0},
		{"cad", etcdserver.Request{Method: "DELETE", Path: "/a", PrevValue: "3"}, "compareAndDelete", 0},
		{"delete missing", etcdserver.Request{Method: "DELETE", Path: "/a"}, "", 100},
		{"delete recursive implies dir", etcdserver.Request{Method: "DELETE", Path: "/q", Recursive: true}, "delete", 0},
	}
	for _, st := range steps {
		resp, err := s.Do(ctx, st.req)
		var ve *v2api.Error
		if st.code != 0 {
			if !errors.As(err, &ve) || ve.ErrorCode != st.code {
				t.Errorf("%s: err %v, want code %d", st.name, err, st.code)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", st.name, err)
			continue
		}
		if resp.Event == nil || resp.Event.Action != st.action {
			t.Errorf("%s: %+v, want action %s", st.name, resp.Event, st.action)
		}
		if resp.RaftIndex == 0 || resp.RaftTerm == 0 || resp.EtcdIndex == 0 {
			t.Errorf("%s: indexes %+v", st.name, resp)
		}
	}
	if s.Index() != 6 {
		t.Errorf("store index %d after 6 successful writes", s.Index())
	}
}

func TestWatchWokenBySet(t *testing.T) {
	s := start(t)
	resp, err := s.Do(t.Context(), etcdserver.Request{Method: "GET", Path: "/w", Wait: true})
	if err != nil || resp.Watcher == nil {
		t.Fatalf("watch: %+v %v", resp, err)
	}
	defer resp.Watcher.Remove()
	if _, err := s.Do(t.Context(), etcdserver.Request{Method: "PUT", Path: "/w", Val: "v"}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-resp.Watcher.EventChan:
		if ev.Action != "set" || ev.Node.StringValue() != "v" {
			t.Errorf("event %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch not woken")
	}
}

func TestTTLExpiresThroughLeader(t *testing.T) {
	s := start(t)
	exp := time.Now().Add(300 * time.Millisecond)
	if _, err := s.Do(t.Context(), etcdserver.Request{Method: "PUT", Path: "/t", Val: "v", Expiration: exp}); err != nil {
		t.Fatal(err)
	}
	w, err := s.Do(t.Context(), etcdserver.Request{Method: "GET", Path: "/t", Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.Watcher.EventChan:
		if ev.Action != "expire" {
			t.Errorf("event %+v", ev)
		}
		if now := time.Now(); now.Before(exp) {
			t.Errorf("expired at %v, before its expiration %v", now, exp)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("key did not expire")
	}
}

func TestDoHonoursContext(t *testing.T) {
	s := start(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Do(ctx, etcdserver.Request{Method: "PUT", Path: "/x", Val: "v"}); err == nil {
		t.Log("write completed despite a cancelled context (it may commit)")
	}
}

func TestIdentityAndStats(t *testing.T) {
	s := start(t)
	if _, err := s.Do(t.Context(), etcdserver.Request{Method: "PUT", Path: "/x", Val: "v"}); err != nil {
		t.Fatal(err)
	}
	if s.ID() == 0 || s.ClusterID() == 0 {
		t.Fatal("zero IDs")
	}
	if lead, ok := s.Leader(); !ok || lead != s.ID() {
		t.Errorf("leader %x %v, want self %x", lead, ok, s.ID())
	}
	ms := s.Members()
	if len(ms) != 1 || ms[0].Name != "default" || len(ms[0].ClientURLs) != 1 {
		t.Errorf("members %+v", ms)
	}
	var self map[string]any
	if err := json.Unmarshal(s.SelfStats(), &self); err != nil {
		t.Fatal(err)
	}
	if self["state"] != "StateLeader" || self["name"] != "default" {
		t.Errorf("self stats %v", self)
	}
	body, ok := s.LeaderStats()
	if !ok || string(body) != `{"leader":"`+self["id"].(string)+`","followers":{}}` {
		t.Errorf("leader stats %s %v", body, ok)
	}
	if !json.Valid(s.StoreStats()) {
		t.Errorf("store stats %s", s.StoreStats())
	}
	if !s.Healthy(t.Context()) {
		t.Error("single leader not healthy")
	}
}

func TestSecondProcessOnDataDirFails(t *testing.T) {
	dir := t.TempDir()
	e, err := embed.Start(t.Context(), embed.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	done := make(chan error, 1)
	go func() {
		e2, err := embed.Start(t.Context(), embed.Config{DataDir: dir})
		if err == nil {
			e2.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("second start on the same data dir: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second start on the same data dir blocked")
	}
}
