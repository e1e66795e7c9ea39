package fleetfaults

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/corekit/corekit/internal/nspawn"
)

// sampler asks every running machine's systemd which fleetfaults units are
// active, every period, and keeps the samples.
type sampler struct {
	c      *cluster
	period time.Duration

	mu      sync.Mutex
	samples []sample
	errs    int // failed reads of a running machine
}

func (s *sampler) run(ctx context.Context) {
	tick := time.NewTicker(s.period)
	defer tick.Stop()
	for {
		smp := s.take(ctx)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.samples = append(s.samples, smp)
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// take reads every running machine in parallel; the sample's time is when
// the reads started.
func (s *sampler) take(ctx context.Context) sample {
	smp := sample{At: time.Now(), Active: map[string][]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, nd := range s.c.nodes {
		m := nd.machine()
		if m == nil || !m.Running() {
			continue
		}
		wg.Add(1)
		go func(host string, m *nspawn.Machine) {
			defer wg.Done()
			units, ok := activeUnits(ctx, m)
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				if m.Running() {
					s.errs++
				}
				return
			}
			smp.Active[host] = units
		}(nd.host, m)
	}
	wg.Wait()
	return smp
}

// activeUnits lists the active ff-* services of m's systemd.
func activeUnits(ctx context.Context, m *nspawn.Machine) ([]string, bool) {
	// timeout(1) inside the guest: when the Go side gives up it kills
	// nsenter, not its child in the guest, and an orphaned systemctl
	// blocked on a systemd that is shutting down would hold the guest's
	// final stage up (systemd-shutdown waits for remaining processes).
	rctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	r := m.Run(rctx, "timeout", "-k", "1", "2", "systemctl", "list-units", "--type=service", "--state=active", "--no-legend", "--plain", "--no-pager", "ff-*")
	if !r.OK() {
		return nil, false
	}
	units := []string{}
	for _, line := range strings.Split(r.Stdout, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "ff-") {
			units = append(units, f[0])
		}
	}
	slices.Sort(units)
	return units, true
}

// snapshot returns a copy of the samples so far.
func (s *sampler) snapshot() []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.samples)
}

// between returns the samples in [from, to].
func between(samples []sample, from, to time.Time) []sample {
	var out []sample
	for _, s := range samples {
		if !s.At.Before(from) && !s.At.After(to) {
			out = append(out, s)
		}
	}
	return out
}

// last returns the newest sample (zero if none).
func (s *sampler) last() sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return sample{}
	}
	return s.samples[len(s.samples)-1]
}

// waitStable waits until ok has held for stable over the samples taken since
// from, or until timeout; it returns whether it did and the newest sample.
func (s *sampler) waitStable(ctx context.Context, from time.Time, stable, timeout time.Duration, ok func(sample) bool) (bool, sample) {
	deadline := from.Add(timeout)
	for {
		_, lasted, found := streak(s.snapshot(), from, ok)
		if found && lasted >= stable {
			return true, s.last()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false, s.last()
		}
		time.Sleep(s.period)
	}
}
