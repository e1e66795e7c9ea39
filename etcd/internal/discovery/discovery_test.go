package discovery

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corekit/corekit/etcd/internal/membership"
	"github.com/corekit/corekit/internal/etcdtest"
)

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// sleeps records backoff waits without waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return nil
}

func (s *sleeps) get() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.d)
}

func randomKey(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// put writes a key on a v2 server with a plain HTTP request.
func put(t *testing.T, rawURL, value string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, rawURL, strings.NewReader("value="+url.QueryEscape(value)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT %s: %s %s", rawURL, resp.Status, b)
	}
}

// keysToken makes a discovery token on plain etcd keys, as seed 001 does,
// with _config/size set when size > 0.
func keysToken(t *testing.T, s *etcdtest.Server, size int) string {
	t.Helper()
	tok := s.ClientURL + "/v2/keys/" + randomKey(t)
	if size > 0 {
		put(t, tok+"/_config/size", fmt.Sprint(size))
	}
	return tok
}

func member(tok, name string, port int, log *slog.Logger) Config {
	return Config{
		DiscoveryURL: tok,
		Name:         name,
		PeerURLs:     []string{fmt.Sprintf("http://127.0.0.1:%d", port)},
		Logger:       log,
		Backoff:      Backoff{Sleep: func(context.Context, time.Duration) error { return errors.New("unexpected retry") }},
	}
}

func reference(t *testing.T) *etcdtest.Server {
	t.Helper()
	return etcdtest.Start(t, etcdtest.Reference)
}

// joinThree runs three concurrent Joins on tok and checks they agree.
func joinThree(t *testing.T, tok string, logs *logBuffer) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	results := make([]string, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = Join(ctx, member(tok, fmt.Sprintf("m%d", i), 12380+i, logs.logger()))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("member m%d: %v\nlogs:\n%s", i, err, logs)
		}
	}
	if results[0] != results[1] || results[1] != results[2] {
		t.Fatalf("members disagree:\n%s\n%s\n%s", results[0], results[1], results[2])
	}
	ic, err := membership.ParseInitialCluster(results[0])
	if err != nil {
		t.Fatal(err)
	}
	names := slices.Clone(ic.Names)
	slices.Sort(names)
	if !slices.Equal(names, []string{"m0", "m1", "m2"}) {
		t.Fatalf("cluster %q has names %v", results[0], names)
	}
	for i := range 3 {
		want := fmt.Sprintf("http://127.0.0.1:%d", 12380+i)
		if got := ic.URLs[fmt.Sprintf("m%d", i)]; !slices.Equal(got, []string{want}) {
			t.Errorf("m%d URLs = %v, want %s", i, got, want)
		}
	}
	return results[0]
}

