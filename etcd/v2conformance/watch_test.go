package v2conformance

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
)

const waitFor = 5 * time.Second

// TestWatch covers long-poll and streaming watches: headers flushed before
// any event, one event per long poll, waitIndex history scans, recursive
// and hidden-key matching, stream mode and the 1000-event window.
func TestWatch(t *testing.T) {
	etcdtest.ForEach(t, testWatch)
}

func testWatch(t *testing.T, s *etcdtest.Server) {
	settle(t, s)
	t.Run("long poll", func(t *testing.T) {
		c := newClient(t, s)
		ws := c.watch("/v2/keys/w1/k?wait=true")
		// Headers arrived before any write: they were flushed at once.
		if ws.resp.StatusCode != 200 || ws.resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("watch headers: %d %v", ws.resp.StatusCode, ws.resp.Header)
		}
		if got := c.relHeader(response{h: ws.resp.Header}, "X-Etcd-Index"); got != 0 {
			t.Errorf("X-Etcd-Index relative %d, want 0 (index at registration)", got)
		}
		for _, h := range []string{"X-Raft-Index", "X-Raft-Term", "X-Etcd-Cluster-Id"} {
			if ws.resp.Header.Get(h) == "" {
				t.Errorf("watch response lacks %s", h)
			}
		}
		c.expect("PUT", "/v2/keys/w1/k", "value=1", 201, "*")
		ev, ok := ws.next(waitFor)
		if want := `{"action":"set","node":{"key":"/w1/k","value":"1","modifiedIndex":1,"createdIndex":1}}`; !ok || c.norm(ev) != want {
			t.Errorf("event %q, want %q", c.norm(ev), want)
		}
		if !ws.ended(waitFor) {
			t.Errorf("long poll did not end after one event")
		}
	})
	t.Run("create watch answers 200", func(t *testing.T) {
		c := newClient(t, s)
		ws := c.watch("/v2/keys/w2/k?wait=true")
		c.expect("PUT", "/v2/keys/w2/k?prevExist=false", "value=1", 201, "*")
		if ev, ok := ws.next(waitFor); !ok || decodeEvent(t, ev).Action != "create" || ws.resp.StatusCode != 200 {
			t.Errorf("got %d %q, want 200 and a create event", ws.resp.StatusCode, ev)
		}
	})
	t.Run("waitIndex from history", func(t *testing.T) {
		c := newClient(t, s)
		c.expect("PUT", "/v2/keys/w3/k", "value=1", 201, "*")
		c.expect("PUT", "/v2/keys/w3/other", "value=x", 201, "*")
		c.expect("PUT", "/v2/keys/w3/k", "value=2", 200, "*")
		c.expect("GET", "/v2/keys/w3/k?wait=true&waitIndex={1}", "", 200, `{"action":"set","node":{"key":"/w3/k","value":"1","modifiedIndex":1,"createdIndex":1}}`+nl)
		c.expect("GET", "/v2/keys/w3/k?wait=true&waitIndex={2}", "", 200, `{"action":"set","node":{"key":"/w3/k","value":"2","modifiedIndex":3,"createdIndex":3},"prevNode":{"key":"/w3/k","value":"1","modifiedIndex":1,"createdIndex":1}}`+nl)
		c.expect("GET", "/v2/keys/w3?wait=true&recursive=true&waitIndex={2}", "", 200, `{"action":"set","node":{"key":"/w3/other","value":"x","modifiedIndex":2,"createdIndex":2}}`+nl)
		// A future waitIndex waits for that index, skipping earlier events.
		ws := c.watch("/v2/keys/w3/k?wait=true&waitIndex={5}")
		c.expect("PUT", "/v2/keys/w3/k", "value=4", 200, "*")
		c.expect("PUT", "/v2/keys/w3/k", "value=5", 200, "*")
		if ev, ok := ws.next(waitFor); !ok || decodeEvent(t, ev).Node.StringValue() != "5" {
			t.Errorf("got %q, want the event at index 5", ev)
		}
	})
	t.Run("recursive and hidden", func(t *testing.T) {
		c := newClient(t, s)
		flat := c.watch("/v2/keys/w4?wait=true")
		rec := c.watch("/v2/keys/w4?wait=true&recursive=true")
		c.expect("PUT", "/v2/keys/w4/_hidden/x", "value=h", 201, "*")
		c.expect("PUT", "/v2/keys/w4/a/b", "value=v", 201, "*")
		if ev, ok := rec.next(waitFor); !ok || c.norm(ev) != `{"action":"set","node":{"key":"/w4/a/b","value":"v","modifiedIndex":2,"createdIndex":2}}` {
			t.Errorf("recursive watcher got %q, want the non-hidden /w4/a/b event", c.norm(ev))
		}
		c.expect("DELETE", "/v2/keys/w4?recursive=true", "", 200, "*")
		if ev, ok := flat.next(waitFor); !ok || c.norm(ev) != `{"action":"delete","node":{"key":"/w4","dir":true,"modifiedIndex":3,"createdIndex":1},"prevNode":{"key":"/w4","dir":true,"modifiedIndex":1,"createdIndex":1}}` {
			t.Errorf("non-recursive dir watcher got %q, want only the dir's own delete", c.norm(ev))
		}
	})
	t.Run("child watcher sees parent delete", func(t *testing.T) {
		c := newClient(t, s)
		c.expect("PUT", "/v2/keys/w5/child", "value=1", 201, "*")
		ws := c.watch("/v2/keys/w5/child?wait=true")
		c.expect("DELETE", "/v2/keys/w5?recursive=true", "", 200, "*")
		if ev, ok := ws.next(waitFor); !ok || c.norm(ev) != `{"action":"delete","node":{"key":"/w5","dir":true,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/w5","dir":true,"modifiedIndex":1,"createdIndex":1}}` {
			t.Errorf("got %q, want the parent's delete event", c.norm(ev))
		}
	})
	t.Run("stream", func(t *testing.T) {
		c := newClient(t, s)
		ws := c.watch("/v2/keys/w6?wait=true&recursive=true&stream=true")
		for i := 1; i <= 3; i++ {
			code := 200
			if i == 1 {
				code = 201
			}
			c.expect("PUT", "/v2/keys/w6/k", "value="+strconv.Itoa(i), code, "*")
			ev, ok := ws.next(waitFor)
			if !ok || decodeEvent(t, ev).Node.StringValue() != strconv.Itoa(i) {
				t.Fatalf("stream event %d: %q", i, ev)
			}
		}
		ws.close()
		// The server removes the watcher once the client is gone.
		eventually(t, 10*time.Second, "watchers back to 0 in /v2/stats/store", func() bool {
			return storeStat(t, c, "watchers") == 0
		})
	})
	t.Run("concurrent watchers", func(t *testing.T) {
		c := newClient(t, s)
		const n = 50
		streams := make([]*watchStream, n)
		for i := range streams {
			streams[i] = c.watch("/v2/keys/w7/k?wait=true")
		}
		c.expect("PUT", "/v2/keys/w7/k", "value=go", 201, "*")
		var wg sync.WaitGroup
		errs := make(chan string, n)
		for i, ws := range streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if ev, ok := ws.next(10 * time.Second); !ok || c.norm(ev) != `{"action":"set","node":{"key":"/w7/k","value":"go","modifiedIndex":1,"createdIndex":1}}` {
					errs <- fmt.Sprintf("watcher %d got %q", i, ev)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})
}

