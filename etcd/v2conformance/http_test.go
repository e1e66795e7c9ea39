package v2conformance

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
)

// TestHeaders checks the v2 headers on events, store errors, parse errors
// and HEAD.
func TestHeaders(t *testing.T) {
	etcdtest.ForEach(t, testHeaders)
}

func testHeaders(t *testing.T, s *etcdtest.Server) {
	settle(t, s)
	c := newClient(t, s)
	clusterID := c.do("GET", "/v2/members", "").h.Get("X-Etcd-Cluster-Id")
	if !regexp.MustCompile(`^[0-9a-f]{1,16}$`).MatchString(clusterID) {
		t.Fatalf("X-Etcd-Cluster-Id %q is not lowercase hex", clusterID)
	}
	r := c.expect("PUT", "/v2/keys/h/k", "value=v", 201, "*")
	header(t, r, "Content-Type", "application/json")
	header(t, r, "X-Etcd-Cluster-Id", clusterID)
	if got := c.relHeader(r, "X-Etcd-Index"); got != 1 {
		t.Errorf("X-Etcd-Index relative %d, want 1", got)
	}
	raft, err := strconv.ParseUint(r.h.Get("X-Raft-Index"), 10, 64)
	if err != nil || raft == 0 {
		t.Errorf("X-Raft-Index %q", r.h.Get("X-Raft-Index"))
	}
	if term, err := strconv.ParseUint(r.h.Get("X-Raft-Term"), 10, 64); err != nil || term == 0 {
		t.Errorf("X-Raft-Term %q", r.h.Get("X-Raft-Term"))
	}
	r2 := c.expect("PUT", "/v2/keys/h/k", "value=w", 200, "*")
	if raft2, _ := strconv.ParseUint(r2.h.Get("X-Raft-Index"), 10, 64); raft2 <= raft {
		t.Errorf("X-Raft-Index did not advance: %d then %d", raft, raft2)
	}

	g := c.expect("GET", "/v2/keys/h/k", "", 200, "*")
	if got := c.relHeader(g, "X-Etcd-Index"); got != 2 {
		t.Errorf("GET X-Etcd-Index relative %d, want 2 (current index)", got)
	}
	head := c.expect("HEAD", "/v2/keys/h/k", "", 200, "")
	for _, h := range []string{"Content-Type", "X-Etcd-Index", "X-Raft-Term", "X-Etcd-Cluster-Id"} {
		header(t, head, h, g.h.Get(h))
	}
	c.expect("HEAD", "/v2/keys/h/missing", "", 404, "")

	e := c.expect("GET", "/v2/keys/h/missing", "", 404, `{"errorCode":100,"message":"Key not found","cause":"/h/missing","index":2}`+nl)
	header(t, e, "X-Raft-Index", "")
	header(t, e, "X-Etcd-Cluster-Id", clusterID)
	header(t, e, "Content-Type", "application/json")
	if got := c.relHeader(e, "X-Etcd-Index"); got != 2 {
		t.Errorf("error X-Etcd-Index relative %d, want 2", got)
	}
	p := c.expect("PUT", "/v2/keys/h/k?ttl=abc", "", 400, "*")
	header(t, p, "X-Etcd-Index", "0")
	header(t, p, "X-Etcd-Cluster-Id", clusterID)
}

// TestMalformed sends bad parameters and bodies: each gets etcd's exact
// error, never a 500.
func TestMalformed(t *testing.T) {
	etcdtest.ForEach(t, testMalformed)
}

