package engine

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/unitfile"
	"github.com/corekit/corekit/internal/v2api"
)

// The engine publishes why it cannot place a unit (job/<unit>/reason) and
// removes the reason once the unit is placed.
func TestReconcilePublishesReasons(t *testing.T) {
	ctx := context.Background()
	reg := fleetregistry.NewInMemory(nil)
	if err := reg.RegisterMachine(ctx, fleetregistry.MachineState{ID: "machine1", Metadata: map[string]string{"role": "web"}}, "o1", time.Minute); err != nil {
		t.Fatal(err)
	}
	f, err := unitfile.Parse("[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata=role=db\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.CreateUnit(ctx, &fleetregistry.Unit{Name: "db.service", File: f, TargetState: fleetregistry.StateLaunched}); err != nil {
		t.Fatal(err)
	}
	e := New(Config{Registry: reg, MachineID: "machine1"})
	res, err := e.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Unschedulable) != 1 {
		t.Fatalf("unschedulable = %+v", res.Unschedulable)
	}
	u, err := reg.Unit(ctx, "db.service")
	if err != nil {
		t.Fatal(err)
	}
	if u.Reason != res.Unschedulable[0].Reason || !strings.Contains(u.Reason, "role=db") {
		t.Fatalf("published reason %q, engine's %q", u.Reason, res.Unschedulable[0].Reason)
	}
	// An unchanged reason is not rewritten.
	n1, _, err := reg.KV().Get(ctx, reg.JobPrefix()+"/db.service/reason", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := reg.KV().Get(ctx, reg.JobPrefix()+"/db.service/reason", false); n == nil || n.ModifiedIndex != n1.ModifiedIndex {
		t.Fatalf("reason rewritten without a change: %+v, was %+v", n, n1)
	}
	// A machine that fits: the unit is placed and the reason goes.
	if err := reg.RegisterMachine(ctx, fleetregistry.MachineState{ID: "machine2", Metadata: map[string]string{"role": "db"}}, "o2", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if u, _ = reg.Unit(ctx, "db.service"); u.TargetMachine != "machine2" || u.Reason != "" {
		t.Fatalf("after a fitting machine joined: target %q reason %q", u.TargetMachine, u.Reason)
	}
}

// Each pass wakes (rewrites machines/<id>/schedule of) exactly the machines
// a change since the previous pass concerns, and nothing when nothing
// changed.
func TestReconcileWakesConcernedMachinesOnly(t *testing.T) {
	ctx := context.Background()
	reg := fleetregistry.NewInMemory(nil)
	ids := []string{"machine1", "machine2", "machine3"}
	for _, id := range ids {
		if err := reg.RegisterMachine(ctx, fleetregistry.MachineState{ID: id}, "o-"+id, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	wakes := func() map[string]uint64 {
		out := map[string]uint64{}
		for _, id := range ids {
			if n, _, err := reg.KV().Get(ctx, reg.ScheduleWakeKey(id), false); err == nil {
				out[id] = n.ModifiedIndex
			}
		}
		return out
	}
	e := New(Config{Registry: reg, MachineID: "machine1"})
	step := func(what string, change func() error, want ...string) {
		t.Helper()
		if err := change(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		before := wakes()
		if _, err := e.Reconcile(ctx); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		after := wakes()
		var got []string
		for _, id := range ids {
			if after[id] != before[id] {
				got = append(got, id)
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%s: woke %v, want %v", what, got, want)
		}
	}
	create := func(name, text, state string) func() error {
		return func() error {
			f, err := unitfile.Parse(text)
			if err != nil {
				return err
			}
			return reg.CreateUnit(ctx, &fleetregistry.Unit{Name: name, File: f, TargetState: fleetregistry.TargetState(state)})
		}
	}
	none := func() error { return nil }
	step("pinned unit submitted", create("a.service", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineID=machine2\n", "launched"), "machine2")
	step("nothing changed", none)
	step("desired state changed", func() error { return reg.SetUnitTargetState(ctx, "a.service", fleetregistry.StateLoaded) }, "machine2")
	step("inactive unit submitted", create("idle.service", "[Service]\nExecStart=/bin/true\n", "inactive"))
	step("global unit submitted", create("g.service", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\n", "launched"), ids...)
	step("metadata of machine3 changed", func() error { return reg.SetMachineMetadata(ctx, "machine3", "role", "db") }, "machine3")
	step("pinned unit destroyed", func() error { return reg.DestroyUnit(ctx, "a.service") }, "machine2")
	// A new leader does not know what the previous one woke: its first pass
	// wakes every machine with a unit (here: all, for the global unit).
	e2 := New(Config{Registry: reg, MachineID: "machine2"})
	before := wakes()
	if _, err := e2.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	for id, idx := range wakes() {
		if idx == before[id] {
			t.Errorf("first pass of a new engine did not wake %s", id)
		}
	}
}

// TestReconcileWakesMachineWhoseUnitsMovedAfterItExpired: a machine whose
// presence expired (partitioned) while running a unit has the unit moved
// to another machine; the engine also wakes the absent machine, with a
// wake-up key that expires, so that it stops its copy as soon as it reaches
// the store again (tests/fleetfaults measured duplicates lasting up to
// agent_ttl/2 after a heal without it).
func TestReconcileWakesMachineWhoseUnitsMovedAfterItExpired(t *testing.T) {
	ctx := context.Background()
	reg := fleetregistry.NewInMemory(nil)
	for _, id := range []string{"machine1", "machine2"} {
		if err := reg.RegisterMachine(ctx, fleetregistry.MachineState{ID: id}, "o-"+id, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	f, err := unitfile.Parse("[Service]\nExecStart=/bin/sleep 1000\n[X-Fleet]\nConflicts=other.service\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.CreateUnit(ctx, &fleetregistry.Unit{Name: "a.service", File: f, TargetState: fleetregistry.StateLaunched}); err != nil {
		t.Fatal(err)
	}
	e := New(Config{Registry: reg, MachineID: "machine1"})
	if _, err := e.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	units, _, err := reg.Units(ctx)
	if err != nil || len(units) != 1 || units[0].TargetMachine == "" {
		t.Fatalf("not scheduled: %+v %v", units, err)
	}
	first := units[0].TargetMachine
	other := map[string]string{"machine1": "machine2", "machine2": "machine1"}[first]
	before, _, _ := reg.KV().Get(ctx, reg.ScheduleWakeKey(first), false)
	if err := reg.RemoveMachine(ctx, first, "o-"+first); err != nil { // its presence expired
		t.Fatal(err)
	}
	if _, err := e.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	units, _, _ = reg.Units(ctx)
	if len(units) != 1 || units[0].TargetMachine != other {
		t.Fatalf("unit not moved to %s: %+v", other, units)
	}
	after, _, err := reg.KV().Get(ctx, reg.ScheduleWakeKey(first), false)
	if err != nil {
		t.Fatalf("absent machine's wake-up key: %v", err)
	}
	if before != nil && after.ModifiedIndex == before.ModifiedIndex {
		t.Fatalf("absent machine %s not woken after its unit moved", first)
	}
	if after.TTL <= 0 {
		t.Errorf("absent machine's wake-up key has no TTL: %+v", after)
	}
}

// slowSchedKV delays every schedule write (a loaded store).
type slowSchedKV struct {
	*fleetregistry.MemKV
	delay time.Duration
}

func (k slowSchedKV) Set(ctx context.Context, key, value string, o fleetregistry.SetOptions) (*v2api.Node, error) {
	if strings.HasSuffix(key, "/target") {
		time.Sleep(k.delay)
	}
	return k.MemKV.Set(ctx, key, value, o)
}

// A pass that takes longer than the lease TTL (many decisions on a slow
// store) renews the lease as it goes: the lease never expires, and the
// agents are woken while the pass still runs, not only at its end.
func TestLongPassKeepsLeaseAndWakesEarly(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	mem := fleetregistry.NewMemKV(nil)
	reg := fleetregistry.New(slowSchedKV{MemKV: mem, delay: 15 * time.Millisecond}, "")
	if err := reg.RegisterMachine(ctx, fleetregistry.MachineState{ID: "machine1"}, "o1", time.Hour); err != nil {
		t.Fatal(err)
	}
	f, err := unitfile.Parse("[Service]\nExecStart=/bin/true\n")
	if err != nil {
		t.Fatal(err)
	}
	const units = 250 // ≈ 3.75 s of schedule writes; the lease TTL is 2 s
	for i := range units {
		if err := reg.CreateUnit(ctx, &fleetregistry.Unit{Name: fmt.Sprintf("u%03d.service", i), File: f, TargetState: fleetregistry.StateLaunched}); err != nil {
			t.Fatal(err)
		}
	}
	_, start, err := reg.Units(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var scheduled atomic.Int64
	wakesDuringPass := make(chan int64, 64)
	e := New(Config{Registry: reg, MachineID: "machine1", Interval: 200 * time.Millisecond,
		OnDecision: func(Decision) { scheduled.Add(1) }})
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// Record lease expiries and when (in decisions) wake-ups came.
	var expired atomic.Int64
	go func() {
		after := start
		for ctx.Err() == nil {
			ev, err := mem.Watch(ctx, "/", after)
			if err != nil {
				return
			}
			after = ev.Index
			switch {
			case strings.HasSuffix(ev.Key, "/lease/engine-leader") && ev.Action == "expire":
				expired.Add(1)
			case ev.Key == reg.ScheduleWakeKey("machine1"):
				select {
				case wakesDuringPass <- scheduled.Load():
				default:
				}
			}
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for scheduled.Load() < units && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := scheduled.Load(); n != units {
		t.Fatalf("%d of %d units scheduled", n, units)
	}
	if n := expired.Load(); n != 0 {
		t.Errorf("the lease expired %d times during the pass", n)
	}
	if !e.IsLeader() {
		t.Errorf("engine lost the lease during a long pass")
	}
	select {
	case n := <-wakesDuringPass:
		if n >= units {
			t.Errorf("first wake-up after all %d decisions; want one while the pass ran", n)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("machine1 never woken")
	}
}
