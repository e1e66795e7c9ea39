// Package torture checks an etcd v2 cluster under faults: concurrent
// clients issue sets, quorum reads, compare-and-swap, compare-and-delete,
// creates and deletes on a few keys while long-poll watchers follow the key
// space and a nemesis kills (-9), pauses (SIGSTOP) and partitions members,
// and on request shifts members' wall clocks (our etcd's hidden clock-offset
// flag) and fills the tmpfs under their data dirs.
// Afterwards it checks that the history is linearizable (porcupine, with a
// per-key register model in which failed-by-timeout writes may or may not
// have happened), that no acknowledged write is lost, that watches deliver
// every event once, in index order, across reconnects, and that no TTL key
// expires before its TTL by the clocks of the members that stamped and
// expired it.
//
// Every member runs in its own network namespace on a private bridge, so
// partitions are blackhole routes inside the namespaces; Run needs root. It
// works against any v2 etcd that takes etcd's cluster flags: ours or
// Debian's etcd 3.4 (--enable-v2), the reference that proves the checker.
package torture

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Config describes one torture run.
type Config struct {
	Impl   Impl
	Binary string // etcd binary; the reference's path when empty and Impl is Reference
	// SyncFail is the syncfail wrapper binary (etcd/torture/syncfail),
	// needed for the fsync-eio faults.
	SyncFail string
	Members  int // 3 or 5
	Duration time.Duration
	Seed     int64
	Faults   []string // fault kinds (AllFaults when empty)
	Clients  int      // concurrent register clients (default 5)
	Keys     int      // keys in the model key set (default 5)
	Watchers int      // long-poll watchers (default 3)
	// OpTimeout bounds every client request (default 1s); a timed out write
	// is an unknown outcome.
	OpTimeout time.Duration
	// CheckTimeout bounds porcupine (default 2m); a timeout yields verdict
	// "unknown", never "ok".
	CheckTimeout time.Duration
	// Quiet and Hold are the ranges of the nemesis' healthy pause between
	// faults and of each fault's length (defaults 1–3 s and 2–5 s).
	Quiet, Hold [2]time.Duration
	// ResultsDir receives a directory per failed run (history, porcupine
	// HTML, member logs). Default: os.TempDir()/corekit-torture.
	ResultsDir string
	// KeepResults keeps the run directory even when the run passes.
	KeepResults bool
	// Run numbers runs inside one process so names stay unique.
	Run int
	// OnCleanup, when set, also receives the teardown (t.Cleanup), so a
	// failing test still removes namespaces, bridge and processes.
	OnCleanup func(func())
	Logger    *slog.Logger
}

// Result is what one run measured and found.
type Result struct {
	Impl       Impl           `json:"impl"`
	Members    int            `json:"members"`
	Seed       int64          `json:"seed"`
	Duration   time.Duration  `json:"duration"`
	Ops        int            `json:"ops"`
	OK         int            `json:"ok"`      // acknowledged (success or definite error)
	Unknown    int            `json:"unknown"` // timed out / indefinite writes
	FailedRead int            `json:"failedReads"`
	NotSent    int            `json:"notSent"`  // dial failed: no effect
	Resolved   int            `json:"resolved"` // unknown writes settled by the watch streams
	Faults     map[string]int `json:"faults"`
	Nemesis    []string       `json:"nemesis"`
	// Linearizable is porcupine's verdict: "Ok", "Illegal" or "Unknown".
	Linearizable porcupine.CheckResult `json:"linearizable"`
	LostWrites   int                   `json:"lostWrites"`
	WatchEvents  int                   `json:"watchEvents"`
	WatchGaps    int                   `json:"watchGaps"` // 401 history-cleared recoveries
	TTLKeys      int                   `json:"ttlKeys"`
	TTLMaxLate   time.Duration         `json:"ttlMaxLate"`
	// TTLClockEarly counts TTL keys gone before their TTL in real time
	// that clock offsets explain (not anomalies).
	TTLClockEarly int `json:"ttlClockEarly,omitempty"`
	// Skipped lists fault kinds left out for this implementation.
	Skipped       []string      `json:"skipped,omitempty"`
	Anomalies     []string      `json:"anomalies"`
	ResultsPath   string        `json:"resultsPath,omitempty"`
	CheckDuration time.Duration `json:"checkDuration"`
}

// Failed reports whether the run found any anomaly.
func (r *Result) Failed() bool {
	return len(r.Anomalies) > 0 || r.Linearizable == porcupine.Illegal
}