func testMalformed(t *testing.T, s *etcdtest.Server) {
	settle(t, s)
	c := newClient(t, s)
	e := func(code int, cause string) string {
		m := map[int]string{201: "PrevValue is Required in POST form", 202: "The given TTL in POST form is not a number", 203: "The given index in POST form is not a number",
			209: "Invalid field", 210: "Invalid POST form"}[code]
		cb, _ := json.Marshal(cause)
		return fmt.Sprintf(`{"errorCode":%d,"message":%q,"cause":%s,"index":0}`, code, m, cb) + nl
	}
	cases := []struct{ method, target, form, body string }{
		{"PUT", "/v2/keys/m?ttl=abc", "value=1", e(202, `invalid value for "ttl"`)},
		{"PUT", "/v2/keys/m", "ttl=-5", e(202, `invalid value for "ttl"`)},
		{"PUT", "/v2/keys/m?prevIndex=x", "", e(203, `invalid value for "prevIndex"`)},
		{"GET", "/v2/keys/m?wait=true&waitIndex=-1", "", e(203, `invalid value for "waitIndex"`)},
		{"PUT", "/v2/keys/m?dir=maybe", "", e(209, `invalid value for "dir"`)},
		{"GET", "/v2/keys/m?recursive=yes", "", e(209, `invalid value for "recursive"`)},
		{"GET", "/v2/keys/m?sorted=2", "", e(209, `invalid value for "sorted"`)},
		{"GET", "/v2/keys/m?quorum=x", "", e(209, `invalid value for "quorum"`)},
		{"GET", "/v2/keys/m?stream=x", "", e(209, `invalid value for "stream"`)},
		{"GET", "/v2/keys/m?wait=x", "", e(209, `invalid value for "wait"`)},
		{"PUT", "/v2/keys/m?prevExist=maybe", "", e(209, "invalid value for prevExist")},
		{"PUT", "/v2/keys/m?refresh=maybe", "", e(209, "invalid value for refresh")},
		{"PUT", "/v2/keys/m?wait=true", "", e(209, `"wait" can only be used with GET requests`)},
		{"DELETE", "/v2/keys/m?wait=true", "", e(209, `"wait" can only be used with GET requests`)},
		{"PUT", "/v2/keys/m?prevValue=", "value=1", e(201, `"prevValue" cannot be empty`)},
		{"DELETE", "/v2/keys/m?prevValue=", "", e(201, `"prevValue" cannot be empty`)},
		{"GET", "/v2/keys/m?value=%zz", "", e(210, `invalid URL escape "%zz"`)},
		{"PUT", "/v2/keys/m", "value=%", e(210, `invalid URL escape "%"`)},
		// First failing check wins (spec §1.13).
		{"PUT", "/v2/keys/m?ttl=x&prevIndex=y&dir=z", "", e(203, `invalid value for "prevIndex"`)},
		{"PUT", "/v2/keys/m?ttl=x&dir=z", "", e(209, `invalid value for "dir"`)},
		{"PUT", "/v2/keys/m?ttl=x&prevValue=", "", e(201, `"prevValue" cannot be empty`)},
		{"PUT", "/v2/keys/m?prevExist=x&ttl=y", "", e(202, `invalid value for "ttl"`)},
	}
	for _, tc := range cases {
		c.expect(tc.method, tc.target, tc.form, 400, tc.body)
	}
	t.Run("huge form body", func(t *testing.T) {
		r := c.doType("PUT", "/v2/keys/m", "value="+strings.Repeat("a", 10<<20+10), "application/x-www-form-urlencoded")
		if r.code != 400 || r.body != e(210, "http: POST too large") {
			t.Errorf("got %d %s", r.code, r.body)
		}
	})
	t.Run("bool spellings", func(t *testing.T) {
		for _, v := range []string{"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"} {
			c.expect("GET", "/v2/keys/?recursive="+url.QueryEscape(v), "", 200, "*")
		}
	})
}

// TestEndpoints covers the non-key endpoints and the routing edges.
func TestEndpoints(t *testing.T) {
	etcdtest.ForEach(t, testEndpoints)
}

