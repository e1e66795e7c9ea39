package fleetfaults

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/fleetapi"
	"github.com/corekit/corekit/internal/testbed"
)

var (
	flagRounds   = flag.Int("fleetfaults.rounds", 1, "rounds of faults (each round injects every fault of -fleetfaults.faults once)")
	flagFaults   = flag.String("fleetfaults.faults", "poweroff,kill,partition,kill-fleetd", "comma-separated faults: poweroff, kill, partition, kill-fleetd")
	flagMachines = flag.Int("fleetfaults.machines", 3, "machines (3 or 4)")
	flagTTL      = flag.Duration("fleetfaults.agent-ttl", 10*time.Second, "fleetd agent_ttl on every machine")
	flagSeed     = flag.Uint64("fleetfaults.seed", 0, "seed for the choice of victims (0: from the clock; the seed is logged)")
	flagOut      = flag.String("fleetfaults.out", "", "write the JSON summary to this file")
	flagHold     = flag.Duration("fleetfaults.partition-hold", 0, "keep a partition at least this long (default: until the units recovered elsewhere, +2 s)")
)

const (
	samplePeriod      = 200 * time.Millisecond
	reconcileInterval = 2 * time.Second // fleet's default engine_reconcile_interval
)

// faultResult is what one fault did.
type faultResult struct {
	Round        int            `json:"round"`
	Fault        string         `json:"fault"`
	Victim       string         `json:"victim"`
	VictimLeader bool           `json:"victim_was_engine_leader"`
	InjectTook   float64        `json:"inject_took_s"`   // e.g. how long the poweroff took
	HealAfter    float64        `json:"heal_after_s"`    // fault held this long
	Recovery     float64        `json:"recovery_s"`      // fault → every unit that must run active on an allowed live machine (-1: never)
	HealRecovery float64        `json:"heal_recovery_s"` // heal → exactly-once on all machines (-1: never)
	Dup          dupStats       `json:"duplicates"`
	Unavailable  float64        `json:"unavailable_unit_seconds"` // Σ units that must run and do not × time, fault → exactly-once
	DupAfterHeal float64        `json:"duplicates_after_heal_s"`  // last duplicate seen this long after the heal (0: none after it)
	Starts       int            `json:"starts"`                   // unit starts recorded between the fault and exactly-once again
	StartsByUnit map[string]int `json:"starts_by_unit,omitempty"` // unit@host → starts in that window
	Started      time.Time      `json:"started"`
	ended        time.Time
	LastNotExact string   `json:"last_not_exact,omitempty"` // the last sample after the heal that was not exactly-once, and why
	Lost         []string `json:"lost,omitempty"`
	Disallowed   []string `json:"disallowed,omitempty"`
	Errors       []string `json:"errors,omitempty"`
}

func (r faultResult) failed() bool {
	return len(r.Lost) > 0 || len(r.Disallowed) > 0 || len(r.Errors) > 0
}

// summary is the JSON the run writes.
type summary struct {
	Seed             uint64         `json:"seed"`
	Machines         int            `json:"machines"`
	Units            int            `json:"units"`
	AgentTTL         string         `json:"agent_ttl"`
	Reconcile        string         `json:"engine_reconcile_interval"`
	SamplePeriod     string         `json:"sample_period"`
	Samples          int            `json:"samples"`
	SampleErrors     int            `json:"sample_errors"`
	InitialPlacement float64        `json:"initial_placement_s"`
	Results          []faultResult  `json:"results"`
	Table            []tableRow     `json:"table"`
	Starts           map[string]int `json:"starts"`
	TotalStarts      int            `json:"total_starts"`
}

type tableRow struct {
	Fault        string     `json:"fault"`
	Runs         int        `json:"runs"`
	Recovery     [3]float64 `json:"recovery_min_median_max_s"`
	HealRecovery [3]float64 `json:"heal_recovery_min_median_max_s"`
	DupRuns      int        `json:"duplicate_runs"`
	DupSeconds   float64    `json:"duplicate_seconds"`
	Failures     int        `json:"failures"`
}

// fault is one kind of fault: inject breaks the victim, heal repairs it.
type fault struct {
	name   string
	inject func(ctx context.Context, c *cluster, v *node) error
	heal   func(ctx context.Context, c *cluster, v *node) error
	// victimLive: the victim still counts as a machine units may run on
	// during the fault.
	victimLive bool
}

