package engine

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/unitfile"
)

// LeaseName is the registry lease engines compete for.
const LeaseName = "engine-leader"

// Config configures an Engine.
type Config struct {
	Registry  *fleetregistry.Registry
	MachineID string
	// Interval is engine_reconcile_interval; the lease TTL is 5× it.
	Interval       time.Duration
	DisableWatches bool
	// MinWatchGap is how long a change waits before its pass (default
	// 100 ms), so a burst of submissions costs a few passes — each a read
	// of all of job/ — and a few batched wake-ups, not one per write.
	MinWatchGap time.Duration
	Logger      *slog.Logger
	// OnPass, if set, is called after every complete reconcile pass.
	OnPass func(Result)
	// OnDecision, if set, is called after each decision applied to the
	// registry (the simulator counts them).
	OnDecision func(Decision)
}

// Engine competes for the leader lease and, while leader, reconciles the
// schedule and wakes the agents of the machines a change concerns.
type Engine struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	lease     *fleetregistry.Lease
	renewedAt time.Time // local time of the last acquire or renew
	leader    string
	// fresh is set on gaining the lease: the next pass forgets what it
	// woke (the previous leader may have changed the schedule without
	// waking the agents) and wakes every unit's target.
	fresh bool

	// wmu guards the wake-up bookkeeping of Reconcile.
	wmu sync.Mutex
	// seen is each unit as the previous pass left it (nil = no pass since
	// gaining the lease: wake every unit's target).
	seen map[string]unitView
	// seenMD is each registered machine's metadata as last seen.
	seenMD map[string]string
	// pending are machines to wake at the next flush (kept when the
	// write failed).
	pending map[string]bool
	// registered are the machines of the current pass's snapshot.
	registered map[string]bool
	// index is the store index of the last pass's job/ read.
	index uint64
}

// unitView is what of a unit concerns agents.
type unitView struct {
	hash   unitfile.Hash
	state  fleetregistry.TargetState
	target string
	global bool
}

// New returns an Engine; call Run.
func New(cfg Config) *Engine {
	if cfg.Interval == 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.MinWatchGap == 0 {
		cfg.MinWatchGap = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg, log: cfg.Logger.With("component", "engine"), pending: map[string]bool{}}
}

func (e *Engine) ttl() time.Duration {
	t := 5 * e.cfg.Interval
	if t < 2*time.Second {
		t = 2 * time.Second
	}
	return t
}

// IsLeader reports whether this engine currently holds the lease.
func (e *Engine) IsLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lease != nil
}

// leaseFresh reports whether the lease is held and was renewed less than
// half its TTL ago, so a pass triggered by a change can skip the renewal.
func (e *Engine) leaseFresh() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lease != nil && time.Since(e.renewedAt) < e.ttl()/2
}

// Run ticks every Interval until ctx ends; then it releases the lease if
// held. Only while it leads does it watch job/ and run a pass on every
// change (heartbeats, reasons and schedules, which engines write, do not
// count); an engine that does not lead reads the lease once per Interval
// and nothing else.
func (e *Engine) Run(ctx context.Context) error {
	kick := make(chan struct{}, 1)
	var wg sync.WaitGroup
	var stopFollow context.CancelFunc // non-nil while the job/ watch runs
	follow := func() {
		leader := e.IsLeader()
		switch {
		case leader && stopFollow == nil && !e.cfg.DisableWatches:
			fctx, cancel := context.WithCancel(ctx)
			stopFollow = cancel
			e.wmu.Lock()
			after := e.index
			e.wmu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.cfg.Registry.FollowUnitsAfter(fctx, after, func(ch fleetregistry.UnitChange) {
					switch ch.Field {
					case "job-state", "reason", "target": // written by agents and engines, not by users
						return
					}
					select {
					case kick <- struct{}{}:
					default:
					}
				})
			}()
		case !leader && stopFollow != nil:
			stopFollow()
			stopFollow = nil
		}
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if stopFollow != nil {
				stopFollow()
			}
			wg.Wait()
			e.release()
			return nil
		case <-t.C:
			e.Tick(ctx)
		case <-kick:
			pause(ctx, e.cfg.MinWatchGap) // let a burst of changes land
			select {
			case <-kick:
			default:
			}
			if e.leaseFresh() {
				e.reconcile(ctx)
			} else {
				e.Tick(ctx)
			}
		}
		follow()
		t.Reset(e.cfg.Interval)
	}
}

