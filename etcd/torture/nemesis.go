package torture

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"sync"
	"time"
)

// Fault kinds the nemesis can inject.
const (
	FaultKill            = "kill"             // kill -9 a random member, restart it later
	FaultKillLeader      = "kill-leader"      // kill -9 the leader, restart it later
	FaultPause           = "pause"            // SIGSTOP a random member, SIGCONT later
	FaultPauseLeader     = "pause-leader"     // SIGSTOP the leader
	FaultPartitionOne    = "partition-one"    // isolate a random member (minority of 1)
	FaultPartitionLeader = "partition-leader" // isolate the leader
	FaultPartitionHalves = "partition-halves" // random split into a minority and a majority
	FaultPartitionBridge = "partition-bridge" // two halves that only one member links
	FaultPartitionRing   = "partition-ring"   // every member sees a different majority
	FaultKillAll         = "kill-all"         // kill -9 every member, restart them all
	// FaultClockJump shifts one member's wall clock (the one TTLs use) by
	// ±5..60 s for the fault's duration; ours only (a hidden flag).
	FaultClockJump       = "clock-jump"
	FaultClockJumpLeader = "clock-jump-leader" // the same on the leader
	// FaultDiskFull fills the tmpfs under one member's data dir; at heal
	// the filler goes and the member is killed -9 and restarted, so a write
	// it acknowledged without persisting it shows up as lost.
	FaultDiskFull       = "disk-full"
	FaultDiskFullLeader = "disk-full-leader" // the same on the leader
	// FaultDiskFullRestart fills one member's disk, then kills it -9 and
	// starts it again on the full disk (start-up must cope with ENOSPC).
	FaultDiskFullRestart = "disk-full-restart"
	// FaultFsyncEIO makes every fsync/fdatasync of one member fail with
	// EIO (seccomp, package internal/syncfail) for the fault's duration;
	// at heal the member is killed -9 and restarted, as for disk-full.
	FaultFsyncEIO       = "fsync-eio"
	FaultFsyncEIOLeader = "fsync-eio-leader" // the same on the leader
)

// ClockFaults and DiskFaults are the fault kinds that need the clock hook
// (our etcd only) and data dirs on tmpfs.
var (
	ClockFaults = []string{FaultClockJump, FaultClockJumpLeader}
	DiskFaults  = []string{FaultDiskFull, FaultDiskFullLeader, FaultDiskFullRestart}
	SyncFaults  = []string{FaultFsyncEIO, FaultFsyncEIOLeader}
)

// KnownFaults is every fault kind Run accepts, in report order.
var KnownFaults = append(append(append(append([]string(nil), AllFaults...), ClockFaults...), DiskFaults...), SyncFaults...)

// diskFullExits and fsyncEIOExits count, among a run's faults, the members
// that exited while their disk was full or their fsyncs failed (allowed,
// not a crash).
const (
	diskFullExits = "disk-full-exits"
	fsyncEIOExits = "fsync-eio-exits"
)

func hasAny(faults []string, kinds []string) bool {
	for _, f := range faults {
		for _, k := range kinds {
			if f == k {
				return true
			}
		}
	}
	return false
}

// AllFaults lists every fault kind, in the order reports show them.
var AllFaults = []string{
	FaultKill, FaultKillLeader, FaultKillAll, FaultPause, FaultPauseLeader,
	FaultPartitionOne, FaultPartitionLeader, FaultPartitionHalves,
	FaultPartitionBridge, FaultPartitionRing,
}

// nemesis injects one fault at a time: a quiet period, the fault, a hold,
// then a full heal.
type nemesis struct {
	c      *cluster
	rnd    *rand.Rand
	faults []string
	log    func(format string, args ...any)
	// clocks records every offset written (nil without clock faults);
	// start is the workload's time origin.
	clocks *clockTimeline
	start  time.Time
	// disk is the member whose disk is full or whose fsyncs fail (-1:
	// none); diskExits is the count to add to when it exits meanwhile.
	disk      int
	diskExits string

	mu      sync.Mutex
	counts  map[string]int
	events  []string
	crashes []string
}

