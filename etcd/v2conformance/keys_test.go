package v2conformance

import (
	"regexp"
	"strings"
	"testing"

	"github.com/corekit/corekit/internal/etcdtest"
)

const nl = "\n"

// keyScenarios are request scripts with the exact (normalised) answers of
// etcd: each starts from its own base index, so index 1 is its first write.
var keyScenarios = []struct {
	name  string
	steps []step
}{
	{"set get update create delete", []step{
		{"PUT", "/v2/keys/crud/message", "value=Hello+world", 201, `{"action":"set","node":{"key":"/crud/message","value":"Hello world","modifiedIndex":1,"createdIndex":1}}` + nl},
		{"GET", "/v2/keys/crud/message", "", 200, `{"action":"get","node":{"key":"/crud/message","value":"Hello world","modifiedIndex":1,"createdIndex":1}}` + nl},
		{"PUT", "/v2/keys/crud/message", "value=two", 200, `{"action":"set","node":{"key":"/crud/message","value":"two","modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/crud/message","value":"Hello world","modifiedIndex":1,"createdIndex":1}}` + nl},
		{"PUT", "/v2/keys/crud/message?prevExist=true", "value=three", 200, `{"action":"update","node":{"key":"/crud/message","value":"three","modifiedIndex":3,"createdIndex":2},"prevNode":{"key":"/crud/message","value":"two","modifiedIndex":2,"createdIndex":2}}` + nl},
		{"PUT", "/v2/keys/crud/message?prevExist=false", "value=x", 412, `{"errorCode":105,"message":"Key already exists","cause":"/crud/message","index":3}` + nl},
		{"PUT", "/v2/keys/crud/new?prevExist=false", "value=n", 201, `{"action":"create","node":{"key":"/crud/new","value":"n","modifiedIndex":4,"createdIndex":4}}` + nl},
		{"PUT", "/v2/keys/crud/missing?prevExist=true", "value=x", 404, `{"errorCode":100,"message":"Key not found","cause":"/crud/missing","index":4}` + nl},
		{"DELETE", "/v2/keys/crud/message", "", 200, `{"action":"delete","node":{"key":"/crud/message","modifiedIndex":5,"createdIndex":2},"prevNode":{"key":"/crud/message","value":"three","modifiedIndex":3,"createdIndex":2}}` + nl},
		{"GET", "/v2/keys/crud/message", "", 404, `{"errorCode":100,"message":"Key not found","cause":"/crud/message","index":5}` + nl},
		{"DELETE", "/v2/keys/crud/message", "", 404, `{"errorCode":100,"message":"Key not found","cause":"/crud/message","index":5}` + nl},
		{"PUT", "/v2/keys/crud/empty", "", 201, `{"action":"set","node":{"key":"/crud/empty","value":"","modifiedIndex":6,"createdIndex":6}}` + nl},
		{"PUT", "/v2/keys/crud/json", `{"value":"x"}`, 201, `{"action":"set","node":{"key":"/crud/json","value":"","modifiedIndex":7,"createdIndex":7}}` + nl},
		{"GET", "/v2/keys/crud/a/b/c", "", 404, `{"errorCode":100,"message":"Key not found","cause":"/crud/a","index":7}` + nl},
		{"PUT", "/v2/keys/crud/new/child", "value=x", 400, `{"errorCode":104,"message":"Not a directory","cause":"/crud/new","index":7}` + nl},
		{"GET", "/v2/keys/crud/new/child", "", 400, `{"errorCode":104,"message":"Not a directory","cause":"/crud/new","index":7}` + nl},
		{"PUT", "/v2/keys/crud/trail/", "value=t", 201, `{"action":"set","node":{"key":"/crud/trail","value":"t","modifiedIndex":8,"createdIndex":8}}` + nl},
		{"GET", "/v2/keys/crud/new?quorum=true", "", 200, `{"action":"get","node":{"key":"/crud/new","value":"n","modifiedIndex":4,"createdIndex":4}}` + nl},
		{"GET", "/v2/keys/crud/new?quorum=true&wait=true", "", 200, `{"action":"get","node":{"key":"/crud/new","value":"n","modifiedIndex":4,"createdIndex":4}}` + nl},
		{"PUT", "/v2/keys/crud/nv?noValueOnSuccess=true", "value=1", 201, `{"action":"set"}` + nl},
		{"PUT", "/v2/keys/crud/nv?noValueOnSuccess=true&prevExist=true", "value=2", 200, `{"action":"update"}` + nl},
		{"DELETE", "/v2/keys/crud/nv?noValueOnSuccess=true", "", 200, `{"action":"delete","node":{"key":"/crud/nv","modifiedIndex":11,"createdIndex":9},"prevNode":{"key":"/crud/nv","value":"2","modifiedIndex":10,"createdIndex":9}}` + nl},
	}},
	{"compare and swap, compare and delete", []step{
		{"PUT", "/v2/keys/cas/k", "value=one", 201, `{"action":"set","node":{"key":"/cas/k","value":"one","modifiedIndex":1,"createdIndex":1}}` + nl},
		{"PUT", "/v2/keys/cas/k?prevValue=one", "value=two", 200, `{"action":"compareAndSwap","node":{"key":"/cas/k","value":"two","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/cas/k","value":"one","modifiedIndex":1,"createdIndex":1}}` + nl},
		{"PUT", "/v2/keys/cas/k?prevValue=nope", "value=x", 412, `{"errorCode":101,"message":"Compare failed","cause":"[nope != two]","index":2}` + nl},
		{"PUT", "/v2/keys/cas/k?prevIndex={1}", "value=x", 412, `{"errorCode":101,"message":"Compare failed","cause":"[1 != 2]","index":2}` + nl},
		{"PUT", "/v2/keys/cas/k?prevValue=nope&prevIndex={1}", "value=x", 412, `{"errorCode":101,"message":"Compare failed","cause":"[nope != two] [1 != 2]","index":2}` + nl},
		{"PUT", "/v2/keys/cas/k", "prevIndex={2}&value=three", 200, `{"action":"compareAndSwap","node":{"key":"/cas/k","value":"three","modifiedIndex":3,"createdIndex":1},"prevNode":{"key":"/cas/k","value":"two","modifiedIndex":2,"createdIndex":1}}` + nl},
		{"PUT", "/v2/keys/cas/k?prevIndex=0", "value=four", 200, `{"action":"set","node":{"key":"/cas/k","value":"four","modifiedIndex":4,"createdIndex":4},"prevNode":{"key":"/cas/k","value":"three","modifiedIndex":3,"createdIndex":1}}` + nl},
		{"PUT", "/v2/keys/cas/k?prevExist=true&prevValue=four", "value=five", 200, `{"action":"compareAndSwap","node":{"key":"/cas/k","value":"five","modifiedIndex":5,"createdIndex":4},"prevNode":{"key":"/cas/k","value":"four","modifiedIndex":4,"createdIndex":4}}` + nl},
		{"PUT", "/v2/keys/cas/missing?prevValue=a", "value=b", 404, `{"errorCode":100,"message":"Key not found","cause":"/cas/missing","index":5}` + nl},
		{"DELETE", "/v2/keys/cas/k?prevValue=bad", "", 412, `{"errorCode":101,"message":"Compare failed","cause":"[bad != five]","index":5}` + nl},
		{"DELETE", "/v2/keys/cas/k?prevIndex={5}", "", 200, `{"action":"compareAndDelete","node":{"key":"/cas/k","modifiedIndex":6,"createdIndex":4},"prevNode":{"key":"/cas/k","value":"five","modifiedIndex":5,"createdIndex":4}}` + nl},
		{"PUT", "/v2/keys/cas/d?dir=true", "", 201, `{"action":"set","node":{"key":"/cas/d","dir":true,"modifiedIndex":7,"createdIndex":7}}` + nl},
		{"PUT", "/v2/keys/cas/d?prevValue=x", "value=y", 403, `{"errorCode":102,"message":"Not a file","cause":"/cas/d","index":7}` + nl},
		{"PUT", "/v2/keys/cas/z", "value=z", 201, "*"},
		// DELETE bodies are ignored: this is an unconditional delete.
		{"DELETE", "/v2/keys/cas/z", "prevValue=nomatch", 200, `{"action":"delete","node":{"key":"/cas/z","modifiedIndex":9,"createdIndex":8},"prevNode":{"key":"/cas/z","value":"z","modifiedIndex":8,"createdIndex":8}}` + nl},
	}},
	{"directories and hidden keys", []step{
		{"PUT", "/v2/keys/dirs/d?dir=true", "", 201, `{"action":"set","node":{"key":"/dirs/d","dir":true,"modifiedIndex":1,"createdIndex":1}}` + nl},
		{"PUT", "/v2/keys/dirs/d?dir=true", "", 403, `{"errorCode":102,"message":"Not a file","cause":"/dirs/d","index":1}` + nl},
		{"PUT", "/v2/keys/dirs/d", "value=x", 403, `{"errorCode":102,"message":"Not a file","cause":"/dirs/d","index":1}` + nl},
		{"PUT", "/v2/keys/dirs/d/a", "value=1", 201, "*"},
		{"PUT", "/v2/keys/dirs/d/_hidden", "value=h", 201, "*"},
		{"PUT", "/v2/keys/dirs/d/sub/b", "value=2", 201, "*"},
		{"GET", "/v2/keys/dirs/d?sorted=true", "", 200, `{"action":"get","node":{"key":"/dirs/d","dir":true,"nodes":[{"key":"/dirs/d/a","value":"1","modifiedIndex":2,"createdIndex":2},{"key":"/dirs/d/sub","dir":true,"modifiedIndex":4,"createdIndex":4}],"modifiedIndex":1,"createdIndex":1}}` + nl},
		{"GET", "/v2/keys/dirs/d?sorted=true&recursive=true", "", 200, `{"action":"get","node":{"key":"/dirs/d","dir":true,"nodes":[{"key":"/dirs/d/a","value":"1","modifiedIndex":2,"createdIndex":2},{"key":"/dirs/d/sub","dir":true,"nodes":[{"key":"/dirs/d/sub/b","value":"2","modifiedIndex":4,"createdIndex":4}],"modifiedIndex":4,"createdIndex":4}],"modifiedIndex":1,"createdIndex":1}}` + nl},
		{"GET", "/v2/keys/dirs/d/_hidden", "", 200, `{"action":"get","node":{"key":"/dirs/d/_hidden","value":"h","modifiedIndex":3,"createdIndex":3}}` + nl},
		{"DELETE", "/v2/keys/dirs/d", "", 403, `{"errorCode":102,"message":"Not a file","cause":"/dirs/d","index":4}` + nl},
		{"DELETE", "/v2/keys/dirs/d?dir=true", "", 403, `{"errorCode":108,"message":"Directory not empty","cause":"/dirs/d","index":4}` + nl},
		{"DELETE", "/v2/keys/dirs/d?recursive=true", "", 200, `{"action":"delete","node":{"key":"/dirs/d","dir":true,"modifiedIndex":5,"createdIndex":1},"prevNode":{"key":"/dirs/d","dir":true,"modifiedIndex":1,"createdIndex":1}}` + nl},
		{"PUT", "/v2/keys/dirs/e?dir=true", "", 201, "*"},
		{"GET", "/v2/keys/dirs/e", "", 200, `{"action":"get","node":{"key":"/dirs/e","dir":true,"modifiedIndex":6,"createdIndex":6}}` + nl},
		{"DELETE", "/v2/keys/dirs/e?dir=true", "", 200, `{"action":"delete","node":{"key":"/dirs/e","dir":true,"modifiedIndex":7,"createdIndex":6},"prevNode":{"key":"/dirs/e","dir":true,"modifiedIndex":6,"createdIndex":6}}` + nl},
		{"PUT", "/v2/keys/dirs/f", "value=1", 201, "*"},
		{"DELETE", "/v2/keys/dirs/f?dir=true", "", 200, "*"},
		{"PUT", "/v2/keys/", "value=x", 400, `{"errorCode":107,"message":"Root is read only","cause":"/","index":9}` + nl},
		{"DELETE", "/v2/keys/?recursive=true", "", 400, `{"errorCode":107,"message":"Root is read only","cause":"/","index":9}` + nl},
		{"POST", "/v2/keys", "value=x", 201, "*"}, // in-order key under the root is fine
	}},
	{"in-order keys", []step{
		{"POST", "/v2/keys/queue", "value=Job1", 201, `{"action":"create","node":{"key":"/queue/#1","value":"Job1","modifiedIndex":1,"createdIndex":1}}` + nl},
		{"POST", "/v2/keys/queue?value=Job2", "", 201, `{"action":"create","node":{"key":"/queue/#2","value":"Job2","modifiedIndex":2,"createdIndex":2}}` + nl},
		{"GET", "/v2/keys/queue?sorted=true", "", 200, `{"action":"get","node":{"key":"/queue","dir":true,"nodes":[{"key":"/queue/#1","value":"Job1","modifiedIndex":1,"createdIndex":1},{"key":"/queue/#2","value":"Job2","modifiedIndex":2,"createdIndex":2}],"modifiedIndex":1,"createdIndex":1}}` + nl},
		{"POST", "/v2/keys/queue?dir=true", "", 201, `{"action":"create","node":{"key":"/queue/#3","dir":true,"modifiedIndex":3,"createdIndex":3}}` + nl},
		{"PUT", "/v2/keys/qfile", "value=x", 201, "*"},
		{"POST", "/v2/keys/qfile", "value=y", 400, `{"errorCode":104,"message":"Not a directory","cause":"/qfile","index":4}` + nl},
		{"POST", "/v2/keys/queue?prevExist=false&prevValue=zz", "value=J", 201, `{"action":"create","node":{"key":"/queue/#5","value":"J","modifiedIndex":5,"createdIndex":5}}` + nl},
	}},
	{"key names", []step{
		{"PUT", "/v2/keys/names/a%20b", "value=%3C%26%3E", 201, `{"action":"set","node":{"key":"/names/a b","value":"\u003c\u0026\u003e","modifiedIndex":1,"createdIndex":1}}` + nl},
		{"PUT", "/v2/keys/names/x%2Fy", "value=1", 201, `{"action":"set","node":{"key":"/names/x/y","value":"1","modifiedIndex":2,"createdIndex":2}}` + nl},
		{"GET", "/v2/keys/names/x", "", 200, `{"action":"get","node":{"key":"/names/x","dir":true,"nodes":[{"key":"/names/x/y","value":"1","modifiedIndex":2,"createdIndex":2}],"modifiedIndex":2,"createdIndex":2}}` + nl},
		{"PUT", "/v2/keys/names/%C3%A9:t", "value=%E2%9C%93", 201, `{"action":"set","node":{"key":"/names/é:t","value":"✓","modifiedIndex":3,"createdIndex":3}}` + nl},
		{"GET", "/v2/keys/names/%C3%A9:t", "", 200, `{"action":"get","node":{"key":"/names/é:t","value":"✓","modifiedIndex":3,"createdIndex":3}}` + nl},
	}},
}

// TestKeys runs the request scripts against both implementations.
func TestKeys(t *testing.T) {
	etcdtest.ForEach(t, testKeys)
}

func testKeys(t *testing.T, s *etcdtest.Server) {
	settle(t, s)
	for _, sc := range keyScenarios {
		t.Run(sc.name, func(t *testing.T) { newClient(t, s).run(sc.steps) })
	}
	t.Run("root", func(t *testing.T) {
		c := newClient(t, s)
		for _, p := range []string{"/v2/keys", "/v2/keys/"} {
			r := c.expect("GET", p, "", 200, "*")
			if !strings.HasPrefix(r.body, `{"action":"get","node":{"dir":true`) || !strings.HasSuffix(r.body, "}}\n") {
				t.Errorf("GET %s: %s, want a root without key or indexes", p, r.body)
			}
			if regexp.MustCompile(`^\{"action":"get","node":\{"dir":true,"nodes":\[.*\]\}\}\n$`).FindString(r.body) == "" {
				t.Errorf("GET %s: root listing has unexpected fields: %s", p, r.body)
			}
		}
	})
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
