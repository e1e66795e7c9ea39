package agent

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/corekit/corekit/fleet/internal/unitmgr"
	"github.com/corekit/corekit/internal/fleetregistry"
)

// Config configures an Agent.
type Config struct {
	Registry *fleetregistry.Registry
	Manager  unitmgr.Manager
	// Machine returns this machine's published state (ID, metadata); the
	// agent overlays dynamic metadata from the registry.
	Machine func() fleetregistry.MachineState
	// TTL is agent_ttl: the TTL of published states and heartbeats
	// (default 30 s, fleet's).
	TTL time.Duration
	// ReconcileInterval is the timer between passes (fleet: 5 s).
	ReconcileInterval time.Duration
	// PollInterval is how often systemd states are read when the manager
	// cannot report changes (fleet: 1 s, always).
	PollInterval time.Duration
	// SafetyPollInterval is how often states are read anyway when the
	// manager reports changes (unitmgr.Watcher; default 10 s): a net for
	// missed signals.
	SafetyPollInterval time.Duration
	// DisableWatches turns off the registry watch (timer only).
	DisableWatches bool
	// MinWatchGap is the least time between two passes triggered by a
	// wake-up (default 250 ms), so a burst of wake-ups costs a few passes
	// rather than one per wake-up.
	MinWatchGap time.Duration
	Logger      *slog.Logger
}

// Agent reconciles this machine's units with the registry and publishes
// their systemd states.
type Agent struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	cache     map[string]fleetregistry.TargetState // what this agent did: loaded/launched
	hashes    map[string]string
	published map[string]unitmgr.State
	// lastFull is when the last full re-publish ended.
	lastFull time.Time
	// changed wakes the publisher: systemd reported a change, or a
	// reconcile pass acted on units.
	changed chan struct{}
}

// New returns an Agent; call Run.
func New(cfg Config) *Agent {
	if cfg.TTL <= 0 {
		cfg.TTL = 30 * time.Second
	}
	if cfg.ReconcileInterval == 0 {
		cfg.ReconcileInterval = 5 * time.Second
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.SafetyPollInterval == 0 {
		cfg.SafetyPollInterval = 10 * time.Second
	}
	if cfg.MinWatchGap == 0 {
		cfg.MinWatchGap = 250 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Agent{cfg: cfg, log: cfg.Logger.With("component", "agent"), cache: map[string]fleetregistry.TargetState{},
		hashes: map[string]string{}, published: map[string]unitmgr.State{}, changed: make(chan struct{}, 1)}
}

// Init rebuilds the agent's view from systemd: every unit file already in
// the units directory counts as loaded, or launched when systemd runs it.
// So a restarted fleetd neither restarts running units nor starts ones
// that were stopped out of band while loaded.
func (a *Agent) Init(ctx context.Context) error {
	files, err := a.cfg.Manager.Units(ctx)
	if err != nil {
		return err
	}
	names := unitmgr.SortedNames(files)
	states, err := a.cfg.Manager.States(ctx, names)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range names {
		a.cache[n] = fleetregistry.StateLoaded
		if states[n].Running() {
			a.cache[n] = fleetregistry.StateLaunched
		}
		a.hashes[n] = files[n].String()
	}
	return nil
}

// Run reconciles on every wake-up of this machine (the engine rewrites
// machines/<id>/schedule when a change concerns it; see fleetregistry) and
// on every timer tick, and publishes states, until ctx ends. Changes to
// other machines' units cost this agent no store request.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.Init(ctx); err != nil {
		a.log.Error("unable to read units from systemd", "err", err)
	}
	kick := make(chan struct{}, 1)
	var wg sync.WaitGroup
	if !a.cfg.DisableWatches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.cfg.Registry.FollowScheduleWakeups(ctx, a.cfg.Machine().ID, func() {
				select {
				case kick <- struct{}{}:
				default:
				}
			})
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); a.publishLoop(ctx) }()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-t.C:
		case <-kick:
			sleep(ctx, a.cfg.MinWatchGap) // let a burst of changes land
			select {
			case <-kick:
			default:
			}
		}
		a.Reconcile(ctx)
		t.Reset(a.cfg.ReconcileInterval)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// machine returns this machine with dynamic metadata applied.
func (a *Agent) machine(ctx context.Context) fleetregistry.MachineState {
	me := a.cfg.Machine()
	if ms, err := a.cfg.Registry.Machines(ctx); err == nil {
		for _, m := range ms {
			if m.ID == me.ID {
				return m
			}
		}
	}
	return me
}

