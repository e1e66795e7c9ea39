package v2conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
)

// client talks HTTP to one server and normalises its answers relative to a
// base index taken with mark.
type client struct {
	t    *testing.T
	s    *etcdtest.Server
	hc   *http.Client
	base uint64
}

func newClient(t *testing.T, s *etcdtest.Server) *client {
	t.Helper()
	c := &client{t: t, s: s, hc: &http.Client{
		Timeout: 15 * time.Second,
		// Redirects are part of the behaviour under test.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	c.mark()
	return c
}

// settle waits until a freshly started member is healthy and its store
// index has stopped moving: both implementations make internal writes
// (member attributes, cluster version) shortly after they start serving,
// which would shift the relative indexes of the first test.
func settle(t *testing.T, s *etcdtest.Server) {
	t.Helper()
	c := newClient(t, s)
	eventually(t, 20*time.Second, "/health 200", func() bool { return c.do("GET", "/health", "").code == 200 })
	last, stableSince := c.index(), time.Now()
	eventually(t, 20*time.Second, "a quiet store index", func() bool {
		if i := c.index(); i != last {
			last, stableSince = i, time.Now()
		}
		return time.Since(stableSince) >= 500*time.Millisecond
	})
}

// response is a fully read HTTP response.
type response struct {
	code int
	h    http.Header
	body string
}

// do sends method target (path plus query) with an optional form body.
func (c *client) do(method, target, form string) response {
	c.t.Helper()
	ct := ""
	if form != "" {
		ct = "application/x-www-form-urlencoded"
	}
	return c.doType(method, target, form, ct)
}

// doType sends a body with an explicit Content-Type ("" for none).
func (c *client) doType(method, target, body, ctype string) response {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(c.abs(body))
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.s.ClientURL+c.abs(target), rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading body: %v", method, target, err)
	}
	return response{code: resp.StatusCode, h: resp.Header, body: string(b)}
}

// index returns the current store index (X-Etcd-Index of a root GET).
func (c *client) index() uint64 {
	c.t.Helper()
	r := c.do("GET", "/v2/keys/", "")
	n, err := strconv.ParseUint(r.h.Get("X-Etcd-Index"), 10, 64)
	if err != nil || r.code != 200 {
		c.t.Fatalf("GET /v2/keys/: %d %q %v", r.code, r.h.Get("X-Etcd-Index"), err)
	}
	return n
}

// mark makes the current store index the base of relative indexes: the
// next write is index 1 in normalised bodies.
func (c *client) mark() { c.base = c.index() }

// rel converts an absolute index to one relative to the base.
func (c *client) rel(abs uint64) int64 { return int64(abs) - int64(c.base) }

var (
	reIndex   = regexp.MustCompile(`"(modifiedIndex|createdIndex|index)":(\d+)`)
	reInOrder = regexp.MustCompile(`/(\d{20})\b`)
	reExp     = regexp.MustCompile(`"expiration":"([^"]*)"`)
	reHistory = regexp.MustCompile(`cleared \[(\d+)/(\d+)\]`)
	reCmpIdx  = regexp.MustCompile(`\[(\d+) != (\d+)\]`)
	reAbs     = regexp.MustCompile(`\{(\d+)\}`)
)

// abs expands "{N}" in a target or form to the absolute index base+N, so
// scripts can send prevIndex and waitIndex values relative to their base.
func (c *client) abs(s string) string {
	return reAbs.ReplaceAllStringFunc(s, func(m string) string {
		n, _ := strconv.ParseUint(m[1:len(m)-1], 10, 64)
		return strconv.FormatUint(c.base+n, 10)
	})
}

// norm rewrites a body for comparison: indexes and in-order key names
// become relative to the base ("/#3"), expirations become "EXP" after
// checking they are RFC 3339 UTC timestamps.
func (c *client) norm(body string) string {
	c.t.Helper()
	body = reIndex.ReplaceAllStringFunc(body, func(m string) string {
		sub := reIndex.FindStringSubmatch(m)
		n, _ := strconv.ParseUint(sub[2], 10, 64)
		if n == 0 {
			return m
		}
		return fmt.Sprintf(`"%s":%d`, sub[1], c.rel(n))
	})
	body = reInOrder.ReplaceAllStringFunc(body, func(m string) string {
		n, _ := strconv.ParseUint(m[1:], 10, 64)
		return fmt.Sprintf("/#%d", c.rel(n))
	})
	body = reCmpIdx.ReplaceAllStringFunc(body, func(m string) string {
		sub := reCmpIdx.FindStringSubmatch(m)
		a, _ := strconv.ParseUint(sub[1], 10, 64)
		b, _ := strconv.ParseUint(sub[2], 10, 64)
		return fmt.Sprintf("[%d != %d]", c.rel(a), c.rel(b))
	})
	body = reExp.ReplaceAllStringFunc(body, func(m string) string {
		ts := reExp.FindStringSubmatch(m)[1]
		if tm, err := time.Parse(time.RFC3339Nano, ts); err != nil || !strings.HasSuffix(ts, "Z") || tm.Year() < 2000 {
			c.t.Errorf("expiration %q is not an RFC 3339 UTC time", ts)
		}
		return `"expiration":"EXP"`
	})
	return body
}

// relHeader returns a numeric index header relative to the base.
func (c *client) relHeader(r response, name string) int64 {
	c.t.Helper()
	n, err := strconv.ParseUint(r.h.Get(name), 10, 64)
	if err != nil {
		c.t.Fatalf("header %s = %q: %v", name, r.h.Get(name), err)
	}
	return c.rel(n)
}

// step is one request of a scripted scenario and its expected answer.
// body is compared after norm; "*" accepts any body.
type step struct {
	method, target, form string
	code                 int
	body                 string
}

// run executes steps in order, failing on the first mismatch of a step but
// continuing with the next ones so one run shows every difference.
func (c *client) run(steps []step) {
	c.t.Helper()
	for i, s := range steps {
		r := c.do(s.method, s.target, s.form)
		got := c.norm(r.body)
		if r.code != s.code || (s.body != "*" && got != s.body) {
			c.t.Errorf("step %d: %s %s %s\n got %d %s\nwant %d %s", i, s.method, s.target, s.form, r.code, got, s.code, s.body)
		}
	}
}

// expect checks one request's status and normalised body and returns it.
func (c *client) expect(method, target, form string, code int, body string) response {
	c.t.Helper()
	r := c.do(method, target, form)
	if got := c.norm(r.body); r.code != code || (body != "*" && got != body) {
		c.t.Errorf("%s %s %s\n got %d %s\nwant %d %s", method, target, form, r.code, got, code, body)
	}
	return r
}

// header asserts one header value ("" means absent).
func header(t *testing.T, r response, name, want string) {
	t.Helper()
	got, ok := r.h[http.CanonicalHeaderKey(name)]
	switch {
	case want == "" && ok:
		t.Errorf("header %s = %q, want absent", name, got)
	case want != "" && (len(got) != 1 || got[0] != want):
		t.Errorf("header %s = %q, want %q", name, got, want)
	}
}

// event is the decoded v2 event for tests that inspect fields.
type event struct {
	Action   string `json:"action"`
	Node     *node  `json:"node"`
	PrevNode *node  `json:"prevNode"`
}

type node struct {
	Key           string  `json:"key"`
	Value         *string `json:"value"`
	Dir           bool    `json:"dir"`
	Expiration    *string `json:"expiration"`
	TTL           int64   `json:"ttl"`
	Nodes         []*node `json:"nodes"`
	ModifiedIndex uint64  `json:"modifiedIndex"`
	CreatedIndex  uint64  `json:"createdIndex"`
}

func decodeEvent(t *testing.T, s string) event {
	t.Helper()
	var ev event
	if err := json.Unmarshal([]byte(s), &ev); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	return ev
}

// watchStream is an open watch request whose headers have arrived.
type watchStream struct {
	resp   *http.Response
	lines  chan string
	cancel context.CancelFunc
}

// watch starts GET target (a wait=true URL) and returns once the response
// headers arrived, i.e. once the server registered the watcher.
func (c *client) watch(target string) *watchStream {
	c.t.Helper()
	ctx, cancel := context.WithCancel(c.t.Context())
	req, err := http.NewRequestWithContext(ctx, "GET", c.s.ClientURL+c.abs(target), nil)
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := (&http.Client{}).Do(req) // no timeout: long poll
	if err != nil {
		cancel()
		c.t.Fatalf("watch %s: %v", target, err)
	}
	ws := &watchStream{resp: resp, lines: make(chan string, 1024), cancel: cancel}
	go func() {
		defer close(ws.lines)
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return
			}
			ws.lines <- string(raw)
		}
	}()
	c.t.Cleanup(ws.close)
	return ws
}

