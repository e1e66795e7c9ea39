package fleetmain

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/corekit/corekit/fleet/internal/unitmgr"
	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/unitfile"
	"github.com/corekit/corekit/internal/v2client"
)

// shutdownNode runs one fleetd in process with a long agent_ttl, so that a
// presence that disappears was released, not expired.
func shutdownNode(t *testing.T, etcdURL, id string, mgr unitmgr.Manager, tweak func(*Config)) *node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.EtcdServers = []string{etcdURL}
	cfg.EtcdRequestTimeout = 5 * time.Second
	cfg.AgentTTL = 60 * time.Second
	cfg.EngineReconcileInterval = 300 * time.Millisecond
	cfg.APISocket = ""
	if tweak != nil {
		tweak(&cfg)
	}
	log := slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", id)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := NewServer(ctx, cfg, Deps{Logger: log, Manager: mgr, MachineID: id, Owner: "owner-" + id})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{srv: srv, cancel: cancel, done: make(chan struct{})}
	if m, ok := mgr.(*unitmgr.Memory); ok {
		n.mgr = m
	}
	go func() { defer close(n.done); _ = srv.Run(ctx) }()
	t.Cleanup(n.stop)
	return n
}

func registryOf(t *testing.T, etcdURL string) *fleetregistry.Registry {
	c, err := v2client.New(v2client.Config{Endpoints: []string{etcdURL}, HeaderTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return fleetregistry.NewEtcd(c, "")
}

func hasMachine(t *testing.T, reg *fleetregistry.Registry, id string) bool {
	ms, err := reg.Machines(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.ID == id {
			return true
		}
	}
	return false
}

func stateOf(t *testing.T, reg *fleetregistry.Registry, unit, id string) *fleetregistry.UnitState {
	sts, err := reg.UnitStates(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sts {
		if s.UnitName == unit && s.MachineID() == id {
			return &s
		}
	}
	return nil
}

// A plain stop of fleetd keeps units and presence; a stop while systemd
// reports the system "stopping" releases presence and unit states at once
// (so the engine moves the units without waiting for agent_ttl), and still
// leaves the units to systemd.
func TestShutdownReleasesPresenceOnlyWhenSystemStops(t *testing.T) {
	etcd := etcdtest.Start(t, etcdtest.Reference)
	reg := registryOf(t, etcd.ClientURL)
	ctx := t.Context()
	mgr := unitmgr.NewMemory()
	a := shutdownNode(t, etcd.ClientURL, "machine1", mgr, nil)
	f, _ := unitfile.Parse("[Service]\nExecStart=/bin/sleep 1000\n")
	if err := reg.CreateUnit(ctx, &fleetregistry.Unit{Name: "hello.service", File: f, TargetState: fleetregistry.StateLaunched}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "hello active and published", 20*time.Second, func() (bool, string) {
		s := stateOf(t, reg, "hello.service", "machine1")
		return s != nil && s.ActiveState == "active", fmt.Sprint(s)
	})

	// Plain restart: nothing is withdrawn, the new fleetd takes over.
	a.stop()
	if !hasMachine(t, reg, "machine1") || stateOf(t, reg, "hello.service", "machine1") == nil {
		t.Fatal("a plain stop of fleetd withdrew presence or unit state")
	}
	a = shutdownNode(t, etcd.ClientURL, "machine1", mgr, nil)
	waitFor(t, "restarted fleetd ready", 10*time.Second, func() (bool, string) { return a.srv.ready.Load(), "" })

	// Machine shutdown: presence and states are gone when fleetd exits.
	mgr.SetSystemState(unitmgr.SystemStopping)
	a.stop()
	if hasMachine(t, reg, "machine1") {
		t.Fatal("presence still registered after fleetd stopped during a system shutdown")
	}
	if s := stateOf(t, reg, "hello.service", "machine1"); s != nil {
		t.Fatalf("unit state still published after shutdown: %+v", s)
	}
	if u, err := reg.Unit(ctx, "hello.service"); err != nil || u.JobState != "" {
		t.Fatalf("launched heartbeat left behind: %+v %v", u, err)
	}
	if st, _ := mgr.States(ctx, []string{"hello.service"}); st["hello.service"].ActiveState != "active" || mgr.Calls("Unload") != 0 {
		t.Fatalf("fleetd stopped its units without purge_on_shutdown: %+v, %d unloads", st, mgr.Calls("Unload"))
	}
}

// blockingManager is a Manager whose Stop never returns, as a systemd that
// no longer answers.
type blockingManager struct {
	*unitmgr.Memory
	release chan struct{}
}

func (b blockingManager) Stop(ctx context.Context, name string) error {
	<-b.release
	return nil
}

// Shutdown is bounded: a purge that cannot finish does not keep fleetd
// from exiting.
func TestShutdownIsBounded(t *testing.T) {
	etcd := etcdtest.Start(t, etcdtest.Reference)
	reg := registryOf(t, etcd.ClientURL)
	mgr := blockingManager{Memory: unitmgr.NewMemory(), release: make(chan struct{})}
	t.Cleanup(func() { close(mgr.release) })
	a := shutdownNode(t, etcd.ClientURL, "machine1", mgr, func(c *Config) {
		c.PurgeOnShutdown = true
		c.ShutdownTimeout = 500 * time.Millisecond
	})
	f, _ := unitfile.Parse("[Service]\nExecStart=/bin/sleep 1000\n")
	if err := reg.CreateUnit(t.Context(), &fleetregistry.Unit{Name: "hello.service", File: f, TargetState: fleetregistry.StateLaunched}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "hello started", 20*time.Second, func() (bool, string) { return mgr.Calls("Start") > 0, "" })
	a.cancel()
	select {
	case <-a.done:
	case <-time.After(30 * time.Second):
		t.Fatal("fleetd did not exit while its purge hung")
	}
}
