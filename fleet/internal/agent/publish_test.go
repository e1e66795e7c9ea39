package agent

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/corekit/corekit/fleet/internal/unitmgr"
	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/unitfile"
	"github.com/corekit/corekit/internal/v2api"
)

// slowKV is the in-memory store with a latency on every write that carries
// a TTL (as a real etcd's fsync costs), which also keeps the deadline of
// every such key so it can tell when a key lived past its TTL before being
// rewritten.
type slowKV struct {
	*fleetregistry.MemKV
	delay time.Duration

	mu      sync.Mutex
	expires map[string]time.Time
	expired []string // keys rewritten (or found) after their TTL ran out
	writes  int
}

func (k *slowKV) Set(ctx context.Context, key, value string, o fleetregistry.SetOptions) (*v2api.Node, error) {
	if o.TTL > 0 {
		time.Sleep(k.delay)
	}
	n, err := k.MemKV.Set(ctx, key, value, o)
	if err != nil {
		return n, err
	}
	now := time.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if exp, ok := k.expires[key]; ok && !now.Before(exp) {
		k.expired = append(k.expired, key)
	}
	if o.TTL > 0 {
		k.expires[key] = now.Add(o.TTL)
		k.writes++
	} else {
		delete(k.expires, key)
	}
	return n, nil
}

func (k *slowKV) Delete(ctx context.Context, key string, o fleetregistry.DeleteOptions) error {
	err := k.MemKV.Delete(ctx, key, o)
	k.mu.Lock()
	delete(k.expires, key)
	k.mu.Unlock()
	return err
}

// check records every key whose TTL has run out by now.
func (k *slowKV) check() (live int, expired []string, writes int) {
	now := time.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	for key, exp := range k.expires {
		if !now.Before(exp) {
			k.expired = append(k.expired, key)
			delete(k.expires, key)
		}
	}
	return len(k.expires), append([]string(nil), k.expired...), k.writes
}

// In steady state with many units, every published key with a TTL
// (states/…, state/…) is rewritten before its TTL runs out, even when each
// write takes a while: 500 units × 2 keys at 2 ms a write take 2 s
// sequentially, as long as the 2 s TTL, which is what made fleet's agent
// let most keys expire between two re-publishes. The launched marker
// (job/*/job-state) has no TTL and is written once per start, never again
// while the unit runs.
func TestSteadyStateNoStateExpires(t *testing.T) {
	const units, ttl, run = 500, 2 * time.Second, 5 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kv := &slowKV{MemKV: fleetregistry.NewMemKV(nil), delay: 2 * time.Millisecond, expires: map[string]time.Time{}}
	reg := fleetregistry.New(kv, "")
	mgr := unitmgr.NewMemory()
	me := fleetregistry.MachineState{ID: "machine1"}
	f, err := unitfile.Parse("[Service]\nExecStart=/bin/sleep 1000\n")
	if err != nil {
		t.Fatal(err)
	}
	for i := range units {
		name := fmt.Sprintf("u%04d.service", i)
		if err := reg.CreateUnit(ctx, &fleetregistry.Unit{Name: name, File: f, TargetState: fleetregistry.StateLaunched}); err != nil {
			t.Fatal(err)
		}
		if err := reg.ScheduleUnit(ctx, name, me.ID); err != nil {
			t.Fatal(err)
		}
	}
	a := New(Config{Registry: reg, Manager: mgr, Machine: func() fleetregistry.MachineState { return me }, TTL: ttl})
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "all units published active", func() (bool, string) {
		sts, err := reg.UnitStates(ctx)
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, s := range sts {
			if s.ActiveState == "active" {
				n++
			}
		}
		return n == units, fmt.Sprintf("%d active", n)
	})
	_, _, before := kv.check()
	deadline := time.Now().Add(run)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		kv.check()
	}
	live, expired, writes := kv.check()
	if len(expired) > 0 {
		t.Errorf("%d keys expired before being refreshed, e.g. %v", len(expired), expired[:min(5, len(expired))])
	}
	if live != 2*units {
		t.Errorf("%d keys with a TTL live, want %d", live, 2*units)
	}
	// Every key must have been rewritten at least once per TTL.
	if got, want := writes-before, 2*units*int(run/ttl); got < want {
		t.Errorf("%d TTL writes in %v, want at least %d", got, run, want)
	}
	// Every unit is launched here, and its launched marker was written once.
	us, _, err := reg.Units(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		if u.JobState != me.ID {
			t.Fatalf("%s: job-state %q, want %q", u.Name, u.JobState, me.ID)
		}
		n, _, err := kv.Get(ctx, reg.JobPrefix()+"/"+u.Name+"/job-state", false)
		if err != nil {
			t.Fatal(err)
		}
		if n.TTL != 0 || n.ModifiedIndex != n.CreatedIndex {
			t.Fatalf("%s: job-state has TTL %d, modified at %d after its creation at %d; want written once, no TTL", u.Name, n.TTL, n.ModifiedIndex, n.CreatedIndex)
		}
	}
	sts, err := reg.UnitStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != units {
		t.Errorf("%d unit states published at the end, want %d", len(sts), units)
	}
}
