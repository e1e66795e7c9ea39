package etcdserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/corekit/corekit/etcd/internal/command"
	"github.com/corekit/corekit/etcd/internal/fsm"
	"github.com/corekit/corekit/etcd/internal/membership"
	"github.com/corekit/corekit/etcd/internal/raftnode"
	"github.com/corekit/corekit/internal/v2api"
)

// The member list is the bootstrap list from cluster.json merged with what
// was replicated through raft: command.Members (additions, removals, peer
// URL updates, computed on the leader from this same view) and
// command.MemberAttrs (names and client URLs each member publishes). Each
// member change then updates raft's voter configuration before it is
// acknowledged; the leader's reconcile loop is only a safety net.

// memberView returns the current members sorted by ID and the removed IDs.
func (s *EtcdServer) memberView() ([]membership.Member, map[uint64]bool) {
	byID := map[uint64]membership.Member{}
	for _, m := range s.members {
		byID[m.ID] = m
	}
	removed := map[uint64]bool{}
	if pm := s.fsm.Members(); pm != nil {
		for _, id := range pm.Removed {
			removed[id] = true
		}
		for _, r := range pm.Members {
			m := byID[r.ID]
			m.ID = r.ID
			if len(r.PeerURLs) > 0 {
				m.PeerURLs = r.PeerURLs
			}
			if r.Name != "" {
				m.Name = r.Name
			}
			if r.ClientURLs != nil {
				m.ClientURLs = r.ClientURLs
			}
			byID[r.ID] = m
		}
	}
	var out []membership.Member
	for id, m := range byID {
		if !removed[id] && len(m.PeerURLs) > 0 {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b membership.Member) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out, removed
}

func toCommand(ms []membership.Member, removed map[uint64]bool) command.Members {
	var c command.Members
	for _, m := range ms {
		c.Members = append(c.Members, command.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs})
	}
	for id := range removed {
		c.Removed = append(c.Removed, id)
	}
	slices.Sort(c.Removed)
	return c
}

// Member changes are read-modify-write on the leader only: a follower
// forwards the change to the leader's peer port (peer.go serveMembers), the
// leader waits until it applied everything committed (raft Barrier), computes
// the new list from that current view, commits it, and then commits the raft
// configuration change (AddVoter/RemoveServer) before answering. So a member
// change acknowledged to a client — wherever it was served — is already in
// raft's voter configuration.

// memberOp is one member change, as forwarded to the leader.
type memberOp struct {
	Op       string   `json:"op"` // "add", "remove" or "update"
	ID       uint64   `json:"id,omitempty"`
	PeerURLs []string `json:"peerURLs,omitempty"`
}

// AddMember implements Server: the new member gets an ID from its peer URLs
// and the current time (as etcd's POST /v2/members) and becomes a raft voter
// at once, so quorum grows before it starts (etcd's behaviour).
func (s *EtcdServer) AddMember(ctx context.Context, peerURLs []string) (v2api.Member, error) {
	return s.changeMembers(ctx, memberOp{Op: "add", PeerURLs: peerURLs})
}

// RemoveMember implements Server.
func (s *EtcdServer) RemoveMember(ctx context.Context, id uint64) error {
	_, err := s.changeMembers(ctx, memberOp{Op: "remove", ID: id})
	return err
}

// UpdateMember implements Server: it changes a member's peer URLs.
func (s *EtcdServer) UpdateMember(ctx context.Context, id uint64, peerURLs []string) error {
	_, err := s.changeMembers(ctx, memberOp{Op: "update", ID: id, PeerURLs: peerURLs})
	return err
}

