package agent_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corekit/corekit/fleet/internal/agent"
	"github.com/corekit/corekit/fleet/internal/engine"
	"github.com/corekit/corekit/fleet/internal/unitmgr"
	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/testwait"
	"github.com/corekit/corekit/internal/unitfile"
	"github.com/corekit/corekit/internal/v2client"
)

// countingRT counts the store requests of one client by class:
// "GET(wait) machines/<id>/schedule", "PUT states/<unit>/<id>", ...
type countingRT struct {
	rt http.RoundTripper

	mu      sync.Mutex
	total   int
	byClass map[string]int
}

func (c *countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	k := strings.TrimPrefix(r.URL.Path, "/v2/keys")
	k = strings.TrimPrefix(strings.TrimPrefix(k, "/_coreos.com/fleet"), "/")
	m := r.Method
	if r.URL.Query().Get("wait") == "true" {
		m += "(wait)"
	}
	c.mu.Lock()
	c.total++
	c.byClass[m+" "+k]++
	c.mu.Unlock()
	return c.rt.RoundTrip(r)
}

// snapshot returns the total and a copy of the classes.
func (c *countingRT) snapshot() (int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.byClass))
	for k, v := range c.byClass {
		out[k] = v
	}
	return c.total, out
}

// since lists the classes that grew from before to now.
func since(before, now map[string]int) string {
	var out []string
	for k, v := range now {
		if d := v - before[k]; d > 0 {
			out = append(out, fmt.Sprintf("%s ×%d", k, d))
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func countingRegistry(t *testing.T, url string) (*fleetregistry.Registry, *countingRT) {
	t.Helper()
	rt := &countingRT{rt: http.DefaultTransport.(*http.Transport).Clone(), byClass: map[string]int{}}
	c, err := v2client.New(v2client.Config{Endpoints: []string{url}, HeaderTimeout: 5 * time.Second, Transport: rt})
	if err != nil {
		t.Fatal(err)
	}
	return fleetregistry.NewEtcd(c, ""), rt
}

func poll(t *testing.T, what string, d time.Duration, f func() (bool, string)) {
	t.Helper()
	testwait.For(t, what, d, 20*time.Millisecond, f)
}

// settle waits until rt has made no request for quiet (the agent is parked
// in its watch), so that a later count compares like with like.
func settle(t *testing.T, rt *countingRT, quiet time.Duration) {
	t.Helper()
	n, _ := rt.snapshot()
	since := time.Now()
	poll(t, "requests to settle", 20*time.Second, func() (bool, string) {
		m, _ := rt.snapshot()
		if m != n {
			n, since = m, time.Now()
		}
		return time.Since(since) >= quiet, fmt.Sprint(m)
	})
}

// An agent makes no store request when other machines' units change, nor
// when other machines publish their unit states, and an engine that does
// not lead makes none but its lease reads; yet the agent still reacts at
// once to changes of its own units (its reconcile timer is an hour here,
// so only a wake-up can make it act). Real store (our etcd), real engines
// and agents; systemd replaced by unitmgr.Memory.
func TestAgentWakesOnlyForItsMachine(t *testing.T) {
	etcd := etcdtest.Start(t, etcdtest.Ours)
	ctx, cancel := context.WithCancel(t.Context())
	setup, _ := countingRegistry(t, etcd.ClientURL)
	for _, id := range []string{"machineA", "machineB"} {
		if err := setup.RegisterMachine(ctx, fleetregistry.MachineState{ID: id, Version: fleetregistry.Version}, "owner-"+id, 10*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	run := func(f func(context.Context) error) {
		wg.Add(1)
		go func() { defer wg.Done(); _ = f(ctx) }()
	}
	mgrs := map[string]*unitmgr.Memory{}
	agentRT := map[string]*countingRT{}
	for id, ttl := range map[string]time.Duration{"machineA": time.Hour, "machineB": 2 * time.Second} {
		reg, rt := countingRegistry(t, etcd.ClientURL)
		mgrs[id], agentRT[id] = unitmgr.NewMemory(), rt
		me := fleetregistry.MachineState{ID: id}
		a := agent.New(agent.Config{Registry: reg, Manager: mgrs[id], Machine: func() fleetregistry.MachineState { return me },
			TTL: ttl, ReconcileInterval: time.Hour, PollInterval: time.Hour, SafetyPollInterval: time.Hour, MinWatchGap: 10 * time.Millisecond})
		run(a.Run)
	}
	lreg, leaderRT := countingRegistry(t, etcd.ClientURL)
	leader := engine.New(engine.Config{Registry: lreg, MachineID: "engine1", Interval: 200 * time.Millisecond})
	run(leader.Run)
	poll(t, "engine1 leading", 10*time.Second, func() (bool, string) { return leader.IsLeader(), "" })
	freg, followerRT := countingRegistry(t, etcd.ClientURL)
	follower := engine.New(engine.Config{Registry: freg, MachineID: "engine2", Interval: 200 * time.Millisecond})
	run(follower.Run)

	put := func(name, machine, desired string) {
		t.Helper()
		f, err := unitfile.Parse("[Service]\nExecStart=/bin/sleep 1000\n[X-Fleet]\nMachineID=" + machine + "\n")
		if err != nil {
			t.Fatal(err)
		}
		if err := setup.CreateUnit(ctx, &fleetregistry.Unit{Name: name, File: f, TargetState: fleetregistry.TargetState(desired)}); err != nil {
			t.Fatal(err)
		}
	}
	running := func(id string, names ...string) (bool, string) {
		st, err := mgrs[id].States(ctx, names)
		if err != nil {
			return false, err.Error()
		}
		for _, n := range names {
			if st[n].ActiveState != "active" {
				return false, fmt.Sprintf("%s on %s: %+v", n, id, st[n])
			}
		}
		return true, ""
	}
	launched := func(name, id string) (bool, string) {
		u, err := setup.Unit(ctx, name)
		if err != nil {
			return false, err.Error()
		}
		return u.JobState == id && u.TargetMachine == id, fmt.Sprintf("%s: target %q job-state %q", name, u.TargetMachine, u.JobState)
	}
	put("a0.service", "machineA", "launched")
	put("b0.service", "machineB", "launched")
	poll(t, "a0 and b0 running", 20*time.Second, func() (bool, string) {
		if ok, s := running("machineA", "a0.service"); !ok {
			return ok, s
		}
		return running("machineB", "b0.service")
	})
	poll(t, "a0 launched", 10*time.Second, func() (bool, string) { return launched("a0.service", "machineA") })
	settle(t, agentRT["machineA"], time.Second)

	// Machine B's units change: new ones, a stop, a destroy; B keeps
	// re-publishing its states (TTL 2 s) all along.
	a0, aBefore := agentRT["machineA"].snapshot()
	b0, bBefore := agentRT["machineB"].snapshot()
	_, fBefore := followerRT.snapshot()
	for i := 1; i <= 10; i++ {
		put(fmt.Sprintf("b%d.service", i), "machineB", "launched")
	}
	if err := setup.SetUnitTargetState(ctx, "b0.service", fleetregistry.StateLoaded); err != nil {
		t.Fatal(err)
	}
	poll(t, "b1..b10 running and b0 stopped on machineB", 20*time.Second, func() (bool, string) {
		var names []string
		for i := 1; i <= 10; i++ {
			names = append(names, fmt.Sprintf("b%d.service", i))
		}
		if ok, s := running("machineB", names...); !ok {
			return ok, s
		}
		st, _ := mgrs["machineB"].States(ctx, []string{"b0.service"})
		return st["b0.service"].ActiveState == "inactive", fmt.Sprintf("b0: %+v", st["b0.service"])
	})
	if err := setup.DestroyUnit(ctx, "b1.service"); err != nil {
		t.Fatal(err)
	}
	poll(t, "b1 unloaded from machineB", 10*time.Second, func() (bool, string) {
		files, _ := mgrs["machineB"].Units(ctx)
		_, there := files["b1.service"]
		return !there, ""
	})
	// Idle: B re-publishes its states (refresh every second); the leading
	// engine's job/ watch must not see it.
	_, lBefore := leaderRT.snapshot()
	idleUntil := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(idleUntil) {
		time.Sleep(100 * time.Millisecond)
	}
	_, lAfter := leaderRT.snapshot()
	a1, aAfter := agentRT["machineA"].snapshot()
	b1, bAfter := agentRT["machineB"].snapshot()
	_, fAfter := followerRT.snapshot()
	if a1 != a0 {
		t.Errorf("agent of machineA made %d store requests while only machineB's units changed: %s", a1-a0, since(aBefore, aAfter))
	}
	if b1 == b0 {
		t.Errorf("agent of machineB made no store request while its units changed (counting broken?)")
	}
	if n := bAfter["PUT states/b2.service/machineB"]; n < 2 {
		t.Errorf("machineB re-published b2's state %d times, want ≥ 2 (TTL 2 s)", n)
	}
	if w := since(lBefore, lAfter); strings.Contains(w, "(wait)") {
		t.Errorf("leading engine woke while idle: %s", w)
	}
	for k, v := range fAfter {
		if v-fBefore[k] > 0 && k != "GET lease/engine-leader" {
			t.Errorf("engine that does not lead made %d %q requests; want only lease reads", v-fBefore[k], k)
		}
	}
	if fAfter["GET lease/engine-leader"] == fBefore["GET lease/engine-leader"] {
		t.Errorf("engine that does not lead never read the lease")
	}
	t.Logf("during machineB's changes: agent A %d requests, agent B %d (%s)", a1-a0, b1-b0, since(bBefore, bAfter))

	// Machine A's own change wakes it at once (its timer is an hour away).
	put("a1.service", "machineA", "launched")
	poll(t, "a1 running on machineA", 10*time.Second, func() (bool, string) { return running("machineA", "a1.service") })
	if n, _ := agentRT["machineA"].snapshot(); n == a1 {
		t.Errorf("agent of machineA made no request for its own unit")
	}
}