func (e *Engine) release() {
	e.mu.Lock()
	l := e.lease
	e.lease = nil
	e.mu.Unlock()
	if l != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.cfg.Registry.ReleaseLease(ctx, LeaseName, l); err == nil {
			e.log.Info("Engine leadership released")
		}
	}
}

// Tick runs one round: keep or gain leadership, then reconcile if leader.
func (e *Engine) Tick(ctx context.Context) {
	if !e.lead(ctx) {
		return
	}
	e.reconcile(ctx)
}

func (e *Engine) reconcile(ctx context.Context) {
	if _, err := e.Reconcile(ctx); err != nil {
		e.log.Error("Engine reconcile failed", "err", err)
	}
}

// lead keeps or gains the lease. An engine that does not hold it reads the
// lease only (one request); the engine version is checked before
// acquiring and, by the leader, before each renewal.
func (e *Engine) lead(ctx context.Context) bool {
	reg := e.cfg.Registry
	e.mu.Lock()
	held := e.lease
	e.mu.Unlock()
	if held == nil {
		cur, err := reg.GetLease(ctx, LeaseName)
		if err != nil {
			return false
		}
		if cur != nil {
			e.setLease(nil, cur.MachineID)
			return false
		}
	}
	v, err := reg.EnsureEngineVersion(ctx, fleetregistry.EngineVersion)
	if err != nil {
		e.log.Warn("unable to check engine version", "err", err)
		return false
	}
	if v > fleetregistry.EngineVersion {
		if held != nil {
			e.log.Warn("Engine version in the cluster is newer; stepping down", "cluster", v, "ours", fleetregistry.EngineVersion)
			e.release()
		}
		return false
	}
	if held != nil {
		l, err := reg.RenewLease(ctx, LeaseName, held, e.ttl())
		if err == nil {
			e.setLease(l, l.MachineID)
			return true
		}
		e.log.Warn("Engine leadership lost, renewal failed", "err", err)
		e.setLease(nil, "")
		if !errors.Is(err, fleetregistry.ErrLeaseLost) {
			return false
		}
		cur, err := reg.GetLease(ctx, LeaseName)
		if err != nil {
			return false
		}
		if cur != nil {
			e.setLease(nil, cur.MachineID)
			return false
		}
	}
	l, err := reg.AcquireLease(ctx, LeaseName, e.cfg.MachineID, fleetregistry.EngineVersion, e.ttl())
	if err != nil || l == nil {
		return false
	}
	e.log.Info("Engine leadership acquired", "machine", e.cfg.MachineID)
	e.setLease(l, l.MachineID)
	return true
}

func (e *Engine) setLease(l *fleetregistry.Lease, leader string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if l != nil && e.lease == nil {
		e.fresh = true
	}
	e.lease = l
	if l != nil {
		e.renewedAt = time.Now()
	}
	if leader != e.leader && leader != "" {
		if e.leader == "" {
			e.log.Info("Engine leader is " + leader)
		} else {
			e.log.Info("Engine leadership changed from " + e.leader + " to " + leader)
		}
		e.leader = leader
	}
}

// BuildSnapshot reads the registry into a scheduler Snapshot.
func BuildSnapshot(ctx context.Context, reg *fleetregistry.Registry) (Snapshot, error) {
	s, _, _, err := buildSnapshot(ctx, reg)
	return s, err
}

