package v2http

import (
	"net/http"
	"net/http/httptest"
	"path"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/etcd/internal/etcdserver"
	"github.com/corekit/corekit/internal/v2api"
)

var testNow = time.Date(2026, 11, 21, 22, 9, 17, 123456789, time.UTC)

func boolp(b bool) *bool { return &b }

func newKeyRequest(t testing.TB, method, target, body string) *http.Request {
	t.Helper()
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return r
}

// TestParseKeyRequest checks each parameter rule of spec §1.13/§2.2 and the
// resulting etcdserver.Request.
func TestParseKeyRequest(t *testing.T) {
	tests := []struct {
		name, method, target, body string
		want                       keyRequest
	}{
		{"root", "GET", "/v2/keys", "", keyRequest{Request: etcdserver.Request{Method: "GET", Path: "/"}}},
		{"root slash", "GET", "/v2/keys/", "", keyRequest{Request: etcdserver.Request{Method: "GET", Path: "/"}}},
		{"trailing slash dropped", "PUT", "/v2/keys/foo/", "", keyRequest{Request: etcdserver.Request{Method: "PUT", Path: "/foo"}}},
		{"escaped slash is a level", "GET", "/v2/keys/a%2Fb", "", keyRequest{Request: etcdserver.Request{Method: "GET", Path: "/a/b"}}},
		{"value from body", "PUT", "/v2/keys/foo", "value=bar", keyRequest{Request: etcdserver.Request{Method: "PUT", Path: "/foo", Val: "bar"}}},
		{"body wins over query", "PUT", "/v2/keys/foo?value=q", "value=b", keyRequest{Request: etcdserver.Request{Method: "PUT", Path: "/foo", Val: "b"}}},
		{"first value wins", "PUT", "/v2/keys/foo?value=a&value=b", "", keyRequest{Request: etcdserver.Request{Method: "PUT", Path: "/foo", Val: "a"}}},
		{"delete body ignored", "DELETE", "/v2/keys/foo", "prevValue=x", keyRequest{Request: etcdserver.Request{Method: "DELETE", Path: "/foo"}}},
		{"ttl", "PUT", "/v2/keys/foo?ttl=5", "", keyRequest{Request: etcdserver.Request{Method: "PUT", Path: "/foo", Expiration: testNow.Add(5 * time.Second)}}},
		{"ttl empty is none", "PUT", "/v2/keys/foo?ttl=", "", keyRequest{Request: etcdserver.Request{Method: "PUT", Path: "/foo"}}},
		{"ttl zero is now", "PUT", "/v2/keys/foo?ttl=0", "", keyRequest{Request: etcdserver.Request{Method: "PUT", Path: "/foo", Expiration: testNow}}},
		{"bools", "GET", "/v2/keys/d?recursive=t&sorted=1&quorum=TRUE&wait=True&stream=true&waitIndex=9", "",
			keyRequest{Request: etcdserver.Request{Method: "GET", Path: "/d", Recursive: true, Sorted: true, Quorum: true, Wait: true, Stream: true, Since: 9}}},
		{"cas", "PUT", "/v2/keys/k?prevValue=a&prevIndex=3&prevExist=false&dir=F", "value=v",
			keyRequest{Request: etcdserver.Request{Method: "PUT", Path: "/k", Val: "v", PrevValue: "a", PrevIndex: 3, PrevExist: boolp(false)}}},
		{"refresh", "PUT", "/v2/keys/k?refresh=true&ttl=2&prevExist=true", "",
			keyRequest{Request: etcdserver.Request{Method: "PUT", Path: "/k", Refresh: true, PrevExist: boolp(true), Expiration: testNow.Add(2 * time.Second)}}},
		{"refresh false value ok", "PUT", "/v2/keys/k?refresh=false&value=x", "", keyRequest{Request: etcdserver.Request{Method: "PUT", Path: "/k", Val: "x"}}},
		{"noValueOnSuccess", "POST", "/v2/keys/q?noValueOnSuccess=true", "value=j", keyRequest{Request: etcdserver.Request{Method: "POST", Path: "/q", Val: "j"}, NoValueOnSuccess: true}},
		{"unknown params ignored", "GET", "/v2/keys/x?foo=bar", "", keyRequest{Request: etcdserver.Request{Method: "GET", Path: "/x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseKeyRequest(newKeyRequest(t, tt.method, tt.target, tt.body), testNow)
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestParseKeyRequestErrors checks the error code and cause of every
// rejected request, including which check wins when several fail.
func TestParseKeyRequestErrors(t *testing.T) {
	tests := []struct {
		name, method, target, body string
		code                       int
		cause                      string
	}{
		{"bad query escape", "GET", "/v2/keys/foo?value=%zz", "", 210, `invalid URL escape "%zz"`},
		{"bad body escape", "PUT", "/v2/keys/foo", "value=%", 210, `invalid URL escape "%"`},
		{"semicolon", "GET", "/v2/keys/foo?a=1;b=2", "", 210, "invalid semicolon separator in query"},
		{"prefix", "GET", "/v2/other", "", 210, "incorrect key prefix"},
		{"prevIndex", "PUT", "/v2/keys/foo?prevIndex=x", "", 203, `invalid value for "prevIndex"`},
		{"prevIndex negative", "PUT", "/v2/keys/foo?prevIndex=-1", "", 203, `invalid value for "prevIndex"`},
		{"prevIndex empty", "PUT", "/v2/keys/foo?prevIndex=", "", 203, `invalid value for "prevIndex"`},
		{"waitIndex", "GET", "/v2/keys/foo?wait=true&waitIndex=abc", "", 203, `invalid value for "waitIndex"`},
		{"prevIndex before waitIndex", "GET", "/v2/keys/foo?waitIndex=a&prevIndex=b", "", 203, `invalid value for "prevIndex"`},
		{"recursive", "GET", "/v2/keys/foo?recursive=yes", "", 209, `invalid value for "recursive"`},
		{"sorted", "GET", "/v2/keys/foo?sorted=2", "", 209, `invalid value for "sorted"`},
		{"wait", "GET", "/v2/keys/foo?wait=", "", 209, `invalid value for "wait"`},
		{"dir", "PUT", "/v2/keys/foo?dir=maybe", "", 209, `invalid value for "dir"`},
		{"quorum", "GET", "/v2/keys/foo?quorum=x", "", 209, `invalid value for "quorum"`},
		{"stream", "GET", "/v2/keys/foo?stream=x", "", 209, `invalid value for "stream"`},
		{"index before bools", "GET", "/v2/keys/foo?recursive=x&waitIndex=y", "", 203, `invalid value for "waitIndex"`},
		{"recursive before dir", "GET", "/v2/keys/foo?dir=x&recursive=y", "", 209, `invalid value for "recursive"`},
		{"wait on PUT", "PUT", "/v2/keys/foo?wait=true", "", 209, `"wait" can only be used with GET requests`},
		{"wait on HEAD", "HEAD", "/v2/keys/foo?wait=true", "", 209, `"wait" can only be used with GET requests`},
		{"empty prevValue", "PUT", "/v2/keys/foo?prevValue=", "", 201, `"prevValue" cannot be empty`},
		{"empty prevValue before ttl", "PUT", "/v2/keys/foo?prevValue=&ttl=x", "", 201, `"prevValue" cannot be empty`},
		{"noValueOnSuccess", "PUT", "/v2/keys/foo?noValueOnSuccess=x", "", 209, `invalid value for "noValueOnSuccess"`},
		{"ttl", "PUT", "/v2/keys/foo?ttl=abc", "", 202, `invalid value for "ttl"`},
		{"ttl negative", "PUT", "/v2/keys/foo?ttl=-1", "", 202, `invalid value for "ttl"`},
		{"ttl fraction", "PUT", "/v2/keys/foo?ttl=1.5", "", 202, `invalid value for "ttl"`},
		{"ttl overflow", "PUT", "/v2/keys/foo?ttl=18446744073709551615", "", 202, `invalid value for "ttl"`},
		{"ttl before prevExist", "PUT", "/v2/keys/foo?ttl=x&prevExist=x", "", 202, `invalid value for "ttl"`},
		{"prevExist", "PUT", "/v2/keys/foo?prevExist=maybe", "", 209, "invalid value for prevExist"},
		{"refresh", "PUT", "/v2/keys/foo?refresh=x", "", 209, "invalid value for refresh"},
		{"refresh with value", "PUT", "/v2/keys/foo?refresh=true&ttl=5", "value=x", 211, "A value was provided on a refresh"},
		{"refresh without ttl", "PUT", "/v2/keys/foo?refresh=true", "", 212, "No TTL value set"},
		{"refresh empty ttl", "PUT", "/v2/keys/foo?refresh=true&ttl=", "", 212, "No TTL value set"},
		{"prevExist before refresh", "PUT", "/v2/keys/foo?refresh=x&prevExist=y", "", 209, "invalid value for prevExist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newKeyRequest(t, tt.method, tt.target, tt.body)
			_, err := parseKeyRequest(r, testNow)
			if err == nil {
				t.Fatalf("no error, want %d", tt.code)
			}
			want := v2api.NewError(tt.code, tt.cause, 0)
			if *err != *want {
				t.Errorf("got %+v, want %+v", *err, *want)
			}
		})
	}
}

// TestParseKeyRequestHugeBody checks Go's 10 MiB form limit becomes 210.
func TestParseKeyRequestHugeBody(t *testing.T) {
	body := "value=" + strings.Repeat("a", 10<<20+1)
	_, err := parseKeyRequest(newKeyRequest(t, "PUT", "/v2/keys/big", body), testNow)
	if err == nil || err.ErrorCode != v2api.EcodeInvalidForm || err.Cause != "http: POST too large" {
		t.Fatalf("got %v, want 210 http: POST too large", err)
	}
}

// TestRootedClean: rootedClean is path.Join("/", p).
func TestRootedClean(t *testing.T) {
	for _, p := range []string{"", "/", "a", "/a", "//a", "/a/", "/a/../b", "a/./b", "/..", "..", "/a//b/", "/_x/y"} {
		if got, want := rootedClean(p), path.Join("/", p); got != want {
			t.Errorf("rootedClean(%q) = %q, want %q", p, got, want)
		}
	}
}
