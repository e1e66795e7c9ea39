package etcdserver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/corekit/corekit/etcd/internal/command"
	"github.com/corekit/corekit/etcd/internal/expiry"
	"github.com/corekit/corekit/etcd/internal/fsm"
	"github.com/corekit/corekit/etcd/internal/membership"
	"github.com/corekit/corekit/etcd/internal/raftnode"
	"github.com/corekit/corekit/internal/logging"
	"github.com/corekit/corekit/internal/v2api"
)

// Config is what New needs to start a member. etcdmain builds it from flags.
type Config struct {
	Name    string
	DataDir string
	// ClientURLs are the advertised client URLs (--advertise-client-urls).
	ClientURLs []string
	// PeerURLs are this member's advertised peer URLs
	// (--initial-advertise-peer-urls).
	PeerURLs       []string
	InitialCluster membership.InitialCluster
	ClusterState   string // "new" or "existing"
	Token          string // --initial-cluster-token
	SnapshotCount  uint64
	Heartbeat      time.Duration
	Election       time.Duration
	MaxSnapshots   int
	LogStore       string // raftnode.LogStoreWAL / LogStoreBolt; "" = default
	// PeerTLS, when set, is the client side of peer TLS (--peer-cert-file
	// etc.): forwarded proposals and /members requests use https with it.
	PeerTLS *tls.Config
	// Mux carries raft traffic on the peer listeners.
	Mux    *raftnode.PeerMux
	Now    func() time.Time
	Logger *slog.Logger
}

// ReqTimeout is etcd's request timeout: 5 s plus twice the election timeout.
func (c Config) ReqTimeout() time.Duration { return 5*time.Second + 2*c.Election }

// EtcdServer is a running member. It implements Server.
type EtcdServer struct {
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	fsm       *fsm.FSM
	node      *raftnode.Node
	id        uint64
	clusterID uint64
	members   []membership.Member // from bootstrap, sorted by ID
	startTime time.Time
	ready     chan struct{}

	leaderMu    sync.Mutex
	leaderID    uint64
	leaderSince time.Time

	stopped    atomic.Bool
	peerClient *http.Client
	memberMu   sync.Mutex // serialises member changes, reconcile and (on the leader) attribute publishes
	// reconciledTerm is the raft term in which reconcileTick last passed a
	// barrier (guarded by memberMu).
	reconciledTerm uint64
	joined         bool     // joined an existing cluster (no bootstrap)
	lock           *os.File // flock on <data-dir>/member/lock
}

var _ Server = (*EtcdServer)(nil)

