package handler

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corekit/corekit/discovery/internal/token"
	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/v2api"
)

const tok0 = "0123456789abcdef0123456789abcdef"

func TestParseTarget(t *testing.T) {
	tests := []struct {
		path   string
		want   target
		status int // 0: ok
		code   int
	}{
		{path: "/" + tok0, want: target{tok: tok0, kind: targetDir}},
		{path: "/" + tok0 + "/", want: target{tok: tok0, kind: targetDir}},
		{path: "/" + tok0 + "/1e41d48ff5022577", want: target{tok: tok0, kind: targetMember, member: "1e41d48ff5022577"}},
		{path: "/" + tok0 + "/_state", want: target{tok: tok0, kind: targetMember, member: "_state"}},
		{path: "/" + tok0 + "/_config/size", want: target{tok: tok0, kind: targetSize}},
		{path: "/" + strings.ToUpper(tok0), status: 404, code: 100},
		{path: "/" + tok0[:31], status: 404, code: 100},
		{path: "/" + tok0 + "00", status: 404, code: 100},
		{path: "/favicon.ico", status: 404, code: 100},
		{path: "//" + tok0, status: 404, code: 100},
		{path: "/" + tok0 + "/_config", status: 403, code: 106},
		{path: "/" + tok0 + "/_config/_secret", status: 404, code: 100},
		{path: "/" + tok0 + "/_config/created", status: 404, code: 100},
		{path: "/" + tok0 + "/a/b", status: 404, code: 100},
		{path: "/" + tok0 + "/..", status: 400, code: 209},
		{path: "/" + tok0 + "/.", status: 400, code: 209},
		{path: "/" + tok0 + "/../" + tok0, status: 404, code: 100},
		{path: "/" + tok0 + "/a%2Fb", status: 400, code: 209},
		{path: "/" + tok0 + "/a%20b", status: 400, code: 209},
		{path: "/" + tok0 + "/" + strings.Repeat("a", 129), status: 400, code: 209},
		{path: "/" + tok0 + "//", status: 404, code: 100},
	}
	for _, tt := range tests {
		got, perr := parseTarget(tt.path)
		if tt.status == 0 {
			if perr != nil || got != tt.want {
				t.Errorf("parseTarget(%q) = %+v, %+v; want %+v", tt.path, got, perr, tt.want)
			}
			continue
		}
		if perr == nil || perr.status != tt.status || perr.err.ErrorCode != tt.code {
			t.Errorf("parseTarget(%q) = %+v, %+v; want status %d code %d", tt.path, got, perr, tt.status, tt.code)
		}
	}
}

func TestLimiter(t *testing.T) {
	c := newClock()
	l := newLimiter(1, 3, c.Now) // 1 token per second, burst 3
	for i := 0; i < 3; i++ {
		if ok, _ := l.allow("a"); !ok {
			t.Fatalf("request %d within burst refused", i)
		}
	}
	ok, wait := l.allow("a")
	if ok || wait != time.Second {
		t.Fatalf("4th request: ok=%v wait=%v, want refused with 1s", ok, wait)
	}
	if ok, _ := l.allow("b"); !ok {
		t.Fatal("another client shares the bucket")
	}
	c.Advance(500 * time.Millisecond)
	if ok, wait := l.allow("a"); ok || wait != 500*time.Millisecond {
		t.Fatalf("after 0.5s: ok=%v wait=%v", ok, wait)
	}
	c.Advance(500 * time.Millisecond)
	if ok, _ := l.allow("a"); !ok {
		t.Fatal("after refill: refused")
	}
	c.Advance(time.Hour) // refills to the burst, not beyond
	n := 0
	for ok, _ := l.allow("a"); ok; ok, _ = l.allow("a") {
		n++
	}
	if n != 3 {
		t.Fatalf("after an hour %d requests allowed, want burst 3", n)
	}
	if ok, _ := newLimiter(-1, 1, c.Now).allow("a"); !ok {
		t.Fatal("disabled limiter refused")
	}
}

