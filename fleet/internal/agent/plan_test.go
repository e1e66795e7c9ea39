package agent

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/fleet/internal/unitmgr"
	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/unitfile"
)

func file(t *testing.T, text string) *unitfile.UnitFile {
	t.Helper()
	f, err := unitfile.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPlan(t *testing.T) {
	f1 := file(t, "[Service]\nExecStart=/bin/true\n")
	f2 := file(t, "[Service]\nExecStart=/bin/false\n")
	d := func(s fleetregistry.TargetState, f *unitfile.UnitFile) DesiredUnit {
		return DesiredUnit{File: f, Hash: f.Hash(), State: s}
	}
	c := func(s fleetregistry.TargetState, f *unitfile.UnitFile) CurrentUnit {
		return CurrentUnit{Hash: f.Hash(), State: s}
	}
	L, Ld, I := fleetregistry.StateLaunched, fleetregistry.StateLoaded, fleetregistry.StateInactive
	tests := []struct {
		name    string
		desired map[string]DesiredUnit
		current map[string]CurrentUnit
		want    []string
	}{
		{"nothing to do", map[string]DesiredUnit{"a.service": d(L, f1)}, map[string]CurrentUnit{"a.service": c(L, f1)}, nil},
		{"new launched unit", map[string]DesiredUnit{"a.service": d(L, f1)}, nil,
			[]string{"LoadUnit a.service", "ReloadUnitFiles ", "StartUnit a.service"}},
		{"new loaded unit", map[string]DesiredUnit{"a.service": d(Ld, f1)}, nil, []string{"LoadUnit a.service", "ReloadUnitFiles "}},
		{"not scheduled here", nil, map[string]CurrentUnit{"a.service": c(L, f1)}, []string{"UnloadUnit a.service", "ReloadUnitFiles "}},
		{"hash changed", map[string]DesiredUnit{"a.service": d(L, f2)}, map[string]CurrentUnit{"a.service": c(L, f1)},
			[]string{"UnloadUnit a.service", "LoadUnit a.service", "ReloadUnitFiles ", "StartUnit a.service"}},
		{"launch loaded", map[string]DesiredUnit{"a.service": d(L, f1)}, map[string]CurrentUnit{"a.service": c(Ld, f1)}, []string{"StartUnit a.service"}},
		{"cache empty counts as inactive", map[string]DesiredUnit{"a.service": d(L, f1)}, map[string]CurrentUnit{"a.service": c(I, f1)}, []string{"StartUnit a.service"}},
		{"stop launched", map[string]DesiredUnit{"a.service": d(Ld, f1)}, map[string]CurrentUnit{"a.service": c(L, f1)}, []string{"StopUnit a.service"}},
		{"order across units", map[string]DesiredUnit{"b.service": d(L, f1), "c.service": d(Ld, f1)},
			map[string]CurrentUnit{"a.service": c(L, f1), "c.service": c(L, f1)},
			[]string{"UnloadUnit a.service", "LoadUnit b.service", "ReloadUnitFiles ", "StopUnit c.service", "StartUnit b.service"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, task := range Plan(tc.desired, tc.current) {
				if task.Reason == "" {
					t.Errorf("task without reason: %+v", task)
				}
				got = append(got, string(task.Type)+" "+task.Unit)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q want %q", got, tc.want)
			}
		})
	}
}

func TestDesired(t *testing.T) {
	mk := func(name string, ts fleetregistry.TargetState, target string, xf ...string) *fleetregistry.Unit {
		text := "[Service]\nExecStart=/bin/true\n"
		if len(xf) > 0 {
			text += "[X-Fleet]\n" + strings.Join(xf, "\n") + "\n"
		}
		f := file(t, text)
		return &fleetregistry.Unit{Name: name, File: f, Hash: f.Hash(), TargetState: ts, TargetMachine: target}
	}
	me := fleetregistry.MachineState{ID: "m1", Metadata: map[string]string{"role": "web"}}
	units := []*fleetregistry.Unit{
		mk("mine.service", fleetregistry.StateLaunched, "m1"),
		mk("other.service", fleetregistry.StateLaunched, "m2"),
		mk("idle.service", fleetregistry.StateInactive, "m1"),
		mk("g-web.service", fleetregistry.StateLaunched, "", "Global=true", "MachineMetadata=role=web"),
		mk("g-db.service", fleetregistry.StateLaunched, "", "Global=true", "MachineMetadata=role=db"),
		mk("a-glob.service", fleetregistry.StateLoaded, "", "Global=true", "Conflicts=z-glob.service"),
		mk("z-glob.service", fleetregistry.StateLoaded, "", "Global=true"),
		mk("tmpl@.service", fleetregistry.StateLaunched, "m1"),
		mk("x.target", fleetregistry.StateLaunched, "m1"),
	}
	got := unitmgr.SortedNames(Desired(me, units))
	want := []string{"a-glob.service", "g-web.service", "mine.service"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("desired = %v want %v", got, want)
	}
}

func TestExecuteStopsAtFirstFailure(t *testing.T) {
	m := unitmgr.NewMemory()
	m.FailStart["a.service"] = true
	f := file(t, "[Service]\nExecStart=/bin/true\n")
	tasks := Plan(map[string]DesiredUnit{
		"a.service": {File: f, Hash: f.Hash(), State: fleetregistry.StateLaunched},
		"b.service": {File: f, Hash: f.Hash(), State: fleetregistry.StateLaunched},
	}, nil)
	n, err := Execute(context.Background(), m, tasks, nil)
	if err == nil || tasks[n].Unit != "a.service" || tasks[n].Type != StartUnit {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if m.Calls("Start") != 1 {
		t.Fatalf("b.service must not be started after a.service failed; starts=%d", m.Calls("Start"))
	}
}

// TestAgentReplacedUnitPublishesNewHash runs the real agent over an
// in-memory registry: after the unit's content changes (replace), the agent
// unloads and reloads it and publishes the new hash.
func TestAgentReplacedUnitPublishesNewHash(t *testing.T) {
	ctx := t.Context()
	reg := fleetregistry.NewInMemory(nil)
	mgr := unitmgr.NewMemory()
	me := fleetregistry.MachineState{ID: "m1"}
	a := New(Config{Registry: reg, Manager: mgr, Machine: func() fleetregistry.MachineState { return me }, TTL: time.Minute})
	f1 := file(t, "[Service]\nExecStart=/bin/true\n")
	f2 := file(t, "[Service]\nExecStart=/bin/false\n")
	for _, f := range []*unitfile.UnitFile{f1, f2} {
		if err := reg.CreateUnit(ctx, &fleetregistry.Unit{Name: "a.service", File: f, TargetState: fleetregistry.StateLaunched}); err != nil {
			t.Fatal(err)
		}
		if err := reg.ScheduleUnit(ctx, "a.service", "m1"); err != nil && !errors.Is(err, fleetregistry.ErrAlreadyScheduled) {
			t.Fatal(err)
		}
		a.Reconcile(ctx)
		a.Publish(ctx)
		sts, err := reg.UnitStates(ctx)
		if err != nil || len(sts) != 1 || sts[0].UnitHash != f.Hash().String() || sts[0].ActiveState != "active" {
			t.Fatalf("states = %+v %v, want hash %s active", sts, err, f.Hash())
		}
		u, _ := reg.Unit(ctx, "a.service")
		if u.JobState != "m1" {
			t.Fatalf("launched heartbeat missing: %+v", u)
		}
	}
	if mgr.Calls("Unload") != 1 || mgr.Calls("Start") != 2 {
		t.Fatalf("unload=%d start=%d, want 1 and 2", mgr.Calls("Unload"), mgr.Calls("Start"))
	}
	// Desired loaded: the agent stops it and clears the heartbeat.
	if err := reg.SetUnitTargetState(ctx, "a.service", fleetregistry.StateLoaded); err != nil {
		t.Fatal(err)
	}
	a.Reconcile(ctx)
	if u, _ := reg.Unit(ctx, "a.service"); u.JobState != "" {
		t.Fatalf("heartbeat not cleared: %+v", u)
	}
	// A fresh agent (fleetd restart) reads systemd: the loaded unit is not
	// started again.
	b := New(Config{Registry: reg, Manager: mgr, Machine: func() fleetregistry.MachineState { return me }, TTL: time.Minute})
	if err := b.Init(ctx); err != nil {
		t.Fatal(err)
	}
	b.Reconcile(ctx)
	if mgr.Calls("Start") != 2 {
		t.Fatalf("restarted agent started the unit again (starts=%d)", mgr.Calls("Start"))
	}
}
