package torture

import (
	"testing"
	"time"
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
