package handler

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/buildbin"
	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/v2api"
)

// clock is the injected clock of the handler tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// store is the etcd a test talks to through the service.
type testStore struct {
	Kind      string
	ClientURL string
}

// forEachStore runs f against a fresh store of every kind available:
// Debian's etcd 3.4 and, once etcd/main.go exists, ours (both as real
// processes). DISCOVERY_SKIP_OURS=1 leaves ours out.
func forEachStore(t *testing.T, f func(t *testing.T, s *testStore)) {
	kinds := []etcdtest.Kind{etcdtest.Reference}
	root, err := buildbin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	_, statErr := os.Stat(filepath.Join(root, "etcd", "main.go"))
	switch {
	case os.Getenv("DISCOVERY_SKIP_OURS") != "":
		t.Logf("NOTE: DISCOVERY_SKIP_OURS set: not running against our etcd")
	case statErr != nil:
		t.Logf("NOTE: etcd/main.go missing: not running against our etcd")
	default:
		kinds = append(kinds, etcdtest.Ours)
	}
	for _, k := range kinds {
		t.Run(string(k), func(t *testing.T) {
			s := etcdtest.Start(t, k)
			f(t, &testStore{string(s.Kind), s.ClientURL})
		})
	}
}

// env is one handler in front of one store.
type env struct {
	t     *testing.T
	store *testStore
	h     *Handler
	srv   *httptest.Server
	clock *clock
}

func newEnv(t *testing.T, s *testStore, mutate func(*Config)) *env {
	t.Helper()
	u, err := url.Parse(s.ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	cfg := Config{
		Store:     u,
		PublicURL: "https://discovery.example/",
		Now:       c.Now,
		NewRate:   -1,
		LongPoll:  time.Second,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, store: s, h: h, srv: srv, clock: c}
}

type reply struct {
	status int
	header http.Header
	body   string
}

func (e *env) do(method, path string, body string, hdr ...string) reply {
	e.t.Helper()
	return doURL(e.t, method, e.srv.URL+path, body, hdr...)
}

func doURL(t *testing.T, method, u string, body string, hdr ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, string(b)}
}

// newToken calls /new and returns the token and its secret.
func (e *env) newToken(query string) (tok, secret string) {
	e.t.Helper()
	r := e.do(http.MethodGet, "/new"+query, "")
	if r.status != http.StatusOK {
		e.t.Fatalf("/new%s: %d %q", query, r.status, r.body)
	}
	return strings.TrimPrefix(r.body, "https://discovery.example/"), r.header.Get(SecretHeader)
}

// storeGet reads a key directly from the store (bypassing the service).
func (e *env) storeGet(key string) (int, v2api.Event) {
	e.t.Helper()
	r := doURL(e.t, http.MethodGet, e.store.ClientURL+"/v2/keys"+key+"?recursive=true", "")
	var ev v2api.Event
	if r.status == http.StatusOK {
		if err := json.Unmarshal([]byte(r.body), &ev); err != nil {
			e.t.Fatal(err)
		}
	}
	return r.status, ev
}

// storeIndex is the store's X-Etcd-Index: it changes on every write, so an
// unchanged index proves a request wrote nothing.
func (e *env) storeIndex() string {
	e.t.Helper()
	r := doURL(e.t, http.MethodGet, e.store.ClientURL+"/v2/keys/", "")
	return r.header.Get(v2api.HeaderEtcdIndex)
}

func register(e *env, tok, id, value string) reply {
	e.t.Helper()
	return e.do(http.MethodPut, "/"+tok+"/"+id+"?prevExist=false", url.Values{"value": {value}}.Encode())
}

func decodeError(t *testing.T, r reply) v2api.Error {
	t.Helper()
	var ve v2api.Error
	if err := json.Unmarshal([]byte(r.body), &ve); err != nil {
		t.Fatalf("body %q is not an etcd JSON error: %v", r.body, err)
	}
	return ve
}