func TestLimiterSweepBoundsMemory(t *testing.T) {
	c := newClock()
	l := newLimiter(1, 1, c.Now)
	for i := 0; i < maxBuckets; i++ {
		l.allow(fmt.Sprint("10.0.", i/256, ".", i%256))
	}
	c.Advance(2 * time.Second) // every bucket is full again
	l.allow("new-client")
	if len(l.buckets) != 1 {
		t.Fatalf("after sweep %d buckets remain, want 1", len(l.buckets))
	}
}

// TestHandler runs the service against a real store (Debian's etcd 3.4, and
// ours when it exists). Subtests share the store, run in order, and use
// their own tokens.
func TestHandler(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *testStore) {
		t.Run("New", func(t *testing.T) { testNew(t, newEnv(t, s, nil)) })
		t.Run("NewBadInput", func(t *testing.T) { testNewBadInput(t, newEnv(t, s, nil)) })
		t.Run("NewRateLimit", func(t *testing.T) { testNewRateLimit(t, s) })
		t.Run("Protocol", func(t *testing.T) { testProtocol(t, newEnv(t, s, nil)) })
		t.Run("LongPoll", func(t *testing.T) {
			testLongPoll(t, newEnv(t, s, func(c *Config) { c.LongPoll = 300 * time.Millisecond }))
		})
		t.Run("Sealing", func(t *testing.T) { testSealing(t, newEnv(t, s, nil)) })
		t.Run("SealingRace", func(t *testing.T) { testSealingRace(t, newEnv(t, s, nil)) })
		t.Run("Expiry", func(t *testing.T) {
			testExpiry(t, newEnv(t, s, func(c *Config) { c.TokenTTL = time.Hour }))
		})
		t.Run("Delete", func(t *testing.T) { testDelete(t, newEnv(t, s, nil)) })
		t.Run("BadRequestsLeaveStoreUnchanged", func(t *testing.T) { testBadRequests(t, newEnv(t, s, nil)) })
		t.Run("Page", func(t *testing.T) { testPage(t, newEnv(t, s, nil)) })
		t.Run("Operator", func(t *testing.T) { testOperator(t, newEnv(t, s, nil)) })
	})
}

var tokenURL = regexp.MustCompile(`^https://discovery\.example/[0-9a-f]{32}$`)

func testNew(t *testing.T, e *env) {
	for _, tt := range []struct {
		method, query, body string
		size                string
	}{
		{http.MethodGet, "", "", "3"},
		{http.MethodGet, "?size=5", "", "5"},
		{http.MethodGet, "?size=1", "", "1"},
		{http.MethodGet, "?size=99", "", "99"},
		{http.MethodPut, "?size=7", "", "7"},
		{http.MethodPost, "", "size=2", "2"},
		{http.MethodPut, "", "size=4", "4"},
	} {
		r := e.do(tt.method, "/new"+tt.query, tt.body)
		if r.status != http.StatusOK || !tokenURL.MatchString(r.body) {
			t.Fatalf("%s /new%s %q: %d %q", tt.method, tt.query, tt.body, r.status, r.body)
		}
		if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("Content-Type = %q", ct)
		}
		if sec := r.header.Get(SecretHeader); !token.Valid(sec) {
			t.Errorf("%s = %q, want 32 hex", SecretHeader, sec)
		}
		tok := r.body[strings.LastIndex(r.body, "/")+1:]
		status, ev := e.storeGet(token.SizeKey(tok))
		if status != http.StatusOK || ev.Node.StringValue() != tt.size {
			t.Errorf("%s /new%s: store size = %d %q, want %q", tt.method, tt.query, status, ev.Node.StringValue(), tt.size)
		}
		_, dir := e.storeGet(token.Dir(tok))
		if !dir.Node.Dir || dir.Node.TTL <= 0 || dir.Node.TTL > int64(7*24*time.Hour/time.Second) {
			t.Errorf("token dir: dir=%v ttl=%d, want a directory with a 7-day TTL", dir.Node.Dir, dir.Node.TTL)
		}
		_, created := e.storeGet(token.ConfigKey(tok) + "/" + token.CreatedName)
		if got := created.Node.StringValue(); got != "2026-03-01T12:00:00Z" {
			t.Errorf("created = %q, want the injected clock's time", got)
		}
	}
}

