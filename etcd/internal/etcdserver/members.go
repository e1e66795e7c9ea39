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
	"github.com/corekit/corekit/etcd/internal/membership"
	"github.com/corekit/corekit/internal/v2api"
)

// The member list is the bootstrap list from cluster.json merged with what
// was replicated through raft: command.Members (additions, removals, peer
// URL updates, computed on the proposing member from this same view) and
// command.MemberAttrs (names and client URLs each member publishes). The
// leader's reconcile loop makes raft's voter configuration follow the list.

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

// AddMember implements Server: the new member gets an ID from its peer URLs
// and the current time (as etcd's POST /v2/members) and becomes a raft voter
// at once, so quorum grows before it starts (etcd's behaviour).
func (s *EtcdServer) AddMember(ctx context.Context, peerURLs []string) (v2api.Member, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReqTimeout())
	defer cancel()
	s.memberMu.Lock()
	defer s.memberMu.Unlock()
	now := s.now()
	nm := membership.NewMember("", peerURLs, "", &now)
	ms, removed := s.memberView()
	if removed[nm.ID] {
		return v2api.Member{}, ErrIDRemoved
	}
	for _, m := range ms {
		if m.ID == nm.ID {
			return v2api.Member{}, ErrIDExists
		}
		for _, u := range m.PeerURLs {
			if slices.Contains(nm.PeerURLs, u) {
				return v2api.Member{}, ErrPeerURLExists
			}
		}
	}
	if _, err := s.propose(ctx, toCommand(append(ms, nm), removed)); err != nil {
		return v2api.Member{}, err
	}
	s.reconcileNow(ctx)
	return nm.API(), nil
}

// RemoveMember implements Server.
func (s *EtcdServer) RemoveMember(ctx context.Context, id uint64) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReqTimeout())
	defer cancel()
	s.memberMu.Lock()
	defer s.memberMu.Unlock()
	ms, removed := s.memberView()
	if removed[id] {
		return ErrIDRemoved
	}
	i := slices.IndexFunc(ms, func(m membership.Member) bool { return m.ID == id })
	if i < 0 {
		return ErrIDNotFound
	}
	removed[id] = true
	if _, err := s.propose(ctx, toCommand(slices.Delete(ms, i, i+1), removed)); err != nil {
		return err
	}
	s.reconcileNow(ctx)
	return nil
}

// UpdateMember implements Server: it changes a member's peer URLs.
func (s *EtcdServer) UpdateMember(ctx context.Context, id uint64, peerURLs []string) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ReqTimeout())
	defer cancel()
	s.memberMu.Lock()
	defer s.memberMu.Unlock()
	ms, removed := s.memberView()
	if removed[id] {
		return ErrIDRemoved
	}
	i := slices.IndexFunc(ms, func(m membership.Member) bool { return m.ID == id })
	if i < 0 {
		return ErrIDNotFound
	}
	urls := slices.Sorted(slices.Values(peerURLs))
	for _, m := range ms {
		if m.ID == id {
			continue
		}
		for _, u := range m.PeerURLs {
			if slices.Contains(urls, u) {
				return ErrPeerURLExists
			}
		}
	}
	ms[i].PeerURLs = urls
	if _, err := s.propose(ctx, toCommand(ms, removed)); err != nil {
		return err
	}
	s.reconcileNow(ctx)
	return nil
}

// reconcileNow runs one reconciliation if this member leads.
func (s *EtcdServer) reconcileNow(ctx context.Context) {
	if s.node.IsLeader() {
		if err := s.reconcile(ctx); err != nil {
			s.log.Warn("updating raft configuration failed", "err", err)
		}
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

// fetchMembers asks the peers of the initial cluster for the member list
// (GET <peer>/members), as a member joining an existing cluster does. It
// returns the members, the cluster ID, and this member's ID, found by its
// peer URLs.
func fetchMembers(ctx context.Context, hc *http.Client, peers []string, self []string) ([]membership.Member, uint64, uint64, error) {
	c := *hc
	c.Timeout = 5 * time.Second
	mine := strings.Join(slices.Sorted(slices.Values(self)), ",")
	var lastErr error = errors.New("no peers to ask")
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
			return nil, 0, 0, fmt.Errorf("etcdserver: this member (peer URLs %s) is not in the cluster's member list; add it first (etcdctl member add)", mine)
		}
		return ms, cid, selfID, nil
	}
	return nil, 0, 0, fmt.Errorf("etcdserver: cannot fetch the cluster's members: %w", lastErr)
}
