package engine

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/corekit/corekit/internal/fleetregistry"
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
	Logger         *slog.Logger
	// OnPass, if set, is called after every complete reconcile pass.
	OnPass func(Result)
	// OnDecision, if set, is called after each decision applied to the
	// registry (the simulator counts them).
	OnDecision func(Decision)
}

// Engine competes for the leader lease and, while leader, reconciles the
// schedule.
type Engine struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	lease  *fleetregistry.Lease
	leader string
}

// New returns an Engine; call Run.
func New(cfg Config) *Engine {
	if cfg.Interval == 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg, log: cfg.Logger.With("component", "engine")}
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

// Run ticks every Interval (and on registry changes while leader) until
// ctx ends; then it releases the lease if held.
func (e *Engine) Run(ctx context.Context) error {
	kick := make(chan struct{}, 1)
	var wg sync.WaitGroup
	if !e.cfg.DisableWatches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.cfg.Registry.FollowUnits(ctx, func(ch fleetregistry.UnitChange) {
				if ch.Field == "job-state" || ch.Field == "reason" { // heartbeats and our own reasons do not change the schedule
					return
				}
				select {
				case kick <- struct{}{}:
				default:
				}
			})
		}()
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			e.release()
			return nil
		case <-t.C:
		case <-kick:
		}
		e.Tick(ctx)
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
	pctx, cancel := context.WithTimeout(ctx, e.ttl())
	defer cancel()
	if _, err := e.Reconcile(pctx); err != nil {
		e.log.Error("Engine reconcile failed", "err", err)
	}
}

func (e *Engine) lead(ctx context.Context) bool {
	reg := e.cfg.Registry
	if err := reg.RaiseEngineVersion(ctx, fleetregistry.EngineVersion); err != nil {
		e.log.Warn("unable to check engine version", "err", err)
		return false
	}
	if v, _, err := reg.EngineVersion(ctx); err != nil || v > fleetregistry.EngineVersion {
		return false
	}
	e.mu.Lock()
	held := e.lease
	e.mu.Unlock()
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
	}
	cur, err := reg.GetLease(ctx, LeaseName)
	if err != nil {
		return false
	}
	if cur != nil {
		e.setLease(nil, cur.MachineID)
		return false
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
	e.lease = l
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
	units, _, err := reg.Units(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	machines, err := reg.Machines(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	var s Snapshot
	for _, m := range machines {
		s.Machines = append(s.Machines, Machine{ID: m.ID, Metadata: m.Metadata})
	}
	for _, u := range units {
		s.Units = append(s.Units, Unit{Name: u.Name, Req: u.Requirements(), Desired: u.TargetState, Target: u.TargetMachine, Reason: u.Reason})
	}
	return s, nil
}

// Reconcile runs one scheduling pass and applies its decisions in order.
func (e *Engine) Reconcile(ctx context.Context) (Result, error) {
	snap, err := BuildSnapshot(ctx, e.cfg.Registry)
	if err != nil {
		return Result{}, err
	}
	res := Plan(snap)
	for _, d := range res.Decisions {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		switch d.Type {
		case Unschedule:
			err = e.cfg.Registry.UnscheduleUnit(ctx, d.Unit, d.Machine)
			if err == nil {
				e.log.Info("Unscheduled Job(" + d.Unit + ") from Machine(" + d.Machine + ")")
			}
		case Schedule:
			err = e.cfg.Registry.ScheduleUnit(ctx, d.Unit, d.Machine)
			if err == nil {
				e.log.Info("Scheduled Unit(" + d.Unit + ") to Machine(" + d.Machine + ")")
			}
		}
		if err != nil {
			e.log.Warn("EngineReconciler task failed", "task", d.String(), "err", err)
			continue
		}
		e.log.Info("EngineReconciler completed task: " + d.String())
		if e.cfg.OnDecision != nil {
			e.cfg.OnDecision(d)
		}
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
