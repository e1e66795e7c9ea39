package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/buildbin"
	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/fleetapi"
	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/testbed"
	"github.com/corekit/corekit/internal/testwait"
	"github.com/corekit/corekit/internal/unitfile"
	"github.com/corekit/corekit/internal/v2client"
)

const (
	// Long enough that a poweroff on a loaded machine finishes before the
	// presence could expire: the test asserts fleetd released it itself.
	agentTTL = 10 * time.Second
	interval = 500 * time.Millisecond
)

// startEtcd runs an etcd whose client URL is bound to addr only (the host's
// bridge address), so the guests and the test reach it and nothing else does.
// It is ours (./etcd); FLEET_E2E_ETCD=reference runs Debian's 3.4 instead.
func startEtcd(t *testing.T, addr string) string {
	t.Helper()
	kind := etcdtest.Ours
	if os.Getenv("FLEET_E2E_ETCD") == "reference" {
		kind = etcdtest.Reference
	}
	s := etcdtest.StartOn(t, kind, addr)
	t.Logf("etcd: %s", s.Binary)
	return s.ClientURL
}

func waitFor(t *testing.T, what string, d time.Duration, f func() (bool, string)) {
	t.Helper()
	testwait.For(t, what, d, 200*time.Millisecond, f)
}

const fleetService = `[Unit]
Description=fleet daemon
[Service]
ExecStart=/opt/fleet/fleetd
Restart=no
`

