package v2conformance

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
)

// TestMembers covers /v2/members reads and every rejection that leaves a
// single-member cluster intact (a successful add would stall its quorum).
func TestMembers(t *testing.T) {
	etcdtest.ForEach(t, testMembers)
}

func testMembers(t *testing.T, s *etcdtest.Server) {
	settle(t, s)
	c := newClient(t, s)
	member := fmt.Sprintf(`\{"id":"([0-9a-f]+)","name":"default","peerURLs":\["%s"\],"clientURLs":\["%s"\]\}`, regexp.QuoteMeta(s.PeerURL), regexp.QuoteMeta(s.ClientURL))
	for _, p := range []string{"/v2/members", "/v2/members/"} {
		r := c.expect("GET", p, "", 200, "*")
		header(t, r, "Content-Type", "application/json")
		if !regexp.MustCompile(`^\{"members":\[` + member + `\]\}` + "\n$").MatchString(r.body) {
			t.Errorf("GET %s: %q", p, r.body)
		}
	}
	// A fresh member may still be electing itself: 503 "During election".
	eventually(t, 10*time.Second, "a leader in /v2/members/leader", func() bool {
		r := c.do("GET", "/v2/members/leader", "")
		if r.code == 503 && r.body != `{"message":"During election"}` {
			t.Errorf("503 body %q", r.body)
		}
		return r.code != 503
	})
	r := c.expect("GET", "/v2/members/leader", "", 200, "*")
	if !regexp.MustCompile("^" + member + "\n$").MatchString(r.body) {
		t.Errorf("GET /v2/members/leader: %q", r.body)
	}
	c.expect("GET", "/v2/members/abc", "", 404, `{"message":"Not found"}`)

	const js = "application/json"
	for _, tc := range []struct {
		method, path, body, ctype string
		code                      int
		want                      string // "" = only the status and {"message"} shape
	}{
		{"POST", "/v2/members", `{}`, "application/x-www-form-urlencoded", 415, `{"message":"Bad Content-Type application/x-www-form-urlencoded, accept application/json"}`},
		{"POST", "/v2/members", `{}`, "text/plain; charset=utf-8", 415, `{"message":"Bad Content-Type text/plain, accept application/json"}`},
		{"POST", "/v2/members", `{}`, js, 400, `{"message":"no valid URLs given"}`},
		{"POST", "/v2/members", `{"peerURLs":[]}`, js, 400, `{"message":"no valid URLs given"}`},
		{"POST", "/v2/members", `xx`, js, 400, `{"message":"invalid character 'x' looking for beginning of value"}`},
		{"POST", "/v2/members", `{"peerURLs":["http://127.0.0.1"]}`, js, 400, `{"message":"URL address does not have the form \"host:port\": http://127.0.0.1"}`},
		{"POST", "/v2/members", `{"peerURLs":["http://127.0.0.1:1/p"]}`, js, 400, `{"message":"URL must not contain a path: http://127.0.0.1:1/p"}`},
		{"POST", "/v2/members", `{"peerURLs":["ftp://127.0.0.1:1"]}`, js, 400, ""},
		{"POST", "/v2/members", `{"peerURLs":["` + s.PeerURL + `"]}`, js, 409, ""},
		{"DELETE", "/v2/members/zz", "", "", 404, `{"message":"No such member: zz"}`},
		{"DELETE", "/v2/members/01234", "", "", 404, `{"message":"No such member: 1234"}`},
		{"PUT", "/v2/members/1234", `{"peerURLs":["http://127.0.0.1:1"]}`, js, 404, `{"message":"No such member: 1234"}`},
		{"PUT", "/v2/members/1234", `{}`, "text/plain", 415, `{"message":"Bad Content-Type text/plain, accept application/json"}`},
	} {
		r := c.doType(tc.method, tc.path, tc.body, tc.ctype)
		ok := r.code == tc.code && (r.body == tc.want || tc.want == "" && regexp.MustCompile(`^\{"message":"[^"]+"\}$`).MatchString(r.body))
		if !ok {
			t.Errorf("%s %s %s: got %d %s, want %d %s", tc.method, tc.path, tc.body, r.code, r.body, tc.code, tc.want)
		}
		header(t, r, "Content-Type", "application/json")
	}
	r = c.doRaw("DELETE", "/v2/members")
	if r.code != 405 || r.body != "Method Not Allowed\n" {
		t.Errorf("DELETE /v2/members: %d %q", r.code, r.body)
	}
	header(t, r, "Allow", "")
}
