package sim

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

func TestSimulationSchedulesEverything(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := Run(ctx, Options{Machines: 5, Units: 40, EngineInterval: 200 * time.Millisecond, AgentInterval: time.Second, SubmitRate: 200})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Decisions != 40 {
		t.Fatalf("decisions = %d, want one schedule per unit (40)", r.Decisions)
	}
	if r.EngineRequests == 0 || r.AgentRequests == 0 {
		t.Fatalf("requests not counted: %+v", r)
	}
	// Per-machine wake-ups: an agent's watch returns only for a wake-up of
	// its own machine, at most one per decision (batched per engine pass),
	// plus each agent's first watch. fleet 1.0's agents each saw every
	// change below job/: about 4 per unit × 5 machines here.
	if r.AgentWatches > int64(r.Decisions+5) {
		t.Fatalf("agents made %d watch requests for %d decisions on 5 machines, want at most %d", r.AgentWatches, r.Decisions, r.Decisions+5)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkSimulatedCluster is make bench-fleet: FLEET_SIM_MACHINES (100) ×
// FLEET_SIM_UNITS (2000) submitted at FLEET_SIM_RATE units/s (100; about
// what one fleetd's API sustained in the real-machine benchmark), real
// engine and agents over an in-memory store.
func BenchmarkSimulatedCluster(b *testing.B) {
	m, u, rate := envInt("FLEET_SIM_MACHINES", 100), envInt("FLEET_SIM_UNITS", 2000), envInt("FLEET_SIM_RATE", 100)
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		r, err := Run(ctx, Options{Machines: m, Units: u, SubmitRate: float64(rate)})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.EngineRequestsPerDecision(), "engine-req/decision")
		b.ReportMetric(r.TotalRequestsPerDecision(), "req/decision")
		b.ReportMetric(float64(r.AgentRequests-r.AgentWatches)/float64(max(r.Decisions, 1)), "agent-rw/decision")
		b.Log(r)
	}
}