// TestWatchHistoryCleared writes more than 1000 events and checks a watch
// from an index before the window gets 401 with etcd's cause.
func TestWatchHistoryCleared(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: writes 1000+ keys; run without -short")
	}
	etcdtest.ForEach(t, testWatchHistoryCleared)
}

func testWatchHistoryCleared(t *testing.T, s *etcdtest.Server) {
	settle(t, s)
	c := newClient(t, s)
	const writes, workers = 1010, 8
	var wg sync.WaitGroup
	next := make(chan int, writes)
	for i := range writes {
		next <- i
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := c.do("PUT", "/v2/keys/hist/k"+strconv.Itoa(i%7), "value=x")
				if r.code != 200 && r.code != 201 {
					t.Errorf("write %d: %d %s", i, r.code, r.body)
					return
				}
			}
		}()
	}
	wg.Wait()
	r := c.expect("GET", "/v2/keys/hist/k1?wait=true&waitIndex={1}", "", 400, "*")
	e := decodeError(t, r.body)
	cur := c.base + writes
	want := fmt.Sprintf("the requested history has been cleared [%d/%d]", cur-999, c.base+1)
	if e.ErrorCode != 401 || e.Message != "The event in requested index is outdated and cleared" || e.Cause != want || e.Index != cur {
		t.Errorf("got %+v, want 401 cause %q index %d", e, want, cur)
	}
	header(t, r, "X-Etcd-Index", strconv.FormatUint(cur, 10))
	// The oldest retained index still works.
	c.expect("GET", fmt.Sprintf("/v2/keys/hist?wait=true&recursive=true&waitIndex=%d", cur-999), "", 200, "*")
}
