// Package expiry runs the leader-only loop that makes TTL keys expire: every
// interval (500 ms, as etcd's SYNC ticker) the leader reads its clock and, if
// the store's earliest expiry is due, proposes an expire command carrying
// that reading. Followers never expire anything on their own; the store
// deletes keys only when that command is applied, identically everywhere.
package expiry

import (
	"context"
	"log/slog"
	"time"
)

// DefaultInterval is etcd's SYNC tick.
const DefaultInterval = 500 * time.Millisecond

// Options are the loop's dependencies; all but Interval, Tick and Logger are
// required.
type Options struct {
	// Now is the leader's clock.
	Now func() time.Time
	// IsLeader reports whether this member currently leads.
	IsLeader func() bool
	// NextExpiry is the store's earliest expiry (store.NextExpiry).
	NextExpiry func() (time.Time, bool)
	// Propose replicates an expire command with cutoff and waits for it.
	Propose func(ctx context.Context, cutoff time.Time) error
	// Interval between checks (DefaultInterval when zero).
	Interval time.Duration
	// Tick, if set, replaces the ticker (tests drive the loop with it).
	Tick   <-chan time.Time
	Logger *slog.Logger
}

// Run checks on every tick until ctx ends; it returns ctx's error.
func Run(ctx context.Context, o Options) error {
	tick := o.Tick
	if tick == nil {
		iv := o.Interval
		if iv <= 0 {
			iv = DefaultInterval
		}
		t := time.NewTicker(iv)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick:
			if err := Check(ctx, o); err != nil && o.Logger != nil && ctx.Err() == nil {
				o.Logger.Warn("proposing expiry failed", "err", err)
			}
		}
	}
}

// Check runs one iteration: propose an expiry if this member leads and the
// earliest expiry is at or before now. It reports whether it proposed through
// the Propose error (nil when nothing was due).
func Check(ctx context.Context, o Options) error {
	if !o.IsLeader() {
		return nil
	}
	next, ok := o.NextExpiry()
	if !ok {
		return nil
	}
	now := o.Now()
	if next.After(now) {
		return nil
	}
	return o.Propose(ctx, now)
}