// New opens (or initialises) the member's data directory, starts raft and
// returns once raft runs; call Run to drive the background loops and Close
// to stop.
func New(ctx context.Context, cfg Config) (*EtcdServer, error) {
	if cfg.Logger == nil {
		cfg.Logger = logging.Discard()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Election <= 0 {
		cfg.Election = time.Second
	}
	s := &EtcdServer{cfg: cfg, log: cfg.Logger, now: cfg.Now, startTime: cfg.Now(),
		ready: make(chan struct{}), peerClient: newPeerClient(cfg.PeerTLS)}
	memberDir := filepath.Join(cfg.DataDir, "member")
	if err := os.MkdirAll(memberDir, 0o700); err != nil {
		return nil, fmt.Errorf("etcdserver: cannot create data dir: %w", err)
	}
	lock, err := lockDataDir(memberDir)
	if err != nil {
		return nil, err
	}
	s.lock = lock
	ok := false
	defer func() {
		if !ok {
			lock.Close()
		}
	}()
	cf, err := readClusterFile(memberDir)
	if err != nil {
		return nil, err
	}
	if cf == nil {
		if cfg.ClusterState == "existing" {
			cf, err = s.joinIdentity(ctx)
		} else {
			cf, err = s.bootstrapIdentity()
		}
		if err != nil {
			return nil, err
		}
		if err := writeClusterFile(memberDir, cf); err != nil {
			return nil, err
		}
	} else {
		s.log.Info("found existing member data, ignoring --initial-cluster flags", "data-dir", cfg.DataDir)
	}
	if s.id, err = membership.ParseID(cf.MemberID); err != nil {
		return nil, fmt.Errorf("etcdserver: %s: bad member id: %w", clusterFileName, err)
	}
	if s.clusterID, err = membership.ParseID(cf.ClusterID); err != nil {
		return nil, fmt.Errorf("etcdserver: %s: bad cluster id: %w", clusterFileName, err)
	}
	if s.members, err = cf.members(); err != nil {
		return nil, err
	}
	s.joined = cf.Joined
	s.log = s.log.With("member", membership.IDString(s.id))

	var peers []raftnode.Peer
	for _, m := range s.members {
		addr, err := membership.HostPort(m.PeerURLs[0])
		if err != nil {
			return nil, fmt.Errorf("etcdserver: member %s: %w", m.Name, err)
		}
		peers = append(peers, raftnode.Peer{ID: membership.IDString(m.ID), Address: addr})
	}
	if s.joined {
		peers = nil // the leader adds us; never bootstrap a configuration
	}
	s.fsm = fsm.New(cfg.Now, s.log)
	s.node, err = raftnode.Open(ctx, raftnode.Config{
		Dir:               memberDir,
		ID:                membership.IDString(s.id),
		Mux:               cfg.Mux,
		FSM:               s.fsm,
		Logger:            s.log,
		LogStore:          cfg.LogStore,
		Heartbeat:         cfg.Heartbeat,
		Election:          cfg.Election,
		SnapshotThreshold: cfg.SnapshotCount,
		RetainSnapshots:   cfg.MaxSnapshots,
		Bootstrap:         peers,
	})
	if err != nil {
		return nil, err
	}
	ok = true
	s.log.Info("member started", "name", cfg.Name, "cluster", membership.IDString(s.clusterID),
		"data-dir", cfg.DataDir, "peer-urls", cfg.PeerURLs, "client-urls", cfg.ClientURLs)
	return s, nil
}

// bootstrapIdentity derives member and cluster IDs from the initial cluster.
func (s *EtcdServer) bootstrapIdentity() (*clusterFile, error) {
	ms := s.cfg.InitialCluster.Members(s.cfg.Token)
	var self *membership.Member
	var ids []uint64
	cf := &clusterFile{}
	for i, m := range ms {
		ids = append(ids, m.ID)
		if m.Name == s.cfg.Name {
			self = &ms[i]
		}
		cf.Members = append(cf.Members, clusterMember{ID: membership.IDString(m.ID), Name: m.Name, PeerURLs: m.PeerURLs})
	}
	if self == nil {
		return nil, fmt.Errorf("couldn't find local name %q in the initial cluster configuration", s.cfg.Name)
	}
	cf.MemberID = membership.IDString(self.ID)
	cf.ClusterID = membership.IDString(membership.ClusterID(ids))
	return cf, nil
}

// joinIdentity asks the other members for the member list and finds this
// member in it (it must have been added with AddMember first).
func (s *EtcdServer) joinIdentity(ctx context.Context) (*clusterFile, error) {
	var peers []string
	for _, n := range s.cfg.InitialCluster.Names {
		if n == s.cfg.Name {
			continue
		}
		peers = append(peers, s.cfg.InitialCluster.URLs[n]...)
	}
	ms, cid, self, err := fetchMembers(ctx, s.peerClient, peers, s.cfg.PeerURLs)
	if err != nil {
		return nil, err
	}
	s.joined = true
	cf := &clusterFile{MemberID: membership.IDString(self), ClusterID: membership.IDString(cid), Joined: true}
	for _, m := range ms {
		cf.Members = append(cf.Members, clusterMember{ID: membership.IDString(m.ID), Name: m.Name, PeerURLs: m.PeerURLs})
	}
	return cf, nil
}

// Run drives the member until ctx ends: it waits for the state on disk to
// be applied, then runs the expiry loop and tracks the leader. It returns
// nil when ctx ends, and ErrClusterIDMismatch (after logging both IDs) when
// every other member reports another cluster ID than this data dir's.
func (s *EtcdServer) Run(ctx context.Context) error {
	obsCh := make(chan raft.Observation, 16)
	obs := raft.NewObserver(obsCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.node.Raft.RegisterObserver(obs)
	defer s.node.Raft.DeregisterObserver(obs)
	s.noteLeader()

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	wg.Add(1)
	go func() {
		defer wg.Done()
		s.waitReady(ctx)
		s.publish(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = expiry.Run(ctx, expiry.Options{
			Now:        s.now,
			IsLeader:   s.node.IsLeader,
			NextExpiry: func() (time.Time, bool) { return s.fsm.Store().NextExpiry() },
			Propose: func(ctx context.Context, cutoff time.Time) error {
				ctx, cancel := context.WithTimeout(ctx, s.cfg.ReqTimeout())
				defer cancel()
				_, err := s.propose(ctx, command.Expire{Cutoff: command.UnixNano(cutoff)})
				return err
			},
			Logger: s.log,
		})
	}()
	mismatch := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.checkPeerClusters(ctx); err != nil {
			mismatch <- err
		}
	}()
	recon := time.NewTicker(500 * time.Millisecond)
	defer recon.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-mismatch:
			return err
		case <-obsCh:
			s.noteLeader()
		case <-recon.C:
			select {
			case <-s.ready:
				s.reconcileTick(ctx)
			default:
			}
		}
	}
}