// changeMembers runs op on the leader (directly, or forwarded from a
// follower), waiting for a leader during an election.
func (s *EtcdServer) changeMembers(ctx context.Context, op memberOp) (v2api.Member, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReqTimeout())
	defer cancel()
	for {
		if s.stopped.Load() {
			return v2api.Member{}, ErrStopped
		}
		_, leaderAddr, hasLeader := s.node.Leader()
		var m v2api.Member
		var err error = errRetry
		if hasLeader && s.node.IsLeader() {
			m, _, err = s.changeMembersLeader(ctx, op)
		} else if hasLeader {
			m, err = s.forwardMembers(ctx, leaderAddr, op)
		}
		if !errors.Is(err, errRetry) {
			return m, err
		}
		select {
		case <-ctx.Done():
			if _, _, ok := s.node.Leader(); !ok {
				return v2api.Member{}, ErrNoLeader
			}
			return v2api.Member{}, s.ctxErr(ctx)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// changeMembersLeader applies op on this member, which must lead (else
// errRetry, with nothing proposed). It returns the raft index of the
// committed member list.
func (s *EtcdServer) changeMembersLeader(ctx context.Context, op memberOp) (v2api.Member, uint64, error) {
	s.memberMu.Lock()
	defer s.memberMu.Unlock()
	if !s.node.IsLeader() {
		return v2api.Member{}, 0, errRetry
	}
	// Everything committed before is applied here once the barrier is:
	// the view below is current, not some member's stale copy.
	if err := s.barrier(ctx); err != nil {
		return v2api.Member{}, 0, err
	}
	ms, removed := s.memberView()
	var out v2api.Member
	switch op.Op {
	case "add":
		now := s.now()
		nm := membership.NewMember("", op.PeerURLs, "", &now)
		if removed[nm.ID] {
			return v2api.Member{}, 0, ErrIDRemoved
		}
		for _, m := range ms {
			if m.ID == nm.ID {
				return v2api.Member{}, 0, ErrIDExists
			}
			for _, u := range m.PeerURLs {
				if slices.Contains(nm.PeerURLs, u) {
					return v2api.Member{}, 0, ErrPeerURLExists
				}
			}
		}
		ms, out = append(ms, nm), nm.API()
	case "remove", "update":
		if removed[op.ID] {
			return v2api.Member{}, 0, ErrIDRemoved
		}
		i := slices.IndexFunc(ms, func(m membership.Member) bool { return m.ID == op.ID })
		if i < 0 {
			return v2api.Member{}, 0, ErrIDNotFound
		}
		if op.Op == "remove" {
			removed[op.ID] = true
			ms = slices.Delete(ms, i, i+1)
			break
		}
		urls := slices.Sorted(slices.Values(op.PeerURLs))
		for _, m := range ms {
			if m.ID == op.ID {
				continue
			}
			for _, u := range m.PeerURLs {
				if slices.Contains(urls, u) {
					return v2api.Member{}, 0, ErrPeerURLExists
				}
			}
		}
		ms[i].PeerURLs = urls
	default:
		return v2api.Member{}, 0, fmt.Errorf("etcdserver: unknown member operation %q", op.Op)
	}
	b, err := command.Encode(toCommand(ms, removed))
	if err != nil {
		return v2api.Member{}, 0, err
	}
	res, idx, err := s.node.Apply(ctx, b)
	if err != nil {
		return v2api.Member{}, 0, s.leaderErr(ctx, err)
	}
	if r, ok := res.(*fsm.Result); ok && r != nil && r.Err != nil {
		return v2api.Member{}, 0, r.Err
	}
	// The member list is committed and applied here; now make raft's
	// configuration follow before answering.
	if err := s.reconcile(ctx); err != nil {
		s.log.Warn("updating raft configuration failed", "err", err)
		if ctx.Err() != nil {
			return v2api.Member{}, 0, s.ctxErr(ctx)
		}
		return v2api.Member{}, 0, ErrTimeoutLeaderFail
	}
	return out, idx, nil
}

// applyLeader is node.Apply for commands this member proposes or a
// follower forwarded. A member publishing its attributes is serialised with
// member changes (memberMu): a member change replaces the whole list, so a
// publish committed between its barrier and its proposal would be lost.
func (s *EtcdServer) applyLeader(ctx context.Context, b []byte) (any, uint64, error) {
	if len(b) > 0 && b[0] == byte(command.MemberAttrs{}.Type()) {
		s.memberMu.Lock()
		defer s.memberMu.Unlock()
	}
	return s.node.Apply(ctx, b)
}

// barrier waits until the leader's FSM applied every committed entry.
func (s *EtcdServer) barrier(ctx context.Context) error {
	timeout := s.cfg.ReqTimeout()
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return s.ctxErr(ctx)
	}
	if err := s.node.Raft.Barrier(timeout).Error(); err != nil {
		return s.leaderErr(ctx, err)
	}
	return nil
}

// leaderErr maps a failed raft future on the leader to etcd's errors;
// errRetry means nothing was appended (safe to retry on the new leader).
func (s *EtcdServer) leaderErr(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, raftnode.ErrNotLeader), errors.Is(err, raft.ErrNotLeader):
		return errRetry
	case errors.Is(err, raftnode.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipLost):
		return ErrTimeoutLeaderFail
	case errors.Is(err, raftnode.ErrStopped), errors.Is(err, raft.ErrRaftShutdown):
		return ErrStopped
	case ctx.Err() != nil:
		return s.ctxErr(ctx)
	}
	return err
}

