package cluster

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
)

// TestRestartWithUncommittedTailServesWithoutNewWrites is the regression
// test for torture seed 20016: a leader appends writes its stopped
// followers never see, is killed, and the others elect a new leader. The
// old leader restarts with that uncommitted tail on disk; the new leader
// truncates it. The member must then serve clients once it has applied what
// the cluster committed, not wait until new writes push the commit index past
// its old tail (it waited for as long as nobody wrote: 60 s in that run).
func TestRestartWithUncommittedTailServesWithoutNewWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: multi-process cluster test (-short)")
	}
	c := startCluster(t, etcdtest.Ours, 3)
	old := c.waitLeader(20 * time.Second)
	ctx := t.Context()
	if code, _, verr, err := put(ctx, quick, old.ClientURL, "/tail/base", "1", nil); err != nil || code != http.StatusCreated {
		t.Fatalf("PUT: %d %v %v", code, verr, err)
	}
	var others []*member
	for _, m := range c.Members {
		if m != old {
			others = append(others, m)
			waitValue(t, m, "/tail/base", "1")
			m.kill() // not SIGSTOP: stopped followers would still find the appends in their sockets
		}
	}
	// Writes the leader appends but cannot commit: they fail or time out.
	short := &http.Client{Timeout: 700 * time.Millisecond}
	for i := 0; i < 8; i++ {
		if code, _, _, err := put(ctx, short, old.ClientURL, fmt.Sprintf("/tail/lost-%d", i), "x", nil); err == nil && code < 300 {
			t.Fatalf("a write without quorum was acknowledged: %d", code)
		}
	}
	old.kill()
	for _, m := range others {
		m.start(t)
	}
	c.waitLeader(20 * time.Second)

	old.start(t)
	// No write from now on: the member must become ready on its own.
	deadline := time.Now().Add(20 * time.Second)
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		code, ev, _, err := get(rctx, quick, old.ClientURL, "/tail/base", false)
		cancel()
		if err == nil && code == http.StatusOK && ev.Node.StringValue() == "1" {
			break
		}
		if time.Now().After(deadline) {
			c.dumpLogs()
			t.Fatalf("restarted member does not serve without new writes: %d %v", code, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The path under test ran: the tail was truncated and the wait shortened.
	if b := old.logTail(); !strings.Contains(b, "uncommitted log tail truncated by the leader") {
		t.Errorf("the restarted member's log does not show the truncated tail:\n%s", b)
	}
	for i := 0; i < 8; i++ {
		code, _, _, err := get(ctx, quick, old.ClientURL, fmt.Sprintf("/tail/lost-%d", i), true)
		if err != nil || code != http.StatusNotFound {
			t.Errorf("/tail/lost-%d after the restart: %d %v, want 404 (only the old leader had it)", i, code, err)
		}
	}
}