// Summary is the one-line report of a run.
func (r *Result) Summary() string {
	verdict := "PASS"
	if r.Failed() {
		verdict = "FAIL"
	}
	var fs []string
	for _, k := range append(KnownFaults, diskFullExits, fsyncEIOExits) {
		if r.Faults[k] > 0 {
			fs = append(fs, fmt.Sprintf("%s=%d", k, r.Faults[k]))
		}
	}
	extra := ""
	if r.TTLClockEarly > 0 {
		extra += fmt.Sprintf(" ttl-early-by-clock=%d", r.TTLClockEarly)
	}
	if len(r.Skipped) > 0 {
		extra += fmt.Sprintf(" skipped[%s: no clock hook]", strings.Join(r.Skipped, " "))
	}
	return fmt.Sprintf("%s impl=%s members=%d seed=%d dur=%s ops=%d (ok %d, unknown %d, resolved by watch %d) check=%s watch-events=%d watch-gaps=%d ttl-keys=%d%s faults[%s] linearizable=%s lost=%d anomalies=%d",
		verdict, r.Impl, r.Members, r.Seed, r.Duration.Round(time.Second), r.Ops, r.OK, r.Unknown, r.Resolved, r.CheckDuration.Round(time.Millisecond),
		r.WatchEvents, r.WatchGaps, r.TTLKeys, extra, strings.Join(fs, " "), r.Linearizable, r.LostWrites, len(r.Anomalies))
}

// op is one completed client operation.
type op struct {
	Client int    `json:"client"`
	Member int    `json:"member"`
	In     Input  `json:"in"`
	Out    Output `json:"out"`
	Call   int64  `json:"call"`   // ns since the run started
	Return int64  `json:"return"` // ns since the run started; -1 when unknown
}

type history struct {
	mu  sync.Mutex
	ops []op
}

func (h *history) add(o op) {
	h.mu.Lock()
	h.ops = append(h.ops, o)
	h.mu.Unlock()
}

// FaultsFor splits faults into those that apply to impl and those skipped:
// the reference has no clock hook, so clock jumps run against ours only.
func FaultsFor(impl Impl, faults []string) (use, skipped []string) {
	for _, f := range faults {
		if impl != Ours && hasAny([]string{f}, ClockFaults) {
			skipped = append(skipped, f)
			continue
		}
		use = append(use, f)
	}
	return use, skipped
}

