package v2client_test

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/buildbin"
	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/v2api"
	"github.com/corekit/corekit/internal/v2client"
)

// forEach is etcdtest.ForEach, except that our server's subtest skips loudly
// while ./etcd/main.go does not exist yet (it is written in parallel).
func forEach(t *testing.T, f func(t *testing.T, s *etcdtest.Server)) {
	for _, k := range []etcdtest.Kind{etcdtest.Ours, etcdtest.Reference} {
		t.Run(string(k), func(t *testing.T) {
			if k == etcdtest.Ours {
				root, err := buildbin.ModuleRoot()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(filepath.Join(root, "etcd", "main.go")); err != nil {
					t.Skip("SKIP: etcd/main.go does not exist yet; only the reference server can be tested")
				}
			}
			f(t, etcdtest.Start(t, k))
		})
	}
}

func newClient(t *testing.T, eps ...string) *v2client.Client {
	t.Helper()
	c, err := v2client.New(v2client.Config{Endpoints: eps, HeaderTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantCode(t *testing.T, err error, code int) *v2api.Error {
	t.Helper()
	var ve *v2api.Error
	if !errors.As(err, &ve) {
		t.Fatalf("want *v2api.Error %d, got %T %v", code, err, err)
	}
	if ve.ErrorCode != code {
		t.Fatalf("want error code %d, got %v", code, ve)
	}
	return ve
}

func TestKeys(t *testing.T) {
	forEach(t, func(t *testing.T, s *etcdtest.Server) {
		ctx := t.Context()
		c := newClient(t, s.ClientURL)

		r, err := c.Set(ctx, "/k/a", "one", nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Action != "set" || r.Node.Key != "/k/a" || r.Node.StringValue() != "one" || r.PrevNode != nil {
			t.Fatalf("set: %+v %+v", r, r.Node)
		}
		if r.Index == 0 || r.Index != r.Node.ModifiedIndex || r.ClusterID == "" || r.RaftTerm == 0 || r.RaftIndex == 0 {
			t.Fatalf("set headers: %+v", r)
		}
		setIdx := r.Index

		r, err = c.Get(ctx, "k/a", nil)
		if err != nil || r.Action != "get" || r.Node.StringValue() != "one" || r.Index != setIdx {
			t.Fatalf("get: %+v %v", r, err)
		}

		_, err = c.Get(ctx, "/k/nope", nil)
		ve := wantCode(t, err, v2api.EcodeKeyNotFound)
		if ve.Cause != "/k/nope" || ve.Index != setIdx || ve.Error() != fmt.Sprintf("100: Key not found (/k/nope) [%d]", setIdx) {
			t.Fatalf("not found: %#v", ve)
		}

		_, err = c.Create(ctx, "/k/a", "x", 0)
		wantCode(t, err, v2api.EcodeNodeExist)

		r, err = c.Create(ctx, "/k/b", "two", 60*time.Second)
		if err != nil || r.Action != "create" || r.Node.TTL <= 0 || r.Node.TTL > 60 || r.Node.Expiration == nil {
			t.Fatalf("create: %+v %v", r, err)
		}

		_, err = c.Update(ctx, "/k/none", "x", 0)
		wantCode(t, err, v2api.EcodeKeyNotFound)
		r, err = c.Update(ctx, "/k/b", "three", 0)
		if err != nil || r.Action != "update" || r.PrevNode.StringValue() != "two" || r.Node.TTL != 0 {
			t.Fatalf("update: %+v %v", r, err)
		}

		_, err = c.CompareAndSwap(ctx, "/k/a", "new", "wrong", 0, 0)
		ve = wantCode(t, err, v2api.EcodeTestFailed)
		if ve.Cause != "[wrong != one]" {
			t.Fatalf("cas cause %q", ve.Cause)
		}
		r, err = c.CompareAndSwap(ctx, "/k/a", "new", "one", setIdx, 0)
		if err != nil || r.Action != "compareAndSwap" || r.Node.StringValue() != "new" {
			t.Fatalf("cas: %+v %v", r, err)
		}

		// refresh keeps the value and needs a TTL
		r, err = c.Set(ctx, "/k/b", "", &v2client.SetOptions{Refresh: true, TTL: 30 * time.Second, PrevExist: v2client.PrevExists})
		if err != nil || r.Node.StringValue() != "three" || r.Node.TTL <= 0 {
			t.Fatalf("refresh: %+v %v", r, err)
		}

		// directories
		r, err = c.Set(ctx, "/d", "", &v2client.SetOptions{Dir: true, PrevExist: v2client.PrevNoExist})
		if err != nil || !r.Node.Dir {
			t.Fatalf("mkdir: %+v %v", r, err)
		}
		for _, v := range []string{"j1", "j2"} {
			if _, err := c.CreateInOrder(ctx, "/d", v, nil); err != nil {
				t.Fatal(err)
			}
		}
		r, err = c.Get(ctx, "/d", &v2client.GetOptions{Sort: true, Recursive: true, Quorum: true})
		if err != nil || len(r.Node.Nodes) != 2 || r.Node.Nodes[0].StringValue() != "j1" || r.Node.Nodes[1].StringValue() != "j2" {
			t.Fatalf("in order: %+v %v", r, err)
		}
		_, err = c.Delete(ctx, "/d", &v2client.DeleteOptions{Dir: true})
		wantCode(t, err, v2api.EcodeDirNotEmpty)
		_, err = c.Delete(ctx, "/d", nil)
		wantCode(t, err, v2api.EcodeNotFile)
		if r, err = c.Delete(ctx, "/d", &v2client.DeleteOptions{Recursive: true}); err != nil || r.Action != "delete" {
			t.Fatalf("rm -r: %+v %v", r, err)
		}

		_, err = c.CompareAndDelete(ctx, "/k/a", "old", 0)
		wantCode(t, err, v2api.EcodeTestFailed)
		r, err = c.CompareAndDelete(ctx, "/k/a", "new", 0)
		if err != nil || r.Action != "compareAndDelete" || r.PrevNode.StringValue() != "new" {
			t.Fatalf("cad: %+v %v", r, err)
		}
		r, err = c.Delete(ctx, "/k/b", nil)
		if err != nil || r.Action != "delete" || r.PrevNode.StringValue() != "three" {
			t.Fatalf("delete: %+v %v", r, err)
		}

		// keys with characters that need escaping survive the round trip
		if _, err := c.Set(ctx, "/sp ace/?q#h", "v", nil); err != nil {
			t.Fatal(err)
		}
		if r, err := c.Get(ctx, "/sp ace/?q#h", nil); err != nil || r.Node.Key != "/sp ace/?q#h" {
			t.Fatalf("escaped key: %+v %v", r, err)
		}
	})
}

func TestWatch(t *testing.T) {
	forEach(t, func(t *testing.T, s *etcdtest.Server) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		c := newClient(t, s.ClientURL)

		r0, err := c.Set(ctx, "/w/x", "0", nil)
		if err != nil {
			t.Fatal(err)
		}
		// history: the event after r0's index is the next set
		r1, err := c.Set(ctx, "/w/x", "1", nil)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := c.Watch(ctx, "/w/x", r0.Index, false)
		if err != nil || ev.Node.ModifiedIndex != r1.Index || ev.Node.StringValue() != "1" {
			t.Fatalf("history watch: %+v %v", ev, err)
		}

		// a live recursive watcher sees a concurrent writer's events in order
		w := c.Watcher("/w", &v2client.WatcherOptions{AfterIndex: r1.Index, Recursive: true})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 2; i < 5; i++ {
				if _, err := c.Set(ctx, fmt.Sprintf("/w/k%d", i), fmt.Sprint(i), nil); err != nil {
					t.Error(err)
				}
			}
			if _, err := c.Delete(ctx, "/w/k2", nil); err != nil {
				t.Error(err)
			}
		}()
		var got []string
		for len(got) < 4 {
			ev, err := w.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ev.Action+" "+ev.Node.Key)
		}
		wg.Wait()
		if want := "set /w/k2,set /w/k3,set /w/k4,delete /w/k2"; strings.Join(got, ",") != want {
			t.Fatalf("watcher events %q, want %q", got, want)
		}

		// a watch ends with its context
		wctx, wcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer wcancel()
		if _, err := c.Watch(wctx, "/w/quiet", 0, false); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("watch after deadline: %v", err)
		}
	})
}