func testNewBadInput(t *testing.T, e *env) {
	before := e.storeIndex()
	for _, tt := range []struct {
		method, query, body string
		status              int
		want                string
	}{
		{http.MethodGet, "?size=0", "", 400, "invalid size \"0\": must be an integer from 1 to 99\n"},
		{http.MethodGet, "?size=-1", "", 400, "invalid size \"-1\": must be an integer from 1 to 99\n"},
		{http.MethodGet, "?size=100", "", 400, "invalid size \"100\": must be an integer from 1 to 99\n"},
		{http.MethodGet, "?size=abc", "", 400, "invalid size \"abc\": must be an integer from 1 to 99\n"},
		{http.MethodGet, "?size=99999999999999999999999999", "", 400, "must be an integer from 1 to 99"},
		{http.MethodPost, "", "size=1000", 400, "invalid size \"1000\""},
		{http.MethodGet, "?size=%zz", "", 400, "invalid request"},
		{http.MethodPost, "", "size=3&pad=" + strings.Repeat("x", 70<<10), 413, "request body larger than"},
		{http.MethodDelete, "", "", 405, "method DELETE not allowed on /new"},
	} {
		r := e.do(tt.method, "/new"+tt.query, tt.body)
		if r.status != tt.status || !strings.Contains(r.body, tt.want) {
			t.Errorf("%s /new%s: %d %q, want %d containing %q", tt.method, tt.query, r.status, r.body, tt.status, tt.want)
		}
	}
	if after := e.storeIndex(); after != before {
		t.Errorf("store index moved from %s to %s: a rejected /new wrote to the store", before, after)
	}
}

func testNewRateLimit(t *testing.T, s *testStore) {
	e := newEnv(t, s, func(c *Config) { c.NewRate, c.NewBurst = 1.0/60, 2 })
	newFrom := func(ip string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/new", nil).WithContext(t.Context())
		req.RemoteAddr = ip + ":40000"
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, req)
		return w
	}
	for i := 0; i < 2; i++ {
		if w := newFrom("192.0.2.1"); w.Code != http.StatusOK {
			t.Fatalf("request %d: %d %q", i, w.Code, w.Body)
		}
	}
	before := e.storeIndex()
	w := newFrom("192.0.2.1")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "60" ||
		!strings.Contains(w.Body.String(), "too many new tokens requested from 192.0.2.1; try again in 60 s") {
		t.Fatalf("3rd request: %d Retry-After=%q %q", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if after := e.storeIndex(); after != before {
		t.Errorf("a rate-limited request wrote to the store (index %s -> %s)", before, after)
	}
	if w := newFrom("192.0.2.2"); w.Code != http.StatusOK {
		t.Fatalf("other client: %d", w.Code)
	}
	e.clock.Advance(59 * time.Second)
	if w := newFrom("192.0.2.1"); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("after 59s: %d Retry-After=%q", w.Code, w.Header().Get("Retry-After"))
	}
	e.clock.Advance(time.Second)
	if w := newFrom("192.0.2.1"); w.Code != http.StatusOK {
		t.Fatalf("after 60s: %d %q", w.Code, w.Body)
	}
	m := e.do(http.MethodGet, "/metrics", "")
	if !strings.Contains(m.body, "\ndiscovery_new_rate_limited_total 2\n") {
		t.Errorf("metrics do not count 2 rate-limited requests:\n%s", m.body)
	}
}