// reconcileTick is the leader's periodic safety net (a leadership change
// between committing a member list and the configuration change): it runs
// unless a member change is in progress. After becoming leader it first
// waits for a barrier, so it never acts on a view older than the log.
func (s *EtcdServer) reconcileTick(ctx context.Context) {
	if !s.node.IsLeader() || !s.memberMu.TryLock() {
		return
	}
	defer s.memberMu.Unlock()
	term := s.node.Raft.CurrentTerm()
	if s.reconciledTerm != term {
		// Short: this runs on Run's loop; a failed barrier retries next tick.
		bctx, cancel := context.WithTimeout(ctx, s.cfg.Election)
		err := s.barrier(bctx)
		cancel()
		if err != nil {
			return
		}
		s.reconciledTerm = term
	}
	if err := s.reconcile(ctx); err != nil && s.node.IsLeader() {
		s.log.Warn("updating raft configuration failed", "err", err)
	}
}

// reconcile makes raft's configuration match the member list (leader only).
func (s *EtcdServer) reconcile(ctx context.Context) error {
	f := s.node.Raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return err
	}
	cur := map[string]raft.ServerAddress{}
	for _, sv := range f.Configuration().Servers {
		cur[string(sv.ID)] = sv.Address
	}
	ms, _ := s.memberView()
	want := map[string]bool{}
	for _, m := range ms {
		id := membership.IDString(m.ID)
		want[id] = true
		addr, err := membership.HostPort(m.PeerURLs[0])
		if err != nil {
			continue
		}
		if a, ok := cur[id]; !ok || string(a) != addr {
			s.log.Info("adding raft voter", "id", id, "address", addr)
			if err := s.node.Raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, s.cfg.ReqTimeout()).Error(); err != nil {
				return fmt.Errorf("add voter %s: %w", id, err)
			}
		}
	}
	for id := range cur {
		if !want[id] {
			s.log.Info("removing raft server", "id", id)
			if err := s.node.Raft.RemoveServer(raft.ServerID(id), 0, s.cfg.ReqTimeout()).Error(); err != nil {
				return fmt.Errorf("remove server %s: %w", id, err)
			}
		}
	}
	return ctx.Err()
}

// joinRetry bounds how long a joining member keeps asking for a member list
// that contains it: a peer may not have applied the "member add" yet.
const joinRetry = 5 * time.Second

// fetchMembers asks the peers of the initial cluster for the member list
// (GET <peer>/members), as a member joining an existing cluster does. It
// returns the members, the cluster ID, and this member's ID, found by its
// peer URLs. While no peer answers, or the answers lack this member, it
// retries for joinRetry.
func fetchMembers(ctx context.Context, hc *http.Client, peers []string, self []string) ([]membership.Member, uint64, uint64, error) {
	deadline := time.Now().Add(joinRetry)
	for {
		ms, cid, selfID, err := fetchMembersOnce(ctx, hc, peers, self)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return ms, cid, selfID, err
		}
		select {
		case <-ctx.Done():
			return nil, 0, 0, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// fetchMembersOnce asks each peer in turn once; the first answer that lists
// this member wins.
func fetchMembersOnce(ctx context.Context, hc *http.Client, peers []string, self []string) ([]membership.Member, uint64, uint64, error) {
	c := *hc
	c.Timeout = 5 * time.Second
	mine := strings.Join(slices.Sorted(slices.Values(self)), ",")
	var lastErr error = errors.New("no peers to ask")
	var notListed error
	for _, p := range peers {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(p, "/")+"/members", nil)
		if err != nil {
			lastErr = err
			continue
		}
		resp, err := c.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		var list []v2api.Member
		err = json.NewDecoder(resp.Body).Decode(&list)
		cid, cerr := membership.ParseID(resp.Header.Get("X-Etcd-Cluster-ID"))
		resp.Body.Close()
		if err != nil || cerr != nil {
			lastErr = fmt.Errorf("bad /members answer from %s", p)
			continue
		}
		var ms []membership.Member
		var selfID uint64
		for _, m := range list {
			id, err := membership.ParseID(m.ID)
			if err != nil {
				continue
			}
			urls := slices.Sorted(slices.Values(m.PeerURLs))
			ms = append(ms, membership.Member{ID: id, Name: m.Name, PeerURLs: urls, ClientURLs: m.ClientURLs})
			if strings.Join(urls, ",") == mine {
				selfID = id
			}
		}
		if selfID == 0 {
			notListed = fmt.Errorf("etcdserver: this member (peer URLs %s) is not in the cluster's member list; add it first (etcdctl member add)", mine)
			continue
		}
		return ms, cid, selfID, nil
	}
	if notListed != nil {
		return nil, 0, 0, notListed
	}
	return nil, 0, 0, fmt.Errorf("etcdserver: cannot fetch the cluster's members: %w", lastErr)
}
