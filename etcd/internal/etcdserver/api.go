package etcdserver

// CONTRACT written by the lead: the boundary between the HTTP layer
// (etcd/internal/v2http) and the server (raft, store, membership). The server
// helper implements Server; the HTTP helper consumes it. Keep these names and
// shapes; extend by adding, and tell the lead about any change.

import (
	"context"
	"time"

	"github.com/corekit/corekit/etcd/internal/store"
	"github.com/corekit/corekit/internal/v2api"
)

// Request is one parsed /v2/keys request, as etcd's etcdserverpb.Request:
// the HTTP layer builds it (all validation done), the server dispatches it
// (local read, watch, quorum read or raft proposal) by etcd's rules.
type Request struct {
	Method     string // GET, HEAD, PUT, POST, DELETE
	Path       string // cleaned key path, "/" for the root
	Val        string
	Dir        bool
	PrevValue  string
	PrevIndex  uint64
	PrevExist  *bool
	Expiration time.Time // absolute, computed by the receiving member; zero = none
	Wait       bool
	Since      uint64 // waitIndex
	Recursive  bool
	Sorted     bool
	Quorum     bool
	Stream     bool
	Refresh    bool
}

// Response is the outcome of Do: exactly one of Event and Watcher is set.
type Response struct {
	Event   *v2api.Event
	Watcher *store.Watcher
	// EtcdIndex is X-Etcd-Index: the store index after the operation, or the
	// index at watch registration for watches.
	EtcdIndex uint64
	RaftIndex uint64
	RaftTerm  uint64
}

// Server is what the client HTTP handlers need from a member.
type Server interface {
	// Do executes a /v2/keys request. Domain failures are *v2api.Error; any
	// other error (timeout, no leader, stopped) is reported by the HTTP layer
	// as 300 "Raft Internal Error" with the error text as cause.
	Do(ctx context.Context, r Request) (Response, error)
	// Index is the current store index, for error responses.
	Index() uint64
	ID() uint64
	ClusterID() uint64
	// Leader returns the leader's member ID, false during an election.
	Leader() (uint64, bool)
	Members() []v2api.Member
	AddMember(ctx context.Context, peerURLs []string) (v2api.Member, error)
	RemoveMember(ctx context.Context, id uint64) error
	UpdateMember(ctx context.Context, id uint64, peerURLs []string) error
	// SelfStats, LeaderStats and StoreStats return the JSON bodies of
	// /v2/stats/self, /v2/stats/leader (ok=false when not leader) and
	// /v2/stats/store, without trailing newline.
	SelfStats() []byte
	LeaderStats() (body []byte, ok bool)
	StoreStats() []byte
	// Healthy reports whether the member has a leader and its raft index
	// advances (etcd's /health check); it may block up to about a second.
	Healthy(ctx context.Context) bool
}

// Member-API errors the server returns so the HTTP layer can pick the status.
var (
	ErrIDExists       = errString("etcdserver: ID exists")
	ErrPeerURLExists  = errString("etcdserver: peerURL exists")
	ErrIDNotFound     = errString("etcdserver: member not found")
	ErrIDRemoved      = errString("etcdserver: member removed")
	ErrTimeout        = errString("etcdserver: request timed out")
	ErrStopped        = errString("etcdserver: server stopped")
	ErrNoLeader       = errString("etcdserver: no leader")
	ErrNotEnoughPeers = errString("etcdserver: re-configuration failed due to not enough started members")
)

type errString string

func (e errString) Error() string { return string(e) }

// Version strings reported by /version.
const (
	ServerVersion  = "2.3.8"
	ClusterVersion = "2.3.0"
)