func faults() map[string]fault {
	reboot := func(ctx context.Context, c *cluster, v *node) error {
		if err := c.boot(ctx, v); err != nil {
			return err
		}
		return c.waitQuorum(ctx, []*node{v})
	}
	return map[string]fault{
		"poweroff": {name: "poweroff", heal: reboot, inject: func(ctx context.Context, c *cluster, v *node) error {
			m := v.machine()
			done, res := make(chan struct{}), make(chan []string, 1)
			go func() {
				// Diagnostics for a slow poweroff: what still lives in the
				// guest's PID namespace after 3 s.
				select {
				case <-done:
					res <- nil
				case <-time.After(3 * time.Second):
					res <- pidnsProcesses(m.PID1())
				}
			}()
			err := m.Poweroff(ctx)
			close(done)
			v.lingering = <-res
			v.set(nil)
			return err
		}},
		"kill": {name: "kill", heal: reboot, inject: func(ctx context.Context, c *cluster, v *node) error {
			err := v.machine().Kill(ctx)
			v.set(nil)
			return err
		}},
		"partition": {name: "partition",
			inject: func(ctx context.Context, c *cluster, v *node) error { return c.routes(ctx, v, "add") },
			heal:   func(ctx context.Context, c *cluster, v *node) error { return c.routes(ctx, v, "del") },
		},
		"kill-fleetd": {name: "kill-fleetd", victimLive: true,
			inject: func(ctx context.Context, c *cluster, v *node) error {
				// Only the main process: `systemctl kill -s KILL` of the whole
				// control group fails in nspawn guests (EIO from cgroup.kill)
				// after killing fleetd, and fleetd is the only process there.
				r := v.machine().Run(ctx, "systemctl", "kill", "--kill-whom=main", "--signal=KILL", "fleet.service")
				return r.Err
			},
			// systemd restarts it (Restart=always, RestartSec=5s): wait for
			// the new process to register.
			heal: func(ctx context.Context, c *cluster, v *node) error { return nil },
		},
	}
}

// routes adds or deletes blackhole routes to every other machine inside v's
// network namespace: v and the others cannot talk; the host still reaches
// everyone (the sampler does not use the network anyway).
func (c *cluster) routes(ctx context.Context, v *node, op string) error {
	m := v.machine()
	for _, o := range c.nodes {
		if o == v {
			continue
		}
		cmd := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(m.PID1()), "-n", "--",
			"ip", "route", op, "blackhole", o.ip.String()+"/32")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: ip route %s blackhole %s: %w: %s", v.host, op, o.ip, err, out)
		}
	}
	return nil
}

func TestFleetFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP in -short mode: the fault run boots real machines for about 90 s (run `go test ./tests/fleetfaults` without -short)")
	}
	testbed.Require(t)
	n := *flagMachines
	if n < 3 || n > 4 {
		t.Fatalf("-fleetfaults.machines=%d: want 3 or 4", n)
	}
	kinds := faults()
	var plan []string
	for _, f := range strings.Split(*flagFaults, ",") {
		if _, ok := kinds[strings.TrimSpace(f)]; !ok {
			t.Fatalf("-fleetfaults.faults: unknown fault %q", f)
		}
		plan = append(plan, strings.TrimSpace(f))
	}
	seed := *flagSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d: replay with -fleetfaults.seed=%d -fleetfaults.rounds=%d -fleetfaults.faults=%s -fleetfaults.machines=%d",
		seed, seed, *flagRounds, *flagFaults, n)

	units, err := loadUnits("testdata/units")
	if err != nil {
		t.Fatal(err)
	}
	c := bootCluster(t, n, *flagTTL)
	w := world{units: units, meta: metadataFor(n)}
	all := c.hosts(nil)

	ctx, cancel := context.WithCancel(context.Background())
	smp := &sampler{c: c, period: samplePeriod}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); smp.run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	// Submit and launch every unit through core-01's API.
	cl, err := c.api(c.nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	for _, u := range units {
		if err := cl.CreateUnit(ctx, &fleetapi.Unit{Name: u.Name, Options: fleetapi.OptionsOf(u.File), DesiredState: "launched"}); err != nil {
			t.Fatalf("create %s: %v", u.Name, err)
		}
	}
	exactAll := func(s sample) bool { return len(w.exact(s, all)) == 0 }
	if ok, last := smp.waitStable(ctx, t0, 2*time.Second, 90*time.Second, exactAll); !ok {
		t.Fatalf("units never all ran exactly once: %v", w.exact(last, all))
	}
	placed, _, _ := streak(smp.snapshot(), t0, exactAll)
	t.Logf("MEASURE initial placement: %d units exactly once on %d machines %s after submission", len(units), n, placed.Round(100*time.Millisecond))
	sum := summary{Seed: seed, Machines: n, Units: len(units), AgentTTL: c.ttl.String(), Reconcile: reconcileInterval.String(),
		SamplePeriod: samplePeriod.String(), InitialPlacement: placed.Seconds()}

	faultBound := c.ttl + 2*reconcileInterval + 30*time.Second
	healBound := 2 * time.Minute
	for round := 1; round <= *flagRounds; round++ {
		for _, name := range plan {
			f := kinds[name]
			v := pickVictim(rng, c, w, smp.last(), f)
			r := runFault(ctx, t, c, w, smp, f, v, faultBound, healBound)
			r.Round, r.ended = round, time.Now()
			sum.Results = append(sum.Results, r)
			t.Logf("MEASURE fault %s round %d victim %s (engine leader: %v): recovery %.1fs (healed at %.1fs), heal→exactly-once %.1fs, unavailable %.1f unit-s, duplicate runs %d, duplicate-seconds %.1f (max %d copies, from %.1fs to %.1fs after the fault, %.1fs after the heal), lost %v, disallowed %v",
				r.Fault, round, r.Victim, r.VictimLeader, r.Recovery, r.HealAfter, r.HealRecovery, r.Unavailable, r.Dup.Runs, r.Dup.Seconds, r.Dup.MaxCopies, r.Dup.First, r.Dup.Last, r.DupAfterHeal, r.Lost, r.Disallowed)
			for _, e := range append(append(append([]string(nil), r.Lost...), r.Disallowed...), r.Errors...) {
				t.Errorf("%s (round %d, victim %s): %s", r.Fault, round, r.Victim, e)
			}
			if r.LastNotExact != "" {
				t.Logf("%s round %d: last sample not exactly-once: %s", r.Fault, round, r.LastNotExact)
			}
			if len(r.Errors) > 0 {
				break // the cluster is not in a known state
			}
		}
		if t.Failed() {
			break
		}
	}

	// The end: exactly once, and the fleet API and fleetctl agree with systemd.
	if !t.Failed() {
		c.checkAgreement(ctx, t, w, smp)
	}
	cancel()
	wg.Wait()
	samples := smp.snapshot()
	sum.Samples, sum.SampleErrors = len(samples), smp.errs
	// Every sample of the run, including those between the faults: never a
	// unit where it is not allowed.
	seen := map[string]bool{}
	for _, s := range samples {
		for _, d := range w.disallowed(s) {
			if !seen[d] {
				seen[d] = true
				t.Errorf("disallowed placement at %s: %s", s.At.Format("15:04:05.000"), d)
			}
		}
	}
	var starts []unitStart
	sum.Starts, sum.TotalStarts, starts = c.starts(t)
	for i := range sum.Results {
		r := &sum.Results[i]
		r.StartsByUnit = map[string]int{}
		for _, st := range starts {
			if !st.at.Before(r.Started) && !st.at.After(r.ended) {
				r.Starts++
				r.StartsByUnit[st.unit+"@"+st.host]++
			}
		}
		t.Logf("MEASURE starts during %s round %d (victim %s): %d %v", r.Fault, r.Round, r.Victim, r.Starts, keysInt(r.StartsByUnit))
	}
	sum.Table = table(plan, sum.Results)
	for _, row := range sum.Table {
		t.Logf("MEASURE table %s: runs %d, recovery min/median/max %.1f/%.1f/%.1f s, heal→exactly-once %.1f/%.1f/%.1f s, duplicate runs %d, duplicate-seconds %.1f, failures %d",
			row.Fault, row.Runs, row.Recovery[0], row.Recovery[1], row.Recovery[2], row.HealRecovery[0], row.HealRecovery[1], row.HealRecovery[2], row.DupRuns, row.DupSeconds, row.Failures)
	}
	t.Logf("MEASURE starts: %d unit starts in all (%d at least: %d units, the global one on %d machines); %d samples, %d failed reads",
		sum.TotalStarts, len(units)-1+n, len(units), n, sum.Samples, sum.SampleErrors)
	b, _ := json.MarshalIndent(sum, "", "  ")
	if *flagOut != "" {
		if err := os.WriteFile(*flagOut, append(b, '\n'), 0o644); err != nil {
			t.Error(err)
		}
		t.Logf("summary written to %s", *flagOut)
	} else {
		t.Logf("summary (-fleetfaults.out=FILE writes it):\n%s", b)
	}
}