// testProtocol replays what an etcd member does, through the service.
func testProtocol(t *testing.T, e *env) {
	tok, _ := e.newToken("?size=3")
	r := e.do(http.MethodGet, "/"+tok+"/_config/size?quorum=false&recursive=false&sorted=false", "")
	if r.status != 200 || !strings.Contains(r.body, `"value":"3"`) || r.header.Get(v2api.HeaderEtcdIndex) == "" {
		t.Fatalf("GET size: %d %v %q", r.status, r.header, r.body)
	}
	if !strings.Contains(r.body, `"key":"/_etcd/registry/`+tok+`/_config/size"`) {
		t.Errorf("size key not under /_etcd/registry: %q", r.body)
	}
	r = e.do(http.MethodGet, "/"+tok+"?quorum=false&recursive=false&sorted=false", "")
	var ev v2api.Event
	if err := json.Unmarshal([]byte(r.body), &ev); err != nil || r.status != 200 || len(ev.Node.Nodes) != 0 {
		t.Fatalf("GET token: %d %q (_config must be hidden)", r.status, r.body)
	}
	r = register(e, tok, "1e41d48ff5022577", "infra0=http://10.0.1.10:2380")
	if r.status != http.StatusCreated || !strings.Contains(r.body, `"action":"create"`) || r.header.Get(v2api.HeaderEtcdIndex) == "" {
		t.Fatalf("register: %d %q", r.status, r.body)
	}
	r = register(e, tok, "1e41d48ff5022577", "infra0=http://10.0.1.10:2380")
	if ve := decodeError(t, r); r.status != http.StatusPreconditionFailed || ve.ErrorCode != v2api.EcodeNodeExist {
		t.Fatalf("duplicate register: %d %q, want 412 with code 105", r.status, r.body)
	}
	r = e.do(http.MethodGet, "/"+tok+"/", "")
	if r.status != 200 || !strings.Contains(r.body, `"value":"infra0=http://10.0.1.10:2380"`) {
		t.Fatalf("GET token/: %d %q", r.status, r.body)
	}
	for _, p := range []string{"/ffffffffffffffffffffffffffffffff", "/ffffffffffffffffffffffffffffffff/_config/size", "/ffffffffffffffffffffffffffffffff/abc"} {
		r = e.do(http.MethodGet, p, "")
		ve := decodeError(t, r)
		if r.status != 404 || ve.ErrorCode != 100 || ve.Message != "Key not found" || ve.Cause != "/_etcd/registry/ffffffffffffffffffffffffffffffff" {
			t.Errorf("GET %s: %d %q, want 404 code 100 for the token", p, r.status, r.body)
		}
	}
	// etcd 0.4 members elect a leader with _state.
	r = e.do(http.MethodPut, "/"+tok+"/_state?prevExist=false", "value=started")
	if r.status != http.StatusCreated {
		t.Fatalf("PUT _state: %d %q", r.status, r.body)
	}
	if r = e.do(http.MethodPut, "/"+tok+"/_state?prevExist=false", "value=started"); r.status != http.StatusPreconditionFailed {
		t.Fatalf("second PUT _state: %d %q", r.status, r.body)
	}
}

func testLongPoll(t *testing.T, e *env) {
	tok, _ := e.newToken("?size=3")
	r := e.do(http.MethodGet, "/"+tok, "")
	idx := r.header.Get(v2api.HeaderEtcdIndex)
	var n uint64
	fmt.Sscan(idx, &n)
	// Nothing happens: the long poll ends with 200 and an empty body.
	r = e.do(http.MethodGet, fmt.Sprintf("/%s?recursive=true&wait=true&waitIndex=%d", tok, n+1), "")
	if r.status != http.StatusOK || r.body != "" {
		t.Fatalf("idle watch: %d %q, want 200 with empty body", r.status, r.body)
	}
	// A registration during the watch is delivered.
	done := make(chan reply, 1)
	go func() {
		done <- doURL(t, http.MethodGet, fmt.Sprintf("%s/%s?recursive=true&wait=true&waitIndex=%d", e.srv.URL, tok, n+1), "")
	}()
	if r := register(e, tok, "abc123", "m1=http://127.0.0.1:1"); r.status != http.StatusCreated {
		t.Fatalf("register: %d %q", r.status, r.body)
	}
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not return")
	}
	if r.status != 200 || !strings.Contains(r.body, `"action":"create"`) || !strings.Contains(r.body, "/abc123") {
		t.Fatalf("watch: %d %q, want the create event", r.status, r.body)
	}
}