func TestMembersHealthVersion(t *testing.T) {
	forEach(t, func(t *testing.T, s *etcdtest.Server) {
		ctx := t.Context()
		c := newClient(t, s.ClientURL)
		ms, err := c.ListMembers(ctx)
		if err != nil || len(ms) != 1 || ms[0].Name != "default" || ms[0].PeerURLs[0] != s.PeerURL || ms[0].ClientURLs[0] != s.ClientURL {
			t.Fatalf("members: %+v %v", ms, err)
		}
		l, err := c.Leader(ctx)
		if err != nil || l.ID != ms[0].ID {
			t.Fatalf("leader: %+v %v", l, err)
		}
		ls, err := c.LeaderStats(ctx)
		if err != nil || ls.Leader != ms[0].ID {
			t.Fatalf("leader stats: %+v %v", ls, err)
		}
		err = c.RemoveMember(ctx, "abcdef")
		var he *v2client.HTTPError
		if !errors.As(err, &he) || he.StatusCode != http.StatusNotFound {
			t.Fatalf("remove unknown: %T %v", err, err)
		}
		err = c.UpdateMember(ctx, "abcdef", []string{"http://127.0.0.1:1"})
		if !errors.As(err, &he) || he.StatusCode != http.StatusNotFound {
			t.Fatalf("update unknown: %T %v", err, err)
		}
		if _, err := c.AddMember(ctx, []string{"not a url"}); !errors.As(err, &he) || he.StatusCode != http.StatusBadRequest {
			t.Fatalf("add bad url: %T %v", err, err)
		}
		// poll: /health may be 503 for a moment after start
		deadline := time.Now().Add(10 * time.Second)
		for {
			ok, err := c.HealthAt(ctx, s.ClientURL)
			if ok && err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("health: %v %v", ok, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if ok, err := c.Health(ctx); !ok || err != nil {
			t.Fatalf("Health: %v %v", ok, err)
		}
		v, err := c.Version(ctx)
		if err != nil || v.Server == "" || v.Cluster == "" {
			t.Fatalf("version: %+v %v", v, err)
		}
		// Sync replaces the endpoints with the advertised client URLs
		c2 := newClient(t, "127.0.0.1:"+strings.TrimPrefix(s.ClientURL, "http://127.0.0.1:")+"/")
		if err := c2.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if eps := c2.Endpoints(); len(eps) != 1 || eps[0] != s.ClientURL {
			t.Fatalf("synced endpoints %q", eps)
		}
	})
}

func TestFailover(t *testing.T) {
	s := etcdtest.Start(t, etcdtest.Reference)
	ctx := t.Context()
	dead := fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t))
	c := newClient(t, dead, s.ClientURL)
	if _, err := c.Set(ctx, "/f", "v", nil); err != nil {
		t.Fatalf("failover set: %v", err)
	}
	// a store error is an answer: no failover, no ClusterError
	_, err := c.Get(ctx, "/missing", nil)
	wantCode(t, err, v2api.EcodeKeyNotFound)

	c = newClient(t, dead)
	_, err = c.Get(ctx, "/f", nil)
	var ce *v2client.ClusterError
	if !errors.Is(err, v2client.ErrClusterUnavailable) || !errors.As(err, &ce) || len(ce.Errors) != 1 ||
		!strings.Contains(ce.Error(), "connection refused") || !strings.HasPrefix(ce.Detail(), "error #0: dial tcp") {
		t.Fatalf("all dead: %v", err)
	}
}