// runFault injects f on v, waits for recovery, heals and waits for
// exactly-once, and measures.
func runFault(ctx context.Context, t *testing.T, c *cluster, w world, smp *sampler, f fault, v *node, faultBound, healBound time.Duration) faultResult {
	t.Helper()
	r := faultResult{Fault: f.name, Victim: v.host, Recovery: -1, HealRecovery: -1}
	all := c.hosts(nil)
	live := all
	if !f.victimLive {
		live = c.hosts(v)
	}
	var oldFleetd string
	if f.name == "kill-fleetd" {
		oldFleetd = mainPID(ctx, v, "fleet.service")
	}
	r.VictimLeader = c.engineLeader(ctx) == v.host
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	r.Started = t0
	if err := f.inject(fctx, c, v); err != nil {
		r.Errors = append(r.Errors, "inject: "+err.Error())
		return r
	}
	r.InjectTook = time.Since(t0).Seconds()
	leader := ""
	if r.VictimLeader {
		leader = " (the engine leader)"
	}
	t.Logf("%s: %s injected on %s%s (took %.1fs)", time.Now().Format("15:04:05.000"), f.name, v.host, leader, r.InjectTook)
	if f.name == "poweroff" && r.InjectTook > 5 {
		t.Logf("the poweroff of %s took %.1fs; 3 s after it began its PID namespace still had: %v; its shutdown:\n%s", v.host, r.InjectTook, v.lingering,
			v.journal(ctx, t0.Add(-time.Second), "Stopp|stop job|Timed out|Killing|SIGKILL|Power|shutdown|Shutdown|release|Release|purge|Reached target", 60))
	}
	recovered := func(s sample) bool { return len(w.missing(s, live)) == 0 }
	ok, last := smp.waitStable(ctx, t0, 2*time.Second, faultBound, recovered)
	if f.name == "partition" {
		if rest := time.Until(t0.Add(*flagHold)); rest > 0 {
			time.Sleep(rest)
		}
	}
	t1 := time.Now()
	if !ok {
		r.Lost = append(r.Lost, fmt.Sprintf("not running on an allowed live machine %s after the fault (bound agent_ttl+2×reconcile+30s): %v", faultBound, w.missing(last, live)))
	}
	if from, _, found := streak(between(smp.snapshot(), t0, t1), t0, recovered); found {
		r.Recovery = from.Seconds()
	}
	r.HealAfter = t1.Sub(t0).Seconds()

	hctx, hcancel := context.WithTimeout(ctx, healBound)
	defer hcancel()
	if err := f.heal(hctx, c, v); err != nil {
		r.Errors = append(r.Errors, "heal: "+err.Error())
		return r
	}
	if f.name == "kill-fleetd" {
		if err := waitNewPID(hctx, v, "fleet.service", oldFleetd); err != nil {
			r.Errors = append(r.Errors, err.Error())
		}
	}
	exactAll := func(s sample) bool { return len(w.exact(s, all)) == 0 }
	ok, last = smp.waitStable(ctx, t1, 3*time.Second, healBound, exactAll)
	t2 := time.Now()
	if !ok {
		r.Lost = append(r.Lost, fmt.Sprintf("not exactly once %s after the heal: %v", healBound, w.exact(last, all)))
	}
	if f.name == "partition" {
		// What the partitioned fleetd did from the heal on: when it
		// re-registered and when its agent stopped the copies that had
		// been scheduled elsewhere meanwhile.
		t.Logf("heal of the partition of %s at %s; its fleetd since:\n%s", v.host, t1.Format("15:04:05.000"),
			v.journal(ctx, t1.Add(-time.Second), "registered|heartbeat|AgentReconciler|stop", 20))
	}
	window := between(smp.snapshot(), t0, t2)
	for i := len(window) - 1; i >= 0; i-- {
		if e := w.exact(window[i], all); len(e) > 0 && window[i].At.After(t1) {
			r.LastNotExact = fmt.Sprintf("%.1fs after the heal: %s", window[i].At.Sub(t1).Seconds(), strings.Join(e, "; "))
			break
		}
	}
	if from, _, found := streak(between(window, t1, t2), t1, exactAll); found {
		r.HealRecovery = from.Seconds()
	}
	r.Dup = w.duplicates(window, t0, t2)
	r.Unavailable = w.unavailable(window, t0, t1, live) + w.unavailable(window, t1, t2, all)
	if r.Dup.Runs > 0 && r.Dup.Last > r.HealAfter {
		r.DupAfterHeal = r.Dup.Last - r.HealAfter
	}
	seen := map[string]bool{}
	for _, s := range window {
		for _, d := range w.disallowed(s) {
			if !seen[d] {
				seen[d] = true
				r.Disallowed = append(r.Disallowed, d+" at "+s.At.Format("15:04:05.000"))
			}
		}
	}
	return r
}

