// Package raftnode wires hashicorp/raft for an etcd member: the durable log
// and stable store, the file snapshot store under <data-dir>/member/snap, the
// TCP transport on the peer port (shared with peer HTTP through PeerMux), the
// timing derived from etcd's --heartbeat-interval and --election-timeout, and
// context-aware proposals.
//
// It is, with package fsm, the only package importing hashicorp/raft. Read
// Open, then Node.Apply.
package raftnode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"

	"github.com/corekit/corekit/internal/logging"
)

// Log store implementations Open can use.
const (
	LogStoreWAL  = "wal"  // hashicorp/raft-wal: segment files, one fsync per batch
	LogStoreBolt = "bolt" // hashicorp/raft-boltdb/v2 (bbolt)
)

// DefaultLogStore is the log store chosen by measurement (etcd/README.md).
const DefaultLogStore = LogStoreWAL

// Errors a proposal can end with, besides the context's error.
var (
	// ErrNotLeader: the entry was rejected before it entered the log; it is
	// safe to propose it again (elsewhere).
	ErrNotLeader = errors.New("raftnode: not the leader")
	// ErrLeadershipLost: the entry may be in the log and may still commit
	// under the next leader; proposing it again could apply it twice.
	ErrLeadershipLost = errors.New("raftnode: leadership lost while committing")
	ErrStopped        = errors.New("raftnode: stopped")
)

// Peer is one voter of the initial configuration.
type Peer struct {
	ID      string // member ID, hex
	Address string // host:port of its first peer URL
}

// Config configures Open. Zero durations take etcd's defaults.
type Config struct {
	// Dir is <data-dir>/member: the log lives in Dir/wal (or Dir/raft.db),
	// snapshots in Dir/snap.
	Dir       string
	ID        string // this member's ID (hex)
	Mux       *PeerMux
	FSM       raft.FSM
	Logger    *slog.Logger
	LogStore  string        // LogStoreWAL or LogStoreBolt; "" = DefaultLogStore
	Heartbeat time.Duration // --heartbeat-interval, default 100ms
	Election  time.Duration // --election-timeout, default 1s
	// SnapshotThreshold is --snapshot-count: applied entries between snapshots.
	SnapshotThreshold uint64
	// RetainSnapshots is how many snapshot files to keep (default 2).
	RetainSnapshots int
	// CommitTimeout is how long the leader lets pass without new entries
	// before it sends an AppendEntries just to carry its commit index
	// (raft.Config.CommitTimeout, randomised up to 2×). Followers learn that
	// an entry committed only from such a message or the next append, so a
	// write forwarded by a follower waits up to this long before the
	// follower applies it. Zero means DefaultCommitTimeout.
	CommitTimeout time.Duration
	// Bootstrap is the initial configuration, used only when Dir holds no
	// raft state yet. Empty for a member joining an existing cluster: it
	// waits for the leader to contact it.
	Bootstrap []Peer
}

// DefaultCommitTimeout is hashicorp/raft's default. Followers learn of
// commits quickly anyway: a heartbeat carries the commit index when the
// follower does not know it yet (commitNotifier), and NudgeCommit sends one
// right after a forwarded proposal commits.
const DefaultCommitTimeout = 50 * time.Millisecond

// Node is a running raft member.
type Node struct {
	Raft      *raft.Raft
	cfg       Config
	transport *raft.NetworkTransport
	stats     *AppendStats
	raftPtr   atomic.Pointer[raft.Raft] // Raft, for the transport's goroutines
	nudge     chan struct{}
	cn        *commitNotifier
	closers   []io.Closer
	log       *slog.Logger
	// readyLog holds the ready index: the last command entry in the log at
	// start (the FSM has caught up with the disk once it applied it),
	// lowered if raft truncates that entry as uncommitted (see readyLog).
	readyLog  *readyLog
	snapIndex uint64
	// done is closed by Close: a future enqueued into raft's buffered apply
	// channel after shutdown would never complete, so waits also watch done.
	done      chan struct{}
	closeOnce sync.Once
}

// Timing maps etcd's heartbeat interval and election timeout to raft's:
// a follower starts an election after HeartbeatTimeout (randomised up to
// 2×) without contact, so it gets a third of the election timeout, which
// keeps the randomised wait within etcd's election timeout and lets a single
// member elect itself in 0.33–0.67 s by default. The leader heartbeats every
// HeartbeatTimeout/10 (33 ms by default, etcd uses 100 ms).
func Timing(heartbeat, election time.Duration) (hb, el, lease time.Duration) {
	if heartbeat <= 0 {
		heartbeat = 100 * time.Millisecond
	}
	if election <= 0 {
		election = time.Second
	}
	hb = max(election/3, 5*time.Millisecond)
	el = hb
	lease = max(min(hb, 5*heartbeat), 5*time.Millisecond)
	return hb, el, lease
}