func TestJoinOnKeysURL(t *testing.T) {
	s := reference(t)
	tok := keysToken(t, s, 3)
	logs := &logBuffer{}
	cluster := joinThree(t, tok, logs)

	// The registrations are keyed by the members' hex IDs, derived from
	// the peer URLs and the discovery URL.
	resp, err := http.Get(tok + "/" + membership.IDString(MemberID([]string{"http://127.0.0.1:12381"}, tok)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"value":"m1=http://127.0.0.1:12381"`) {
		t.Fatalf("m1's registration: %s %s", resp.Status, body)
	}
	for _, line := range []string{"found self ", "found peer ", "found 3 needed peer(s)"} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("logs lack %q:\n%s", line, logs)
		}
	}

	// A fourth member finds the token full; a proxy gets the same cluster.
	_, err = Join(t.Context(), member(tok, "m3", 12383, nil))
	if !errors.Is(err, ErrFull) {
		t.Fatalf("4th member: err = %v, want ErrFull", err)
	}
	got, err := GetCluster(t.Context(), Config{DiscoveryURL: tok})
	if err != nil || got != cluster {
		t.Fatalf("GetCluster = %q, %v; want %q", got, err, cluster)
	}
}

func TestGetClusterWaitsUntilFull(t *testing.T) {
	s := reference(t)
	tok := keysToken(t, s, 2)
	logs := &logBuffer{}
	done := make(chan error, 1)
	var got string
	go func() {
		var err error
		got, err = GetCluster(t.Context(), Config{DiscoveryURL: tok, Logger: logs.logger()})
		done <- err
	}()
	// Members arriving one by one; the proxy returns once both are there.
	r0, r1 := make(chan string, 1), make(chan string, 1)
	go func() { c, _ := Join(t.Context(), member(tok, "a", 1, nil)); r0 <- c }()
	waitFor(t, func() bool { return strings.Contains(logs.String(), "found peer") }, logs)
	go func() { c, _ := Join(t.Context(), member(tok, "b", 2, nil)); r1 <- c }()
	if err := <-done; err != nil {
		t.Fatalf("GetCluster: %v\n%s", err, logs)
	}
	c0, c1 := <-r0, <-r1
	if got != c0 || got != c1 || !strings.HasPrefix(got, "a=http://127.0.0.1:1,") {
		t.Fatalf("proxy %q, members %q %q", got, c0, c1)
	}
	if !strings.Contains(logs.String(), "found 1 peer(s), waiting for 1 more") {
		t.Errorf("logs lack the waiting line:\n%s", logs)
	}
}

func waitFor(t *testing.T, cond func() bool, logs fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met; logs:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestJoinErrors(t *testing.T) {
	s := reference(t)

	t.Run("duplicate id", func(t *testing.T) {
		tok := keysToken(t, s, 1)
		cfg := member(tok, "m1", 1, nil)
		if _, err := Join(t.Context(), cfg); err != nil {
			t.Fatal(err)
		}
		// The same member again (wiped data dir, reused token).
		if _, err := Join(t.Context(), cfg); !errors.Is(err, ErrDuplicateID) {
			t.Fatalf("err = %v, want ErrDuplicateID", err)
		}
	})
	t.Run("unknown token", func(t *testing.T) {
		tok := keysToken(t, s, 0)
		_, err := Join(t.Context(), member(tok, "m1", 1, nil))
		if !errors.Is(err, ErrTokenNotFound) || err.Error() != "discovery: token not found" {
			t.Fatalf("err = %v, want ErrTokenNotFound", err)
		}
	})
	t.Run("size key missing", func(t *testing.T) {
		tok := keysToken(t, s, 0)
		put(t, tok+"/somebody", "x=http://127.0.0.1:1")
		_, err := Join(t.Context(), member(tok, "m1", 1, nil))
		if !errors.Is(err, ErrSizeNotFound) || err.Error() != "discovery: size key not found" {
			t.Fatalf("err = %v, want ErrSizeNotFound", err)
		}
	})
	t.Run("bad size", func(t *testing.T) {
		tok := keysToken(t, s, 0)
		put(t, tok+"/_config/size", "three")
		if _, err := Join(t.Context(), member(tok, "m1", 1, nil)); !errors.Is(err, ErrBadSizeKey) {
			t.Fatalf("err = %v, want ErrBadSizeKey", err)
		}
	})
	t.Run("duplicate name", func(t *testing.T) {
		tok := keysToken(t, s, 2)
		put(t, tok+"/0123", "m1=http://127.0.0.1:9")
		got, err := Join(t.Context(), member(tok, "m1", 1, nil))
		if !errors.Is(err, ErrDuplicateName) || got != "m1=http://127.0.0.1:9,m1=http://127.0.0.1:1" {
			t.Fatalf("got %q, %v; want ErrDuplicateName", got, err)
		}
	})
	t.Run("invalid URL", func(t *testing.T) {
		tok := keysToken(t, s, 2)
		put(t, tok+"/0123", "garbage")
		if _, err := Join(t.Context(), member(tok, "m1", 1, nil)); !errors.Is(err, ErrInvalidURL) {
			t.Fatalf("err = %v, want ErrInvalidURL", err)
		}
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		tok := keysToken(t, s, 2)
		ctx, cancel := context.WithCancel(t.Context())
		logs := &logBuffer{}
		cfg := member(tok, "m1", 1, logs.logger())
		done := make(chan error, 1)
		go func() { _, err := Join(ctx, cfg); done <- err }()
		waitFor(t, func() bool { return strings.Contains(logs.String(), "waiting for 1 more") }, logs)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("bad discovery URL", func(t *testing.T) {
		for _, u := range []string{"", "127.0.0.1:4001/abc", "http://127.0.0.1:4001", "ftp://h/x"} {
			if _, err := Join(t.Context(), member(u, "m1", 1, nil)); err == nil {
				t.Errorf("Join(%q): no error", u)
			}
		}
	})
}

func TestBadDiscoveryEndpoint(t *testing.T) {
	for name, h := range map[string]http.HandlerFunc{
		"html page": func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, "<html><body>hello</body></html>")
		},
		"plain 404": http.NotFound,
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			defer srv.Close()
			_, err := Join(t.Context(), member(srv.URL+"/abc", "m1", 1, nil))
			if !errors.Is(err, ErrBadDiscoveryEndpoint) || err.Error() != "discovery: bad discovery endpoint" {
				t.Fatalf("err = %v, want ErrBadDiscoveryEndpoint", err)
			}
		})
	}
}

// flaky proxies to a real etcd but answers 503 to the requests fail selects.
func flaky(t *testing.T, target string, fail func(r *http.Request) bool) *httptest.Server {
	t.Helper()
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail(r) {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestBackoffOnServerErrors(t *testing.T) {
	s := reference(t)
	var n atomic.Int32
	srv := flaky(t, s.ClientURL, func(*http.Request) bool { return n.Add(1) <= 3 })
	tok := srv.URL + strings.TrimPrefix(keysToken(t, s, 1), s.ClientURL)
	logs := &logBuffer{}
	rec := &sleeps{}
	cfg := member(tok, "m1", 1, logs.logger())
	cfg.Backoff.Sleep = rec.sleep
	got, err := Join(t.Context(), cfg)
	if err != nil || got != "m1=http://127.0.0.1:1" {
		t.Fatalf("Join = %q, %v\n%s", got, err, logs)
	}
	if want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second}; !slices.Equal(rec.get(), want) {
		t.Fatalf("backoff = %v, want %v", rec.get(), want)
	}
	for _, line := range []string{
		"cluster status check: error connecting to " + tok + ", retrying in 2s",
		"retrying in 8s",
		"error #0: client: etcd member " + srv.URL + " has no leader",
	} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("logs lack %q:\n%s", line, logs)
		}
	}
}

func TestBackoffWhileWaiting(t *testing.T) {
	s := reference(t)
	var failed atomic.Bool
	srv := flaky(t, s.ClientURL, func(r *http.Request) bool {
		// The first recursive watch fails once.
		return r.URL.Query().Get("recursive") == "true" && r.URL.Query().Get("wait") == "true" && !failed.Swap(true)
	})
	tok := srv.URL + strings.TrimPrefix(keysToken(t, s, 2), s.ClientURL)
	logs := &logBuffer{}
	rec := &sleeps{}
	cfg := member(tok, "m1", 1, logs.logger())
	cfg.Backoff.Sleep = rec.sleep
	done := make(chan error, 1)
	go func() { _, err := Join(t.Context(), cfg); done <- err }()
	waitFor(t, failed.Load, logs)
	if _, err := Join(t.Context(), member(tok, "m2", 2, nil)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("m1: %v\n%s", err, logs)
	}
	if !slices.Equal(rec.get(), []time.Duration{2 * time.Second}) {
		t.Fatalf("backoff = %v, want [2s]", rec.get())
	}
	if !strings.Contains(logs.String(), "waiting for other nodes: error connecting to "+tok+", retrying in 2s") {
		t.Errorf("logs lack the retry line:\n%s", logs)
	}
}

func TestBackoffGivesUp(t *testing.T) {
	// A closed port: every request is a transport error.
	tok := fmt.Sprintf("http://127.0.0.1:%d/abc", etcdtest.FreePort(t))
	rec := &sleeps{}
	cfg := member(tok, "m1", 1, nil)
	cfg.Backoff = Backoff{MaxRetries: 3, Sleep: rec.sleep}
	if _, err := Join(t.Context(), cfg); !errors.Is(err, ErrTooManyRetries) {
		t.Fatalf("err = %v, want ErrTooManyRetries", err)
	}
	if want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second}; !slices.Equal(rec.get(), want) {
		t.Fatalf("backoff = %v, want %v", rec.get(), want)
	}
	// A cancelled context ends the wait.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	cfg.Backoff = Backoff{}
	if _, err := Join(ctx, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestBackoffDelays(t *testing.T) {
	var b Backoff
	for retries, want := range map[uint64]time.Duration{
		1: 2 * time.Second, 2: 4 * time.Second, 7: 128 * time.Second,
		8: 256 * time.Second, 9: 256 * time.Second, 40: 256 * time.Second,
	} {
		if got := b.delay(retries); got != want {
			t.Errorf("delay(%d) = %s, want %s", retries, got, want)
		}
	}
	b = Backoff{Unit: time.Millisecond, MaxExponent: 3}
	if got := b.delay(10); got != 8*time.Millisecond {
		t.Errorf("custom delay = %s", got)
	}
}

func TestRegistrationAndID(t *testing.T) {
	if got := Registration("default", []string{"http://localhost:7001", "http://localhost:2380"}); got != "default=http://localhost:2380,default=http://localhost:7001" {
		t.Errorf("Registration = %q", got)
	}
	// The discovery URL is the cluster token.
	want := membership.NewMember("x", []string{"http://10.0.0.1:7001"}, "http://d/abc", nil).ID
	if got := MemberID([]string{"http://10.0.0.1:7001"}, "http://d/abc"); got != want {
		t.Errorf("MemberID = %x, want %x", got, want)
	}
	if MemberID([]string{"http://10.0.0.1:7001"}, "http://d/abc") == MemberID([]string{"http://10.0.0.1:7001"}, "http://d/abd") {
		t.Error("member ID ignores the token")
	}
}

// Seed 001 points members at plain keys nobody configured a size for; with
// DefaultSize they still form a cluster.
func TestDefaultSizeForUnconfiguredToken(t *testing.T) {
	s := reference(t)
	tok := keysToken(t, s, 0)
	logs := &logBuffer{}
	res := make(chan string, 2)
	errs := make(chan error, 2)
	for i := range 2 {
		go func() {
			cfg := member(tok, fmt.Sprintf("n%d", i), 7001+i, logs.logger())
			cfg.DefaultSize = 2
			c, err := Join(t.Context(), cfg)
			res <- c
			errs <- err
		}()
	}
	a, b := <-res, <-res
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("Join: %v\n%s", err, logs)
		}
	}
	if a != b || !strings.Contains(a, "n0=http://127.0.0.1:7001") || !strings.Contains(a, "n1=http://127.0.0.1:7002") {
		t.Fatalf("clusters %q and %q", a, b)
	}
	if !strings.Contains(logs.String(), "no size configured under "+tok+", assuming 2 members") {
		t.Errorf("logs lack the assumption:\n%s", logs)
	}
}

// DefaultSize applies only to plain keys URLs: a token URL without
// /v2/keys/ in its path (a discovery service's) keeps the clear errors.
func TestDefaultSizeOnlyForKeysURLs(t *testing.T) {
	s := reference(t)
	u, _ := url.Parse(s.ClientURL)
	rp := httputil.NewSingleHostReverseProxy(u)
	// A service-style front: /<token> maps to /v2/keys/<token>.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = "/v2/keys" + r.URL.Path
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg := member(srv.URL+"/"+randomKey(t), "m1", 1, nil)
	cfg.DefaultSize = 3
	if _, err := Join(t.Context(), cfg); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("service-style unknown token: err = %v, want ErrTokenNotFound", err)
	}
	for in, want := range map[string]bool{
		"http://172.17.8.1:4001/v2/keys/abc":   true,
		"http://172.17.8.1:4001/v2/keys/a/b/c": true,
		"https://discovery.etcd.io/abc":        false,
		"http://h/v2/keysabc":                  false,
		"http://h/abc/v2/keys/x":               true,
	} {
		if got := IsKeysURL(in); got != want {
			t.Errorf("IsKeysURL(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestExitMessages(t *testing.T) {
	u := "http://d/abc"
	got := ExitMessages(fmt.Errorf("wrapped: %w", ErrDuplicateID), "m1", u, "/var/lib/etcd")
	if len(got) != 4 || got[0] != `member "m1" has previously registered with discovery service token (http://d/abc).` ||
		got[1] != "But etcd could not find valid cluster configuration in the given data dir (/var/lib/etcd)." {
		t.Errorf("duplicate id: %q", got)
	}
	if got := ExitMessages(ErrDuplicateName, "m1", u, ""); len(got) != 3 || got[0] != "member with duplicated name has registered with discovery service token(http://d/abc)." {
		t.Errorf("duplicate name: %q", got)
	}
	got = ExitMessages(ErrBadSizeKey, "m1", u, "")
	if len(got) != 3 || got[0] != "failed to join discovery cluster (discovery: size key is bad)" ||
		got[1] != "discovery token http://d/abc was used, but failed to bootstrap the cluster." {
		t.Errorf("other: %q", got)
	}
}

// A watch index the server already dropped (401) makes the member list the
// token again instead of failing.
func TestWatchIndexCleared(t *testing.T) {
	s := reference(t)
	var cleared atomic.Bool
	u, _ := url.Parse(s.ClientURL)
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("recursive") == "true" && r.URL.Query().Get("wait") == "true" && !cleared.Swap(true) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared [1008/7]","index":2007}`)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tok := srv.URL + strings.TrimPrefix(keysToken(t, s, 2), s.ClientURL)
	logs := &logBuffer{}
	done := make(chan error, 1)
	go func() { _, err := Join(t.Context(), member(tok, "m1", 1, logs.logger())); done <- err }()
	waitFor(t, cleared.Load, logs)
	if _, err := Join(t.Context(), member(tok, "m2", 2, nil)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("m1: %v\n%s", err, logs)
	}
}
