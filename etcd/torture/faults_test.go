package torture

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/v2api"
)

// TestTTLClockRule checks the TTL rule under clock offsets
// (clockTimeline.ttlVerdict) on hand-made timelines.
func TestTTLClockRule(t *testing.T) {
	s := func(x float64) int64 { return int64(x * float64(time.Second)) }
	// m1 (it said it led) +30 s during [10 s, 14 s]; m2 (never led)
	// +40 s during [30 s, 34 s]; m0 -20 s during [50 s, 54 s].
	tl := newClockTimeline(3)
	tl.record(1, s(10), 30*time.Second)
	tl.mayLead(1)
	tl.record(1, s(14), 0)
	tl.record(2, s(30), 40*time.Second)
	tl.record(2, s(34), 0)
	tl.record(0, s(50), -20*time.Second)
	tl.record(0, s(54), 0)
	for _, tc := range []struct {
		name            string
		tl              *clockTimeline
		stamp           int
		call, ret, gone float64
		ttl             time.Duration
		early, byClock  bool
	}{
		{"no clocks, on time", nil, 0, 1, 1.01, 4.2, 3 * time.Second, false, false},
		{"no clocks, early", nil, 0, 1, 1.01, 3.9, 3 * time.Second, true, false},
		{"no jumps yet, early", tl, 0, 1, 1.01, 3.9, 3 * time.Second, true, false},
		{"no jumps yet, on time", tl, 0, 1, 1.01, 4.0, 3 * time.Second, false, false},
		{"leader ahead explains it", tl, 0, 9, 9.01, 10.5, 3 * time.Second, false, true},
		{"before the jump began", tl, 0, 8, 8.01, 9.5, 3 * time.Second, true, false},
		{"within the slack after a leader jump", tl, 0, 20, 20.01, 21, 3 * time.Second, false, true},
		{"long after the jump", tl, 0, 40, 40.01, 41, 3 * time.Second, true, false},
		{"ahead member never led", tl, 0, 31, 31.01, 32, 3 * time.Second, true, false},
		{"stamper behind explains it", tl, 0, 51, 51.01, 52, 3 * time.Second, false, true},
		{"stamper behind, another key", tl, 1, 51, 51.01, 52, 3 * time.Second, true, false},
		{"stamper change within the lag", tl, 0, 54.5, 54.51, 55, 3 * time.Second, false, true},
		{"stamper reset long ago", tl, 0, 56, 56.01, 57, 3 * time.Second, true, false},
	} {
		early, byClock := tc.tl.ttlVerdict(tc.stamp, s(tc.call), s(tc.ret), s(tc.gone), tc.ttl)
		if early != tc.early || byClock != tc.byClock {
			t.Errorf("%s: early=%v byClock=%v, want early=%v byClock=%v", tc.name, early, byClock, tc.early, tc.byClock)
		}
	}
}

// TestTTLStamperAheadIsStricter: a stamping member whose clock is ahead
// makes its keys live longer in real time, so expiring one at its plain
// TTL is early.
func TestTTLStamperAheadIsStricter(t *testing.T) {
	s := func(x float64) int64 { return int64(x * float64(time.Second)) }
	tl := newClockTimeline(3)
	tl.record(2, s(10), 20*time.Second)
	tl.record(2, s(14), 0)
	if early, _ := tl.ttlVerdict(2, s(11), s(11.01), s(14.5), 3*time.Second); !early {
		t.Error("key stamped +20 s ahead gone 3.5 s later: not reported early")
	}
	if early, byClock := tl.ttlVerdict(2, s(11), s(11.01), s(34.5), 3*time.Second); early || byClock {
		t.Errorf("key stamped +20 s ahead gone after 23.5 s: early=%v byClock=%v, want neither", early, byClock)
	}
}

func TestFaultsFor(t *testing.T) {
	use, skipped := FaultsFor(Reference, []string{FaultKill, FaultClockJump, FaultDiskFull, FaultClockJumpLeader})
	if len(use) != 2 || use[0] != FaultKill || use[1] != FaultDiskFull || len(skipped) != 2 {
		t.Errorf("reference: use %v skipped %v", use, skipped)
	}
	use, skipped = FaultsFor(Ours, []string{FaultKill, FaultClockJump})
	if len(use) != 2 || len(skipped) != 0 {
		t.Errorf("ours: use %v skipped %v", use, skipped)
	}
}

// TestClockHookDrivesTTL checks the clock hook end to end on our etcd: a
// member's offset shows in the TTLs it renders, a follower whose clock is
// ahead expires nothing (followers do not sweep), and a leader whose clock
// is ahead expires keys early in real time — the behaviour the TTL checker
// excuses, and only for members that may lead.
func TestClockHookDrivesTTL(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: starts a 3-member cluster; not in -short")
	}
	c := startClusterWith(t, Ours, 3, func(c *cluster, dir string) { c.enableClocks(dir) })
	ctx := context.Background()
	cl := newClient(5 * time.Second)
	defer cl.close()
	l := waitLeader(t, c, -1)
	leader, follower := c.members[l], c.members[(l+1)%3]
	put := func(key string, ttl int) {
		t.Helper()
		r, err := cl.do(ctx, http.MethodPut, leader.clientURL(), key, url.Values{"ttl": {strconv.Itoa(ttl)}}, url.Values{"value": {"v"}})
		if err != nil || r.err != nil {
			t.Fatalf("PUT %s: %v %v", key, err, r.err)
		}
	}
	// gone polls key with quorum reads until it is gone or the deadline.
	gone := func(key string, within time.Duration) bool {
		t.Helper()
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			r, err := cl.do(ctx, http.MethodGet, leader.clientURL(), key, url.Values{"quorum": {"true"}}, nil)
			if err == nil && r.err != nil && r.err.ErrorCode == v2api.EcodeKeyNotFound {
				return true
			}
		}
		return false
	}

	put("/clock/probe", 1000)
	put("/clock/a", 60)
	if err := follower.setClock(300 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The follower's TTL rendering (a plain, local read) shows its offset.
	var ttl int64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r, err := cl.do(ctx, http.MethodGet, follower.clientURL(), "/clock/probe", nil, nil)
		if err == nil && r.event != nil && r.event.Node != nil {
			if ttl = r.event.Node.TTL; ttl < 900 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower with a +300s clock still renders ttl %d for a 1000 s key", ttl)
		}
	}
	if ttl < 650 {
		t.Errorf("follower renders ttl %d, want about 1000-300", ttl)
	}
	// Three expiry ticks with only a follower ahead: nothing expires.
	if gone("/clock/a", 1500*time.Millisecond) {
		t.Fatal("a follower's clock +300 s expired a 60 s key: followers must not expire keys")
	}
	if err := follower.setClock(0); err != nil {
		t.Fatal(err)
	}
	if err := leader.setClock(90 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = leader.setClock(0) })
	if !gone("/clock/a", 30*time.Second) {
		t.Fatal("the leader's clock +90 s did not expire a 60 s key within 30 s")
	}
	// The 1000 s key stays: 90 s ahead is not enough.
	r, err := cl.do(ctx, http.MethodGet, leader.clientURL(), "/clock/probe", url.Values{"quorum": {"true"}}, nil)
	if err != nil || r.err != nil {
		t.Errorf("the 1000 s key after a +90 s leader jump: %v %v", err, r.err)
	}
}