// Open opens (or creates) the raft state under cfg.Dir and starts raft.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = logging.Discard()
	}
	if cfg.LogStore == "" {
		cfg.LogStore = DefaultLogStore
	}
	if cfg.RetainSnapshots <= 0 {
		cfg.RetainSnapshots = 2
	}
	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = 10000
	}
	n := &Node{cfg: cfg, log: cfg.Logger, done: make(chan struct{}), nudge: make(chan struct{}, 1)}
	ok := false
	defer func() {
		if !ok {
			close(n.done)
			n.closeAll()
		}
	}()
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("raftnode: %w", err)
	}
	hlog := logging.HCLog(cfg.Logger.With("pkg", "raft"), "", hclog.Info)

	logs, stable, err := openLogStore(cfg.LogStore, cfg.Dir, hlog)
	if err != nil {
		return nil, err
	}
	n.closers = append(n.closers, logs.(io.Closer))
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.Dir, "snap"), cfg.RetainSnapshots, hlog)
	if err != nil {
		return nil, fmt.Errorf("raftnode: snapshot store: %w", err)
	}
	n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  cfg.Mux.Raft(),
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  hlog,
	})

	rc := raftConfig(cfg, hlog)
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("raftnode: %w", err)
	}

	existing, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return nil, fmt.Errorf("raftnode: %w", err)
	}
	if !existing && len(cfg.Bootstrap) > 0 {
		var conf raft.Configuration
		for _, p := range cfg.Bootstrap {
			conf.Servers = append(conf.Servers, raft.Server{
				Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address),
			})
		}
		if err := raft.BootstrapCluster(rc, logs, stable, snaps, n.transport, conf); err != nil {
			return nil, fmt.Errorf("raftnode: bootstrap: %w", err)
		}
	}
	ready, err := lastCommandIndex(logs)
	if err != nil {
		return nil, err
	}
	rl := &readyLog{LogStore: logs}
	rl.ready.Store(ready)
	n.readyLog = rl
	logs = rl
	n.stats = &AppendStats{followers: map[raft.ServerID]*FollowerStats{}}
	cn := newCommitNotifier()
	n.cn = cn
	cn.commitIndex = func() uint64 {
		if r := n.raftPtr.Load(); r != nil {
			return r.CommitIndex()
		}
		return 0
	}
	cn.logTerm = func(index uint64) (uint64, bool) {
		var l raft.Log
		if err := logs.GetLog(index, &l); err != nil {
			return 0, false
		}
		return l.Term, true
	}
	r, err := raft.NewRaft(rc, cfg.FSM, logs, stable, snaps, newStatsTransport(n.transport, n.stats, cn, n.done))
	if err != nil {
		return nil, fmt.Errorf("raftnode: %w", err)
	}
	n.Raft = r
	n.raftPtr.Store(r)
	go n.nudgeLoop()
	n.snapIndex, _ = strconv.ParseUint(r.Stats()["last_snapshot_index"], 10, 64)
	ok = true
	n.log.Info("raft started", "dir", cfg.Dir, "log-store", cfg.LogStore, "existing-state", existing,
		"snapshot-index", n.snapIndex, "last-index", r.LastIndex(),
		"heartbeat-timeout", rc.HeartbeatTimeout, "election-timeout", rc.ElectionTimeout)
	return n, nil
}

// raftConfig builds hashicorp/raft's configuration from cfg.
func raftConfig(cfg Config, hlog hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hlog
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = Timing(cfg.Heartbeat, cfg.Election)
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.CommitTimeout = cfg.CommitTimeout
	if rc.CommitTimeout <= 0 {
		rc.CommitTimeout = DefaultCommitTimeout
	}
	rc.SnapshotInterval = time.Second // how often (randomised up to 2×) to check the threshold
	rc.TrailingLogs = 5000            // etcd keeps 5000 entries for slow followers
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	rc.NoSnapshotRestoreOnStart = false
	return rc
}

func openLogStore(kind, dir string, hlog hclog.Logger) (raft.LogStore, raft.StableStore, error) {
	switch kind {
	case LogStoreWAL:
		wdir := filepath.Join(dir, "wal")
		if err := os.MkdirAll(wdir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("raftnode: %w", err)
		}
		w, err := wal.Open(wdir, wal.WithLogger(hlog))
		if err != nil {
			return nil, nil, fmt.Errorf("raftnode: open wal: %w", err)
		}
		return w, w, nil
	case LogStoreBolt:
		b, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
		if err != nil {
			return nil, nil, fmt.Errorf("raftnode: open bolt: %w", err)
		}
		return b, b, nil
	default:
		return nil, nil, fmt.Errorf("raftnode: unknown log store %q", kind)
	}
}