// Reconcile runs one pass: read the registry, plan, execute.
func (a *Agent) Reconcile(ctx context.Context) {
	units, _, err := a.cfg.Registry.Units(ctx)
	if err != nil {
		a.log.Error("Unable to determine agent's desired state", "err", err)
		return
	}
	desired := Desired(a.machine(ctx), units)
	files, err := a.cfg.Manager.Units(ctx)
	if err != nil {
		a.log.Error("Unable to determine agent's current state", "err", err)
		return
	}
	a.mu.Lock()
	current := map[string]CurrentUnit{}
	for n, h := range files {
		st := a.cache[n]
		if st == "" {
			st = fleetregistry.StateInactive
		}
		current[n] = CurrentUnit{Hash: h, State: st}
	}
	a.mu.Unlock()
	tasks := Plan(desired, current)
	a.repairJobStates(ctx, units, current, tasks)
	n, err := Execute(ctx, a.cfg.Manager, tasks, a)
	if n > 0 {
		a.wakePublisher() // e.g. a freshly loaded unit, which systemd may not signal
	}
	for _, t := range tasks[:n] {
		a.log.Info("AgentReconciler completed task", "type", t.Type, "job", t.Unit, "reason", t.Reason)
	}
	if err != nil {
		a.log.Error("AgentReconciler task failed", "type", tasks[n].Type, "job", tasks[n].Unit, "reason", tasks[n].Reason, "err", err)
	}
}

// repairJobStates makes job/<unit>/job-state (written once per start, no
// TTL) agree with what this agent runs, for units the plan does not touch:
// set for a unit scheduled here that it has launched, cleared where it
// names this machine for a unit it has not. It uses the pass's job/ read,
// so it costs a write only when something is wrong (e.g. after an upgrade
// from a fleetd that wrote it with a TTL, or a write that failed).
func (a *Agent) repairJobStates(ctx context.Context, units []*fleetregistry.Unit, current map[string]CurrentUnit, tasks []Task) {
	id := a.cfg.Machine().ID
	touched := map[string]bool{}
	for _, t := range tasks {
		touched[t.Unit] = true
	}
	for _, u := range units {
		if touched[u.Name] || u.IsGlobal() {
			continue
		}
		launched := current[u.Name].State == fleetregistry.StateLaunched
		switch {
		case launched && u.TargetMachine == id && u.JobState != id:
			if err := a.cfg.Registry.UnitHeartbeat(ctx, u.Name, id, 0); err != nil {
				a.log.Warn("unable to repair unit heartbeat", "unit", u.Name, "err", err)
			}
		case !launched && u.JobState == id:
			_ = a.cfg.Registry.ClearUnitHeartbeat(ctx, u.Name, id)
		}
	}
}

// Done implements Hooks: keep the cache, heartbeats and states in step.
func (a *Agent) Done(ctx context.Context, t Task) {
	id := a.cfg.Machine().ID
	a.mu.Lock()
	defer a.mu.Unlock()
	switch t.Type {
	case LoadUnit:
		a.cache[t.Unit] = fleetregistry.StateLoaded
		a.hashes[t.Unit] = t.File.Hash().String()
	case StartUnit:
		a.cache[t.Unit] = fleetregistry.StateLaunched
		if err := a.cfg.Registry.UnitHeartbeat(ctx, t.Unit, id, 0); err != nil {
			a.log.Warn("unit heartbeat failed", "unit", t.Unit, "err", err)
		}
	case StopUnit:
		a.cache[t.Unit] = fleetregistry.StateLoaded
		_ = a.cfg.Registry.ClearUnitHeartbeat(ctx, t.Unit, id)
	case UnloadUnit:
		delete(a.cache, t.Unit)
		delete(a.published, t.Unit)
		delete(a.hashes, t.Unit)
		_ = a.cfg.Registry.ClearUnitHeartbeat(ctx, t.Unit, id)
		_ = a.cfg.Registry.RemoveUnitState(ctx, t.Unit, id)
	}
}

// publishLoop publishes the states of this agent's units: on every change
// systemd reports (unitmgr.Watcher) and on a slow safety poll, or, when the
// manager cannot report changes, on a poll every PollInterval; changes are
// pushed at once and everything again refresh() after the previous full
// re-publish ENDED, on its own timer. Launched markers (job-state) are not
// re-published: they have no TTL (see fleetregistry).
//
// Unlike fleet, which checked the refresh period only on its poll tick and
// wrote sequentially (so with many units the re-publish started about one
// TTL after the last and most keys expired before being rewritten), the
// deadline here is exact and the writes run publishWorkers at a time.
func (a *Agent) publishLoop(ctx context.Context) {
	every := a.cfg.PollInterval
	if w, ok := a.cfg.Manager.(unitmgr.Watcher); ok {
		stop, err := w.WatchStates(ctx, func(unit string) {
			if unit != "" {
				a.mu.Lock()
				_, mine := a.cache[unit]
				a.mu.Unlock()
				if !mine {
					return
				}
			}
			a.wakePublisher()
		})
		if err != nil {
			a.log.Warn("unable to watch unit states; polling", "err", err, "every", every)
		} else {
			defer stop()
			every = a.cfg.SafetyPollInterval
		}
	}
	t := time.NewTicker(every)
	defer t.Stop()
	full := time.NewTimer(a.refresh())
	defer full.Stop()
	for {
		a.Publish(ctx)
		a.mu.Lock()
		due := a.lastFull.Add(a.refresh())
		a.mu.Unlock()
		wait := time.Until(due)
		if wait <= 0 { // the full re-publish could not run (no states): retry soon
			wait = max(a.refresh()/10, 10*time.Millisecond)
		}
		full.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-full.C:
		case <-a.changed:
		}
	}
}

