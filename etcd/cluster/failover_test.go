package cluster

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
)

// TestKillLeaderUnderLoad: writers spread over every member while the
// leader is killed with SIGKILL. A new leader is elected, writes resume,
// every acknowledged write is on every surviving member, and the killed
// member catches up after a restart.
func TestKillLeaderUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: multi-process cluster test (-short)")
	}
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d-members", n), func(t *testing.T) { killLeaderUnderLoad(t, n) })
	}
}

func killLeaderUnderLoad(t *testing.T, n int) {
	c := startCluster(t, etcdtest.Ours, n)
	old := c.waitLeader(10 * time.Second)

	var (
		mu      sync.Mutex
		acked   = map[string]string{}
		stop    atomic.Bool
		killed  atomic.Bool
		afterOK atomic.Int64 // acknowledged writes sent after the kill
		wg      sync.WaitGroup
	)
	ctx := t.Context()
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 15 * time.Second}
			for i := 0; !stop.Load(); i++ {
				m := c.Members[(w+i)%n]
				if !m.running() {
					continue
				}
				sentAfterKill := killed.Load()
				key, val := fmt.Sprintf("/load/w%d-%d", w, i), fmt.Sprint(i)
				code, _, _, err := put(ctx, hc, m.ClientURL, key, val, nil)
				if err == nil && code == http.StatusCreated {
					mu.Lock()
					acked[key] = val
					mu.Unlock()
					if sentAfterKill {
						afterOK.Add(1)
					}
				} else if err == nil && code < 500 {
					t.Errorf("PUT %s on %s: unexpected %d", key, m.Name, code)
				}
			}
		}()
	}
	time.Sleep(time.Second)
	killAt := time.Now()
	old.kill()
	killed.Store(true)
	newLeader := c.waitLeader(15 * time.Second)
	if newLeader == old {
		t.Fatal("the killed member is still the leader")
	}
	// Writes resume: wait for some acknowledged writes sent after the kill.
	for deadline := time.Now().Add(20 * time.Second); afterOK.Load() < 20; {
		if time.Now().After(deadline) {
			stop.Store(true)
			wg.Wait()
			c.dumpLogs()
			t.Fatalf("writes did not resume after the leader was killed (%d acknowledged since)", afterOK.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d members: new leader %s; writes resumed %v after the kill", n, newLeader.Name, time.Since(killAt).Round(time.Millisecond))
	stop.Store(true)
	wg.Wait()
	if len(acked) < 50 {
		t.Fatalf("only %d acknowledged writes", len(acked))
	}

	// No acknowledged write is lost: a quorum read on every survivor.
	for _, m := range c.running() {
		got, err := listDir(ctx, m.ClientURL, "/load", true)
		if err != nil {
			t.Fatalf("list on %s: %v", m.Name, err)
		}
		checkHas(t, m.Name, got, acked)
	}

	// The old leader restarts from its data dir and catches up.
	old.start(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := listDir(ctx, old.ClientURL, "/load", false)
		if err == nil && len(missing(got, acked)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			c.dumpLogs()
			t.Fatalf("restarted %s did not catch up: err=%v missing %d of %d", old.Name, err, len(missing(got, acked)), len(acked))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// It is a follower of the surviving leader and takes writes again.
	c.waitLeader(10 * time.Second)
	if code, _, verr, err := put(ctx, quick, old.ClientURL, "/after-restart", "x", nil); err != nil || code != http.StatusCreated {
		t.Fatalf("PUT on the restarted member: %d %v %v", code, verr, err)
	}
}

func missing(got, want map[string]string) []string {
	var out []string
	for k, v := range want {
		if got[k] != v {
			out = append(out, k)
		}
	}
	return out
}

func checkHas(t *testing.T, name string, got, want map[string]string) {
	t.Helper()
	if m := missing(got, want); len(m) > 0 {
		t.Errorf("%s lost %d of %d acknowledged writes, e.g. %v", name, len(m), len(want), m[:min(5, len(m))])
	}
}