func (s *EtcdServer) waitReady(ctx context.Context) {
	idx := s.node.ReadyIndex()
	start := time.Now()
	if idx > 0 {
		s.log.Info("replaying log", "up-to-index", idx)
	}
	// The ready index can drop while we wait (raftnode.Node.ReadyIndex):
	// wait in short slices and re-read it.
	for {
		wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		err := s.fsm.WaitApplied(wctx, idx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		if now := s.node.ReadyIndex(); now < idx {
			s.log.Info("uncommitted log tail truncated by the leader: replaying less", "up-to-index", now, "was", idx)
			idx = now
		}
	}
	close(s.ready)
	s.log.Info("ready to serve client requests", "applied-index", s.fsm.AppliedIndex(),
		"store-index", s.fsm.Store().Index(), "took", time.Since(start).Round(time.Millisecond))
}

// publish replicates this member's name and client URLs so that every
// member lists them (etcd's publish), retrying until it succeeds or ctx ends.
func (s *EtcdServer) publish(ctx context.Context) {
	attrs := command.MemberAttrs{ID: s.id, Name: s.cfg.Name, ClientURLs: slices.Sorted(slices.Values(s.cfg.ClientURLs))}
	if pm := s.fsm.Members(); pm != nil {
		for _, m := range pm.Members {
			if m.ID == s.id && m.Name == attrs.Name && slices.Equal(m.ClientURLs, attrs.ClientURLs) {
				return // already published with these attributes
			}
		}
	}
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, s.cfg.ReqTimeout())
		_, err := s.propose(pctx, attrs)
		cancel()
		if err == nil {
			s.log.Info("published member attributes", "name", attrs.Name, "client-urls", attrs.ClientURLs)
			return
		}
		if ctx.Err() == nil {
			s.log.Warn("publishing member attributes failed, retrying", "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Ready is closed once the member has applied what was on disk at start.
func (s *EtcdServer) Ready() <-chan struct{} { return s.ready }

func (s *EtcdServer) noteLeader() {
	idStr, _, ok := s.node.Leader()
	var id uint64
	if ok {
		id, _ = membership.ParseID(idStr)
	}
	s.leaderMu.Lock()
	defer s.leaderMu.Unlock()
	if id != s.leaderID {
		s.leaderID = id
		s.leaderSince = s.now()
		if ok {
			s.log.Info("leader changed", "leader", idStr, "self", id == s.id)
		}
	}
}

// Close stops raft and closes the stores. Safe to call once.
func (s *EtcdServer) Close() error {
	if !s.stopped.CompareAndSwap(false, true) {
		return nil
	}
	err := s.node.Close()
	s.lock.Close()
	return err
}

// Do implements Server: etcd 2.3's dispatch (spec §1.6).
func (s *EtcdServer) Do(ctx context.Context, r Request) (Response, error) {
	if s.stopped.Load() {
		return Response{}, ErrStopped
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReqTimeout())
	defer cancel()
	if err := s.wait(ctx, s.ready); err != nil {
		return Response{}, err
	}
	exp := command.UnixNano(r.Expiration)
	switch r.Method {
	case "GET", "HEAD":
		switch {
		case r.Quorum:
			return s.propose(ctx, command.Get{Key: r.Path, Recursive: r.Recursive, Sorted: r.Sorted})
		case r.Wait:
			w, err := s.fsm.Store().Watch(r.Path, r.Recursive, r.Stream, r.Since)
			if err != nil {
				return Response{}, err
			}
			return Response{Watcher: w, EtcdIndex: w.StartIndex,
				RaftIndex: s.fsm.AppliedIndex(), RaftTerm: s.node.Raft.CurrentTerm()}, nil
		default:
			st := s.fsm.Store()
			ev, err := st.Get(r.Path, r.Recursive, r.Sorted)
			if err != nil {
				return Response{}, err
			}
			return Response{Event: ev, EtcdIndex: st.Index(),
				RaftIndex: s.fsm.AppliedIndex(), RaftTerm: s.node.Raft.CurrentTerm()}, nil
		}
	case "POST":
		return s.propose(ctx, command.Create{Key: r.Path, Dir: r.Dir, Value: r.Val, Unique: true, Expire: exp})
	case "PUT":
		switch {
		case r.PrevExist != nil && *r.PrevExist:
			if r.PrevIndex == 0 && r.PrevValue == "" {
				return s.propose(ctx, command.Update{Key: r.Path, Value: r.Val, Expire: exp, Refresh: r.Refresh})
			}
			return s.propose(ctx, command.CompareAndSwap{Key: r.Path, PrevValue: r.PrevValue,
				PrevIndex: r.PrevIndex, Value: r.Val, Expire: exp, Refresh: r.Refresh})
		case r.PrevExist != nil && !*r.PrevExist:
			return s.propose(ctx, command.Create{Key: r.Path, Dir: r.Dir, Value: r.Val, Expire: exp})
		case r.PrevIndex > 0 || r.PrevValue != "":
			return s.propose(ctx, command.CompareAndSwap{Key: r.Path, PrevValue: r.PrevValue,
				PrevIndex: r.PrevIndex, Value: r.Val, Expire: exp, Refresh: r.Refresh})
		default:
			return s.propose(ctx, command.Set{Key: r.Path, Dir: r.Dir, Value: r.Val, Expire: exp, Refresh: r.Refresh})
		}
	case "DELETE":
		if r.PrevIndex > 0 || r.PrevValue != "" {
			return s.propose(ctx, command.CompareAndDelete{Key: r.Path, PrevValue: r.PrevValue, PrevIndex: r.PrevIndex})
		}
		return s.propose(ctx, command.Delete{Key: r.Path, Dir: r.Dir || r.Recursive, Recursive: r.Recursive})
	}
	return Response{}, fmt.Errorf("etcdserver: unknown method %q", r.Method)
}

// wait blocks until ch is closed, mapping ctx's end to etcd's errors.
func (s *EtcdServer) wait(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	default:
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return s.ctxErr(ctx)
	}
}

func (s *EtcdServer) ctxErr(ctx context.Context) error {
	if s.stopped.Load() {
		return ErrStopped
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrTimeout
	}
	return fmt.Errorf("etcdserver: request cancelled: %w", ctx.Err())
}

// Errors of proposals whose outcome is unknown, with etcd's texts.
var (
	ErrTimeoutLeaderFail     = errString("etcdserver: request timed out, possibly due to previous leader failure")
	ErrTimeoutConnectionLost = errString("etcdserver: request timed out, possibly due to connection lost")
)

// propose replicates c and returns its applied result. On a follower the
// command is forwarded to the leader (peer.go). Without a leader it waits
// for one (bounded by ctx, as etcd queues proposals during elections).
func (s *EtcdServer) propose(ctx context.Context, c command.Command) (Response, error) {
	b, err := command.Encode(c)
	if err != nil {
		return Response{}, err
	}
	for {
		if s.stopped.Load() {
			return Response{}, ErrStopped
		}
		_, leaderAddr, hasLeader := s.node.Leader()
		if hasLeader && !s.node.IsLeader() {
			resp, err := s.forward(ctx, leaderAddr, b)
			if !errors.Is(err, errRetry) {
				return resp, err
			}
		} else if hasLeader {
			res, idx, err := s.applyLeader(ctx, b)
			switch {
			case err == nil:
				r, _ := res.(*fsm.Result)
				if r == nil {
					return Response{}, fmt.Errorf("etcdserver: no result for %T", c)
				}
				if r.Err != nil {
					return Response{}, r.Err
				}
				return Response{Event: r.Event, EtcdIndex: r.StoreIndex, RaftIndex: idx,
					RaftTerm: s.node.Raft.CurrentTerm()}, nil
			case errors.Is(err, raftnode.ErrNotLeader):
				// Rejected before the entry was appended: safe to retry.
			case errors.Is(err, raftnode.ErrLeadershipLost):
				// The entry may still commit: never propose it twice.
				return Response{}, ErrTimeoutLeaderFail
			case errors.Is(err, raftnode.ErrStopped):
				return Response{}, ErrStopped
			case ctx.Err() != nil:
				return Response{}, s.ctxErr(ctx)
			default:
				return Response{}, err
			}
		}
		select {
		case <-ctx.Done():
			if _, _, ok := s.node.Leader(); !ok {
				return Response{}, ErrNoLeader
			}
			return Response{}, s.ctxErr(ctx)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Index implements Server.
func (s *EtcdServer) Index() uint64 { return s.fsm.Store().Index() }

// ID implements Server.
func (s *EtcdServer) ID() uint64 { return s.id }

// ClusterID implements Server.
func (s *EtcdServer) ClusterID() uint64 { return s.clusterID }

// Leader implements Server.
func (s *EtcdServer) Leader() (uint64, bool) {
	idStr, _, ok := s.node.Leader()
	if !ok {
		return 0, false
	}
	id, err := membership.ParseID(idStr)
	return id, err == nil
}

// Members implements Server: the replicated member list; this member's
// name and client URLs come from its own configuration.
func (s *EtcdServer) Members() []v2api.Member {
	ms, _ := s.memberView()
	out := make([]v2api.Member, 0, len(ms))
	for _, m := range ms {
		if m.ID == s.id {
			m.Name, m.ClientURLs = s.cfg.Name, slices.Sorted(slices.Values(s.cfg.ClientURLs))
		}
		out = append(out, m.API())
	}
	return out
}

type leaderInfo struct {
	Leader    string `json:"leader"`
	Uptime    string `json:"uptime"`
	StartTime string `json:"startTime"`
}

type selfStats struct {
	Name                 string     `json:"name"`
	ID                   string     `json:"id"`
	State                string     `json:"state"`
	StartTime            string     `json:"startTime"`
	LeaderInfo           leaderInfo `json:"leaderInfo"`
	RecvAppendRequestCnt uint64     `json:"recvAppendRequestCnt"`
	RecvPkgRate          float64    `json:"recvPkgRate,omitempty"`
	RecvBandwidthRate    float64    `json:"recvBandwidthRate,omitempty"`
	SendAppendRequestCnt uint64     `json:"sendAppendRequestCnt"`
	SendPkgRate          float64    `json:"sendPkgRate,omitempty"`
	SendBandwidthRate    float64    `json:"sendBandwidthRate,omitempty"`
}

// SelfStats implements Server (/v2/stats/self).
func (s *EtcdServer) SelfStats() []byte {
	s.leaderMu.Lock()
	lid, since := s.leaderID, s.leaderSince
	s.leaderMu.Unlock()
	li := leaderInfo{}
	if lid != 0 {
		li = leaderInfo{Leader: membership.IDString(lid), Uptime: s.now().Sub(since).String(),
			StartTime: since.Format(time.RFC3339Nano)}
	}
	sent, recv, sendPkg, sendBW, recvPkg, recvBW := s.node.Stats().Self()
	b, _ := json.Marshal(selfStats{
		Name: s.cfg.Name, ID: membership.IDString(s.id), State: s.node.State(),
		StartTime: s.startTime.Format(time.RFC3339Nano), LeaderInfo: li,
		RecvAppendRequestCnt: recv, RecvPkgRate: recvPkg, RecvBandwidthRate: recvBW,
		SendAppendRequestCnt: sent, SendPkgRate: sendPkg, SendBandwidthRate: sendBW,
	})
	return b
}

type followerStats struct {
	Latency struct {
		Current           float64 `json:"current"`
		Average           float64 `json:"average"`
		StandardDeviation float64 `json:"standardDeviation"`
		Minimum           float64 `json:"minimum"`
		Maximum           float64 `json:"maximum"`
	} `json:"latency"`
	Counts struct {
		Fail    uint64 `json:"fail"`
		Success uint64 `json:"success"`
	} `json:"counts"`
}

// LeaderStats implements Server (/v2/stats/leader).
func (s *EtcdServer) LeaderStats() ([]byte, bool) {
	if !s.node.IsLeader() {
		return nil, false
	}
	followers := map[string]followerStats{}
	measured := s.node.Stats().Followers()
	ms, _ := s.memberView()
	for _, m := range ms {
		if m.ID != s.id {
			var f followerStats
			f.Latency.Minimum = 1 << 63
			if st, ok := measured[membership.IDString(m.ID)]; ok {
				f.Counts.Success, f.Counts.Fail = st.Success, st.Fail
				f.Latency.Current, f.Latency.Average, f.Latency.StandardDeviation = st.Current, st.Average, st.StdDev
				f.Latency.Minimum, f.Latency.Maximum = st.Min, st.Max
			}
			followers[membership.IDString(m.ID)] = f
		}
	}
	b, _ := json.Marshal(struct {
		Leader    string                   `json:"leader"`
		Followers map[string]followerStats `json:"followers"`
	}{membership.IDString(s.id), followers})
	return b, true
}

// StoreStats implements Server (/v2/stats/store).
func (s *EtcdServer) StoreStats() []byte { return s.fsm.Store().JSONStats() }

// Healthy implements Server: a leader is known and, on the leader, a quorum
// confirms it within a second.
func (s *EtcdServer) Healthy(ctx context.Context) bool {
	if s.stopped.Load() {
		return false
	}
	if _, ok := s.Leader(); !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if s.node.IsLeader() {
		return s.node.VerifyLeader(ctx) == nil
	}
	return time.Since(s.node.Raft.LastContact()) < 3*s.cfg.Election
}

// Snapshot forces a raft snapshot (tests, tools).
func (s *EtcdServer) Snapshot() error { return s.node.Snapshot() }
