package etcdserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/corekit/corekit/etcd/internal/fsm"
	"github.com/corekit/corekit/etcd/internal/membership"
	"github.com/corekit/corekit/etcd/internal/raftnode"
	"github.com/corekit/corekit/internal/v2api"
)

// proposePath is the peer endpoint through which followers hand proposals
// to the leader (etcd 2 followers forward raft proposals to the leader
// inside raft messages; hashicorp/raft only accepts Apply on the leader).
const proposePath = "/corekit/propose"

// maxProposal bounds a forwarded command (values are at most a few MiB).
const maxProposal = 64 << 20

// forwardResult is the proposePath response body.
type forwardResult struct {
	Event      *v2api.Event `json:"event,omitempty"`
	Err        *v2api.Error `json:"error,omitempty"`
	Failure    string       `json:"failure,omitempty"` // non-domain error text
	NotLeader  bool         `json:"notLeader,omitempty"`
	StoreIndex uint64       `json:"storeIndex"`
	RaftIndex  uint64       `json:"raftIndex"`
	RaftTerm   uint64       `json:"raftTerm"`
}

// PeerHandler serves the peer port's HTTP side: /members (the full member
// list, for joining members and proxies), /version, and the endpoints
// followers use to forward writes and member changes to the leader.
func (s *EtcdServer) PeerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/members", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Members())
	})
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"etcdserver":%q,"etcdcluster":%q}`, ServerVersion, ClusterVersion)
	})
	mux.HandleFunc("POST "+proposePath, s.serveProposal)
	mux.HandleFunc("POST "+membersPath, s.serveMembers)
	return s.withClusterID(mux)
}

func (s *EtcdServer) serveProposal(w http.ResponseWriter, r *http.Request) {
	if !s.checkClusterID(w, r) {
		return
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxProposal))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var out forwardResult
	if !s.node.IsLeader() {
		out.NotLeader = true
	} else {
		res, idx, err := s.applyLeader(r.Context(), b)
		switch {
		case errors.Is(err, raftnode.ErrNotLeader):
			out.NotLeader = true // not appended: the follower may retry
		case errors.Is(err, raftnode.ErrLeadershipLost):
			out.Failure = ErrTimeoutLeaderFail.Error()
		case err != nil:
			out.Failure = err.Error()
		default:
			// The follower answers once it applied the entry: tell it
			// the commit index now rather than with the next append.
			s.node.NudgeCommit()
			if fr, ok := res.(*fsm.Result); ok && fr != nil {
				out.Event, out.StoreIndex = fr.Event, fr.StoreIndex
				var ve *v2api.Error
				if errors.As(fr.Err, &ve) {
					out.Err = ve
				} else if fr.Err != nil {
					out.Failure = fr.Err.Error()
				}
			}
			out.RaftIndex, out.RaftTerm = idx, s.node.Raft.CurrentTerm()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&out)
}

// errRetry means the proposal reached a member that is no longer leader.
var errRetry = errors.New("etcdserver: leader changed, retrying")

// forward sends an encoded command to the leader at addr (host:port of its
// peer URL), then waits until this member applied it too, so a local read
// after the write sees it (as in etcd, where the write completes on the
// member that received it).
func (s *EtcdServer) forward(ctx context.Context, addr string, cmd []byte) (Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.peerScheme()+"://"+addr+proposePath, bytes.NewReader(cmd))
	if err != nil {
		return Response{}, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(clusterIDHeader, membership.IDString(s.clusterID))
	resp, err := s.peerClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return Response{}, s.ctxErr(ctx)
		}
		// Only a failed dial proves the leader never saw the proposal;
		// after that the outcome is unknown and a retry could apply it twice.
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return Response{}, fmt.Errorf("%w: %v", errRetry, err)
		}
		return Response{}, ErrTimeoutConnectionLost
	}
	defer resp.Body.Close()
	if err := s.refusedByCluster(resp, addr); err != nil {
		return Response{}, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return Response{}, fmt.Errorf("etcdserver: leader refused proposal: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var out forwardResult
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return Response{}, fmt.Errorf("etcdserver: bad proposal response from leader: %w", err)
	}
	switch {
	case out.NotLeader:
		return Response{}, errRetry
	case out.Failure == ErrTimeoutLeaderFail.Error():
		return Response{}, ErrTimeoutLeaderFail
	case out.Failure != "":
		return Response{}, errors.New(out.Failure)
	}
	if err := s.fsm.WaitApplied(ctx, out.RaftIndex); err != nil {
		return Response{}, s.ctxErr(ctx)
	}
	if out.Err != nil {
		return Response{}, out.Err
	}
	return Response{Event: out.Event, EtcdIndex: out.StoreIndex, RaftIndex: out.RaftIndex, RaftTerm: out.RaftTerm}, nil
}

// peerScheme is the scheme of the other members' peer URLs.
func (s *EtcdServer) peerScheme() string {
	if s.cfg.PeerTLS != nil {
		return "https"
	}
	return "http"
}

func newPeerClient(tc *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:       tc,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       time.Minute,
		ResponseHeaderTimeout: 0,
	}}
}

// membersPath is the peer endpoint through which followers hand member
// changes to the leader, which reads, modifies and commits the member list
// and the raft configuration (members.go).
const membersPath = "/corekit/members"

// memberResult is the membersPath response body.
type memberResult struct {
	Member    *v2api.Member `json:"member,omitempty"`
	Err       string        `json:"error,omitempty"`
	NotLeader bool          `json:"notLeader,omitempty"`
	RaftIndex uint64        `json:"raftIndex"`
}

func (s *EtcdServer) serveMembers(w http.ResponseWriter, r *http.Request) {
	if !s.checkClusterID(w, r) {
		return
	}
	var op memberOp
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&op); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReqTimeout())
	defer cancel()
	var out memberResult
	m, idx, err := s.changeMembersLeader(ctx, op)
	switch {
	case errors.Is(err, errRetry):
		out.NotLeader = true // nothing proposed: the follower may retry
	case err != nil:
		out.Err = err.Error()
	default:
		s.node.NudgeCommit()
		out.RaftIndex = idx
		if op.Op == "add" {
			out.Member = &m
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&out)
}

// memberErrors are the errors a forwarded member change can return, by text.
var memberErrors = []error{ErrIDExists, ErrPeerURLExists, ErrIDNotFound, ErrIDRemoved,
	ErrTimeout, ErrStopped, ErrNoLeader, ErrTimeoutLeaderFail, ErrTimeoutConnectionLost}

// forwardMembers sends a member change to the leader at addr (host:port of
// its peer URL) and waits until this member applied the new member list.
func (s *EtcdServer) forwardMembers(ctx context.Context, addr string, op memberOp) (v2api.Member, error) {
	body, err := json.Marshal(op)
	if err != nil {
		return v2api.Member{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.peerScheme()+"://"+addr+membersPath, bytes.NewReader(body))
	if err != nil {
		return v2api.Member{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(clusterIDHeader, membership.IDString(s.clusterID))
	resp, err := s.peerClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return v2api.Member{}, s.ctxErr(ctx)
		}
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return v2api.Member{}, fmt.Errorf("%w: %v", errRetry, err)
		}
		return v2api.Member{}, ErrTimeoutConnectionLost
	}
	defer resp.Body.Close()
	if err := s.refusedByCluster(resp, addr); err != nil {
		return v2api.Member{}, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return v2api.Member{}, fmt.Errorf("etcdserver: leader refused member change: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var out memberResult
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return v2api.Member{}, fmt.Errorf("etcdserver: bad member change response from leader: %w", err)
	}
	switch {
	case out.NotLeader:
		return v2api.Member{}, errRetry
	case out.Err != "":
		for _, e := range memberErrors {
			if e.Error() == out.Err {
				return v2api.Member{}, e
			}
		}
		return v2api.Member{}, errors.New(out.Err)
	}
	if err := s.fsm.WaitApplied(ctx, out.RaftIndex); err != nil {
		return v2api.Member{}, s.ctxErr(ctx)
	}
	var m v2api.Member
	if out.Member != nil {
		m = *out.Member
	}
	return m, nil
}