func TestFleetOnRealSystemd(t *testing.T) {
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b, err := buildbin.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Cleanup)
	bin, err := b.Build(ctx, "fleet", "fleetd")
	if err != nil {
		t.Fatal(err)
	}
	c := testbed.NewCluster(t, testbed.Options{N: 3, Binds: []testbed.Bind{{Host: filepath.Dir(bin), Guest: "/opt/fleet", ReadOnly: true}}})
	etcdURL := startEtcd(t, c.HostAddr().String())

	byID := map[string]*testbed.Machine{}
	for _, m := range c.Machines {
		conf := fmt.Sprintf("etcd_servers=%s\netcd_request_timeout=3\nagent_ttl=%s\nengine_reconcile_interval=%g\npublic_ip=%s\nmetadata=hostname=%s\n",
			etcdURL, agentTTL, interval.Seconds(), m.Addr(), m.Hostname())
		m.MustWriteFile("/etc/fleet/fleet.conf", []byte(conf), 0o644)
		m.MustWriteFile("/etc/systemd/system/fleet.service", []byte(fleetService), 0o644)
		m.MustRun(ctx, "systemctl", "daemon-reload")
		m.MustRun(ctx, "systemctl", "start", "fleet.service")
		id := strings.TrimSpace(string(m.MustReadFile("/etc/machine-id")))
		byID[id] = m
	}
	if len(byID) != 3 {
		t.Fatalf("machines do not have distinct machine IDs: %v", byID)
	}
	vc, err := v2client.New(v2client.Config{Endpoints: []string{etcdURL}, HeaderTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	reg := fleetregistry.NewEtcd(vc, "")
	waitFor(t, "3 registered machines", 30*time.Second, func() (bool, string) {
		ms, err := reg.Machines(ctx)
		return err == nil && len(ms) == 3, fmt.Sprint(len(ms), err)
	})
	// Talk to core-01's API through its unix socket, seen from the host.
	api := func(m *testbed.Machine) *fleetapi.Client {
		cl, err := fleetapi.NewClient("unix://"+m.GuestPath("/var/run/fleet.sock"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	cl := api(c.Machines[0])
	submit := func(name, text string) {
		t.Helper()
		f, err := unitfile.Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		if err := cl.CreateUnit(ctx, &fleetapi.Unit{Name: name, Options: fleetapi.OptionsOf(f), DesiredState: "launched"}); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	launchedOn := func(name string) string {
		u, err := cl.Unit(ctx, name)
		if err != nil || u == nil || u.CurrentState != "launched" {
			return ""
		}
		return u.MachineID
	}
	isActive := func(m *testbed.Machine, unit string) string {
		return strings.TrimSpace(m.Run(ctx, "systemctl", "is-active", unit).Stdout)
	}

	submit("hello.service", "[Service]\nExecStart=/bin/sleep 100000\n")
	submit("pinned.service", "[Service]\nExecStart=/bin/sleep 100000\n[X-Fleet]\nMachineMetadata=hostname=core-02\n")
	var helloOn string
	waitFor(t, "units launched", 30*time.Second, func() (bool, string) {
		helloOn = launchedOn("hello.service")
		return helloOn != "" && launchedOn("pinned.service") != "", helloOn
	})
	if got := byID[launchedOn("pinned.service")].Hostname(); got != "core-02" {
		t.Fatalf("pinned.service runs on %s, want core-02", got)
	}
	helloM := byID[helloOn]
	waitFor(t, "hello active in systemd on "+helloM.Hostname(), 15*time.Second, func() (bool, string) {
		s := isActive(helloM, "hello.service")
		return s == "active", s
	})
	if l := strings.TrimSpace(helloM.MustRun(ctx, "readlink", "/run/systemd/system/hello.service")); l != "/run/fleet/units/hello.service" {
		t.Fatalf("/run/systemd/system/hello.service links to %q", l)
	}
	waitFor(t, "published state active", 15*time.Second, func() (bool, string) {
		sts, err := cl.UnitStates(ctx, helloOn, "hello.service")
		return err == nil && len(sts) == 1 && sts[0].SystemdActiveState == "active", fmt.Sprint(sts, err)
	})

	// systemctl kill: the published state follows systemd.
	helloM.MustRun(ctx, "systemctl", "kill", "--kill-whom=main", "--signal=KILL", "hello.service")
	waitFor(t, "published state after kill", 15*time.Second, func() (bool, string) {
		sts, _ := cl.UnitStates(ctx, helloOn, "hello.service")
		return len(sts) == 1 && sts[0].SystemdActiveState != "active", fmt.Sprint(sts)
	})

	// Restarting fleetd does not stop its units, and its presence is taken
	// over by the new fleetd, never withdrawn.
	core2 := c.Machine("core-02")
	core2ID := idOf(byID, core2)
	before := core2.MustRun(ctx, "systemctl", "show", "-p", "MainPID", "pinned.service")
	from := storeIndex(ctx, t, reg)
	core2.MustRun(ctx, "systemctl", "restart", "fleet.service")
	time.Sleep(2 * time.Second) // let the new fleetd run a reconcile pass
	if s := isActive(core2, "pinned.service"); s != "active" {
		t.Fatalf("pinned.service is %s after fleetd restart", s)
	}
	if after := core2.MustRun(ctx, "systemctl", "show", "-p", "MainPID", "pinned.service"); after != before {
		t.Fatalf("pinned.service was restarted: %s → %s", before, after)
	}
	if acts := presenceActions(ctx, t, reg, core2ID, from, storeIndex(ctx, t, reg)); slices.Contains(acts, "delete") || slices.Contains(acts, "expire") {
		t.Fatalf("a plain fleetd restart withdrew the presence: %v", acts)
	}

	// purge_on_shutdown: stopping fleetd stops and unloads its units (the
	// D-Bus connection must survive SIGTERM for that).
	core2.MustWriteFile("/etc/systemd/system/fleet.service.d/purge.conf", []byte("[Service]\nEnvironment=FLEET_PURGE_ON_SHUTDOWN=true\n"), 0o644)
	core2.MustRun(ctx, "systemctl", "daemon-reload")
	core2.MustRun(ctx, "systemctl", "restart", "fleet.service")
	pid := strings.TrimSpace(core2.MustRun(ctx, "systemctl", "show", "-p", "MainPID", "--value", "fleet.service"))
	waitFor(t, "fleetd "+pid+" registered", 15*time.Second, func() (bool, string) {
		j := core2.Run(ctx, "journalctl", "_PID="+pid, "--no-pager", "-o", "cat").Stdout
		return strings.Contains(j, "machine registered") && isActive(core2, "pinned.service") == "active", j
	})
	core2.MustRun(ctx, "systemctl", "stop", "fleet.service")
	if j := core2.Run(ctx, "journalctl", "-u", "fleet.service", "--no-pager", "-o", "cat").Stdout; strings.Contains(j, "purge failed") {
		t.Fatalf("purge failed:\n%s", j)
	}
	if s := isActive(core2, "pinned.service"); s == "active" {
		t.Fatalf("pinned.service is %s after fleetd stopped with purge_on_shutdown", s)
	}
	if r := core2.Run(ctx, "test", "-e", "/run/fleet/units/pinned.service"); r.Err == nil {
		t.Fatal("/run/fleet/units/pinned.service still there after the purge")
	}
	core2.MustRun(ctx, "rm", "/etc/systemd/system/fleet.service.d/purge.conf")
	core2.MustRun(ctx, "systemctl", "daemon-reload")
	core2.MustRun(ctx, "systemctl", "start", "fleet.service")
	waitFor(t, "pinned.service launched again on core-02", 30*time.Second, func() (bool, string) {
		s := isActive(core2, "pinned.service")
		return launchedOn("pinned.service") == core2ID && s == "active", s
	})

	// Kill the engine leader's fleetd: another machine takes the lease.
	var lease *fleetregistry.Lease
	waitFor(t, "a leader", 15*time.Second, func() (bool, string) {
		lease, err = reg.GetLease(ctx, "engine-leader")
		return err == nil && lease != nil, fmt.Sprint(err)
	})
	oldLeader := byID[lease.MachineID]
	oldLeader.MustRun(ctx, "systemctl", "kill", "--kill-whom=main", "--signal=KILL", "fleet.service")
	waitFor(t, "a new engine leader", 30*time.Second, func() (bool, string) {
		l, err := reg.GetLease(ctx, "engine-leader")
		return err == nil && l != nil && l.MachineID != lease.MachineID, fmt.Sprint(l, err)
	})
	// The killed fleetd's presence is still live (its TTL has not run out),
	// so counting machines cannot tell that the new process registered:
	// count its "machine registered" log lines instead. A SIGTERM that
	// reaches a fleetd still starting up would otherwise race the release
	// checked below.
	registered := func() int {
		r := oldLeader.Run(ctx, "journalctl", "-u", "fleet.service", "-o", "cat", "--no-pager")
		return strings.Count(r.Stdout, "machine registered")
	}
	regsBefore := registered()
	oldLeader.MustRun(ctx, "systemctl", "start", "fleet.service")
	waitFor(t, "killed fleetd re-registered", 15*time.Second, func() (bool, string) {
		n := registered()
		ms, _ := reg.Machines(ctx)
		return n > regsBefore && len(ms) == 3, fmt.Sprint(n, " registrations, ", len(ms), " machines")
	})

	// Power off a machine running a unit: it runs elsewhere within
	// agent_ttl + a reconcile interval (+ slack for agents and systemd).
	victim := helloM
	if victim == c.Machines[0] { // keep the API we use alive
		cl = api(c.Machines[1])
	}
	start := time.Now()
	from = storeIndex(ctx, t, reg)
	if err := victim.Poweroff(ctx); err != nil {
		t.Fatal(err)
	}
	// Without purge_on_shutdown, fleetd saw systemd "stopping" and released
	// the presence itself (a delete), rather than letting it expire.
	waitFor(t, "victim's presence gone", 30*time.Second, func() (bool, string) {
		ms, err := reg.Machines(ctx)
		return err == nil && len(ms) == 2, fmt.Sprint(len(ms), err)
	})
	if acts := presenceActions(ctx, t, reg, helloOn, from, storeIndex(ctx, t, reg)); !slices.Contains(acts, "delete") || slices.Contains(acts, "expire") {
		t.Fatalf("presence of the powered-off machine was not released by fleetd: %v", acts)
	}
	var newOn string
	waitFor(t, "hello rescheduled after poweroff", agentTTL+interval+20*time.Second, func() (bool, string) {
		newOn = launchedOn("hello.service")
		return newOn != "" && newOn != helloOn && isActive(byID[newOn], "hello.service") == "active", newOn
	})
	t.Logf("hello.service moved from %s to %s %s after poweroff", victim.Hostname(), byID[newOn].Hostname(), time.Since(start).Round(time.Millisecond))
}

func idOf(byID map[string]*testbed.Machine, m *testbed.Machine) string {
	for id, x := range byID {
		if x == m {
			return id
		}
	}
	return ""
}

// storeIndex is the store's current index.
func storeIndex(ctx context.Context, t *testing.T, reg *fleetregistry.Registry) uint64 {
	t.Helper()
	_, idx, err := reg.KV().Get(ctx, reg.Prefix()+"/machines", true)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// presenceActions lists the actions on machine id's presence key between
// the store indexes from (exclusive) and until (inclusive).
func presenceActions(ctx context.Context, t *testing.T, reg *fleetregistry.Registry, id string, from, until uint64) []string {
	t.Helper()
	var out []string
	key := reg.Prefix() + "/machines/" + id + "/object"
	// A write of our own ends the walk through the history.
	mark, err := reg.KV().Set(ctx, reg.Prefix()+"/e2e-mark", "x", fleetregistry.SetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for from < mark.ModifiedIndex {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ev, err := reg.KV().Watch(wctx, reg.Prefix(), from)
		cancel()
		if err != nil {
			t.Fatalf("watch %s after %d: %v", reg.Prefix(), from, err)
		}
		if ev.Key == key && ev.Index <= until {
			out = append(out, ev.Action)
		}
		from = ev.Index
	}
	return out
}
