package expiry

import (
	"context"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestLoopProposesOnlyWhenLeaderAndDue(t *testing.T) {
	clock := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	deadline := clock.Now().Add(3 * time.Second)

	var mu sync.Mutex
	leader := false
	var proposed []time.Time
	tick := make(chan time.Time)
	done := make(chan struct{})
	opts := Options{
		Now:        clock.Now,
		IsLeader:   func() bool { mu.Lock(); defer mu.Unlock(); return leader },
		NextExpiry: func() (time.Time, bool) { return deadline, true },
		Propose: func(_ context.Context, cutoff time.Time) error {
			mu.Lock()
			proposed = append(proposed, cutoff)
			mu.Unlock()
			return nil
		},
		Tick: tick,
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() { Run(ctx, opts); close(done) }()

	step := func(d time.Duration) {
		clock.Advance(d)
		tick <- clock.Now() // unbuffered: returns once the loop took the tick
		tick <- clock.Now() // second send proves the first iteration finished
	}
	step(time.Second) // not due, not leader
	mu.Lock()
	leader = true
	mu.Unlock()
	step(time.Second) // leader, still not due (t+2s)
	mu.Lock()
	if len(proposed) != 0 {
		t.Fatalf("proposed before due: %v", proposed)
	}
	leader = false
	mu.Unlock()
	step(2 * time.Second) // due but not leader
	mu.Lock()
	if len(proposed) != 0 {
		t.Fatalf("follower proposed: %v", proposed)
	}
	leader = true
	mu.Unlock()
	step(500 * time.Millisecond) // due and leader: t+4.5s
	cancel()
	<-done
	if len(proposed) == 0 {
		t.Fatal("leader did not propose a due expiry")
	}
	if want := clock.Now(); !proposed[0].Equal(want) && !proposed[0].Equal(want.Add(-500*time.Millisecond)) {
		t.Errorf("cutoff = %v, want the leader's clock reading %v", proposed[0], want)
	}
	for _, c := range proposed {
		if c.Before(deadline) {
			t.Errorf("cutoff %v before the earliest expiry %v", c, deadline)
		}
	}
}

func TestCheckNothingToExpire(t *testing.T) {
	called := false
	err := Check(t.Context(), Options{
		Now:        time.Now,
		IsLeader:   func() bool { return true },
		NextExpiry: func() (time.Time, bool) { return time.Time{}, false },
		Propose:    func(context.Context, time.Time) error { called = true; return nil },
	})
	if err != nil || called {
		t.Fatalf("err=%v called=%v: nothing has a TTL, nothing to propose", err, called)
	}
}
