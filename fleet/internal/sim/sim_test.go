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
	r, err := Run(ctx, Options{Machines: 5, Units: 40, EngineInterval: 200 * time.Millisecond, AgentInterval: time.Second})
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
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkSimulatedCluster is make bench-fleet: FLEET_SIM_MACHINES (100) ×
// FLEET_SIM_UNITS (2000), real engine and agents over an in-memory store.
func BenchmarkSimulatedCluster(b *testing.B) {
	m, u := envInt("FLEET_SIM_MACHINES", 100), envInt("FLEET_SIM_UNITS", 2000)
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		r, err := Run(ctx, Options{Machines: m, Units: u})
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
