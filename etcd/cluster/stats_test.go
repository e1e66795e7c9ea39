package cluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
)

type leaderStats struct {
	Leader    string `json:"leader"`
	Followers map[string]struct {
		Latency struct {
			Current, Average, StandardDeviation, Minimum, Maximum float64
		} `json:"latency"`
		Counts struct {
			Fail    uint64 `json:"fail"`
			Success uint64 `json:"success"`
		} `json:"counts"`
	} `json:"followers"`
}

// TestStats: after writes, /v2/stats/leader on the leader lists every
// follower with success counts and plausible latencies, followers refuse
// it, and /v2/stats/self reports state, leader and non-zero append counters
// and rates on the leader (sent) and the followers (received).
func TestStats(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: multi-process cluster test (-short)")
	}
	c := startCluster(t, etcdtest.Ours, 3)
	leader := c.waitLeader(10 * time.Second)
	ls, err := leader.self()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const writes = 30
	for i := 0; i < writes; i++ {
		m := c.Members[i%3]
		if code, _, verr, err := put(ctx, quick, m.ClientURL, fmt.Sprintf("/s/%d", i), "v", nil); err != nil || code != http.StatusCreated {
			t.Fatalf("PUT: %d %v %v", code, verr, err)
		}
	}

	resp, err := quick.Get(leader.ClientURL + "/v2/stats/leader")
	if err != nil {
		t.Fatal(err)
	}
	var lst leaderStats
	err = json.NewDecoder(resp.Body).Decode(&lst)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("leader stats: %d %v", resp.StatusCode, err)
	}
	if lst.Leader != ls.ID || len(lst.Followers) != 2 {
		t.Fatalf("leader stats: %+v, leader %s", lst, ls.ID)
	}
	for _, m := range c.Members {
		if m == leader {
			continue
		}
		s, err := m.self()
		if err != nil {
			t.Fatal(err)
		}
		f, ok := lst.Followers[s.ID]
		if !ok {
			t.Errorf("leader stats lack follower %s", s.ID)
			continue
		}
		// Each write replicates to each follower at least once (batches
		// can carry several writes, hence no exact count).
		if f.Counts.Success == 0 || f.Latency.Average <= 0 || f.Latency.Minimum > f.Latency.Average ||
			f.Latency.Average > f.Latency.Maximum || f.Latency.Current <= 0 {
			t.Errorf("follower %s stats: %+v", s.ID, f)
		}
		if s.State != "StateFollower" || s.LeaderInfo.Leader != ls.ID {
			t.Errorf("%s self stats: state %s leader %s, want StateFollower under %s", m.Name, s.State, s.LeaderInfo.Leader, ls.ID)
		}
		if s.RecvAppendRequestCnt == 0 {
			t.Errorf("%s recvAppendRequestCnt = 0 after %d writes", m.Name, writes)
		}
		if s.RecvPkgRate <= 0 {
			t.Errorf("%s recvPkgRate = %v right after writes", m.Name, s.RecvPkgRate)
		}
		resp, err := quick.Get(m.ClientURL + "/v2/stats/leader")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("/v2/stats/leader on follower %s: %d, want 403", m.Name, resp.StatusCode)
		}
	}
	ls, err = leader.self()
	if err != nil {
		t.Fatal(err)
	}
	if ls.State != "StateLeader" || ls.SendAppendRequestCnt < 2 || ls.SendPkgRate <= 0 {
		t.Errorf("leader self stats: %+v", ls)
	}
}
