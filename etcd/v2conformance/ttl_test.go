package v2conformance

import (
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
)

// TestTTL covers ttl, ttl=, ttl=0, refresh and the expire event.
func TestTTL(t *testing.T) {
	etcdtest.ForEach(t, testTTL)
}

func testTTL(t *testing.T, s *etcdtest.Server) {
	settle(t, s)
	t.Run("ttl reported", func(t *testing.T) {
		c := newClient(t, s)
		before := time.Now()
		r := c.expect("PUT", "/v2/keys/ttl/foo?ttl=5", "value=bar", 201, `{"action":"set","node":{"key":"/ttl/foo","value":"bar","expiration":"EXP","ttl":5,"modifiedIndex":1,"createdIndex":1}}`+nl)
		ev := decodeEvent(t, r.body)
		exp, err := time.Parse(time.RFC3339Nano, *ev.Node.Expiration)
		if err != nil || exp.Before(before.Add(4*time.Second)) || exp.After(time.Now().Add(6*time.Second)) {
			t.Errorf("expiration %v not about now+5s (%v)", exp, err)
		}
		g := decodeEvent(t, c.expect("GET", "/v2/keys/ttl/foo", "", 200, "*").body)
		if g.Node.TTL < 1 || g.Node.TTL > 5 || g.Node.Expiration == nil || *g.Node.Expiration != *ev.Node.Expiration {
			t.Errorf("GET ttl %d expiration %v, want 1..5 and %s", g.Node.TTL, g.Node.Expiration, *ev.Node.Expiration)
		}
		// Writing without ttl makes the key permanent again.
		c.expect("PUT", "/v2/keys/ttl/foo?prevExist=true", "value=baz", 200, `{"action":"update","node":{"key":"/ttl/foo","value":"baz","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/ttl/foo","value":"bar","expiration":"EXP","ttl":5,"modifiedIndex":1,"createdIndex":1}}`+nl)
		c.expect("PUT", "/v2/keys/ttl/empty?ttl=", "value=x", 201, `{"action":"set","node":{"key":"/ttl/empty","value":"x","modifiedIndex":3,"createdIndex":3}}`+nl)
	})
	t.Run("refresh", func(t *testing.T) {
		c := newClient(t, s)
		c.expect("PUT", "/v2/keys/ttl/r?ttl=5", "value=keep", 201, "*")
		c.expect("PUT", "/v2/keys/ttl/r?ttl=7&refresh=true&prevExist=true", "", 200, `{"action":"update","node":{"key":"/ttl/r","value":"keep","expiration":"EXP","ttl":7,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/ttl/r","value":"keep","expiration":"EXP","ttl":5,"modifiedIndex":1,"createdIndex":1}}`+nl)
		c.expect("PUT", "/v2/keys/ttl/r?ttl=7&refresh=true", "value=x", 400, `{"errorCode":211,"message":"Value provided on refresh","cause":"A value was provided on a refresh","index":0}`+nl)
		c.expect("PUT", "/v2/keys/ttl/r?refresh=true", "", 400, `{"errorCode":212,"message":"A TTL must be provided on refresh","cause":"No TTL value set","index":0}`+nl)
		c.expect("PUT", "/v2/keys/ttl/none?ttl=3&refresh=true", "", 404, `{"errorCode":100,"message":"Key not found","cause":"/ttl/none","index":2}`+nl)
		// A refresh is not delivered to live watchers.
		ws := c.watch("/v2/keys/ttl/r?wait=true")
		c.expect("PUT", "/v2/keys/ttl/r?ttl=9&refresh=true&prevExist=true", "", 200, "*")
		c.expect("PUT", "/v2/keys/ttl/r", "value=after", 200, "*")
		if ev, ok := ws.next(waitFor); !ok || decodeEvent(t, ev).Node.StringValue() != "after" {
			t.Errorf("watcher got %q, want the set after the refresh", ev)
		}
	})
	t.Run("expire", func(t *testing.T) {
		c := newClient(t, s)
		c.expect("PUT", "/v2/keys/ttl/dir?dir=true&ttl=1", "", 201, `{"action":"set","node":{"key":"/ttl/dir","dir":true,"expiration":"EXP","ttl":1,"modifiedIndex":1,"createdIndex":1}}`+nl)
		c.expect("PUT", "/v2/keys/ttl/dir/child", "value=c", 201, "*")
		ws := c.watch("/v2/keys/ttl/dir/child?wait=true")
		ev, ok := ws.next(10 * time.Second)
		// etcd 3.4 marks an expired dir with dir:true (2.3.8 did not).
		if want := `{"action":"expire","node":{"key":"/ttl/dir","dir":true,"modifiedIndex":3,"createdIndex":1},"prevNode":{"key":"/ttl/dir","dir":true,"expiration":"EXP","modifiedIndex":1,"createdIndex":1}}`; !ok || c.norm(ev) != want {
			t.Errorf("got %q\nwant %q", c.norm(ev), want)
		}
		c.expect("GET", "/v2/keys/ttl/dir", "", 404, `{"errorCode":100,"message":"Key not found","cause":"/ttl/dir","index":3}`+nl)
	})
	t.Run("ttl=0 expires at once", func(t *testing.T) {
		c := newClient(t, s)
		c.expect("PUT", "/v2/keys/ttl/zero?ttl=0", "value=x", 201, `{"action":"set","node":{"key":"/ttl/zero","value":"x","expiration":"EXP","modifiedIndex":1,"createdIndex":1}}`+nl)
		eventually(t, 10*time.Second, "ttl=0 key to expire", func() bool {
			return c.do("GET", "/v2/keys/ttl/zero", "").code == 404
		})
		c.expect("GET", "/v2/keys/ttl/zero?wait=true&waitIndex={2}", "", 200, `{"action":"expire","node":{"key":"/ttl/zero","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/ttl/zero","value":"x","expiration":"EXP","modifiedIndex":1,"createdIndex":1}}`+nl)
		if n := storeStat(t, c, "expireCount"); n < 1 {
			t.Errorf("expireCount %d, want >= 1", n)
		}
	})
}