// TestServerErrors uses a local handler to produce 5xx, a header timeout and
// auth, which a healthy single-member server cannot.
func TestServerErrors(t *testing.T) {
	var gotUser, gotPass string
	var mu sync.Mutex
	h := http.NewServeMux()
	h.HandleFunc("/v2/keys/down", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	h.HandleFunc("/v2/keys/slow", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	h.HandleFunc("/v2/keys/auth", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotUser, gotPass, _ = r.BasicAuth()
		mu.Unlock()
		w.Header().Set("X-Etcd-Index", "7")
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, `{"action":"get","node":{"key":"/auth","value":"v","modifiedIndex":7,"createdIndex":7}}`)
	})
	srv := httptest.NewTLSServer(h)
	defer srv.Close()

	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := v2client.New(v2client.Config{Endpoints: []string{srv.URL}, CAFile: ca, Username: "root", Password: "pw", HeaderTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	r, err := c.Get(ctx, "/auth", nil)
	if err != nil || r.Index != 7 || r.Node.StringValue() != "v" {
		t.Fatalf("tls get: %+v %v", r, err)
	}
	mu.Lock()
	if gotUser != "root" || gotPass != "pw" {
		t.Fatalf("basic auth %q %q", gotUser, gotPass)
	}
	mu.Unlock()

	_, err = c.Get(ctx, "/down", nil)
	if err == nil || !strings.Contains(err.Error(), "client: etcd member "+srv.URL+" has no leader") {
		t.Fatalf("503: %v", err)
	}
	_, err = c.Get(ctx, "/slow", nil)
	if err == nil || !strings.Contains(err.Error(), "client: endpoint "+srv.URL+" exceeded header timeout") {
		t.Fatalf("slow: %v", err)
	}

	// without the CA the TLS handshake fails
	c2, _ := v2client.New(v2client.Config{Endpoints: []string{srv.URL}})
	if _, err := c2.Get(ctx, "/auth", nil); !errors.Is(err, v2client.ErrClusterUnavailable) {
		t.Fatalf("untrusted: %v", err)
	}
	if _, err := v2client.New(v2client.Config{Endpoints: []string{srv.URL}, CAFile: filepath.Join(dir, "nope")}); err == nil {
		t.Fatal("missing CA file accepted")
	}
	if _, err := v2client.New(v2client.Config{}); !errors.Is(err, v2client.ErrNoEndpoints) {
		t.Fatalf("no endpoints: %v", err)
	}
	if _, err := v2client.New(v2client.Config{Endpoints: []string{"ftp://x"}}); err == nil {
		t.Fatal("ftp endpoint accepted")
	}
}