// pidnsProcesses lists "pid comm state" of every process in the PID
// namespace of pid1 (itself included).
func pidnsProcesses(pid1 int) []string {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid1))
	if err != nil {
		return []string{err.Error()}
	}
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err != nil || l != ns {
			continue
		}
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		st, ppid := "", ""
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 {
			if f := strings.Fields(string(stat[i+1:])); len(f) > 1 {
				st, ppid = f[0], f[1]
			}
		}
		pcomm, _ := os.ReadFile("/proc/" + ppid + "/cmdline")
		out = append(out, fmt.Sprintf("%d %s [%s] parent %s %s", pid, strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " "), st,
			ppid, strings.ReplaceAll(strings.TrimRight(string(pcomm), "\x00"), "\x00", " ")))
	}
	return out
}

// pickVictim picks a random machine; for faults that take the machine away,
// one that runs a non-global unit that another machine may run, so that
// something must move.
func pickVictim(rng *rand.Rand, c *cluster, w world, s sample, f fault) *node {
	var cands []*node
	for _, nd := range c.nodes {
		if f.victimLive || w.movable(s, nd.host) {
			cands = append(cands, nd)
		}
	}
	if len(cands) == 0 {
		cands = c.nodes
	}
	return cands[rng.IntN(len(cands))]
}

// hosts lists the hostnames of every node but not.
func (c *cluster) hosts(not *node) []string {
	var out []string
	for _, nd := range c.nodes {
		if nd != not {
			out = append(out, nd.host)
		}
	}
	return out
}

func mainPID(ctx context.Context, nd *node, unit string) string {
	m := nd.machine()
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m.Run(ctx, "systemctl", "show", "-P", "MainPID", unit).Stdout)
}

