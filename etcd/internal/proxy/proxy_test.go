package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/tlsutil"
	"github.com/corekit/corekit/internal/tlsutil/tlstest"
	"github.com/corekit/corekit/internal/v2api"
)

func static(urls ...string) func(context.Context) ([]string, error) {
	return func(context.Context) ([]string, error) { return urls, nil }
}

func noShuffle([]string) {}

// start builds a proxy, refreshes it once and serves it on loopback.
func start(t *testing.T, cfg Config) (*Proxy, string) {
	t.Helper()
	if cfg.Shuffle == nil {
		cfg.Shuffle = noShuffle
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv.URL
}

type answer struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, u, body string, hdr ...string) answer {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := freshClient.Do(req)
	if err != nil {
		return answer{body: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// freshClient opens a connection per request, so no test request meets a
// pooled connection the server has just closed.
var freshClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func deadURL(t *testing.T) string {
	return fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t))
}

// echo is a backend that reports what it received.
func echo(t *testing.T, name string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Backend", name)
		w.Header().Set("Proxy-Authenticate", "Basic")
		w.Header().Set("Keep-Alive", "timeout=5")
		json.NewEncoder(w).Encode(map[string]any{
			"method": r.Method, "path": r.URL.RequestURI(), "body": string(b),
			"xff": r.Header.Get("X-Forwarded-For"), "te": r.Header.Get("Te"),
			"proxyauth": r.Header.Get("Proxy-Authorization"), "custom": r.Header.Get("X-Custom"),
			"hop": r.Header.Get("X-Hop"),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestFailoverAndQuarantine(t *testing.T) {
	dead := deadURL(t)
	live := echo(t, "live")
	now := time.Now()
	var clock atomic.Int64
	p, u := start(t, Config{
		Endpoints:   static(dead, live.URL),
		FailureWait: time.Minute,
		Now:         func() time.Time { return now.Add(time.Duration(clock.Load())) },
	})
	if got := p.Endpoints(); !slices.Equal(got, []string{dead, live.URL}) {
		t.Fatalf("endpoints = %v", got)
	}
	// A POST with a body: the dead backend fails, the body is replayed to
	// the live one.
	a := do(t, http.MethodPost, u+"/v2/keys/q?x=1", "value=hello")
	if a.status != 200 || a.header.Get("X-Backend") != "live" {
		t.Fatalf("answer %+v", a)
	}
	var got map[string]string
	json.Unmarshal([]byte(a.body), &got)
	if got["method"] != "POST" || got["path"] != "/v2/keys/q?x=1" || got["body"] != "value=hello" {
		t.Fatalf("backend received %v", got)
	}
	// The dead backend is in quarantine now...
	if eps := p.Endpoints(); !slices.Equal(eps, []string{live.URL}) {
		t.Fatalf("after failure endpoints = %v", eps)
	}
	cfg := do(t, http.MethodGet, u+ConfigPath, "")
	if cfg.status != 200 || cfg.body != fmt.Sprintf("{\"endpoints\":[%q]}\n", live.URL) {
		t.Fatalf("config endpoint: %+v", cfg)
	}
	// ... a refresh does not release it ...
	if err := p.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if eps := p.Endpoints(); !slices.Equal(eps, []string{live.URL}) {
		t.Fatalf("after refresh endpoints = %v", eps)
	}
	// ... until FailureWait has passed.
	clock.Store(int64(time.Minute + time.Second))
	if eps := p.Endpoints(); !slices.Equal(eps, []string{dead, live.URL}) {
		t.Fatalf("after failure wait endpoints = %v", eps)
	}
}

func TestErrorsAnswers(t *testing.T) {
	t.Run("zero endpoints", func(t *testing.T) {
		_, u := start(t, Config{Endpoints: static()})
		a := do(t, http.MethodGet, u+"/v2/keys/", "")
		if a.status != 503 || a.body != `{"message":"proxy: zero endpoints currently available"}` || a.header.Get("Content-Type") != "application/json" {
			t.Fatalf("answer %+v", a)
		}
		if c := do(t, http.MethodGet, u+ConfigPath, ""); c.body != "{\"endpoints\":[]}\n" {
			t.Fatalf("config: %+v", c)
		}
	})
	t.Run("all endpoints fail", func(t *testing.T) {
		_, u := start(t, Config{Endpoints: static(deadURL(t), deadURL(t))})
		a := do(t, http.MethodGet, u+"/v2/keys/", "")
		if a.status != 502 || a.body != `{"message":"proxy: unable to get response from 2 endpoint(s)"}` || a.header.Get("Content-Type") != "application/json" {
			t.Fatalf("answer %+v", a)
		}
		// Both are in quarantine: the next request finds none.
		if a := do(t, http.MethodGet, u+"/v2/keys/", ""); a.status != 503 {
			t.Fatalf("second answer %+v", a)
		}
	})
	t.Run("config endpoint is GET only", func(t *testing.T) {
		_, u := start(t, Config{Endpoints: static(echo(t, "x").URL)})
		if a := do(t, http.MethodPut, u+ConfigPath, "a=b"); a.status != 405 || a.header.Get("Allow") != "GET" {
			t.Fatalf("answer %+v", a)
		}
	})
	t.Run("invalid configuration", func(t *testing.T) {
		if _, err := New(Config{}); err == nil {
			t.Fatal("New without Endpoints: no error")
		}
	})
}

func TestReadOnly(t *testing.T) {
	var hits atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	_, u := start(t, Config{Endpoints: static(backend.URL), ReadOnly: true})
	for _, m := range []string{http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodHead, http.MethodOptions, http.MethodPatch} {
		if a := do(t, m, u+"/v2/keys/foo", ""); a.status != 501 || a.body != "" {
			t.Errorf("%s: %+v, want 501 with an empty body", m, a)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("backend saw %d writes", hits.Load())
	}
	if a := do(t, http.MethodGet, u+"/v2/keys/foo", ""); a.status != 200 || a.body != "ok" {
		t.Fatalf("GET: %+v", a)
	}
}

func TestHeaders(t *testing.T) {
	backend := echo(t, "b")
	_, u := start(t, Config{Endpoints: static(backend.URL)})
	a := do(t, http.MethodGet, u+"/x", "",
		"X-Forwarded-For", "10.1.2.3", "Te", "trailers", "Proxy-Authorization", "Basic abc",
		"X-Custom", "kept", "Connection", "X-Hop", "X-Hop", "dropped")
	var got map[string]string
	if err := json.Unmarshal([]byte(a.body), &got); err != nil {
		t.Fatalf("%v: %q", err, a.body)
	}
	if got["xff"] != "10.1.2.3, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", got["xff"])
	}
	if got["te"] != "" || got["proxyauth"] != "" || got["hop"] != "" || got["custom"] != "kept" {
		t.Errorf("request headers at the backend: %v", got)
	}
	if a.header.Get("Proxy-Authenticate") != "" || a.header.Get("Keep-Alive") != "" || a.header.Get("X-Backend") != "b" {
		t.Errorf("response headers: %v", a.header)
	}
}

func TestRunRefreshes(t *testing.T) {
	first, second := echo(t, "1"), echo(t, "2")
	var which atomic.Int32
	var calls atomic.Int32
	p, err := New(Config{
		Endpoints: func(context.Context) ([]string, error) {
			calls.Add(1)
			if which.Load() == 0 {
				return []string{first.URL}, nil
			}
			return []string{second.URL}, nil
		},
		RefreshInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	poll(t, func() bool { return slices.Equal(p.Endpoints(), []string{first.URL}) })
	which.Store(1)
	poll(t, func() bool { return slices.Equal(p.Endpoints(), []string{second.URL}) })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	n := calls.Load()
	time.Sleep(60 * time.Millisecond)
	if calls.Load() != n {
		t.Fatal("Run kept refreshing after its context ended")
	}
}

func poll(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met before the deadline")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A proxy in front of a real etcd learns the member's client URL from its
// peer URL, keeps the cluster file, and forwards keys requests, including a
// streaming watch whose events must pass through while the stream is open.
func TestProxyToEtcdMember(t *testing.T) {
	s := etcdtest.Start(t, etcdtest.Reference)
	file := ClusterFilePath(t.TempDir())
	src, err := PeerMembers(SourceConfig{URLs: []string{deadURL(t), s.PeerURL}, ClusterFile: file})
	if err != nil {
		t.Fatal(err)
	}
	p, u := start(t, Config{Endpoints: src.ClientURLs})
	if eps := p.Endpoints(); !slices.Equal(eps, []string{s.ClientURL}) {
		t.Fatalf("endpoints from /members = %v, want [%s]", eps, s.ClientURL)
	}
	peers, err := ReadClusterFile(file)
	if err != nil || !slices.Equal(peers, []string{s.PeerURL}) {
		t.Fatalf("cluster file: %v, %v", peers, err)
	}
	raw, _ := os.ReadFile(file)
	if string(raw) != fmt.Sprintf(`{"PeerURLs":[%q]}`, s.PeerURL) {
		t.Fatalf("cluster file content %s", raw)
	}
	// The source now asks the peers it learned about (the dead URL is gone).
	if got := src.URLs(); !slices.Equal(got, []string{s.PeerURL}) {
		t.Fatalf("source URLs = %v", got)
	}

	if a := do(t, http.MethodPut, u+"/v2/keys/greeting", "value=hi"); a.status != 201 || a.header.Get(v2api.HeaderEtcdIndex) == "" {
		t.Fatalf("PUT through the proxy: %+v", a)
	}
	if a := do(t, http.MethodGet, u+"/v2/keys/greeting", ""); a.status != 200 || !strings.Contains(a.body, `"value":"hi"`) {
		t.Fatalf("GET through the proxy: %+v", a)
	}
	if a := do(t, http.MethodGet, u+"/v2/keys/missing", ""); a.status != 404 || !strings.Contains(a.body, `"errorCode":100`) {
		t.Fatalf("404 through the proxy: %+v", a)
	}

	// Streaming watch: two events, each read while the stream stays open.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u+"/v2/keys/stream?wait=true&stream=true", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("watch headers did not arrive: %v", err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	for i, v := range []string{"one", "two"} {
		if a := do(t, http.MethodPut, s.ClientURL+"/v2/keys/stream", "value="+v); a.status/100 != 2 {
			t.Fatalf("PUT to the member: %+v", a)
		}
		var ev v2api.Event
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("event %d did not arrive through the proxy: %v", i, err)
		}
		if ev.Node == nil || ev.Node.StringValue() != v {
			t.Fatalf("event %d = %+v", i, ev)
		}
	}

	// A long-poll watch completes through the proxy too.
	cur := do(t, http.MethodGet, s.ClientURL+"/v2/keys/", "")
	after, err := strconv.ParseUint(cur.header.Get(v2api.HeaderEtcdIndex), 10, 64)
	if err != nil {
		t.Fatalf("X-Etcd-Index: %v", err)
	}
	lp := make(chan answer, 1)
	go func() {
		lp <- do(t, http.MethodGet, fmt.Sprintf("%s/v2/keys/lp?wait=true&waitIndex=%d", u, after+1), "")
	}()
	if a := do(t, http.MethodPut, s.ClientURL+"/v2/keys/lp", "value=x"); a.status/100 != 2 {
		t.Fatalf("PUT to the member: %+v", a)
	}
	if a := <-lp; a.status != 200 || !strings.Contains(a.body, `"value":"x"`) {
		t.Fatalf("long poll: %+v", a)
	}

	// The member dies: the proxy answers 502, then 503 while quarantined.
	s.Kill()
	if a := do(t, http.MethodGet, u+"/v2/keys/greeting", ""); a.status != 502 {
		t.Fatalf("after kill: %+v", a)
	}
	if _, err := src.ClientURLs(t.Context()); err == nil {
		t.Fatal("source: no error with every member down")
	}
}

// Two real members of different clusters stand in for a cluster's members:
// with the first one killed, requests fail over to the second.
func TestFailoverBetweenEtcdProcesses(t *testing.T) {
	a, b := etcdtest.Start(t, etcdtest.Reference), etcdtest.Start(t, etcdtest.Reference)
	do(t, http.MethodPut, b.ClientURL+"/v2/keys/who", "value=b")
	_, u := start(t, Config{Endpoints: static(a.ClientURL, b.ClientURL)})
	if got := do(t, http.MethodGet, u+"/v2/keys/who", ""); got.status != 404 {
		t.Fatalf("a should answer first: %+v", got)
	}
	a.Kill()
	if got := do(t, http.MethodGet, u+"/v2/keys/who", ""); got.status != 200 || !strings.Contains(got.body, `"value":"b"`) {
		t.Fatalf("after failover: %+v", got)
	}
}

func TestClientMembersSource(t *testing.T) {
	s := etcdtest.Start(t, etcdtest.Reference)
	src, err := ClientMembers(SourceConfig{URLs: []string{s.ClientURL}, ClusterFile: "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := src.ClientURLs(t.Context())
	if err != nil || !slices.Equal(got, []string{s.ClientURL}) {
		t.Fatalf("ClientURLs = %v, %v", got, err)
	}
	if _, err := os.Stat("ignored"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("ClientMembers wrote a cluster file")
	}
	if _, err := PeerMembers(SourceConfig{}); err == nil {
		t.Fatal("PeerMembers without URLs: no error")
	}
}

func TestDecodeMembers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{`[{"id":1234,"name":"a","peerURLs":["http://p:1"],"clientURLs":["http://c:1"]}]`, 1, true},
		{`{"members":[{"id":"4d2","name":"a","peerURLs":["http://p:1"],"clientURLs":[]},{"id":"5","peerURLs":["http://p:2"]}]}`, 2, true},
		{`{"message":"nope"}`, 0, false},
		{`<html>`, 0, false},
	} {
		ms, err := decodeMembers([]byte(tc.in))
		if (err == nil) != tc.ok || len(ms) != tc.want {
			t.Errorf("decodeMembers(%s) = %v, %v", tc.in, ms, err)
		}
	}
}

func TestClusterFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadClusterFile(ClusterFilePath(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	path := ClusterFilePath(dir)
	if err := WriteClusterFile(path, []string{"http://a:1", "http://b:2"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode: %v %v", fi, err)
	}
	got, err := ReadClusterFile(path)
	if err != nil || !slices.Equal(got, []string{"http://a:1", "http://b:2"}) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	os.WriteFile(path, []byte("{"), 0o600)
	if _, err := ReadClusterFile(path); err == nil {
		t.Fatal("corrupt file accepted")
	}
}

// The proxy reaches https members with the TLS configuration it is given.
func TestTLSBackend(t *testing.T) {
	f := tlstest.Generate(t)
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "secure") }))
	sc, err := tlsutil.Info{CertFile: f.ServerCert, KeyFile: f.ServerKey, TrustedCAFile: f.CAFile, ClientCertAuth: true}.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	backend.TLS = sc
	backend.StartTLS()
	t.Cleanup(backend.Close)
	cc, err := tlsutil.Info{CertFile: f.ClientCert, KeyFile: f.ClientKey, TrustedCAFile: f.CAFile}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	_, u := start(t, Config{Endpoints: static(backend.URL), TLS: cc})
	if a := do(t, http.MethodGet, u+"/v2/keys/", ""); a.status != 200 || a.body != "secure" {
		t.Fatalf("answer %+v", a)
	}
	// Without a client certificate the member refuses: 502.
	_, u2 := start(t, Config{Endpoints: static(backend.URL)})
	if a := do(t, http.MethodGet, u2+"/v2/keys/", ""); a.status != 502 {
		t.Fatalf("answer without TLS config %+v", a)
	}
}