// buildSnapshot also returns what it read: the units, the machines and the
// store index of the job/ read.
func buildSnapshot(ctx context.Context, reg *fleetregistry.Registry) (Snapshot, []*fleetregistry.Unit, []fleetregistry.MachineState, error) {
	units, idx, err := reg.Units(ctx)
	if err != nil {
		return Snapshot{}, nil, nil, err
	}
	machines, err := reg.Machines(ctx)
	if err != nil {
		return Snapshot{}, nil, nil, err
	}
	s := Snapshot{Index: idx}
	for _, m := range machines {
		s.Machines = append(s.Machines, Machine{ID: m.ID, Metadata: m.Metadata})
	}
	for _, u := range units {
		s.Units = append(s.Units, Unit{Name: u.Name, Req: u.Requirements(), Desired: u.TargetState, Target: u.TargetMachine, Reason: u.Reason})
	}
	return s, units, machines, nil
}

// wakeFlushEvery is how often a long pass wakes the machines its decisions
// so far concern, so agents start while the engine is still scheduling.
const wakeFlushEvery = 500 * time.Millisecond

// Reconcile runs one scheduling pass and applies its decisions in order.
// It wakes the agents of the machines that changes made by others since the
// previous pass concern, then, every wakeFlushEvery and at the end, those
// its own decisions concern (see the fleetregistry package comment). A
// pass longer than half the lease TTL renews the lease between decisions,
// and stops when it cannot.
func (e *Engine) Reconcile(ctx context.Context) (Result, error) {
	snap, units, machines, err := buildSnapshot(ctx, e.cfg.Registry)
	if err != nil {
		return Result{}, err
	}
	e.wmu.Lock()
	defer e.wmu.Unlock()
	e.observe(snap.Index, units, machines)
	e.flushWakes(ctx)
	res := Plan(snap)
	lastFlush := time.Now()
	for _, d := range res.Decisions {
		if err = ctx.Err(); err != nil {
			break
		}
		if !e.keepLease(ctx) {
			err = fleetregistry.ErrLeaseLost
			break
		}
		var derr error
		switch d.Type {
		case Unschedule:
			derr = e.cfg.Registry.UnscheduleUnit(ctx, d.Unit, d.Machine)
			if derr == nil {
				e.log.Info("Unscheduled Job(" + d.Unit + ") from Machine(" + d.Machine + ")")
			}
		case Schedule:
			derr = e.cfg.Registry.ScheduleUnit(ctx, d.Unit, d.Machine)
			if derr == nil {
				e.log.Info("Scheduled Unit(" + d.Unit + ") to Machine(" + d.Machine + ")")
			}
		}
		if derr != nil {
			e.log.Warn("EngineReconciler task failed", "task", d.String(), "err", derr)
			continue
		}
		e.applied(d)
		e.log.Info("EngineReconciler completed task: " + d.String())
		if e.cfg.OnDecision != nil {
			e.cfg.OnDecision(d)
		}
		if time.Since(lastFlush) >= wakeFlushEvery {
			e.flushWakes(ctx)
			lastFlush = time.Now()
		}
	}
	e.flushWakes(ctx)
	if err != nil {
		return res, err
	}
	for _, u := range res.Unschedulable {
		e.log.Debug("Unable to schedule Job("+u.Unit+")", "reason", u.Reason)
	}
	e.publishReasons(ctx, snap, res)
	if e.cfg.OnPass != nil {
		e.cfg.OnPass(res)
	}
	return res, nil
}

// keepLease renews the held lease when half its TTL has passed since the
// last renewal (a long pass); false means it was lost. An engine driven
// without a lease (tests calling Reconcile) always keeps going.
func (e *Engine) keepLease(ctx context.Context) bool {
	e.mu.Lock()
	l, at := e.lease, e.renewedAt
	e.mu.Unlock()
	if l == nil || time.Since(at) < e.ttl()/2 {
		return true
	}
	nl, err := e.cfg.Registry.RenewLease(ctx, LeaseName, l, e.ttl())
	if err != nil {
		e.log.Warn("Engine leadership lost, renewal failed", "err", err)
		e.setLease(nil, "")
		return false
	}
	e.setLease(nl, nl.MachineID)
	return true
}