func (a *Agent) wakePublisher() {
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// publishWorkers bounds the registry writes in flight during a publish.
const publishWorkers = 16

// refresh is how long after the end of one full re-publish the next one is
// due: half the TTL, so a re-publish taking up to the other half still
// rewrites every key before it expires. (fleet: 4/5 of the TTL counted
// from the start, half of it for TTLs up to 10 s.)
func (a *Agent) refresh() time.Duration {
	return a.cfg.TTL / 2
}

// Publish reads systemd states once and publishes what changed (or
// everything when the refresh period has passed since the last full
// re-publish ended), publishWorkers writes at a time.
func (a *Agent) Publish(ctx context.Context) {
	a.mu.Lock()
	names := unitmgr.SortedNames(a.cache)
	a.mu.Unlock()
	states, err := a.cfg.Manager.States(ctx, names)
	if err != nil {
		a.log.Warn("unable to read unit states", "err", err)
		return
	}
	id := a.cfg.Machine().ID
	a.mu.Lock()
	full := a.lastFull.IsZero() || !time.Now().Before(a.lastFull.Add(a.refresh()))
	var todo []fleetregistry.UnitState
	for _, n := range names {
		s, ok := states[n]
		if !ok || a.cache[n] == "" {
			continue
		}
		if prev, seen := a.published[n]; seen && prev == s && !full {
			continue
		}
		a.published[n] = s
		todo = append(todo, fleetregistry.UnitState{UnitName: n, LoadState: s.LoadState, ActiveState: s.ActiveState, SubState: s.SubState,
			MachineState: fleetregistry.MachineState{ID: id}, UnitHash: a.hashes[n]})
	}
	a.mu.Unlock()
	work := make(chan fleetregistry.UnitState)
	var wg sync.WaitGroup
	for range min(publishWorkers, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for st := range work {
				if err := a.cfg.Registry.SaveUnitState(ctx, st, a.cfg.TTL); err != nil {
					a.log.Warn("unable to publish unit state", "unit", st.UnitName, "err", err)
					a.mu.Lock()
					delete(a.published, st.UnitName)
					a.mu.Unlock()
				}
			}
		}()
	}
	for _, p := range todo {
		work <- p
	}
	close(work)
	wg.Wait()
	if full {
		a.mu.Lock()
		a.lastFull = time.Now() // when this re-publish ended
		a.mu.Unlock()
	}
}

// Purge stops and unloads every unit this agent manages and removes its
// published states (fleet's behaviour on SIGTERM; opt-in here).
func (a *Agent) Purge(ctx context.Context) error {
	files, err := a.cfg.Manager.Units(ctx)
	if err != nil {
		return err
	}
	var tasks []Task
	for _, n := range unitmgr.SortedNames(files) {
		tasks = append(tasks, Task{Type: UnloadUnit, Unit: n, Reason: "fleetd shutting down with purge"})
	}
	if len(tasks) > 0 {
		tasks = append(tasks, Task{Type: ReloadUnitFiles, Reason: "always reload unit files"})
	}
	_, err = Execute(ctx, a.cfg.Manager, tasks, a)
	return err
}

// Release withdraws what this agent published for its units (launched
// heartbeats and unit states) without touching the units, so the cluster
// stops counting on this machine at once. fleetd calls it when the machine
// shuts down.
func (a *Agent) Release(ctx context.Context) {
	id := a.cfg.Machine().ID
	a.mu.Lock()
	names := unitmgr.SortedNames(a.cache)
	a.published = map[string]unitmgr.State{}
	a.mu.Unlock()
	for _, n := range names {
		if err := a.cfg.Registry.ClearUnitHeartbeat(ctx, n, id); err != nil {
			a.log.Warn("unable to clear unit heartbeat", "unit", n, "err", err)
		}
		if err := a.cfg.Registry.RemoveUnitState(ctx, n, id); err != nil {
			a.log.Warn("unable to remove unit state", "unit", n, "err", err)
		}
	}
}
