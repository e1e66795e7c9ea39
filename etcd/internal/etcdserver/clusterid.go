package etcdserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/corekit/corekit/etcd/internal/membership"
)

// clusterIDHeader carries the sender's cluster ID on every peer HTTP
// request and response (forwarded proposals, member changes, /members).
// Raft RPCs on the same port are hashicorp/raft's binary protocol and carry
// no headers: a member of another cluster is kept out of raft by the
// member-set check of hashicorp/raft (votes and appends from servers not
// in the configuration are rejected) and by checkPeerClusters below.
const clusterIDHeader = "X-Etcd-Cluster-ID"

// errClusterIDMismatch is the body of a refused peer request (etcd's
// rafthttp text; status 412 Precondition Failed as in etcd).
var errClusterIDMismatch = errors.New("cluster ID mismatch")

// ErrClusterIDMismatch is returned by Run when every peer reports another
// cluster ID than this member's data dir: the member refuses to serve.
var ErrClusterIDMismatch = errors.New("etcdserver: cluster ID mismatch")

// withClusterID sets this member's cluster ID on every peer response.
func (s *EtcdServer) withClusterID(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(clusterIDHeader, membership.IDString(s.clusterID))
		h.ServeHTTP(w, r)
	})
}

// checkClusterID refuses (412, logged) a peer request whose cluster ID
// header is not this member's.
func (s *EtcdServer) checkClusterID(w http.ResponseWriter, r *http.Request) bool {
	got, want := r.Header.Get(clusterIDHeader), membership.IDString(s.clusterID)
	if got == want {
		return true
	}
	if got == "" {
		got = "none"
	}
	s.log.Error(fmt.Sprintf("request cluster ID mismatch (got %s want %s)", got, want), "remote", r.RemoteAddr, "path", r.URL.Path)
	http.Error(w, errClusterIDMismatch.Error(), http.StatusPreconditionFailed)
	return false
}

// refusedByCluster turns a 412 answer of a peer into a logged
// ErrClusterIDMismatch naming both IDs; other statuses return nil.
func (s *EtcdServer) refusedByCluster(resp *http.Response, addr string) error {
	if resp.StatusCode != http.StatusPreconditionFailed {
		return nil
	}
	remote := resp.Header.Get(clusterIDHeader)
	if remote == "" {
		remote = "unknown"
	}
	s.log.Error(fmt.Sprintf("request sent was ignored (cluster ID mismatch: remote[%s]=%s, local=%s)",
		addr, remote, membership.IDString(s.clusterID)))
	return fmt.Errorf("%w: peer %s is in cluster %s, this member in %s", ErrClusterIDMismatch, addr, remote, membership.IDString(s.clusterID))
}

// peerClusterIDs asks every other member's /members once and returns the
// cluster IDs they report, by member; unreachable members are left out.
func (s *EtcdServer) peerClusterIDs(ctx context.Context) (map[uint64]string, int) {
	ms, _ := s.memberView()
	out := map[uint64]string{}
	others := 0
	c := *s.peerClient
	c.Timeout = 2 * time.Second
	for _, m := range ms {
		if m.ID == s.id {
			continue
		}
		others++
		for _, u := range m.PeerURLs {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(u, "/")+"/members", nil)
			if err != nil {
				continue
			}
			resp, err := c.Do(req)
			if err != nil {
				continue
			}
			resp.Body.Close()
			if id, err := membership.ParseID(resp.Header.Get(clusterIDHeader)); err == nil {
				out[m.ID] = membership.IDString(id)
				break
			}
		}
	}
	return out, others
}

// checkPeerClusters polls the other members until they all answered or a
// leader is known. When every other member answers with another cluster ID
// (this data dir belongs to a different cluster than its peers: a reused
// or copied data dir, or members bootstrapped with different tokens) it
// logs both IDs and returns ErrClusterIDMismatch. etcd 2.3 only logged the
// rejected raft messages forever; corekit refuses to serve.
func (s *EtcdServer) checkPeerClusters(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		ids, others := s.peerClusterIDs(ctx)
		if others == 0 {
			return nil
		}
		if len(ids) == others {
			mine := membership.IDString(s.clusterID)
			var theirs []string
			for _, id := range ids {
				if id == mine {
					return nil // at least one peer shares our cluster
				}
				if !slices.Contains(theirs, id) {
					theirs = append(theirs, id)
				}
			}
			slices.Sort(theirs)
			s.log.Error(fmt.Sprintf("cluster ID mismatch: data dir %s belongs to cluster %s but all its peers report cluster %s; refusing to serve (wipe the data dir or fix --initial-cluster/--initial-cluster-token)",
				s.cfg.DataDir, mine, strings.Join(theirs, ",")))
			return ErrClusterIDMismatch
		}
		if _, ok := s.Leader(); ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