func testSealing(t *testing.T, e *env) {
	tok, secret := e.newToken("?size=2")
	for _, id := range []string{"aa", "bb"} {
		if r := register(e, tok, id, id+"=http://127.0.0.1:1"); r.status != http.StatusCreated {
			t.Fatalf("register %s: %d %q", id, r.status, r.body)
		}
	}
	before := e.storeIndex()
	r := register(e, tok, "cc", "cc=http://127.0.0.1:1")
	ve := decodeError(t, r)
	if r.status != http.StatusForbidden || ve.ErrorCode != 103 || !strings.Contains(ve.Cause, "sealed") {
		t.Fatalf("3rd register: %d %q, want 403 code 103 sealed", r.status, r.body)
	}
	if after := e.storeIndex(); after != before {
		t.Fatalf("sealed registration wrote to the store")
	}
	// A member re-registering still gets etcd's duplicate-ID answer...
	if r := register(e, tok, "aa", "aa=http://127.0.0.1:1"); r.status != http.StatusPreconditionFailed {
		t.Fatalf("duplicate on sealed token: %d %q, want 412", r.status, r.body)
	}
	// ...and may update its own key (etcd 0.4 heartbeats do).
	if r := e.do(http.MethodPut, "/"+tok+"/aa?ttl=604800", "value=aa%3Dhttp://127.0.0.1:2"); r.status != http.StatusOK {
		t.Fatalf("update own key: %d %q", r.status, r.body)
	}
	// Removing a stale member frees a seat.
	if r := e.do(http.MethodDelete, "/"+tok+"/bb", "", SecretHeader, secret); r.status != http.StatusOK {
		t.Fatalf("delete bb: %d %q", r.status, r.body)
	}
	if r := register(e, tok, "cc", "cc=http://127.0.0.1:1"); r.status != http.StatusCreated {
		t.Fatalf("register after delete: %d %q", r.status, r.body)
	}
}

func testSealingRace(t *testing.T, e *env) {
	tok, _ := e.newToken("?size=2")
	const n = 8
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- doURL(t, http.MethodPut, fmt.Sprintf("%s/%s/m%d?prevExist=false", e.srv.URL, tok, i), "value=x").status
		}()
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[http.StatusCreated] != 2 || count[http.StatusForbidden] != n-2 {
		t.Fatalf("status counts %v, want 2 created and %d forbidden", count, n-2)
	}
	_, ev := e.storeGet(token.Dir(tok))
	members := 0
	for _, nd := range ev.Node.Nodes {
		if !nd.Dir {
			members++
		}
	}
	if members != 2 {
		t.Fatalf("store holds %d members, want 2", members)
	}
}

func testExpiry(t *testing.T, e *env) {
	tok, _ := e.newToken("?size=3")
	_, dir := e.storeGet(token.Dir(tok))
	if dir.Node.TTL <= 0 || dir.Node.TTL > 3600 {
		t.Fatalf("token dir TTL = %d, want <= 3600", dir.Node.TTL)
	}
	e.clock.Advance(59 * time.Minute)
	if r := e.do(http.MethodGet, "/"+tok, ""); r.status != http.StatusOK {
		t.Fatalf("before expiry: %d %q", r.status, r.body)
	}
	e.clock.Advance(time.Minute)
	for _, p := range []string{"/" + tok, "/" + tok + "/_config/size"} {
		r := e.do(http.MethodGet, p, "")
		ve := decodeError(t, r)
		if r.status != http.StatusNotFound || ve.ErrorCode != 100 || ve.Cause != token.Dir(tok) {
			t.Fatalf("GET %s after expiry: %d %q, want 404 code 100", p, r.status, r.body)
		}
	}
	if r := register(e, tok, "aa", "x"); r.status != http.StatusNotFound {
		t.Fatalf("register after expiry: %d %q", r.status, r.body)
	}
	if status, _ := e.storeGet(token.Dir(tok)); status != http.StatusNotFound {
		t.Fatalf("expired token still in the store (status %d)", status)
	}
}

