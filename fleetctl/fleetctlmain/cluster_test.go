package fleetctlmain

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/buildbin"
	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/v2client"
)

// startEtcd runs our etcd when etcd/main.go exists, else Debian's reference
// etcd (the output of fleetctl must not depend on which).
func startEtcd(t *testing.T) *etcdtest.Server {
	t.Helper()
	root, err := buildbin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "etcd", "main.go")); err == nil {
		return etcdtest.Start(t, etcdtest.Ours)
	}
	t.Log("etcd/main.go does not exist yet: using the reference etcd")
	return etcdtest.Start(t, etcdtest.Reference)
}

// fakeCluster stands in for fleetd's engine and agents: it reads desired
// state from the registry and writes schedules and published systemd states
// back through internal/fleetregistry, the way fleetd does, with simplified
// placement (MachineID, MachineMetadata, MachineOf, Conflicts; least loaded, then
// machine ID). The real fleetd needs systemd and is tested end to end in
// e2e_test.go.
type fakeCluster struct {
	reg      *fleetregistry.Registry
	machines []fleetregistry.MachineState

	mu sync.Mutex
	// engineOff stops scheduling (a cluster without an engine leader).
	engineOff bool
	// systemd overrides the ActiveState/SubState a launched unit reports.
	systemd map[string][2]string
	// published is what the agents last wrote (only changes are written).
	published map[string]string
}

func newFakeCluster(t *testing.T, s *etcdtest.Server, prefix string, machines []fleetregistry.MachineState) *fakeCluster {
	t.Helper()
	c, err := v2client.New(v2client.Config{Endpoints: []string{s.ClientURL}, HeaderTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	fc := &fakeCluster{reg: fleetregistry.NewEtcd(c, prefix), machines: machines, systemd: map[string][2]string{}, published: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	for _, m := range machines {
		m.Version = fleetregistry.Version
		if err := fc.reg.RegisterMachine(ctx, m, "owner-"+m.ID, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := fc.pass(ctx); err != nil && ctx.Err() == nil {
				t.Logf("fake cluster pass: %v", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return fc
}

func (fc *fakeCluster) setEngine(on bool) {
	fc.mu.Lock()
	fc.engineOff = !on
	fc.mu.Unlock()
}

func (fc *fakeCluster) setSystemd(unit, active, sub string) {
	fc.mu.Lock()
	fc.systemd[unit] = [2]string{active, sub}
	fc.mu.Unlock()
}

func (fc *fakeCluster) eligible(u *fleetregistry.Unit, m fleetregistry.MachineState, on map[string][]*fleetregistry.Unit) bool {
	r := u.Requirements()
	if r.MachineID != "" && r.MachineID != m.ID && r.MachineID != fleetregistry.ShortID(m.ID) {
		return false
	}
	if ok, _ := r.MetadataMatches(m.Metadata); !ok {
		return false
	}
	for _, peer := range r.MachineOf {
		found := false
		for _, o := range on[m.ID] {
			found = found || o.Name == peer
		}
		if !found {
			return false
		}
	}
	for _, o := range on[m.ID] {
		if o.Name != u.Name && (r.ConflictsWith(o.Name) || o.Requirements().ConflictsWith(u.Name)) {
			return false
		}
	}
	return true
}

// pass is one engine pass followed by one agent pass on every machine.
func (fc *fakeCluster) pass(ctx context.Context) error {
	fc.mu.Lock()
	engineOff := fc.engineOff
	systemd := map[string][2]string{}
	for k, v := range fc.systemd {
		systemd[k] = v
	}
	fc.mu.Unlock()
	units, _, err := fc.reg.Units(ctx)
	if err != nil {
		return err
	}
	if !engineOff {
		on := map[string][]*fleetregistry.Unit{}
		for _, u := range units {
			if u.TargetMachine != "" && u.TargetState != fleetregistry.StateInactive {
				on[u.TargetMachine] = append(on[u.TargetMachine], u)
			}
		}
		for _, u := range units {
			if u.IsGlobal() {
				continue
			}
			switch {
			case u.TargetState == fleetregistry.StateInactive && u.TargetMachine != "":
				if err := fc.reg.UnscheduleUnit(ctx, u.Name, u.TargetMachine); err != nil {
					return err
				}
				u.TargetMachine = ""
			case u.TargetState != fleetregistry.StateInactive && u.TargetMachine == "":
				ms := append([]fleetregistry.MachineState(nil), fc.machines...)
				sort.SliceStable(ms, func(i, j int) bool {
					if len(on[ms[i].ID]) != len(on[ms[j].ID]) {
						return len(on[ms[i].ID]) < len(on[ms[j].ID])
					}
					return ms[i].ID < ms[j].ID
				})
				for _, m := range ms {
					if fc.eligible(u, m, on) {
						if err := fc.reg.ScheduleUnit(ctx, u.Name, m.ID); err != nil && !errors.Is(err, fleetregistry.ErrAlreadyScheduled) {
							return err
						}
						u.TargetMachine = m.ID
						on[m.ID] = append(on[m.ID], u)
						break
					}
				}
			}
		}
	}
	// agents
	states, err := fc.reg.UnitStates(ctx)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, u := range units {
		var targets []fleetregistry.MachineState
		if u.IsGlobal() {
			for _, m := range fc.machines {
				if ok, _ := u.Requirements().MetadataMatches(m.Metadata); ok {
					targets = append(targets, m)
				}
			}
		} else {
			for _, m := range fc.machines {
				if m.ID == u.TargetMachine {
					targets = append(targets, m)
				}
			}
		}
		if u.TargetState == fleetregistry.StateInactive {
			continue
		}
		for _, m := range targets {
			want[u.Name+"\x00"+m.ID] = true
			st := fleetregistry.UnitState{UnitName: u.Name, LoadState: "loaded", ActiveState: "inactive", SubState: "dead",
				MachineState: fleetregistry.MachineState{ID: m.ID}, UnitHash: u.Hash.String()}
			if u.TargetState == fleetregistry.StateLaunched {
				st.ActiveState, st.SubState = "active", "running"
				if o, ok := systemd[u.Name]; ok {
					st.ActiveState, st.SubState = o[0], o[1]
				}
				if !u.IsGlobal() && u.JobState != m.ID {
					if err := fc.reg.UnitHeartbeat(ctx, u.Name, m.ID, time.Hour); err != nil {
						return err
					}
				}
			} else if !u.IsGlobal() && u.JobState == m.ID {
				if err := fc.reg.ClearUnitHeartbeat(ctx, u.Name, m.ID); err != nil {
					return err
				}
			}
			key := u.Name + "\x00" + m.ID
			val := st.LoadState + "/" + st.ActiveState + "/" + st.SubState + "/" + st.UnitHash
			if fc.published[key] == val {
				continue
			}
			if err := fc.reg.SaveUnitState(ctx, st, time.Hour); err != nil {
				return err
			}
			fc.published[key] = val
		}
	}
	for _, s := range states {
		if !want[s.UnitName+"\x00"+s.MachineID()] {
			if err := fc.reg.RemoveUnitState(ctx, s.UnitName, s.MachineID()); err != nil {
				return err
			}
			delete(fc.published, s.UnitName+"\x00"+s.MachineID())
		}
	}
	return nil
}