// lastCommandIndex finds the index of the last LogCommand entry.
func lastCommandIndex(logs raft.LogStore) (uint64, error) {
	first, err := logs.FirstIndex()
	if err != nil {
		return 0, fmt.Errorf("raftnode: %w", err)
	}
	last, err := logs.LastIndex()
	if err != nil {
		return 0, fmt.Errorf("raftnode: %w", err)
	}
	for i := last; i >= first && i > 0; i-- {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			return 0, fmt.Errorf("raftnode: read log %d: %w", i, err)
		}
		if l.Type == raft.LogCommand {
			return i, nil
		}
	}
	return 0, nil
}

// ReadyIndex is the index of the last command entry that was on disk at
// start; once the FSM applied it, the member's state is as before the
// restart. 0 or an index at or below the restored snapshot means none.
//
// It can go down while the member waits (never up): a restarted member's
// uncommitted log tail is truncated by the new leader. Waiters re-read it.
func (n *Node) ReadyIndex() uint64 {
	r := n.readyLog.ready.Load()
	if r <= n.snapIndex {
		return 0
	}
	return r
}

// Apply proposes cmd and waits until it is committed (fsynced on a quorum)
// and applied to the local FSM, returning the FSM's response and the
// entry's raft index. If ctx ends first the wait is abandoned, but the entry
// may still commit and apply later (as etcd's processRaftRequest).
func (n *Node) Apply(ctx context.Context, cmd []byte) (any, uint64, error) {
	select {
	case <-n.done:
		return nil, 0, ErrStopped
	default:
	}
	f := n.Raft.Apply(cmd, 0)
	errc := make(chan error, 1)
	go func() { errc <- f.Error() }()
	select {
	case err := <-errc:
		if err != nil {
			return nil, 0, mapErr(err)
		}
		return f.Response(), f.Index(), nil
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	case <-n.done:
		return nil, 0, ErrStopped
	}
}

// VerifyLeader confirms with a quorum that this member is still the leader.
func (n *Node) VerifyLeader(ctx context.Context) error {
	f := n.Raft.VerifyLeader()
	errc := make(chan error, 1)
	go func() { errc <- f.Error() }()
	select {
	case err := <-errc:
		return mapErr(err)
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrStopped
	}
}

func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrAbortedByRestore):
		return fmt.Errorf("%w: %v", ErrLeadershipLost, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrStopped
	}
	return err
}

// IsLeader reports whether this member is the leader now.
func (n *Node) IsLeader() bool { return n.Raft.State() == raft.Leader }

// Leader returns the leader's ID and address, ok=false during an election.
func (n *Node) Leader() (id, addr string, ok bool) {
	a, i := n.Raft.LeaderWithID()
	return string(i), string(a), i != ""
}

// State returns "StateLeader", "StateFollower" or "StateCandidate" as etcd
// names raft states.
func (n *Node) State() string {
	switch n.Raft.State() {
	case raft.Leader:
		return "StateLeader"
	case raft.Candidate:
		return "StateCandidate"
	default:
		return "StateFollower"
	}
}

// NudgeCommit makes the leader heartbeat its followers now, so that those
// that lack the latest commit index learn it (commitNotifier) instead of
// waiting for the next append. Call it after an entry a follower waits for
// committed. Nudges coalesce; it never blocks.
func (n *Node) NudgeCommit() {
	select {
	case n.nudge <- struct{}{}:
	default:
	}
}

func (n *Node) nudgeLoop() {
	for {
		select {
		case <-n.done:
			return
		case <-n.nudge:
		}
		// VerifyLeader heartbeats every follower at once; waiting for it
		// bounds the nudges to one round trip at a time. A follower whose
		// acknowledgement came after the commit (the other follower made
		// the quorum) is told in the next round.
		for round := 0; round < 4 && n.IsLeader(); round++ {
			if round > 0 && !n.cn.pending() {
				break
			}
			_ = n.VerifyLeader(context.Background())
		}
	}
}

// Stats returns the append-request statistics (/v2/stats/self, /leader).
func (n *Node) Stats() *AppendStats { return n.stats }

// Snapshot forces a snapshot now.
func (n *Node) Snapshot() error { return n.Raft.Snapshot().Error() }

// Close shuts raft down and closes the stores. It does not close the mux.
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		close(n.done)
		if n.Raft != nil {
			err = n.Raft.Shutdown().Error()
		}
		n.closeAll()
	})
	return err
}

func (n *Node) closeAll() {
	if n.transport != nil {
		n.transport.Close()
	}
	for _, c := range n.closers {
		c.Close()
	}
	n.closers = nil
}
