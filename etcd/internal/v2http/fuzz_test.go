package v2http

import (
	"net/http"
	"path"
	"strings"
	"testing"
)

// FuzzParseKeyRequest feeds arbitrary methods, targets, bodies and content
// types to the /v2/keys parser: it must never panic, every error must be a
// 2xx-series v2 error with index 0, and every accepted request must carry a
// clean absolute key path. Seeds live in testdata/fuzz/FuzzParseKeyRequest.
func FuzzParseKeyRequest(f *testing.F) {
	f.Add("PUT", "/v2/keys/foo?ttl=5&prevExist=true", "value=bar", "application/x-www-form-urlencoded")
	f.Add("GET", "/v2/keys/dir?wait=true&waitIndex=7&recursive=true&stream=1", "", "")
	f.Add("DELETE", "/v2/keys/a?prevValue=x&prevIndex=3", "dir=true", "application/x-www-form-urlencoded")
	f.Fuzz(func(t *testing.T, method, target, body, ctype string) {
		r, err := http.NewRequest(method, "http://127.0.0.1"+target, strings.NewReader(body))
		if err != nil {
			t.Skip()
		}
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		kr, perr := parseKeyRequest(r, testNow)
		if perr != nil {
			if perr.ErrorCode < 200 || perr.ErrorCode > 299 || perr.Index != 0 || perr.Message == "" {
				t.Fatalf("bad parse error %+v", *perr)
			}
			return
		}
		if kr.Path == "" || kr.Path[0] != '/' || path.Clean(kr.Path) != kr.Path {
			t.Fatalf("unclean path %q", kr.Path)
		}
		if kr.Method != r.Method {
			t.Fatalf("method %q, want %q", kr.Method, r.Method)
		}
		if kr.Wait && r.Method != http.MethodGet {
			t.Fatalf("wait accepted on %s", r.Method)
		}
		if kr.Refresh && (kr.Expiration.IsZero() || kr.Val != "") {
			t.Fatalf("refresh without ttl or with value: %+v", kr)
		}
	})
}
