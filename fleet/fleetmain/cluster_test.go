package fleetmain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/fleet/internal/unitmgr"
	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/fleetapi"
	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/testwait"
	"github.com/corekit/corekit/internal/unitfile"
	"github.com/corekit/corekit/internal/v2client"
)

type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) { w.t.Log(strings.TrimSpace(string(p))); return len(p), nil }

type node struct {
	srv    *Server
	mgr    *unitmgr.Memory
	cancel context.CancelFunc
	done   chan struct{}
}

// startNode runs one fleetd in process: real engine, agent, registry over a
// real etcd and API; only systemd is simulated (unitmgr.Memory).
func startNode(t *testing.T, etcdURL, id string, md map[string]string, apiAddr string) *node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.EtcdServers = []string{etcdURL}
	cfg.EtcdRequestTimeout = 5 * time.Second
	cfg.AgentTTL = 3 * time.Second
	cfg.EngineReconcileInterval = 500 * time.Millisecond
	cfg.Metadata = md
	cfg.PublicIP = "10.0.0." + id[len(id)-1:]
	cfg.APISocket = ""
	cfg.APIListen = apiAddr
	mgr := unitmgr.NewMemory()
	log := slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", id)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := NewServer(ctx, cfg, Deps{Logger: log, Manager: mgr, MachineID: id, Owner: "owner-" + id})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{srv: srv, mgr: mgr, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(n.done); _ = srv.Run(ctx) }()
	t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	n.cancel()
	<-n.done
}

func waitFor(t *testing.T, what string, d time.Duration, f func() (bool, string)) {
	t.Helper()
	testwait.For(t, what, d, 100*time.Millisecond, f)
}

