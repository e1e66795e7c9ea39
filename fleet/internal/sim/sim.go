// Package sim runs a simulated fleet cluster in one process: the real engine
// and real agents over one registry, with systemd replaced by
// unitmgr.Memory. It measures how many store requests the cluster makes per
// scheduling decision (make bench-fleet).
package sim

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corekit/corekit/fleet/internal/agent"
	"github.com/corekit/corekit/fleet/internal/engine"
	"github.com/corekit/corekit/fleet/internal/unitmgr"
	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/unitfile"
	"github.com/corekit/corekit/internal/v2api"
)

// Options configure a simulation.
type Options struct {
	Machines int
	Units    int
	// KV is the store (nil = a fresh in-memory MemKV).
	KV fleetregistry.KV
	// EngineInterval and AgentInterval are the reconcile timers.
	EngineInterval time.Duration
	AgentInterval  time.Duration
	// SubmitRate is how many units per second are submitted (0 = as fast
	// as the in-memory store allows, a burst no real API delivers: watchers
	// then fall more than etcd's 1,000 events behind and re-read instead of
	// seeing each event).
	SubmitRate float64
	Logger     *slog.Logger
}

// Report is what a simulation measured.
type Report struct {
	Machines, Units int
	// Decisions is the number of schedule decisions the engine applied.
	Decisions int
	// EngineRequests and AgentRequests count store requests (reads,
	// writes, watches) until every unit ran.
	EngineRequests, AgentRequests int64
	// AgentWatches is the part of AgentRequests that were watch long-polls
	// (one per wake-up of the agent's own machines/<id>/schedule key, as
	// etcd v2 watches work; fleet 1.0's agents did one per event below job/).
	AgentWatches int64
	Elapsed      time.Duration
}

// EngineRequestsPerDecision is the engine's store cost per decision.
func (r Report) EngineRequestsPerDecision() float64 {
	return float64(r.EngineRequests) / float64(max(r.Decisions, 1))
}

// TotalRequestsPerDecision includes every agent's requests.
func (r Report) TotalRequestsPerDecision() float64 {
	return float64(r.EngineRequests+r.AgentRequests) / float64(max(r.Decisions, 1))
}

func (r Report) String() string {
	return fmt.Sprintf("%d machines, %d units: %d decisions in %s; engine %d requests (%.2f/decision), all %d requests (%.2f/decision; agents' reads+writes %.2f/decision, agents' watches %.2f/decision)",
		r.Machines, r.Units, r.Decisions, r.Elapsed.Round(time.Millisecond), r.EngineRequests, r.EngineRequestsPerDecision(),
		r.EngineRequests+r.AgentRequests, r.TotalRequestsPerDecision(),
		float64(r.AgentRequests-r.AgentWatches)/float64(max(r.Decisions, 1)), float64(r.AgentWatches)/float64(max(r.Decisions, 1)))
}

// countingKV counts the requests passing through it.
type countingKV struct {
	fleetregistry.KV
	n       atomic.Int64 // every request
	watches atomic.Int64 // of which watch long-polls
}

func (c *countingKV) Get(ctx context.Context, key string, rec bool) (*v2api.Node, uint64, error) {
	c.n.Add(1)
	return c.KV.Get(ctx, key, rec)
}

func (c *countingKV) Set(ctx context.Context, key, value string, o fleetregistry.SetOptions) (*v2api.Node, error) {
	c.n.Add(1)
	return c.KV.Set(ctx, key, value, o)
}

func (c *countingKV) Delete(ctx context.Context, key string, o fleetregistry.DeleteOptions) error {
	c.n.Add(1)
	return c.KV.Delete(ctx, key, o)
}

func (c *countingKV) Watch(ctx context.Context, prefix string, after uint64) (fleetregistry.Event, error) {
	c.n.Add(1)
	c.watches.Add(1)
	return c.KV.Watch(ctx, prefix, after)
}

// Submitters is how many units are submitted concurrently, as the
// real-machine benchmark does through the API.
const Submitters = 8

