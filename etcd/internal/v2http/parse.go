package v2http

import (
	"math"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/corekit/corekit/etcd/internal/etcdserver"
	"github.com/corekit/corekit/internal/v2api"
)

const keysPrefix = "/v2/keys"

// keyRequest is a parsed /v2/keys request: what the server executes plus
// the options that only shape the HTTP response.
type keyRequest struct {
	etcdserver.Request
	// NoValueOnSuccess (etcd 3.4) drops node and prevNode from the answers
	// to set, create, update and compareAndSwap.
	NoValueOnSuccess bool
}

// maxTTL is the largest ttl whose duration fits in time.Duration. etcd
// silently overflows beyond it; we answer 202 instead (deliberate fix).
const maxTTL = uint64(math.MaxInt64 / int64(time.Second))

// parseKeyRequest turns a /v2/keys request into a keyRequest, checking the
// parameters in etcd's order so that the first failing check decides the
// error (spec §1.13). Parameters come from the query and, for PUT and POST,
// from a form body, which takes precedence; when a name repeats the first
// value wins. ttl becomes an absolute expiration now+ttl.
//
// Every error is a *v2api.Error with a 2xx code and index 0. It reads the
// request body (ParseForm) and nothing else.
func parseKeyRequest(r *http.Request, now time.Time) (keyRequest, *v2api.Error) {
	if err := r.ParseForm(); err != nil {
		return keyRequest{}, v2api.NewError(v2api.EcodeInvalidForm, err.Error(), 0)
	}
	return parseKeyForm(r.Method, r.URL.Path, r.Form, now)
}

// parseKeyForm is parseKeyRequest after form parsing: a pure function of the
// method, the URL path, the merged form values and the clock reading.
func parseKeyForm(method, urlPath string, form url.Values, now time.Time) (keyRequest, *v2api.Error) {
	fail := func(code int, cause string) (keyRequest, *v2api.Error) {
		return keyRequest{}, v2api.NewError(code, cause, 0)
	}
	if !strings.HasPrefix(urlPath, keysPrefix) {
		return fail(v2api.EcodeInvalidForm, "incorrect key prefix")
	}
	var kr keyRequest
	rr := &kr.Request
	rr.Method = method
	rr.Path = rootedClean(urlPath[len(keysPrefix):])

	var ok bool
	if rr.PrevIndex, ok = formUint(form, "prevIndex"); !ok {
		return fail(v2api.EcodeIndexNaN, `invalid value for "prevIndex"`)
	}
	if rr.Since, ok = formUint(form, "waitIndex"); !ok {
		return fail(v2api.EcodeIndexNaN, `invalid value for "waitIndex"`)
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{
		{"recursive", &rr.Recursive},
		{"sorted", &rr.Sorted},
		{"wait", &rr.Wait},
		{"dir", &rr.Dir},
		{"quorum", &rr.Quorum},
		{"stream", &rr.Stream},
	} {
		if *b.dst, ok = formBool(form, b.name); !ok {
			return fail(v2api.EcodeInvalidField, `invalid value for "`+b.name+`"`)
		}
	}
	if rr.Wait && method != http.MethodGet {
		return fail(v2api.EcodeInvalidField, `"wait" can only be used with GET requests`)
	}
	rr.PrevValue = form.Get("prevValue")
	if _, present := form["prevValue"]; present && rr.PrevValue == "" {
		return fail(v2api.EcodePrevValueRequired, `"prevValue" cannot be empty`)
	}
	if kr.NoValueOnSuccess, ok = formBool(form, "noValueOnSuccess"); !ok {
		return fail(v2api.EcodeInvalidField, `invalid value for "noValueOnSuccess"`)
	}
	// ttl is nullable: absent or empty means no TTL; ttl=0 means "now".
	hasTTL := form.Get("ttl") != ""
	if hasTTL {
		ttl, err := strconv.ParseUint(form["ttl"][0], 10, 64)
		if err != nil || ttl > maxTTL {
			return fail(v2api.EcodeTTLNaN, `invalid value for "ttl"`)
		}
		rr.Expiration = now.Add(time.Duration(ttl) * time.Second)
	}
	if _, present := form["prevExist"]; present {
		pe, ok := formBool(form, "prevExist")
		if !ok {
			return fail(v2api.EcodeInvalidField, "invalid value for prevExist")
		}
		rr.PrevExist = &pe
	}
	if _, present := form["refresh"]; present {
		if rr.Refresh, ok = formBool(form, "refresh"); !ok {
			return fail(v2api.EcodeInvalidField, "invalid value for refresh")
		}
		if rr.Refresh {
			if form.Get("value") != "" {
				return fail(v2api.EcodeRefreshValue, "A value was provided on a refresh")
			}
			if !hasTTL {
				return fail(v2api.EcodeRefreshTTLRequired, "No TTL value set")
			}
		}
	}
	rr.Val = form.Get("value")
	return kr, nil
}

// formUint reads an optional unsigned decimal; absent is 0. Only the first
// value counts, and an empty value is an error, as in etcd.
func formUint(form url.Values, name string) (uint64, bool) {
	vs, present := form[name]
	if !present {
		return 0, true
	}
	v, err := strconv.ParseUint(vs[0], 10, 64)
	return v, err == nil
}

// formBool reads an optional strconv.ParseBool value; absent is false.
func formBool(form url.Values, name string) (bool, bool) {
	vs, present := form[name]
	if !present {
		return false, true
	}
	v, err := strconv.ParseBool(vs[0])
	return v, err == nil
}

// rootedClean is path.Join("/", p) without the concatenation when p already
// starts with '/' (then path.Clean returns p itself if it is clean).
func rootedClean(p string) string {
	if p == "" || p[0] != '/' {
		return path.Join("/", p)
	}
	return path.Clean(p)
}