func testDelete(t *testing.T, e *env) {
	tok, secret := e.newToken("?size=3")
	other, otherSecret := e.newToken("?size=3")
	register(e, tok, "aa", "x")
	before := e.storeIndex()
	for _, tt := range []struct {
		path, secret string
		status, code int
	}{
		{"/" + tok, "", 401, 110},
		{"/" + tok + "/aa", "", 401, 110},
		{"/" + tok, otherSecret, 403, 110},
		{"/" + tok + "/aa", strings.ToUpper(secret), 403, 110},
		{"/" + tok + "/_config/size", secret, 405, 0},
		{"/" + tok + "/_config", secret, 403, 106},
	} {
		var r reply
		if tt.secret == "" {
			r = e.do(http.MethodDelete, tt.path, "")
		} else {
			r = e.do(http.MethodDelete, tt.path, "", SecretHeader, tt.secret)
		}
		if r.status != tt.status {
			t.Errorf("DELETE %s: %d %q, want %d", tt.path, r.status, r.body, tt.status)
		}
		if tt.code != 0 {
			if ve := decodeError(t, r); ve.ErrorCode != tt.code {
				t.Errorf("DELETE %s: code %d, want %d", tt.path, ve.ErrorCode, tt.code)
			}
		}
	}
	if after := e.storeIndex(); after != before {
		t.Fatalf("refused deletes changed the store (index %s -> %s)", before, after)
	}
	if r := e.do(http.MethodDelete, "/"+tok, "", SecretHeader, secret); r.status != http.StatusOK {
		t.Fatalf("DELETE token: %d %q", r.status, r.body)
	}
	if r := e.do(http.MethodGet, "/"+tok, ""); r.status != http.StatusNotFound {
		t.Fatalf("GET deleted token: %d", r.status)
	}
	if r := e.do(http.MethodGet, "/"+other, ""); r.status != http.StatusOK {
		t.Fatalf("other token hit by the delete: %d", r.status)
	}
}

func testBadRequests(t *testing.T, e *env) {
	tok, _ := e.newToken("?size=3")
	register(e, tok, "aa", "x")
	before := e.storeIndex()
	for _, tt := range []struct {
		method, path, body string
		status             int
	}{
		{http.MethodPut, "/" + strings.ToUpper(tok) + "/bb?prevExist=false", "value=x", 404},
		{http.MethodPut, "/" + tok[:30] + "/bb?prevExist=false", "value=x", 404},
		{http.MethodPut, "/" + tok + "ab/bb?prevExist=false", "value=x", 404},
		{http.MethodPut, "/" + tok + "/a%2Fb?prevExist=false", "value=x", 400},
		{http.MethodPut, "/" + tok + "/..%2F..%2Fx", "value=x", 400},
		{http.MethodPut, "/" + tok + "/../../v2/keys/x", "value=x", 404},
		{http.MethodPut, "/" + tok + "/bb/cc", "value=x", 404},
		{http.MethodPut, "/" + tok + "/_config", "value=x", 403},
		{http.MethodPut, "/" + tok + "/_config/size", "value=1", 405},
		{http.MethodPut, "/" + tok + "/_secret", "value=x", 403},
		{http.MethodPut, "/" + tok, "value=x", 405},
		{http.MethodPut, "/" + tok + "?dir=true&ttl=", "", 405},
		{http.MethodPut, "/" + tok + "/bb?dir=true", "", 400},
		{http.MethodPut, "/" + tok + "/bb?prevExist=false&x=%zz", "value=x", 400},
		{http.MethodPut, "/" + tok + "/bb?prevExist=false", "value=" + strings.Repeat("x", 65<<10), 413},
		{http.MethodPut, "/" + tok + "/" + strings.Repeat("b", 200), "value=x", 400},
		{http.MethodPost, "/" + tok, "value=x", 405},
		{http.MethodPost, "/" + tok + "/bb", "value=x", 405},
		{http.MethodPatch, "/" + tok + "/aa", "value=x", 405},
		{http.MethodDelete, "/" + tok + "/aa", "", 401},
	} {
		r := e.do(tt.method, tt.path, tt.body)
		if r.status != tt.status || r.body == "" {
			t.Errorf("%s %s: %d %q, want %d with a message", tt.method, tt.path, r.status, r.body, tt.status)
		}
	}
	if after := e.storeIndex(); after != before {
		t.Fatalf("bad requests changed the store (index %s -> %s)", before, after)
	}
}

