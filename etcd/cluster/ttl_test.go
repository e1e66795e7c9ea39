package cluster

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/corekit/corekit/etcd/internal/expiry"
	"github.com/corekit/corekit/internal/etcdtest"
)

// TestTTLAcrossLeaderChange: keys with TTLs set just before the leader is
// killed never disappear before their TTL and are gone within an election
// timeout plus the expiry sweep interval (plus scheduling slack) after it,
// as seen by every surviving member.
func TestTTLAcrossLeaderChange(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: multi-process cluster test (-short)")
	}
	c := startCluster(t, etcdtest.Ours, 3)
	leader := c.waitLeader(10 * time.Second)
	ctx := t.Context()

	type ttlKey struct {
		key          string
		sent, acked  time.Time
		ttl          time.Duration
		firstMissing map[string]time.Time // member → first read that missed it
		seen         map[string]bool      // member → a read found it
	}
	var keys []*ttlKey
	for i, ttl := range []int{1, 2, 3, 2, 1} {
		k := &ttlKey{key: fmt.Sprintf("/ttl/k%d", i), ttl: time.Duration(ttl) * time.Second, firstMissing: map[string]time.Time{}, seen: map[string]bool{}}
		k.sent = time.Now()
		// Alternate between the leader and a follower.
		m := c.Members[i%3]
		code, _, verr, err := put(ctx, quick, m.ClientURL, k.key, "v", url.Values{"ttl": {fmt.Sprint(ttl)}})
		if err != nil || code != http.StatusCreated {
			t.Fatalf("PUT %s: %d %v %v", k.key, code, verr, err)
		}
		k.acked = time.Now()
		keys = append(keys, k)
	}
	leader.kill()

	// Slack for process scheduling on a loaded machine.
	const slack = 2 * time.Second
	limit := electionMs*time.Millisecond + expiry.DefaultInterval + slack
	var end time.Time
	for _, k := range keys {
		end = later(end, k.acked.Add(k.ttl+limit))
	}
	for time.Now().Before(end) {
		done := true
		for _, k := range keys {
			done = done && len(k.firstMissing) == len(c.running())
		}
		if done {
			break
		}
		for _, m := range c.running() {
			for _, k := range keys {
				if _, seen := k.firstMissing[m.Name]; seen {
					continue
				}
				start := time.Now()
				code, _, _, err := get(ctx, quick, m.ClientURL, k.key, false)
				if err != nil {
					continue // a member busy with the election; try again
				}
				switch code {
				case http.StatusOK:
					k.seen[m.Name] = true
				case http.StatusNotFound:
					// A follower may not have applied the write yet (local
					// reads can be stale): only a key it showed can expire
					// early. One it never showed is fine once the TTL is up.
					if !k.seen[m.Name] {
						if start.After(k.sent.Add(k.ttl)) {
							k.firstMissing[m.Name] = start
						}
						continue
					}
					k.firstMissing[m.Name] = start
					if start.Before(k.sent.Add(k.ttl)) {
						t.Errorf("%s: %s gone %v after it was set with ttl %v", m.Name, k.key, start.Sub(k.sent), k.ttl)
					}
				default:
					t.Errorf("GET %s on %s: %d", k.key, m.Name, code)
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, k := range keys {
		for _, m := range c.running() {
			gone, ok := k.firstMissing[m.Name]
			if !ok {
				t.Errorf("%s: %s (ttl %v) still there %v after it was acknowledged (limit ttl+%v)", m.Name, k.key, k.ttl, time.Since(k.acked), limit)
				continue
			}
			t.Logf("%s: %s ttl %v gone after %v", m.Name, k.key, k.ttl, gone.Sub(k.sent).Round(10*time.Millisecond))
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
