package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/unitfile"
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