func testEndpoints(t *testing.T, s *etcdtest.Server) {
	settle(t, s)
	c := newClient(t, s)
	t.Run("405", func(t *testing.T) {
		for _, tc := range []struct{ method, path, allow string }{
			{"PATCH", "/v2/keys/foo", "HEAD,GET,PUT,POST,DELETE"},
			{"PATCH", "/v2/members", "GET,POST,DELETE,PUT"},
			{"POST", "/v2/stats/store", "GET"},
			{"PUT", "/v2/stats/self", "GET"},
			{"DELETE", "/v2/stats/leader", "GET"},
			{"POST", "/version", "GET"},
			{"POST", "/health", "GET"},
			{"POST", "/v2/machines", "GET,HEAD"},
		} {
			r := c.expect(tc.method, tc.path, "", 405, "Method Not Allowed\n")
			header(t, r, "Allow", tc.allow)
			header(t, r, "Content-Type", "text/plain; charset=utf-8")
		}
	})
	t.Run("404 and OPTIONS", func(t *testing.T) {
		for _, p := range []string{"/nope", "/v2/leader", "/v2/peers", "/mod/v2/lock", "/v2/keysfoo", "/v2/stats"} {
			r := c.expect("GET", p, "", 404, "404 page not found\n")
			header(t, r, "Content-Type", "text/plain; charset=utf-8")
		}
		for _, p := range []string{"/nope", "/v2/keys/foo", "/v2/members"} {
			c.expect("OPTIONS", p, "", 200, "")
		}
	})
	t.Run("redirects", func(t *testing.T) {
		for _, tc := range []struct{ method, target, loc string }{
			{"GET", "/v2/keys/a//b", "/v2/keys/a/b"},
			{"GET", "/v2/keys/a/./b/", "/v2/keys/a/b/"},
			{"PUT", "/v2/keys/a/../b", "/v2/keys/b"},
			{"PUT", "/v2/keys/a/../../b?x=1", "/v2/b?x=1"},
			{"DELETE", "/v2/keys//x", "/v2/keys/x"},
		} {
			r := c.doRaw(tc.method, tc.target)
			if r.code != 301 || r.h.Get("Location") != tc.loc {
				t.Errorf("%s %s: %d Location %q, want 301 %q", tc.method, tc.target, r.code, r.h.Get("Location"), tc.loc)
			}
		}
		c.expect("GET", "/v2/keys/a", "", 404, "*") // the PUT was not executed
	})
	t.Run("version", func(t *testing.T) {
		r := c.expect("GET", "/version", "", 200, "*")
		header(t, r, "Content-Type", "application/json")
		if !regexp.MustCompile(`^\{"etcdserver":"\d+\.\d+\.\d+","etcdcluster":"\d+\.\d+\.0"\}$`).MatchString(r.body) {
			t.Errorf("/version body %q", r.body)
		}
	})
	t.Run("health", func(t *testing.T) {
		eventually(t, 10*time.Second, "/health 200", func() bool { return c.do("GET", "/health", "").code == 200 })
		c.expect("GET", "/health", "", 200, `{"health":"true"}`)
	})
	t.Run("machines", func(t *testing.T) {
		r := c.expect("GET", "/v2/machines", "", 200, s.ClientURL)
		header(t, r, "Content-Type", "text/plain; charset=utf-8")
		c.expect("HEAD", "/v2/machines", "", 200, "")
	})
	t.Run("stats", func(t *testing.T) {
		r := c.expect("GET", "/v2/stats/store", "", 200, "*")
		header(t, r, "Content-Type", "application/json")
		want := `^\{"getsSuccess":\d+,"getsFail":\d+,"setsSuccess":\d+,"setsFail":\d+,"deleteSuccess":\d+,"deleteFail":\d+,"updateSuccess":\d+,"updateFail":\d+,"createSuccess":\d+,"createFail":\d+,"compareAndSwapSuccess":\d+,"compareAndSwapFail":\d+,"compareAndDeleteSuccess":\d+,"compareAndDeleteFail":\d+,"expireCount":\d+,"watchers":\d+\}$`
		if !regexp.MustCompile(want).MatchString(r.body) {
			t.Errorf("/v2/stats/store body %q", r.body)
		}
		sets, fails, dels := storeStat(t, c, "setsSuccess"), storeStat(t, c, "getsFail"), storeStat(t, c, "deleteSuccess")
		c.expect("PUT", "/v2/keys/st/k", "value=1", 201, "*")
		c.expect("GET", "/v2/keys/st/none", "", 404, "*")
		c.expect("DELETE", "/v2/keys/st/k", "", 200, "*")
		if got := storeStat(t, c, "setsSuccess"); got != sets+1 {
			t.Errorf("setsSuccess %d -> %d, want +1", sets, got)
		}
		if got := storeStat(t, c, "getsFail"); got <= fails {
			t.Errorf("getsFail %d -> %d, want it to grow", fails, got)
		}
		if got := storeStat(t, c, "deleteSuccess"); got != dels+1 {
			t.Errorf("deleteSuccess %d -> %d, want +1", dels, got)
		}
		self := c.expect("GET", "/v2/stats/self", "", 200, "*")
		var sm map[string]any
		if err := json.Unmarshal([]byte(self.body), &sm); err != nil || sm["name"] != "default" || sm["state"] != "StateLeader" || strings.HasSuffix(self.body, "\n") {
			t.Errorf("/v2/stats/self %q (%v)", self.body, err)
		}
		lead := c.expect("GET", "/v2/stats/leader", "", 200, "*")
		if !regexp.MustCompile(`^\{"leader":"[0-9a-f]+","followers":\{\}\}$`).MatchString(lead.body) {
			t.Errorf("/v2/stats/leader %q", lead.body)
		}
	})
}

// doRaw sends a request without a body and without following redirects.
func (c *client) doRaw(method, target string) response {
	c.t.Helper()
	return c.doType(method, target, "", "")
}
