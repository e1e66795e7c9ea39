package v2client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/corekit/corekit/internal/v2api"
)

// ErrNoClientURLs is returned by Sync when no member advertises a client URL.
var ErrNoClientURLs = errors.New("etcd cluster has no published client endpoints")

func (c *Client) getJSON(ctx context.Context, p string, v any) error {
	r, err := c.do(ctx, request{method: http.MethodGet, path: p, query: url.Values{}})
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return decodeError(r)
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("client: invalid json from %s%s: %w", r.endpoint, p, err)
	}
	return nil
}

// ListMembers returns the cluster's members (GET /v2/members), in the
// server's order (sorted by ID).
func (c *Client) ListMembers(ctx context.Context) ([]v2api.Member, error) {
	var ml v2api.MemberList
	if err := c.getJSON(ctx, "/v2/members", &ml); err != nil {
		return nil, err
	}
	return ml.Members, nil
}

// Leader returns the current leader (GET /v2/members/leader).
func (c *Client) Leader(ctx context.Context) (*v2api.Member, error) {
	var m v2api.Member
	if err := c.getJSON(ctx, "/v2/members/leader", &m); err != nil {
		return nil, err
	}
	return &m, nil
}

type peerURLsBody struct {
	PeerURLs []string `json:"peerURLs"`
}

// AddMember announces a new member with the given peer URLs and returns it as
// the cluster recorded it (Name "" until it starts).
func (c *Client) AddMember(ctx context.Context, peerURLs []string) (*v2api.Member, error) {
	b, _ := json.Marshal(peerURLsBody{PeerURLs: peerURLs})
	r, err := c.do(ctx, request{method: http.MethodPost, path: "/v2/members", query: url.Values{}, body: b, contentType: "application/json"})
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusCreated {
		return nil, decodeError(r)
	}
	var m v2api.Member
	if err := json.Unmarshal(r.body, &m); err != nil {
		return nil, fmt.Errorf("client: invalid json from %s: %w", r.endpoint, err)
	}
	return &m, nil
}

// RemoveMember removes the member with hex id.
func (c *Client) RemoveMember(ctx context.Context, id string) error {
	r, err := c.do(ctx, request{method: http.MethodDelete, path: "/v2/members/" + id, query: url.Values{}})
	if err != nil {
		return err
	}
	if r.status != http.StatusNoContent {
		return decodeError(r)
	}
	return nil
}

// UpdateMember replaces the peer URLs of member id.
func (c *Client) UpdateMember(ctx context.Context, id string, peerURLs []string) error {
	b, _ := json.Marshal(peerURLsBody{PeerURLs: peerURLs})
	r, err := c.do(ctx, request{method: http.MethodPut, path: "/v2/members/" + id, query: url.Values{}, body: b, contentType: "application/json"})
	if err != nil {
		return err
	}
	if r.status != http.StatusNoContent {
		return decodeError(r)
	}
	return nil
}

// Sync replaces the endpoint list with the client URLs every member
// advertises (sorted), as etcdctl does before each command. It returns
// ErrNoClientURLs when the members advertise none.
func (c *Client) Sync(ctx context.Context) error {
	ms, err := c.ListMembers(ctx)
	if err != nil {
		return err
	}
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.ClientURLs...)
	}
	if len(eps) == 0 {
		return ErrNoClientURLs
	}
	sort.Strings(eps)
	return c.SetEndpoints(eps)
}

// LatencyStats is one follower's latency in /v2/stats/leader (milliseconds).
type LatencyStats struct {
	Current           float64 `json:"current"`
	Average           float64 `json:"average"`
	StandardDeviation float64 `json:"standardDeviation"`
	Minimum           float64 `json:"minimum"`
	Maximum           float64 `json:"maximum"`
}

// FollowerStats is one follower's entry in /v2/stats/leader.
type FollowerStats struct {
	Latency LatencyStats `json:"latency"`
	Counts  struct {
		Fail    uint64 `json:"fail"`
		Success uint64 `json:"success"`
	} `json:"counts"`
}

// LeaderStats is the body of /v2/stats/leader.
type LeaderStats struct {
	Leader    string                   `json:"leader"`
	Followers map[string]FollowerStats `json:"followers"`
}

// LeaderStats reads /v2/stats/leader. A non-leader member answers 403
// (*HTTPError "not current leader").
func (c *Client) LeaderStats(ctx context.Context) (*LeaderStats, error) {
	var s LeaderStats
	if err := c.getJSON(ctx, "/v2/stats/leader", &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Version is the body of /version.
type Version struct {
	Server  string `json:"etcdserver"`
	Cluster string `json:"etcdcluster"`
}

// Version reads /version.
func (c *Client) Version(ctx context.Context) (*Version, error) {
	var v Version
	if err := c.getJSON(ctx, "/version", &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Health asks each endpoint's /health in turn and returns the first answer
// (a 503 {"health":"false"} is an answer: false, nil). When no endpoint
// answers it returns a *ClusterError.
func (c *Client) Health(ctx context.Context) (bool, error) {
	cerr := &ClusterError{}
	for _, ep := range c.Endpoints() {
		ok, err := c.HealthAt(ctx, ep)
		if err == nil {
			return ok, nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		cerr.Errors = append(cerr.Errors, err)
	}
	return false, cerr
}

// HealthAt asks exactly one URL (a member's client URL) for /health, with the
// client's transport, TLS and header timeout, without failover. A 503 body of
// {"health":"false"} is reported as (false, nil).
func (c *Client) HealthAt(ctx context.Context, clientURL string) (bool, error) {
	u, err := ParseEndpoint(clientURL)
	if err != nil {
		return false, err
	}
	r, err := c.once(ctx, u, request{method: http.MethodGet, path: "/health", query: url.Values{}})
	if err != nil {
		return false, err
	}
	if r.status != http.StatusOK && r.status != http.StatusServiceUnavailable {
		return false, &HTTPError{StatusCode: r.status, Message: strings.TrimSpace(string(r.body))}
	}
	return parseHealth(r.body)
}

// parseHealth accepts {"health":"true"}, {"health": "true"} and {"health":true}.
func parseHealth(b []byte) (bool, error) {
	var h struct {
		Health json.RawMessage `json:"health"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return false, fmt.Errorf("client: invalid health body %q: %w", strings.TrimSpace(string(b)), err)
	}
	switch strings.Trim(string(h.Health), `"`) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("client: invalid health body %q", strings.TrimSpace(string(b)))
}