func (c *Config) defaults() {
	if c.Members == 0 {
		c.Members = 3
	}
	if c.Duration == 0 {
		c.Duration = 20 * time.Second
	}
	if len(c.Faults) == 0 {
		c.Faults = AllFaults
	}
	if c.Clients == 0 {
		c.Clients = 5
	}
	if c.Keys == 0 {
		c.Keys = 5
	}
	if c.Watchers == 0 {
		c.Watchers = 3
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = time.Second
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = 2 * time.Minute
	}
	if c.Quiet == [2]time.Duration{} {
		c.Quiet = [2]time.Duration{time.Second, 3 * time.Second}
	}
	if c.Hold == [2]time.Duration{} {
		c.Hold = [2]time.Duration{2 * time.Second, 5 * time.Second}
	}
	if c.ResultsDir == "" {
		c.ResultsDir = filepath.Join(os.TempDir(), "corekit-torture")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Binary == "" && c.Impl == Reference {
		c.Binary = ReferenceBinary
	}
}

// Run starts a fresh cluster, tortures it for cfg.Duration, checks the
// history and tears everything down. An error means the run could not be
// carried out (setup failed); anomalies are in the Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("torture: needs root (network namespaces)")
	}
	if cfg.Binary == "" {
		return nil, fmt.Errorf("torture: no etcd binary")
	}
	log := cfg.Logger
	logf := func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) }
	for _, f := range cfg.Faults {
		if !hasAny(KnownFaults, []string{f}) {
			return nil, fmt.Errorf("torture: unknown fault kind %q (known: %s)", f, strings.Join(KnownFaults, ","))
		}
	}
	faults, skipped := FaultsFor(cfg.Impl, cfg.Faults)
	if len(faults) == 0 {
		return nil, fmt.Errorf("torture: none of the faults %s applies to %s", strings.Join(cfg.Faults, ","), cfg.Impl)
	}
	if len(skipped) > 0 {
		logf("skipping %s for %s: it has no clock hook", strings.Join(skipped, ","), cfg.Impl)
	}
	cfg.Faults = faults
	sweepStale(ctx)
	sweepStaleMounts(ctx)

	name := fmt.Sprintf("%s-n%d-seed%d-%s", cfg.Impl, cfg.Members, cfg.Seed, time.Now().Format("20060102-150405.000"))
	dir := filepath.Join(cfg.ResultsDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("torture: %w", err)
	}
	nw, err := newNetwork(ctx, cfg.Members, cfg.Run)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := newCluster(cfg.Impl, cfg.Binary, nw, dir, "torture-"+name)
	var clocks *clockTimeline
	if hasAny(cfg.Faults, ClockFaults) {
		c.enableClocks(dir)
		clocks = newClockTimeline(cfg.Members)
	}
	var once sync.Once
	keepData := false
	teardown := func() {
		once.Do(func() { c.killAll(); c.closeSyncFail(); c.unmountDataDirs(keepData); nw.close() })
	}
	defer teardown()
	if cfg.OnCleanup != nil {
		cfg.OnCleanup(teardown)
	}
	if hasAny(cfg.Faults, SyncFaults) {
		if cfg.SyncFail == "" {
			return nil, fmt.Errorf("torture: %s need the syncfail wrapper (Config.SyncFail)", strings.Join(SyncFaults, ","))
		}
		if err := c.enableSyncFail(dir, cfg.SyncFail); err != nil {
			return nil, err
		}
	}
	if hasAny(cfg.Faults, DiskFaults) {
		if err := c.mountDataDirs(ctx); err != nil {
			return nil, err
		}
		// Snapshots every 1000 entries, so a full disk also meets
		// snapshot writes, not only preallocated WAL segments.
		for _, m := range c.members {
			m.args = append(m.args, "--snapshot-count", "1000")
		}
	}
	if err := c.startAll(); err != nil {
		return nil, err
	}
	if err := c.waitHealthy(ctx, 60*time.Second); err != nil {
		return nil, fmt.Errorf("%w (logs in %s)", err, dir)
	}
	logf("cluster of %d %s members up on %s0/24", cfg.Members, cfg.Impl, nw.prefix)

	res := &Result{Impl: cfg.Impl, Members: cfg.Members, Seed: cfg.Seed, Duration: cfg.Duration, Faults: map[string]int{}, Skipped: skipped}
	w := newWorkload(&cfg, c, logf)
	w.clocks = clocks
	if err := w.prepare(ctx); err != nil {
		return nil, err
	}
	nem := &nemesis{c: c, rnd: rand.New(rand.NewSource(cfg.Seed)), faults: cfg.Faults, log: logf, counts: map[string]int{},
		clocks: clocks, start: w.start, disk: -1}

	runCtx, stop := context.WithTimeout(ctx, cfg.Duration)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); nem.run(runCtx, w.start, cfg.Quiet, cfg.Hold) }()
	w.run(runCtx) // returns when runCtx ends and every client finished
	wg.Wait()
	stop()
	nem.heal(ctx)
	res.Faults, res.Nemesis = nem.counts, nem.events
	res.Anomalies = append(res.Anomalies, dedupe(nem.crashes)...)

	if err := c.waitHealthy(ctx, 60*time.Second); err != nil {
		res.Anomalies = append(res.Anomalies, "cluster did not recover after healing: "+err.Error())
	}
	w.finish(ctx, res)

	checkStart := time.Now()
	info := w.check(res)
	res.CheckDuration = time.Since(checkStart)

	if res.Failed() || cfg.KeepResults {
		// Data dirs stay too: a member that cannot restart is evidence.
		res.ResultsPath = dir
		keepData = true
		w.save(dir, res, info)
	} else {
		teardown()
		os.RemoveAll(dir)
	}
	logf("%s", res.Summary())
	return res, nil
}

// save writes the run's evidence into dir.
func (w *workload) save(dir string, res *Result, info *porcupine.LinearizationInfo) {
	write := func(name string, v any) {
		b, err := json.MarshalIndent(v, "", "  ")
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644)
		}
		if err != nil {
			res.Anomalies = append(res.Anomalies, fmt.Sprintf("(saving %s: %v)", name, err))
		}
	}
	write("result.json", res)
	ops := append([]op(nil), w.hist.ops...)
	sort.Slice(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
	write("history.json", ops)
	write("watches.json", w.watchers)
	write("ttl.json", w.ttls)
	if w.clocks != nil {
		write("clocks.json", w.clocks)
	}
	_ = os.WriteFile(filepath.Join(dir, "anomalies.txt"), []byte(strings.Join(res.Anomalies, "\n")+"\n"), 0o644)
	if info != nil {
		if err := porcupine.VisualizePath(Model(), *info, filepath.Join(dir, "linearizability.html")); err != nil {
			res.Anomalies = append(res.Anomalies, fmt.Sprintf("(visualisation: %v)", err))
		}
	}
}

// dedupe collapses repeated lines into "line (×N)", keeping first-seen order.
func dedupe(lines []string) []string {
	n := map[string]int{}
	var order []string
	for _, l := range lines {
		if n[l] == 0 {
			order = append(order, l)
		}
		n[l]++
	}
	out := make([]string, 0, len(order))
	for _, l := range order {
		if n[l] > 1 {
			l = fmt.Sprintf("%s (×%d)", l, n[l])
		}
		out = append(out, l)
	}
	return out
}