// publishReasons writes job/<unit>/reason for every unit the pass could not
// place and removes it from units that no longer need one; a key is only
// written when its value changes.
func (e *Engine) publishReasons(ctx context.Context, snap Snapshot, res Result) {
	want := map[string]string{}
	for _, u := range res.Unschedulable {
		want[u.Unit] = u.Reason
	}
	for _, u := range snap.Units {
		if want[u.Name] == u.Reason || ctx.Err() != nil {
			continue
		}
		if err := e.cfg.Registry.SetUnitReason(ctx, u.Name, want[u.Name]); err != nil {
			e.log.Warn("unable to publish scheduling reason", "unit", u.Name, "err", err)
		}
	}
}

// observe compares the units and machines a pass read with what the
// previous pass left (caller holds wmu) and marks as pending every
// registered machine a difference concerns: old and new target of a unit
// whose content, desired state, target or globalness changed (every machine
// for a global unit), and a machine whose metadata changed.
func (e *Engine) observe(index uint64, units []*fleetregistry.Unit, machines []fleetregistry.MachineState) {
	e.mu.Lock()
	if e.fresh {
		e.seen, e.fresh = nil, false
	}
	e.mu.Unlock()
	e.index = index
	e.registered = map[string]bool{}
	md := map[string]string{}
	for _, m := range machines {
		e.registered[m.ID] = true
		b, _ := json.Marshal(m.Metadata) // map keys sorted: canonical
		md[m.ID] = string(b)
		if old, ok := e.seenMD[m.ID]; ok && old != md[m.ID] {
			e.pending[m.ID] = true
		}
	}
	all := func() {
		for id := range e.registered {
			e.pending[id] = true
		}
	}
	now := make(map[string]unitView, len(units))
	for _, u := range units {
		v := unitView{hash: u.Hash, state: u.TargetState, target: u.TargetMachine, global: u.IsGlobal()}
		now[u.Name] = v
		old, ok := e.seen[u.Name]
		if ok && old == v {
			continue
		}
		if v.global || old.global {
			all()
		}
		for _, m := range []string{old.target, v.target} {
			if m != "" {
				e.pending[m] = true
			}
		}
	}
	for name, old := range e.seen {
		if _, ok := now[name]; ok {
			continue
		}
		if old.global {
			all()
		}
		if old.target != "" {
			e.pending[old.target] = true
		}
	}
	e.seen, e.seenMD = now, md
}

// applied records a decision the pass applied: its machines are pending
// (caller holds wmu).
func (e *Engine) applied(d Decision) {
	v := e.seen[d.Unit]
	switch d.Type {
	case Schedule:
		v.target = d.Machine
	case Unschedule:
		if v.target == d.Machine {
			v.target = ""
		}
	}
	e.seen[d.Unit] = v
	e.pending[d.Machine] = true
}

// flushWakes rewrites the schedule wake-up key of every pending machine;
// failed ones stay pending for the next flush (caller holds wmu). A pending
// machine that is not registered had units moved off it: it may still be
// running them (a partition expired its presence), so it is woken too, with
// a key that expires (fleetregistry.WakeAbsentMachine) — that ends the
// duplicate copies as soon as it reaches the store again.
func (e *Engine) flushWakes(ctx context.Context) {
	ids := make([]string, 0, len(e.pending))
	for id := range e.pending {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		wake := e.cfg.Registry.WakeMachine
		if !e.registered[id] {
			wake = e.cfg.Registry.WakeAbsentMachine
		}
		if err := wake(ctx, id, e.index); err != nil {
			e.log.Warn("unable to wake machine", "machine", id, "err", err)
			continue
		}
		delete(e.pending, id)
	}
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