// waitNewPID waits until unit runs with a main pid other than old.
func waitNewPID(ctx context.Context, nd *node, unit, old string) error {
	for {
		pid := mainPID(ctx, nd, unit)
		if pid != "" && pid != "0" && pid != old {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %s not restarted (main pid %s, was %s): %w", nd.host, unit, pid, old, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// checkAgreement: /fleet/v1/state (every machine's API) and fleetctl
// list-units show the units active exactly where systemd runs them.
func (c *cluster) checkAgreement(ctx context.Context, t *testing.T, w world, smp *sampler) {
	t.Helper()
	truth := func() map[string]bool {
		out := map[string]bool{}
		for h, units := range smp.last().Active {
			for _, u := range units {
				out[u+"@"+h] = true
			}
		}
		return out
	}
	if e := w.exact(smp.last(), c.hosts(nil)); len(e) != 0 {
		t.Fatalf("not exactly once at the end: %v", e)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, nd := range c.nodes {
		cl, err := c.api(nd)
		if err != nil {
			t.Fatal(err)
		}
		var last string
		for {
			api, err := c.apiActive(ctx, cl)
			want := truth()
			if err == nil && equalSets(api, want) {
				break
			}
			last = fmt.Sprintf("API: %v, err %v\nsystemd: %v", keys(api), err, keys(want))
			if time.Now().After(deadline) {
				t.Fatalf("%s's /fleet/v1/state disagrees with systemd:\n%s", nd.host, last)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	var last string
	for {
		got, err := c.fleetctlActive(ctx)
		want := truth()
		if err == nil && equalSets(got, want) {
			break
		}
		last = fmt.Sprintf("fleetctl: %v, err %v\nsystemd: %v", keys(got), err, keys(want))
		if time.Now().After(deadline) {
			t.Fatalf("fleetctl list-units disagrees with systemd:\n%s", last)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("the fleet API of every machine and fleetctl list-units agree with systemd: %d unit copies active", len(truth()))
}

// apiActive lists unit@host for every state the API reports active.
func (c *cluster) apiActive(ctx context.Context, cl *fleetapi.Client) (map[string]bool, error) {
	sts, err := cl.UnitStates(ctx, "", "")
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, s := range sts {
		if s.SystemdActiveState != "active" || !strings.HasPrefix(s.Name, "ff-") {
			continue
		}
		nd := c.byID(s.MachineID)
		if nd == nil {
			return nil, fmt.Errorf("state of %s on unknown machine %s", s.Name, s.MachineID)
		}
		out[s.Name+"@"+nd.host] = true
	}
	return out, nil
}

// fleetctlActive runs the built fleetctl on the host against core-01's etcd,
// as cluster.env would, and lists unit@host of its active rows.
func (c *cluster) fleetctlActive(ctx context.Context) (map[string]bool, error) {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, filepath.Join(c.bin, "fleetctl"), "--driver", "etcd",
		"--endpoint", fmt.Sprintf("http://%s:2379", c.nodes[0].ip),
		"list-units", "--no-legend", "--full", "--fields=unit,machine,active")
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + c.t.TempDir()}
	b, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("fleetctl list-units: %w\n%s", err, b)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[2] != "active" || !strings.HasPrefix(f[0], "ff-") {
			continue
		}
		id, _, _ := strings.Cut(f[1], "/")
		nd := c.byID(id)
		if nd == nil {
			return nil, fmt.Errorf("fleetctl row on unknown machine: %q", line)
		}
		out[f[0]+"@"+nd.host] = true
	}
	return out, nil
}

// starts counts the starts every machine's units recorded in their log.
// unitStart is one line of a machine's start log.
type unitStart struct {
	host, unit string
	at         time.Time
}

func keysInt(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k, n := range m {
		out = append(out, fmt.Sprintf("%s×%d", k, n))
	}
	sort.Strings(out)
	return out
}

func (c *cluster) starts(t *testing.T) (map[string]int, int, []unitStart) {
	out := map[string]int{}
	total := 0
	var times []unitStart
	for _, nd := range c.nodes {
		b, err := os.ReadFile(filepath.Join(nd.dir, "starts", "starts.log"))
		if err != nil {
			t.Errorf("%s: start log: %v", nd.host, err)
			continue
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.Fields(line)
			if len(f) != 3 || f[0] != nd.host {
				// A kill -9 can cut a line being written; not a finding.
				t.Logf("%s: skipped start log line %q", nd.host, line)
				continue
			}
			out[f[1]]++
			total++
			sec, frac, _ := strings.Cut(f[2], ".")
			ss, err1 := strconv.ParseInt(sec, 10, 64)
			ns, err2 := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
			if err1 != nil || err2 != nil {
				t.Logf("%s: skipped start log line %q", nd.host, line)
				continue
			}
			times = append(times, unitStart{host: nd.host, unit: f[1], at: time.Unix(ss, ns)})
		}
	}
	return out, total, times
}

func equalSets(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// table aggregates the results per fault, in plan order.
func table(plan []string, results []faultResult) []tableRow {
	var out []tableRow
	for _, name := range plan {
		if slices.ContainsFunc(out, func(r tableRow) bool { return r.Fault == name }) {
			continue
		}
		row := tableRow{Fault: name}
		var rec, heal []float64
		for _, r := range results {
			if r.Fault != name {
				continue
			}
			row.Runs++
			if r.Recovery >= 0 {
				rec = append(rec, r.Recovery)
			}
			if r.HealRecovery >= 0 {
				heal = append(heal, r.HealRecovery)
			}
			row.DupRuns += r.Dup.Runs
			row.DupSeconds += r.Dup.Seconds
			if r.failed() {
				row.Failures++
			}
		}
		row.Recovery, row.HealRecovery = minMedMax(rec), minMedMax(heal)
		out = append(out, row)
	}
	return out
}

func minMedMax(xs []float64) [3]float64 {
	if len(xs) == 0 {
		return [3]float64{-1, -1, -1}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return [3]float64{s[0], s[len(s)/2], s[len(s)-1]}
}