func (ws *watchStream) close() { ws.cancel() }

// next waits up to d for the next event line; ok is false on timeout or end.
func (ws *watchStream) next(d time.Duration) (string, bool) {
	select {
	case l, ok := <-ws.lines:
		return l, ok
	case <-time.After(d):
		return "", false
	}
}

// ended reports whether the body ended (within d) without another event.
func (ws *watchStream) ended(d time.Duration) bool {
	select {
	case _, ok := <-ws.lines:
		return !ok
	case <-time.After(d):
		return false
	}
}

// forms builds an urlencoded body from key/value pairs.
func forms(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v.Encode()
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// v2error is a decoded v2 error body.
type v2error struct {
	ErrorCode int    `json:"errorCode"`
	Message   string `json:"message"`
	Cause     string `json:"cause"`
	Index     uint64 `json:"index"`
}

func decodeError(t *testing.T, s string) v2error {
	t.Helper()
	var e v2error
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		t.Fatalf("decoding error %q: %v", s, err)
	}
	return e
}

// storeStat returns one counter of /v2/stats/store.
func storeStat(t *testing.T, c *client, name string) int64 {
	t.Helper()
	r := c.do("GET", "/v2/stats/store", "")
	var m map[string]int64
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("/v2/stats/store: %d %q: %v", r.code, r.body, err)
	}
	v, ok := m[name]
	if !ok {
		t.Fatalf("/v2/stats/store has no %q: %s", name, r.body)
	}
	return v
}

// StringValue returns the node's value or "".
func (n *node) StringValue() string {
	if n == nil || n.Value == nil {
		return ""
	}
	return *n.Value
}