func (n *nemesis) note(kind, what string, start time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.counts[kind]++
	n.events = append(n.events, fmt.Sprintf("%8.3fs %s: %s", time.Since(start).Seconds(), kind, what))
	n.log("nemesis: %s: %s", kind, what)
}

// run injects faults until ctx ends, then heals.
func (n *nemesis) run(ctx context.Context, start time.Time, quiet, hold [2]time.Duration) {
	sleep := func(r [2]time.Duration) bool {
		d := r[0] + time.Duration(n.rnd.Int63n(int64(r[1]-r[0])+1))
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	for {
		if !sleep(quiet) {
			return
		}
		kind := n.faults[n.rnd.Intn(len(n.faults))]
		what, err := n.inject(ctx, kind)
		if err != nil {
			n.log("nemesis: %s failed: %v", kind, err)
			n.heal(context.Background())
			continue
		}
		n.note(kind, what, start)
		stopWatch := n.watchLeader()
		sleep(hold)
		stopWatch()
		n.heal(context.Background())
	}
}

func (n *nemesis) pickTarget(ctx context.Context, leader bool) (int, string) {
	if leader {
		if l := n.c.leader(ctx); l >= 0 {
			return l, fmt.Sprintf("m%d (leader)", l)
		}
	}
	i := n.rnd.Intn(len(n.c.members))
	if leader {
		return i, fmt.Sprintf("m%d (no leader known)", i)
	}
	return i, fmt.Sprintf("m%d", i)
}

func (n *nemesis) inject(ctx context.Context, kind string) (string, error) {
	c := n.c
	all := len(c.members)
	switch kind {
	case FaultKill, FaultKillLeader:
		i, who := n.pickTarget(ctx, kind == FaultKillLeader)
		c.members[i].kill()
		return "kill -9 " + who, nil
	case FaultKillAll:
		for _, m := range c.members {
			m.kill()
		}
		return "kill -9 every member", nil
	case FaultClockJump, FaultClockJumpLeader:
		i, who := n.pickTarget(ctx, kind == FaultClockJumpLeader)
		d := clockJump(n.rnd)
		n.clocks.record(i, int64(time.Since(n.start)), d)
		if err := c.members[i].setClock(d); err != nil {
			return "", err
		}
		return fmt.Sprintf("clock of %s %s", who, fmtOffset(d)), nil
	case FaultDiskFull, FaultDiskFullLeader, FaultDiskFullRestart:
		i, who := n.pickTarget(ctx, kind == FaultDiskFullLeader)
		n.disk, n.diskExits = i, diskFullExits
		if err := c.members[i].fillDisk(); err != nil {
			return "", err
		}
		if kind == FaultDiskFullRestart {
			c.members[i].kill()
			return "fill the disk of " + who + ", kill -9 and restart it", c.members[i].start()
		}
		return "fill the disk of " + who, nil
	case FaultFsyncEIO, FaultFsyncEIOLeader:
		i, who := n.pickTarget(ctx, kind == FaultFsyncEIOLeader)
		m := c.members[i]
		if m.syncSup == nil {
			return "", fmt.Errorf("torture: %s has no fsync supervisor", m.name)
		}
		n.disk, n.diskExits = i, fsyncEIOExits
		m.syncSup.SetFail(true)
		return "fsync fails with EIO on " + who, nil
	case FaultPause, FaultPauseLeader:
		i, who := n.pickTarget(ctx, kind == FaultPauseLeader)
		return "SIGSTOP " + who, c.members[i].pause()
	case FaultPartitionOne, FaultPartitionLeader:
		i, who := n.pickTarget(ctx, kind == FaultPartitionLeader)
		for j := 0; j < all; j++ {
			if j != i {
				if err := c.nw.cut(ctx, i, j); err != nil {
					return "", err
				}
			}
		}
		return "isolate " + who, nil
	case FaultPartitionHalves:
		p := n.rnd.Perm(all)
		a, b := p[:all/2], p[all/2:]
		for _, i := range a {
			for _, j := range b {
				if err := c.nw.cut(ctx, i, j); err != nil {
					return "", err
				}
			}
		}
		return fmt.Sprintf("halves %s | %s", names(a), names(b)), nil
	case FaultPartitionBridge:
		// a | bridge | b: the bridge member sees both sides, the sides
		// don't see each other. With 3 members each side is one member.
		p := n.rnd.Perm(all)
		br := p[0]
		rest := p[1:]
		a, b := rest[:len(rest)/2], rest[len(rest)/2:]
		for _, i := range a {
			for _, j := range b {
				if err := c.nw.cut(ctx, i, j); err != nil {
					return "", err
				}
			}
		}
		return fmt.Sprintf("bridge %s | m%d | %s", names(a), br, names(b)), nil
	case FaultPartitionRing:
		// Members on a random ring see only their neighbours within
		// distance all/2, so each sees a majority but no two see the same.
		// With 3 members no such ring exists: one link is cut instead.
		p := n.rnd.Perm(all)
		if all <= 3 {
			return fmt.Sprintf("ring (cut m%d-m%d)", p[0], p[1]), c.nw.cut(ctx, p[0], p[1])
		}
		k := (all/2 + 1) / 2
		for x := 0; x < all; x++ {
			for y := x + 1; y < all; y++ {
				d := y - x
				if all-d < d {
					d = all - d
				}
				if d > k {
					if err := c.nw.cut(ctx, p[x], p[y]); err != nil {
						return "", err
					}
				}
			}
		}
		return fmt.Sprintf("ring %s", names(p)), nil
	}
	return "", fmt.Errorf("unknown fault %q", kind)
}

// heal undoes every fault: routes removed, paused members continued,
// killed members restarted.
func (n *nemesis) heal(ctx context.Context) {
	if err := n.c.nw.healAll(ctx); err != nil {
		n.log("nemesis: heal network: %v", err)
	}
	if n.clocks != nil {
		for _, m := range n.c.members {
			ch := n.clocks.Members[m.idx]
			if len(ch) == 0 || ch[len(ch)-1].Offset == 0 {
				continue
			}
			n.clocks.record(m.idx, int64(time.Since(n.start)), 0)
			if err := m.setClock(0); err != nil {
				n.log("nemesis: reset clock of %s: %v", m.name, err)
			}
		}
	}
	if n.disk >= 0 {
		// Free the disk, then kill -9 and restart the member: whatever it
		// acknowledged must have been on disk. Exiting on a disk error is
		// allowed (etcd does); only running on is checked.
		m := n.c.members[n.disk]
		n.disk = -1
		if m.syncSup != nil {
			m.syncSup.SetFail(false)
		}
		if m.tmpfs {
			if err := m.freeDisk(); err != nil {
				n.log("nemesis: free disk of %s: %v", m.name, err)
			}
		}
		if m.exited() {
			n.log("nemesis: %s exited during a disk fault (allowed); see %s", m.name, m.logPath)
			n.mu.Lock()
			n.counts[n.diskExits]++
			n.mu.Unlock()
		}
		m.kill()
	}
	for _, m := range n.c.members {
		m.mu.Lock()
		st := m.state
		m.mu.Unlock()
		switch st {
		case paused:
			if err := m.resume(); err != nil {
				n.log("nemesis: SIGCONT %s: %v", m.name, err)
			}
		case killed:
			if err := m.start(); err != nil {
				n.log("nemesis: restart %s: %v", m.name, err)
			}
		}
		if m.exited() {
			n.mu.Lock()
			n.crashes = append(n.crashes, fmt.Sprintf("crash: %s exited on its own; see %s", m.name, m.logPath))
			n.mu.Unlock()
			n.log("nemesis: %s exited on its own; see %s", m.name, m.logPath)
			m.kill()
			if err := m.start(); err != nil {
				n.log("nemesis: restart %s: %v", m.name, err)
			}
		}
	}
}

func names(idx []int) string {
	s := append([]int(nil), idx...)
	sort.Ints(s)
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += fmt.Sprintf("m%d", x)
	}
	return out
}