// Run registers the machines, starts one engine and one agent per machine,
// waits for the engine to lead, then submits the units as launched
// (Submitters at a time, through an uncounted registry, as an API would)
// while the cluster runs, and returns when every unit has been started by
// an agent (or ctx ends). Counting starts with the first submission.
func Run(ctx context.Context, o Options) (Report, error) {
	if o.KV == nil {
		o.KV = fleetregistry.NewMemKV(nil)
	}
	if o.EngineInterval == 0 {
		o.EngineInterval = time.Second
	}
	if o.AgentInterval == 0 {
		o.AgentInterval = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ekv, akv := &countingKV{KV: o.KV}, &countingKV{KV: o.KV}
	ereg := fleetregistry.New(ekv, "")
	areg := fleetregistry.New(akv, "")
	setup := fleetregistry.New(o.KV, "")

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mgrs []*unitmgr.Memory
	var agents []*agent.Agent
	for i := 0; i < o.Machines; i++ {
		ms := fleetregistry.MachineState{ID: fmt.Sprintf("sim%05d", i), Version: fleetregistry.Version}
		if err := setup.RegisterMachine(ctx, ms, "sim", time.Hour); err != nil {
			return Report{}, err
		}
		mgr := unitmgr.NewMemory()
		mgrs = append(mgrs, mgr)
		agents = append(agents, agent.New(agent.Config{Registry: areg, Manager: mgr, Machine: func() fleetregistry.MachineState { return ms },
			TTL: time.Hour, ReconcileInterval: o.AgentInterval, Logger: o.Logger}))
	}
	var decisions atomic.Int64
	eng := engine.New(engine.Config{Registry: ereg, MachineID: "sim-engine", Interval: o.EngineInterval, Logger: o.Logger,
		OnDecision: func(engine.Decision) { decisions.Add(1) }})
	f, err := unitfile.Parse("[Service]\nExecStart=/bin/sleep 1000\n")
	if err != nil {
		return Report{}, err
	}
	for _, a := range agents {
		wg.Add(1)
		go func() { defer wg.Done(); _ = a.Run(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = eng.Run(ctx) }()
	defer wg.Wait()
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !eng.IsLeader() {
		select {
		case <-ctx.Done():
			return Report{}, fmt.Errorf("simulation: engine never led: %w", ctx.Err())
		case <-t.C:
		}
	}
	start := time.Now()
	e0, a0, w0 := ekv.n.Load(), akv.n.Load(), akv.watches.Load()
	var next atomic.Int64
	var submit sync.WaitGroup
	tokens := make(chan struct{})
	if o.SubmitRate > 0 {
		go func() {
			tick := time.NewTicker(time.Duration(float64(time.Second) / o.SubmitRate))
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				select {
				case <-ctx.Done():
					return
				case tokens <- struct{}{}:
				}
			}
		}()
	} else {
		close(tokens)
	}
	errs := make(chan error, Submitters)
	for range Submitters {
		submit.Add(1)
		go func() {
			defer submit.Done()
			for i := int(next.Add(1)) - 1; i < o.Units && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				<-tokens
				u := &fleetregistry.Unit{Name: fmt.Sprintf("u%05d.service", i), File: f, TargetState: fleetregistry.StateLaunched}
				if err := setup.CreateUnit(ctx, u); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	submit.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return Report{}, err
	}
	for {
		started := 0
		for _, m := range mgrs {
			started += m.Calls("Start")
		}
		if started >= o.Units {
			break
		}
		select {
		case <-ctx.Done():
			return Report{}, fmt.Errorf("simulation: %d of %d units started: %w", started, o.Units, ctx.Err())
		case <-t.C:
		}
	}
	elapsed := time.Since(start)
	cancel()
	wg.Wait() // the engine's last pass reports its decisions before Run returns
	return Report{Machines: o.Machines, Units: o.Units, Decisions: int(decisions.Load()),
		EngineRequests: ekv.n.Load() - e0, AgentRequests: akv.n.Load() - a0, AgentWatches: akv.watches.Load() - w0, Elapsed: elapsed}, nil
}
