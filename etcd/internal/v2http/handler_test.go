package v2http

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/etcd/internal/etcdserver"
	"github.com/corekit/corekit/internal/v2api"
)

func strp(s string) *string { return &s }

// serve runs one request through NewClientHandler with srv.
func serve(t *testing.T, srv etcdserver.Server, opts Options, method, target, body, ctype string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	w := httptest.NewRecorder()
	NewClientHandler(srv, opts).ServeHTTP(w, r)
	return w
}

type wantResp struct {
	code    int
	body    string
	headers map[string]string // "" value: header must be absent
}

func check(t *testing.T, w *httptest.ResponseRecorder, want wantResp) {
	t.Helper()
	if w.Code != want.code {
		t.Errorf("status %d, want %d (body %q)", w.Code, want.code, w.Body.String())
	}
	if w.Body.String() != want.body {
		t.Errorf("body %q\nwant %q", w.Body.String(), want.body)
	}
	for k, v := range want.headers {
		got, ok := w.Header()[http.CanonicalHeaderKey(k)]
		switch {
		case v == "" && ok:
			t.Errorf("header %s = %q, want absent", k, got)
		case v != "" && (len(got) != 1 || got[0] != v):
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

func TestKeysResponses(t *testing.T) {
	set := func(prev *v2api.Node) func(etcdserver.Request) (etcdserver.Response, error) {
		return func(r etcdserver.Request) (etcdserver.Response, error) {
			return etcdserver.Response{Event: &v2api.Event{Action: "set", Node: &v2api.Node{Key: r.Path, Value: strp(r.Val), ModifiedIndex: 8, CreatedIndex: 8}, PrevNode: prev}, EtcdIndex: 8, RaftIndex: 20, RaftTerm: 3}, nil
		}
	}
	fail := func(err error) func(etcdserver.Request) (etcdserver.Response, error) {
		return func(etcdserver.Request) (etcdserver.Response, error) { return etcdserver.Response{}, err }
	}
	okHeaders := map[string]string{"Content-Type": "application/json", "X-Etcd-Index": "8", "X-Raft-Index": "20", "X-Raft-Term": "3", "X-Etcd-Cluster-Id": "d1cfaf999eb97a2"}
	tests := []struct {
		name, method, target, body string
		do                         func(etcdserver.Request) (etcdserver.Response, error)
		want                       wantResp
	}{
		{"set new 201", "PUT", "/v2/keys/message", "value=Hello+world", set(nil), wantResp{201,
			`{"action":"set","node":{"key":"/message","value":"Hello world","modifiedIndex":8,"createdIndex":8}}` + "\n", okHeaders}},
		{"set existing 200", "PUT", "/v2/keys/m", "value=x", set(&v2api.Node{Key: "/m", Value: strp("o"), ModifiedIndex: 4, CreatedIndex: 4}), wantResp{200,
			`{"action":"set","node":{"key":"/m","value":"x","modifiedIndex":8,"createdIndex":8},"prevNode":{"key":"/m","value":"o","modifiedIndex":4,"createdIndex":4}}` + "\n", okHeaders}},
		{"noValueOnSuccess", "PUT", "/v2/keys/m?noValueOnSuccess=true", "value=x", set(nil), wantResp{201, `{"action":"set"}` + "\n", okHeaders}},
		{"store error", "GET", "/v2/keys/nope", "", fail(v2api.NewError(100, "/nope", 12)), wantResp{404,
			`{"errorCode":100,"message":"Key not found","cause":"/nope","index":12}` + "\n",
			map[string]string{"X-Etcd-Index": "12", "Content-Type": "application/json", "X-Raft-Index": "", "X-Etcd-Cluster-Id": "d1cfaf999eb97a2"}}},
		{"store error index filled", "GET", "/v2/keys/nope", "", fail(v2api.NewError(100, "/nope", 0)), wantResp{404,
			`{"errorCode":100,"message":"Key not found","cause":"/nope","index":42}` + "\n", map[string]string{"X-Etcd-Index": "42"}}},
		{"wrapped store error", "PUT", "/v2/keys/d", "", fail(errors.Join(v2api.NewError(102, "/d", 9))), wantResp{403,
			`{"errorCode":102,"message":"Not a file","cause":"/d","index":9}` + "\n", nil}},
		{"server error 300", "PUT", "/v2/keys/x", "", fail(etcdserver.ErrTimeout), wantResp{500,
			`{"errorCode":300,"message":"Raft Internal Error","cause":"etcdserver: request timed out","index":0}` + "\n", map[string]string{"X-Etcd-Index": "0"}}},
		{"parse error index 0", "PUT", "/v2/keys/x?ttl=abc", "", nil, wantResp{400,
			`{"errorCode":202,"message":"The given TTL in POST form is not a number","cause":"invalid value for \"ttl\"","index":0}` + "\n",
			map[string]string{"X-Etcd-Index": "0", "X-Etcd-Cluster-Id": "d1cfaf999eb97a2"}}},
		{"neither event nor watcher", "GET", "/v2/keys/x", "", func(etcdserver.Request) (etcdserver.Response, error) { return etcdserver.Response{}, nil }, wantResp{500,
			`{"errorCode":300,"message":"Raft Internal Error","cause":"received response with no Event/Watcher","index":0}` + "\n", nil}},
		{"405", "PATCH", "/v2/keys/foo", "", nil, wantResp{405, "Method Not Allowed\n",
			map[string]string{"Allow": "HEAD,GET,PUT,POST,DELETE", "X-Etcd-Cluster-Id": ""}}},
		{"html escaping", "PUT", "/v2/keys/h", "value=%3Ca%3E%26", set(nil), wantResp{201,
			`{"action":"set","node":{"key":"/h","value":"\u003ca\u003e\u0026","modifiedIndex":8,"createdIndex":8}}` + "\n", nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &fakeServer{do: tt.do, index: 42}
			w := serve(t, srv, Options{Now: func() time.Time { return testNow }}, tt.method, tt.target, tt.body, "application/x-www-form-urlencoded")
			check(t, w, tt.want)
		})
	}
}

// TestKeysRequestReachesServer checks the parsed request handed to Do.
func TestKeysRequestReachesServer(t *testing.T) {
	srv := &fakeServer{}
	w := serve(t, srv, Options{Now: func() time.Time { return testNow }}, "PUT", "/v2/keys/a/b?ttl=3&prevExist=true", "value=v", "application/x-www-form-urlencoded")
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	got := srv.lastRequest()
	want := etcdserver.Request{Method: "PUT", Path: "/a/b", Val: "v", PrevExist: boolp(true), Expiration: testNow.Add(3 * time.Second)}
	if got.Method != want.Method || got.Path != want.Path || got.Val != want.Val || !got.Expiration.Equal(want.Expiration) || got.PrevExist == nil || !*got.PrevExist {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestServeWatch(t *testing.T) {
	ev := func(i uint64) *v2api.Event {
		return &v2api.Event{Action: "set", Node: &v2api.Node{Key: "/w", Value: strp("v"), ModifiedIndex: i, CreatedIndex: i}}
	}
	line := func(i uint64) string {
		return `{"action":"set","node":{"key":"/w","value":"v","modifiedIndex":` + itoa(i) + `,"createdIndex":` + itoa(i) + "}}\n"
	}
	t.Run("one event then end", func(t *testing.T) {
		ch := make(chan *v2api.Event, 2)
		ch <- ev(5)
		ch <- ev(6)
		removed := 0
		w := httptest.NewRecorder()
		serveWatch(context.Background(), w, &bufPool{}, watch{events: ch, remove: func() { removed++ }, etcdIndex: 4, raftIndex: 9, raftTerm: 2})
		check(t, w, wantResp{200, line(5), map[string]string{"X-Etcd-Index": "4", "X-Raft-Index": "9", "X-Raft-Term": "2", "Content-Type": "application/json"}})
		if removed != 1 {
			t.Errorf("removed %d times, want 1", removed)
		}
	})
	t.Run("stream until closed", func(t *testing.T) {
		ch := make(chan *v2api.Event, 3)
		ch <- ev(5)
		ch <- ev(6)
		ch <- ev(7)
		close(ch)
		w := httptest.NewRecorder()
		serveWatch(context.Background(), w, &bufPool{}, watch{events: ch, remove: func() {}, stream: true})
		check(t, w, wantResp{200, line(5) + line(6) + line(7), nil})
	})
	t.Run("client gone", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		removed := make(chan struct{})
		w := httptest.NewRecorder()
		go func() {
			defer close(done)
			serveWatch(ctx, w, &bufPool{}, watch{events: make(chan *v2api.Event), remove: func() { close(removed) }, stream: true})
		}()
		cancel()
		<-done
		<-removed
		if !w.Flushed || w.Code != 200 || w.Body.Len() != 0 {
			t.Errorf("flushed=%v code=%d body=%q, want headers flushed, empty body", w.Flushed, w.Code, w.Body.String())
		}
	})
}

func itoa(i uint64) string { return strconv.FormatUint(i, 10) }

func TestMembers(t *testing.T) {
	ms := []v2api.Member{
		{ID: "bdae9bbc11dd390d", Name: "b", PeerURLs: []string{"http://127.0.0.1:2"}, ClientURLs: []string{"http://127.0.0.1:3"}},
		{ID: "1a", Name: "", PeerURLs: []string{"http://127.0.0.1:4"}},
	}
	const js = "application/json"
	tests := []struct {
		name                 string
		srv                  *fakeServer
		method, target, body string
		ctype                string
		want                 wantResp
	}{
		{"list sorted by id", &fakeServer{members: ms}, "GET", "/v2/members", "", "", wantResp{200,
			`{"members":[{"id":"1a","name":"","peerURLs":["http://127.0.0.1:4"],"clientURLs":[]},{"id":"bdae9bbc11dd390d","name":"b","peerURLs":["http://127.0.0.1:2"],"clientURLs":["http://127.0.0.1:3"]}]}` + "\n",
			map[string]string{"Content-Type": js, "X-Etcd-Cluster-Id": "d1cfaf999eb97a2"}}},
		{"empty list", &fakeServer{}, "GET", "/v2/members/", "", "", wantResp{200, `{"members":[]}` + "\n", nil}},
		{"leader", &fakeServer{members: ms, leader: 0x1a}, "GET", "/v2/members/leader", "", "", wantResp{200,
			`{"id":"1a","name":"","peerURLs":["http://127.0.0.1:4"],"clientURLs":[]}` + "\n", nil}},
		{"no leader", &fakeServer{members: ms, noLead: true}, "GET", "/v2/members/leader", "", "", wantResp{503, `{"message":"During election"}`, nil}},
		{"get other", &fakeServer{}, "GET", "/v2/members/abc", "", "", wantResp{404, `{"message":"Not found"}`, nil}},
		{"405", &fakeServer{}, "PATCH", "/v2/members", "", "", wantResp{405, "Method Not Allowed\n", map[string]string{"Allow": "GET,POST,DELETE,PUT", "X-Etcd-Cluster-Id": ""}}},
		{"add bad ctype", &fakeServer{}, "POST", "/v2/members", `{}`, "application/x-www-form-urlencoded", wantResp{415,
			`{"message":"Bad Content-Type application/x-www-form-urlencoded, accept application/json"}`, map[string]string{"Content-Type": js}}},
		{"add ctype params", &fakeServer{}, "POST", "/v2/members", `{"peerURLs":["http://127.0.0.1:9"]}`, "Application/JSON; charset=utf-8", wantResp{201,
			`{"id":"1234","name":"","peerURLs":["http://127.0.0.1:9"],"clientURLs":[]}` + "\n", nil}},
		{"add no urls", &fakeServer{}, "POST", "/v2/members", `{}`, js, wantResp{400, `{"message":"no valid URLs given"}`, nil}},
		{"add bad json", &fakeServer{}, "POST", "/v2/members", `xx`, js, wantResp{400, `{"message":"invalid character 'x' looking for beginning of value"}`, nil}},
		{"add bad scheme", &fakeServer{}, "POST", "/v2/members", `{"peerURLs":["ftp://a:1"]}`, js, wantResp{400, `{"message":"URL scheme must be http or https: ftp://a:1"}`, nil}},
		{"add no port", &fakeServer{}, "POST", "/v2/members", `{"peerURLs":["http://a"]}`, js, wantResp{400, `{"message":"URL address does not have the form \"host:port\": http://a"}`, nil}},
		{"add path", &fakeServer{}, "POST", "/v2/members", `{"peerURLs":["http://a:1/x"]}`, js, wantResp{400, `{"message":"URL must not contain a path: http://a:1/x"}`, nil}},
		{"add exists", &fakeServer{addErr: etcdserver.ErrPeerURLExists}, "POST", "/v2/members", `{"peerURLs":["http://a:1"]}`, js, wantResp{409, `{"message":"etcdserver: peerURL exists"}`, nil}},
		{"add timeout", &fakeServer{addErr: etcdserver.ErrTimeout}, "POST", "/v2/members", `{"peerURLs":["http://a:1"]}`, js, wantResp{500, `{"message":"Internal Server Error"}`, nil}},
		{"delete no id", &fakeServer{}, "DELETE", "/v2/members", "", "", wantResp{405, "Method Not Allowed\n", map[string]string{"Allow": "", "X-Etcd-Cluster-Id": "d1cfaf999eb97a2"}}},
		{"delete bad id", &fakeServer{}, "DELETE", "/v2/members/zz", "", "", wantResp{404, `{"message":"No such member: zz"}`, nil}},
		{"delete unknown", &fakeServer{rmErr: etcdserver.ErrIDNotFound}, "DELETE", "/v2/members/01234", "", "", wantResp{404, `{"message":"No such member: 1234"}`, nil}},
		{"delete removed", &fakeServer{rmErr: etcdserver.ErrIDRemoved}, "DELETE", "/v2/members/1234", "", "", wantResp{410, `{"message":"Member permanently removed: 1234"}`, nil}},
		{"delete ok", &fakeServer{}, "DELETE", "/v2/members/1234", "", "", wantResp{204, "", nil}},
		{"update ok", &fakeServer{}, "PUT", "/v2/members/1234", `{"peerURLs":["http://a:1"]}`, js, wantResp{204, "", nil}},
		{"update unknown", &fakeServer{updErr: etcdserver.ErrIDNotFound}, "PUT", "/v2/members/1234", `{"peerURLs":["http://a:1"]}`, js, wantResp{404, `{"message":"No such member: 1234"}`, nil}},
		{"update conflict", &fakeServer{updErr: etcdserver.ErrPeerURLExists}, "PUT", "/v2/members/1234", `{"peerURLs":["http://a:1"]}`, js, wantResp{409, `{"message":"etcdserver: peerURL exists"}`, nil}},
		{"update bad ctype", &fakeServer{}, "PUT", "/v2/members/1234", `{}`, "text/plain", wantResp{415, `{"message":"Bad Content-Type text/plain, accept application/json"}`, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, serve(t, tt.srv, Options{}, tt.method, tt.target, tt.body, tt.ctype), tt.want)
		})
	}
}

func TestInfoEndpoints(t *testing.T) {
	ms := []v2api.Member{{ID: "2", ClientURLs: []string{"http://b:1", "http://a:2"}}, {ID: "1", ClientURLs: []string{"http://c:3"}}}
	tests := []struct {
		name           string
		srv            *fakeServer
		opts           Options
		method, target string
		want           wantResp
	}{
		{"version", &fakeServer{}, Options{}, "GET", "/version", wantResp{200, `{"etcdserver":"2.3.8","etcdcluster":"2.3.0"}`, map[string]string{"Content-Type": "application/json"}}},
		{"version 405", &fakeServer{}, Options{}, "POST", "/version", wantResp{405, "Method Not Allowed\n", map[string]string{"Allow": "GET"}}},
		{"health", &fakeServer{healthy: true}, Options{}, "GET", "/health", wantResp{200, `{"health":"true"}`, nil}},
		{"unhealthy", &fakeServer{}, Options{}, "GET", "/health", wantResp{503, `{"health":"false"}` + "\n", map[string]string{"Content-Type": "text/plain; charset=utf-8"}}},
		{"machines", &fakeServer{members: ms}, Options{}, "GET", "/v2/machines", wantResp{200, "http://a:2, http://b:1, http://c:3", nil}},
		{"machines 405", &fakeServer{}, Options{}, "PUT", "/v2/machines", wantResp{405, "Method Not Allowed\n", map[string]string{"Allow": "GET,HEAD"}}},
		{"stats store", &fakeServer{}, Options{}, "GET", "/v2/stats/store", wantResp{200, `{"getsSuccess":1}`, map[string]string{"Content-Type": "application/json"}}},
		{"stats self", &fakeServer{}, Options{}, "GET", "/v2/stats/self", wantResp{200, `{"name":"default"}`, nil}},
		{"stats leader", &fakeServer{leaderStats: []byte(`{"leader":"1"}`)}, Options{}, "GET", "/v2/stats/leader", wantResp{200, `{"leader":"1"}`, nil}},
		{"stats not leader", &fakeServer{}, Options{}, "GET", "/v2/stats/leader", wantResp{403, `{"message":"not current leader"}`, nil}},
		{"stats 405", &fakeServer{}, Options{}, "DELETE", "/v2/stats/self", wantResp{405, "Method Not Allowed\n", map[string]string{"Allow": "GET"}}},
		{"unknown path", &fakeServer{}, Options{}, "GET", "/v2/leader", wantResp{404, "404 page not found\n", nil}},
		{"keys prefix lookalike", &fakeServer{}, Options{}, "GET", "/v2/keysfoo", wantResp{404, "404 page not found\n", nil}},
		{"redirect", &fakeServer{}, Options{}, "GET", "/v2/keys/a//b", wantResp{301, "<a href=\"/v2/keys/a/b\">Moved Permanently</a>.\n\n", map[string]string{"Location": "/v2/keys/a/b"}}},
		{"redirect dots keeps query", &fakeServer{}, Options{}, "PUT", "/v2/keys/a/../b/?x=1", wantResp{301, "", map[string]string{"Location": "/v2/keys/b/?x=1"}}},
		{"redirect escaped dots", &fakeServer{}, Options{}, "GET", "/v2/keys/%2E%2E/b", wantResp{301, "*", map[string]string{"Location": "/v2/b"}}},
		{"options anywhere", &fakeServer{}, Options{}, "OPTIONS", "/nowhere", wantResp{200, "", map[string]string{"Access-Control-Allow-Origin": ""}}},
		{"cors star", &fakeServer{}, Options{CORS: []string{"*"}}, "OPTIONS", "/v2/keys", wantResp{200, "", map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, GET, OPTIONS, PUT, DELETE"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, tt.srv, tt.opts, tt.method, tt.target, "", "")
			if tt.want.body == "*" {
				tt.want.body = w.Body.String()
			}
			check(t, w, tt.want)
		})
	}
}

func TestCORSOrigin(t *testing.T) {
	h := NewClientHandler(&fakeServer{}, Options{CORS: []string{"http://ok.example"}})
	for origin, want := range map[string]string{"http://ok.example": "http://ok.example", "http://evil.example": ""} {
		r := httptest.NewRequest("GET", "/version", nil)
		r.Header.Set("Origin", origin)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("origin %s: Access-Control-Allow-Origin %q, want %q", origin, got, want)
		}
	}
}

// TestRecover checks a panicking server yields a logged 500, not a crash.
func TestRecover(t *testing.T) {
	srv := &fakeServer{do: func(etcdserver.Request) (etcdserver.Response, error) { panic("boom") }}
	w := serve(t, srv, Options{}, "GET", "/v2/keys/x", "", "")
	check(t, w, wantResp{500, `{"message":"Internal Server Error"}`, nil})
}

// TestHead checks HEAD answers GET's status and headers without a body,
// through a real HTTP server (a recorder keeps bodies).
func TestHead(t *testing.T) {
	srv := &fakeServer{}
	ts := httptest.NewServer(NewClientHandler(srv, Options{}))
	defer ts.Close()
	resp, err := http.Head(ts.URL + "/v2/keys/m")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || len(b) != 0 || resp.Header.Get("X-Etcd-Index") != "7" || resp.Header.Get("X-Raft-Term") != "2" {
		t.Errorf("HEAD: %d %q headers %v", resp.StatusCode, b, resp.Header)
	}
	if got := srv.lastRequest().Method; got != "HEAD" {
		t.Errorf("server saw %s, want HEAD", got)
	}
}
