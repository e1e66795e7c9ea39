package fleetregistry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/buildbin"
	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/unitfile"
	"github.com/corekit/corekit/internal/v2api"
	"github.com/corekit/corekit/internal/v2client"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is one registry implementation under test. expire makes keys with a
// TTL of at most ttl disappear (advancing the fake clock, or waiting for the
// real store).
type env struct {
	reg    *Registry
	raw    KV
	expire func(t *testing.T, ttl time.Duration)
}

// forEach runs f against the in-memory registry and a registry in a real
// etcd: Debian's 3.4 (skipped loudly when absent) and ours once etcd/main.go
// exists.
func forEach(t *testing.T, f func(t *testing.T, e env)) {
	t.Run("memory", func(t *testing.T) {
		clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
		kv := NewMemKV(clk.now)
		f(t, env{reg: New(kv, ""), raw: kv, expire: func(t *testing.T, ttl time.Duration) { clk.add(ttl + time.Second) }})
	})
	kinds := []etcdtest.Kind{etcdtest.Reference}
	if root, err := buildbin.ModuleRoot(); err == nil {
		if _, err := os.Stat(filepath.Join(root, "etcd", "main.go")); err == nil {
			kinds = append(kinds, etcdtest.Ours)
		}
	}
	for _, kind := range kinds {
		t.Run("etcd-"+string(kind), func(t *testing.T) {
			srv := etcdtest.Start(t, kind)
			c, err := v2client.New(v2client.Config{Endpoints: []string{srv.ClientURL}, HeaderTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			kv := NewEtcdKV(c)
			f(t, env{reg: New(kv, ""), raw: kv, expire: func(t *testing.T, ttl time.Duration) { time.Sleep(ttl + 1500*time.Millisecond) }})
		})
	}
}

func mustUnit(t *testing.T, text string) *unitfile.UnitFile {
	t.Helper()
	u, err := unitfile.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUnitsLifecycle(t *testing.T) {
	forEach(t, func(t *testing.T, e env) {
		ctx := t.Context()
		r := e.reg
		f := mustUnit(t, "[Service]\nExecStart=/bin/sleep 1000\n")
		if err := r.CreateUnit(ctx, &Unit{Name: "b.service", File: f}); err != nil {
			t.Fatal(err)
		}
		if err := r.CreateUnit(ctx, &Unit{Name: "a.service", File: f, TargetState: StateLaunched}); err != nil {
			t.Fatal(err)
		}
		us, idx, err := r.Units(ctx)
		if err != nil || len(us) != 2 || idx == 0 {
			t.Fatalf("Units = %v idx %d err %v", us, idx, err)
		}
		if us[0].Name != "a.service" || us[0].TargetState != StateLaunched || us[1].TargetState != StateInactive {
			t.Fatalf("units = %+v %+v", us[0], us[1])
		}
		if us[0].Hash != f.Hash() || us[0].File.String() != f.String() {
			t.Fatalf("hash/content mismatch")
		}
		// Wire shapes other fleet tools read.
		n, _, err := e.raw.Get(ctx, DefaultPrefix+"job/a.service/object", false)
		if err != nil {
			t.Fatal(err)
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(n.StringValue()), &obj); err != nil {
			t.Fatal(err)
		}
		if obj["Name"] != "a.service" || len(obj["UnitHash"].([]any)) != 20 {
			t.Fatalf("object = %s", n.StringValue())
		}
		n, _, err = e.raw.Get(ctx, DefaultPrefix+"unit/"+f.Hash().String(), false)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := json.Marshal(map[string]string{"Raw": f.String()}); n.StringValue() != string(want) {
			t.Fatalf("content = %s want %s", n.StringValue(), want)
		}

		if err := r.SetUnitTargetState(ctx, "b.service", StateLoaded); err != nil {
			t.Fatal(err)
		}
		if err := r.SetUnitTargetState(ctx, "nope.service", StateLoaded); !errors.Is(err, ErrUnitNotFound) {
			t.Fatalf("set on missing = %v", err)
		}
		if err := r.SetUnitTargetState(ctx, "b.service", "bogus"); err == nil {
			t.Fatal("bogus target state accepted")
		}
		// schedule
		if err := r.ScheduleUnit(ctx, "a.service", "m1"); err != nil {
			t.Fatal(err)
		}
		if err := r.ScheduleUnit(ctx, "a.service", "m2"); !errors.Is(err, ErrAlreadyScheduled) {
			t.Fatalf("double schedule = %v", err)
		}
		if err := r.UnscheduleUnit(ctx, "a.service", "m2"); err != nil {
			t.Fatal(err)
		}
		u, err := r.Unit(ctx, "a.service")
		if err != nil || u.TargetMachine != "m1" {
			t.Fatalf("unit = %+v, %v (unschedule from wrong machine must not remove target)", u, err)
		}
		// current state derivation
		has := map[string]bool{}
		hasState := func(unit, m string) bool { return has[unit+"/"+m] }
		if s := u.CurrentState(hasState); s != StateInactive {
			t.Fatalf("current = %s", s)
		}
		if err := r.SaveUnitState(ctx, UnitState{UnitName: "a.service", LoadState: "loaded", ActiveState: "active", SubState: "running", MachineState: MachineState{ID: "m1"}, UnitHash: f.Hash().String()}, time.Minute); err != nil {
			t.Fatal(err)
		}
		sts, err := r.UnitStates(ctx)
		if err != nil || len(sts) != 1 || sts[0].MachineID() != "m1" || sts[0].ActiveState != "active" || sts[0].UnitName != "a.service" {
			t.Fatalf("states = %+v %v", sts, err)
		}
		n, _, err = e.raw.Get(ctx, DefaultPrefix+"states/a.service/m1", false)
		if err != nil {
			t.Fatal(err)
		}
		wantState := `{"loadState":"loaded","activeState":"active","subState":"running","machineState":{"ID":"m1","PublicIP":"","Metadata":null,"Capabilities":null,"Version":""},"unitHash":"` + f.Hash().String() + `"}`
		if n.StringValue() != wantState {
			t.Fatalf("state json = %s\nwant %s", n.StringValue(), wantState)
		}
		has["a.service/m1"] = true
		if s := u.CurrentState(hasState); s != StateLoaded {
			t.Fatalf("current = %s", s)
		}
		if err := r.UnitHeartbeat(ctx, "a.service", "m1", time.Minute); err != nil {
			t.Fatal(err)
		}
		u, _ = r.Unit(ctx, "a.service")
		if s := u.CurrentState(hasState); s != StateLaunched {
			t.Fatalf("current = %s", s)
		}
		if err := r.RemoveUnitState(ctx, "a.service", "m1"); err != nil {
			t.Fatal(err)
		}
		if sts, _ := r.UnitStates(ctx); len(sts) != 0 {
			t.Fatalf("states after remove = %+v", sts)
		}
		if err := r.DestroyUnit(ctx, "a.service"); err != nil {
			t.Fatal(err)
		}
		if err := r.DestroyUnit(ctx, "a.service"); !errors.Is(err, ErrUnitNotFound) {
			t.Fatalf("destroy twice = %v", err)
		}
		if _, err := r.Unit(ctx, "a.service"); !errors.Is(err, ErrUnitNotFound) {
			t.Fatalf("get destroyed = %v", err)
		}
	})
}

func TestMachinesPresence(t *testing.T) {
	forEach(t, func(t *testing.T, e env) {
		ctx := t.Context()
		r := e.reg
		ms := MachineState{ID: "m1", PublicIP: "10.0.0.1", Metadata: map[string]string{"region": "us", "disk": "ssd"}, Capabilities: map[string]bool{CapDisableEngine: false}, Version: Version}
		if err := r.RegisterMachine(ctx, ms, "boot-a", 2*time.Second); err != nil {
			t.Fatal(err)
		}
		// A restarted fleetd on the same host takes over at once.
		if err := r.RegisterMachine(ctx, ms, "boot-a", 2*time.Second); err != nil {
			t.Fatalf("re-register same owner: %v", err)
		}
		// Another host with the same machine ID is refused.
		if err := r.RegisterMachine(ctx, ms, "boot-b", 2*time.Second); !errors.Is(err, ErrMachineIDInUse) {
			t.Fatalf("duplicate = %v", err)
		}
		if err := r.MachineHeartbeat(ctx, ms, "boot-b", 2*time.Second); !errors.Is(err, ErrMachineIDInUse) {
			t.Fatalf("duplicate heartbeat = %v", err)
		}
		if err := r.SetMachineMetadata(ctx, "m1", "disk", ""); err != nil {
			t.Fatal(err)
		}
		if err := r.SetMachineMetadata(ctx, "m1", "rack", "7"); err != nil {
			t.Fatal(err)
		}
		got, err := r.Machines(ctx)
		if err != nil || len(got) != 1 {
			t.Fatalf("machines = %v %v", got, err)
		}
		if got[0].PublicIP != "10.0.0.1" || got[0].Metadata["region"] != "us" || got[0].Metadata["rack"] != "7" {
			t.Fatalf("machine = %+v", got[0])
		}
		if _, ok := got[0].Metadata["disk"]; ok {
			t.Fatalf("tombstoned key still visible: %+v", got[0].Metadata)
		}
		n, _, err := e.raw.Get(ctx, DefaultPrefix+"machines/m1/object", false)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"ID":"m1","PublicIP":"10.0.0.1","Metadata":{"disk":"ssd","region":"us"},"Capabilities":{"DISABLE_ENGINE":false},"Version":"1.0.0"}`; n.StringValue() != want {
			t.Fatalf("object = %s", n.StringValue())
		}
		e.expire(t, 2*time.Second)
		if got, _ := r.Machines(ctx); len(got) != 0 {
			t.Fatalf("machine did not expire: %+v", got)
		}
		if err := r.MachineHeartbeat(ctx, ms, "boot-a", 2*time.Second); !errors.Is(err, ErrNotRegistered) {
			t.Fatalf("heartbeat after expiry = %v", err)
		}
		// After expiry the other host may register.
		if err := r.RegisterMachine(ctx, ms, "boot-b", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := r.RemoveMachine(ctx, "m1", "boot-a"); err != nil {
			t.Fatal(err)
		}
		if got, _ := r.Machines(ctx); len(got) != 1 {
			t.Fatal("a non-owner removed the machine")
		}
		if err := r.RemoveMachine(ctx, "m1", "boot-b"); err != nil {
			t.Fatal(err)
		}
		if got, _ := r.Machines(ctx); len(got) != 0 {
			t.Fatal("owner could not remove the machine")
		}
	})
}

func TestLease(t *testing.T) {
	forEach(t, func(t *testing.T, e env) {
		ctx := t.Context()
		r := e.reg
		l, err := r.AcquireLease(ctx, "engine-leader", "m1", EngineVersion, 2*time.Second)
		if err != nil || l == nil || l.MachineID != "m1" || l.Version != 1 {
			t.Fatalf("acquire = %+v %v", l, err)
		}
		if l2, err := r.AcquireLease(ctx, "engine-leader", "m2", EngineVersion, 2*time.Second); err != nil || l2 != nil {
			t.Fatalf("second acquire = %+v %v", l2, err)
		}
		got, err := r.GetLease(ctx, "engine-leader")
		if err != nil || got.MachineID != "m1" {
			t.Fatalf("get = %+v %v", got, err)
		}
		l, err = r.RenewLease(ctx, "engine-leader", l, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		stale := *l
		stale.Index--
		if _, err := r.RenewLease(ctx, "engine-leader", &stale, 2*time.Second); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("stale renew = %v", err)
		}
		e.expire(t, 2*time.Second)
		if got, _ := r.GetLease(ctx, "engine-leader"); got != nil {
			t.Fatalf("lease did not expire: %+v", got)
		}
		if _, err := r.RenewLease(ctx, "engine-leader", l, 2*time.Second); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("renew expired = %v", err)
		}
		l2, err := r.AcquireLease(ctx, "engine-leader", "m2", EngineVersion, time.Minute)
		if err != nil || l2 == nil {
			t.Fatalf("acquire after expiry = %+v %v", l2, err)
		}
		if err := r.ReleaseLease(ctx, "engine-leader", l2); err != nil {
			t.Fatal(err)
		}
		if got, _ := r.GetLease(ctx, "engine-leader"); got != nil {
			t.Fatal("lease not released")
		}
		if err := r.RaiseEngineVersion(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if v, _, err := r.EngineVersion(ctx); v != 1 || err != nil {
			t.Fatalf("version = %d %v", v, err)
		}
	})
}

func TestWatchUnits(t *testing.T) {
	forEach(t, func(t *testing.T, e env) {
		ctx := t.Context()
		r := e.reg
		_, idx, err := r.Units(ctx)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan uint64, 1)
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		go func() {
			ch, err := r.WatchUnits(wctx, idx)
			if err != nil {
				t.Error(err)
			}
			if ch.Unit != "w.service" || ch.Field == "" {
				t.Errorf("change = %+v", ch)
			}
			done <- ch.Index
		}()
		if err := r.CreateUnit(ctx, &Unit{Name: "w.service", File: mustUnit(t, "[Service]\nExecStart=/bin/true\n")}); err != nil {
			t.Fatal(err)
		}
		if got := <-done; got <= idx {
			t.Fatalf("watch index %d not after %d", got, idx)
		}
		// A change made before the watch starts is not missed (waitIndex).
		_, idx, _ = r.Units(ctx)
		if err := r.SetUnitTargetState(ctx, "w.service", StateLoaded); err != nil {
			t.Fatal(err)
		}
		got, err := r.WatchUnits(wctx, idx)
		if err != nil || got.Index <= idx || got.Unit != "w.service" || got.Field != "target-state" || got.Value != "loaded" || got.PrevValue != "inactive" {
			t.Fatalf("watch after change = %+v %v", got, err)
		}
		// Deleting the unit is seen as a change of the unit directory.
		if err := r.DestroyUnit(ctx, "w.service"); err != nil {
			t.Fatal(err)
		}
		got, err = r.WatchUnits(wctx, got.Index)
		if err != nil || got.Unit != "w.service" || got.Field != "" || got.Action != "delete" {
			t.Fatalf("watch after destroy = %+v %v", got, err)
		}
	})
}

// TestKVTreeShape checks that both KVs return the same tree shape for
// recursive and non-recursive reads (children sorted, directories marked).
func TestKVTreeShape(t *testing.T) {
	forEach(t, func(t *testing.T, e env) {
		ctx := t.Context()
		for _, k := range []string{"/t/b/x", "/t/a/y/z", "/t/a/b", "/t/c", "/t/ab/q"} {
			if _, err := e.raw.Set(ctx, k, "v"+k, SetOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		var walk func(n *v2api.Node, depth int) string
		walk = func(n *v2api.Node, depth int) string {
			s := strings.Repeat(" ", depth) + n.Key
			if n.Dir {
				s += "/"
			} else {
				s += "=" + n.StringValue()
			}
			s += "\n"
			for _, c := range n.Nodes {
				s += walk(c, depth+1)
			}
			return s
		}
		n, _, err := e.raw.Get(ctx, "/t", true)
		if err != nil {
			t.Fatal(err)
		}
		want := "/t/\n /t/a/\n  /t/a/b=v/t/a/b\n  /t/a/y/\n   /t/a/y/z=v/t/a/y/z\n /t/ab/\n  /t/ab/q=v/t/ab/q\n /t/b/\n  /t/b/x=v/t/b/x\n /t/c=v/t/c\n"
		if got := walk(n, 0); got != want {
			t.Fatalf("recursive tree:\n%s\nwant\n%s", got, want)
		}
		n, _, err = e.raw.Get(ctx, "/t", false)
		if err != nil {
			t.Fatal(err)
		}
		want = "/t/\n /t/a/\n /t/ab/\n /t/b/\n /t/c=v/t/c\n"
		if got := walk(n, 0); got != want {
			t.Fatalf("shallow tree:\n%s\nwant\n%s", got, want)
		}
	})
}

// The engine's reason lives at job/<unit>/reason, is read with the unit and
// goes away when cleared or when the unit is destroyed.
func TestUnitReason(t *testing.T) {
	forEach(t, func(t *testing.T, e env) {
		ctx := t.Context()
		r := e.reg
		if err := r.CreateUnit(ctx, &Unit{Name: "a.service", File: mustUnit(t, "[Service]\nExecStart=/bin/true\n"), TargetState: StateLaunched}); err != nil {
			t.Fatal(err)
		}
		if err := r.SetUnitReason(ctx, "a.service", "zero agents available"); err != nil {
			t.Fatal(err)
		}
		n, _, err := e.raw.Get(ctx, DefaultPrefix+"job/a.service/reason", false)
		if err != nil || n.StringValue() != "zero agents available" {
			t.Fatalf("job/a.service/reason = %+v %v", n, err)
		}
		if u, err := r.Unit(ctx, "a.service"); err != nil || u.Reason != "zero agents available" {
			t.Fatalf("Unit = %+v %v", u, err)
		}
		if err := r.SetUnitReason(ctx, "a.service", ""); err != nil {
			t.Fatal(err)
		}
		if err := r.SetUnitReason(ctx, "a.service", ""); err != nil {
			t.Fatalf("clearing an absent reason: %v", err)
		}
		if u, err := r.Unit(ctx, "a.service"); err != nil || u.Reason != "" {
			t.Fatalf("after clearing: %+v %v", u, err)
		}
	})
}

// An agent's follower of machines/<id>/schedule is called once at start and
// then once per wake-up of its own machine, never for other machines'
// wake-ups, unit changes or published states.
func TestFollowScheduleWakeups(t *testing.T) {
	forEach(t, func(t *testing.T, e env) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		r := e.reg
		seen := make(chan string, 16)
		done := make(chan struct{})
		go func() {
			defer close(done)
			r.FollowScheduleWakeups(ctx, "machine1", func() {
				v := "-"
				if n, _, err := e.raw.Get(ctx, r.ScheduleWakeKey("machine1"), false); err == nil {
					v = n.StringValue()
				}
				seen <- v
			})
		}()
		next := func(what string) string {
			select {
			case v := <-seen:
				return v
			case <-ctx.Done():
				t.Fatalf("no wake-up for %s", what)
				return ""
			}
		}
		if v := next("the start"); v != "-" {
			t.Fatalf("first call saw %q, want the key absent", v)
		}
		if err := r.WakeMachine(ctx, "machine2", 7); err != nil {
			t.Fatal(err)
		}
		if err := r.CreateUnit(ctx, &Unit{Name: "x.service", File: mustUnit(t, "[Service]\nExecStart=/bin/true\n"), TargetState: StateLaunched}); err != nil {
			t.Fatal(err)
		}
		if err := r.ScheduleUnit(ctx, "x.service", "machine2"); err != nil {
			t.Fatal(err)
		}
		if err := r.SaveUnitState(ctx, UnitState{UnitName: "x.service", LoadState: "loaded", ActiveState: "active", SubState: "running", MachineState: MachineState{ID: "machine2"}, UnitHash: "abc"}, time.Minute); err != nil {
			t.Fatal(err)
		}
		for _, i := range []uint64{101, 102} {
			if err := r.WakeMachine(ctx, "machine1", i); err != nil {
				t.Fatal(err)
			}
			if v, want := next(fmt.Sprint("wake-up ", i)), fmt.Sprint(i); v != want {
				t.Fatalf("wake-up saw %q, want %q (called for another change?)", v, want)
			}
		}
		cancel()
		<-done
		select {
		case v := <-seen:
			t.Fatalf("extra wake-up (%q)", v)
		default:
		}
	})
}