func TestClusterInProcess(t *testing.T) {
	etcd := etcdtest.Start(t, etcdtest.Reference)
	addr := map[string]string{}
	for _, id := range []string{"machine1", "machine2", "machine3"} {
		addr[id] = fmt.Sprintf("127.0.0.1:%d", etcdtest.FreePort(t))
	}
	nodes := map[string]*node{
		"machine1": startNode(t, etcd.ClientURL, "machine1", map[string]string{"role": "web"}, addr["machine1"]),
		"machine2": startNode(t, etcd.ClientURL, "machine2", map[string]string{"role": "web"}, addr["machine2"]),
		"machine3": startNode(t, etcd.ClientURL, "machine3", map[string]string{"role": "db"}, addr["machine3"]),
	}
	ctx := t.Context()
	// Every fleetd serves the same API; talk to machine3, which is never stopped
	// (the db unit pins itself there, so it never hosts hello).
	c, err := fleetapi.NewClient("http://"+addr["machine3"], nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 machines", 20*time.Second, func() (bool, string) {
		ms, err := c.Machines(ctx)
		return err == nil && len(ms) == 3, fmt.Sprint(len(ms), err)
	})

	put := func(name, text, desired string) {
		t.Helper()
		f, err := unitfile.Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CreateUnit(ctx, &fleetapi.Unit{Name: name, Options: fleetapi.OptionsOf(f), DesiredState: desired}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	launchedOn := func(name string) string {
		u, err := c.Unit(ctx, name)
		if err != nil || u == nil || u.CurrentState != "launched" {
			return ""
		}
		return u.MachineID
	}
	put("hello.service", "[Service]\nExecStart=/bin/sleep 1000\n", "launched")
	put("db.service", "[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata=role=db\n", "launched")
	var helloOn string
	waitFor(t, "hello and db launched", 20*time.Second, func() (bool, string) {
		helloOn = launchedOn("hello.service")
		return helloOn != "" && launchedOn("db.service") != "", helloOn
	})
	if got := launchedOn("db.service"); got != "machine3" {
		t.Fatalf("db.service on %s, want machine3 (metadata constraint)", got)
	}
	// The unit runs where the registry says, and its systemd state is published.
	waitFor(t, "hello state published", 10*time.Second, func() (bool, string) {
		sts, err := c.UnitStates(ctx, "", "hello.service")
		return err == nil && len(sts) == 1 && sts[0].SystemdActiveState == "active" && sts[0].MachineID == helloOn, fmt.Sprint(sts, err)
	})
	if st, _ := nodes[helloOn].mgr.States(ctx, []string{"hello.service"}); st["hello.service"].ActiveState != "active" {
		t.Fatalf("hello.service not active on %s: %+v", helloOn, st)
	}
	// A crash is reported from systemd's state, not from memory.
	nodes[helloOn].mgr.Kill("hello.service")
	waitFor(t, "failed state published", 10*time.Second, func() (bool, string) {
		sts, _ := c.UnitStates(ctx, helloOn, "hello.service")
		return len(sts) == 1 && sts[0].SystemdActiveState == "failed", fmt.Sprint(sts)
	})

	// API errors.
	var apiErr *fleetapi.Error
	if err := c.SetUnitTargetState(ctx, "hello.service", "running"); !errors.As(err, &apiErr) || apiErr.Code != http.StatusBadRequest {
		t.Fatalf("invalid desired state: %v", err)
	}
	if err := c.SetUnitTargetState(ctx, "nope.service", "launched"); !errors.As(err, &apiErr) || apiErr.Code != http.StatusConflict || apiErr.Message != "unit does not exist and options field empty" {
		t.Fatalf("missing unit: %v", err)
	}
	if u, err := c.Unit(ctx, "nope.service"); u != nil || err != nil {
		t.Fatalf("GET missing = %v %v", u, err)
	}

	// Machine loss: stop the fleetd hosting hello (units keep "running" there,
	// presence expires) → hello is rescheduled within agent_ttl + interval.
	if helloOn != "machine3" {
		nodes[helloOn].stop()
		if st, _ := nodes[helloOn].mgr.States(ctx, []string{"hello.service"}); st["hello.service"].LoadState != "loaded" {
			t.Fatalf("stopping fleetd must not unload its units: %+v", st)
		}
		old := helloOn
		waitFor(t, "hello rescheduled", 20*time.Second, func() (bool, string) {
			helloOn = launchedOn("hello.service")
			return helloOn != "" && helloOn != old, helloOn
		})
	}

	// Leader failover: stop the engine leader; another schedules new units.
	var leader string
	waitFor(t, "a leader", 10*time.Second, func() (bool, string) {
		for id, n := range nodes {
			select {
			case <-n.done:
				continue
			default:
			}
			if n.srv.Engine != nil && n.srv.Engine.IsLeader() {
				leader = id
				return true, id
			}
		}
		return false, ""
	})
	{
		nodes[leader].stop()
		for id, n := range nodes {
			select {
			case <-n.done:
				continue
			default:
			}
			c, _ = fleetapi.NewClient("http://"+addr[id], nil) // a live machine's API
		}
		put("after.service", "[Service]\nExecStart=/bin/true\n", "launched")
		waitFor(t, "after.service launched by a new leader", 20*time.Second, func() (bool, string) {
			on := launchedOn("after.service")
			return on != "" && on != leader, on
		})
	}
}

func TestDuplicateMachineIDRefused(t *testing.T) {
	etcd := etcdtest.Start(t, etcdtest.Reference)
	a := startNode(t, etcd.ClientURL, "dup1", nil, "")
	c, _ := v2client.New(v2client.Config{Endpoints: []string{etcd.ClientURL}})
	reg := fleetregistry.NewEtcd(c, "")
	waitFor(t, "first registered", 10*time.Second, func() (bool, string) {
		ms, _ := reg.Machines(t.Context())
		return len(ms) == 1, ""
	})
	// Same machine ID, different host (owner): refused while the first lives.
	err := reg.RegisterMachine(t.Context(), fleetregistry.MachineState{ID: "dup1"}, "another-host", 3*time.Second)
	if !errors.Is(err, fleetregistry.ErrMachineIDInUse) {
		t.Fatalf("duplicate registration = %v", err)
	}
	// A restarted fleetd on the same host re-registers at once.
	a.stop()
	b := startNode(t, etcd.ClientURL, "dup1", nil, "")
	waitFor(t, "restarted fleetd ready", 5*time.Second, func() (bool, string) { return b.srv.ready.Load(), "" })
}
