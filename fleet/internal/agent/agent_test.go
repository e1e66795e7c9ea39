package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/corekit/corekit/fleet/internal/unitmgr"
	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/testwait"
	"github.com/corekit/corekit/internal/unitfile"
)

func publishedState(t *testing.T, reg *fleetregistry.Registry, unit string) string {
	sts, err := reg.UnitStates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sts {
		if s.UnitName == unit {
			return s.ActiveState
		}
	}
	return ""
}

func waitFor(t *testing.T, what string, f func() (bool, string)) {
	t.Helper()
	testwait.For(t, what, 10*time.Second, 10*time.Millisecond, f)
}

// With a manager that reports changes, states are published on the change,
// not on a poll: every poll and refresh period here is an hour.
func TestStatesPublishedOnChangeNotPoll(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := fleetregistry.NewInMemory(nil)
	mgr := unitmgr.NewMemory()
	me := fleetregistry.MachineState{ID: "machine1"}
	a := New(Config{Registry: reg, Manager: mgr, Machine: func() fleetregistry.MachineState { return me },
		TTL: 2 * time.Hour, ReconcileInterval: time.Hour, PollInterval: time.Hour, SafetyPollInterval: time.Hour, MinWatchGap: time.Millisecond})
	f, _ := unitfile.Parse("[Service]\nExecStart=/bin/sleep 1000\n")
	if err := reg.CreateUnit(ctx, &fleetregistry.Unit{Name: "hello.service", File: f, TargetState: fleetregistry.StateLaunched}); err != nil {
		t.Fatal(err)
	}
	if err := reg.ScheduleUnit(ctx, "hello.service", "machine1"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "active published", func() (bool, string) {
		s := publishedState(t, reg, "hello.service")
		return s == "active", s
	})
	polls := mgr.Calls("States")
	mgr.Kill("hello.service")
	waitFor(t, "failed published after the kill", func() (bool, string) {
		s := publishedState(t, reg, "hello.service")
		return s == "failed", fmt.Sprint(s)
	})
	if n := mgr.Calls("States") - polls; n > 2 {
		t.Errorf("%d state reads for one change", n)
	}
}