func testPage(t *testing.T, e *env) {
	tok, _ := e.newToken("?size=2")
	register(e, tok, "1e41d48ff5022577", "infra0=http://10.0.1.10:2380<script>")
	r := e.do(http.MethodGet, "/"+tok, "", "Accept", "text/html,application/xhtml+xml")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %v", r.status, r.header)
	}
	for _, want := range []string{
		"<th>Size</th><td>2</td>", "<th>Registered</th><td>1</td>", "waiting for members",
		"2026-03-01T12:00:00Z", "2026-03-08T12:00:00Z", "1e41d48ff5022577",
		"infra0=http://10.0.1.10:2380&lt;script&gt;",
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("page lacks %q:\n%s", want, r.body)
		}
	}
	if strings.Contains(r.body, "<script>") {
		t.Error("page does not escape member values")
	}
	register(e, tok, "2", "infra1=http://10.0.1.11:2380")
	if r := e.do(http.MethodGet, "/"+tok+"/", "", "Accept", "text/html"); !strings.Contains(r.body, "sealed: all members registered") {
		t.Errorf("full token page not sealed:\n%s", r.body)
	}
	// etcd's client (no Accept) still gets JSON.
	if r := e.do(http.MethodGet, "/"+tok, ""); r.header.Get("Content-Type") != "application/json" {
		t.Errorf("JSON view: Content-Type %q", r.header.Get("Content-Type"))
	}
}

func testOperator(t *testing.T, e *env) {
	if r := e.do(http.MethodGet, "/health", ""); r.status != 200 || r.body != "OK" {
		t.Errorf("/health: %d %q", r.status, r.body)
	}
	if r := e.do(http.MethodGet, "/robots.txt", ""); r.status != 200 || r.body != "User-agent: *\nDisallow: /\n" {
		t.Errorf("/robots.txt: %d %q", r.status, r.body)
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/", nil)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != DocsURL {
		t.Errorf("/: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	e.do(http.MethodGet, "/new", "")
	e.do(http.MethodGet, "/new?size=x", "")
	m := e.do(http.MethodGet, "/metrics", "")
	for _, want := range []string{
		"# TYPE endpoint_new_requests_total counter\n",
		"endpoint_new_requests_total{code=\"200\",method=\"get\"} 1\n",
		"endpoint_new_requests_total{code=\"400\",method=\"get\"} 1\n",
		"endpoint_health_requests_total{code=\"200\",method=\"get\"} 1\n",
		"discovery_tokens_created_total 1\n",
	} {
		if !strings.Contains(m.body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, m.body)
		}
	}
	if ct := m.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("/metrics Content-Type %q", ct)
	}
}

func TestStoreDown(t *testing.T) {
	port := etcdtest.FreePort(t) // nothing listens there
	u, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", port))
	h, err := New(Config{Store: u, PublicURL: "http://x", RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tt := range []struct{ path, want string }{
		{"/health", "health check failed"},
		{"/new", "Unable to generate token\n"},
		{"/" + tok0, `"errorCode":300`},
		{"/" + tok0 + "/abc", `"errorCode":300`},
	} {
		r := doURL(t, http.MethodGet, srv.URL+tt.path, "")
		if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, tt.want) {
			t.Errorf("GET %s with store down: %d %q, want 503 containing %q", tt.path, r.status, r.body, tt.want)
		}
	}
}

func TestNewDefaultsAndRequiredFields(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:2379")
	h, err := New(Config{Store: u, PublicURL: "https://discovery.etcd.io/"})
	if err != nil {
		t.Fatal(err)
	}
	c := h.cfg
	if c.LongPoll != 60*time.Second || c.TokenTTL != 7*24*time.Hour || c.MaxSize != 99 ||
		c.PublicURL != "https://discovery.etcd.io" || c.MaxBody != 64<<10 || c.NewBurst != 20 {
		t.Fatalf("defaults: %+v", c)
	}
	if _, err := New(Config{PublicURL: "x"}); err == nil {
		t.Error("New without a store URL: no error")
	}
	if _, err := New(Config{Store: u}); err == nil {
		t.Error("New without a public URL: no error")
	}
}
