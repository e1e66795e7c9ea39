package cluster

import (
	"fmt"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
)

// TestMinorityPartition: a member cut off from the majority (here: the
// other two members are stopped with SIGSTOP, so it is alone whether it was
// leader or not) answers quorum reads and writes with an error, never with
// data; once the majority is back, a member that missed writes (stopped
// while the majority wrote) catches up.
func TestMinorityPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: multi-process cluster test (-short)")
	}
	c := startCluster(t, etcdtest.Ours, 3)
	leader := c.waitLeader(10 * time.Second)
	ctx := t.Context()
	if code, _, verr, err := put(ctx, quick, leader.ClientURL, "/p/before", "1", nil); err != nil || code != http.StatusCreated {
		t.Fatalf("PUT: %d %v %v", code, verr, err)
	}
	// Wait until every member applied it, so the local read below has a
	// known answer.
	for _, m := range c.Members {
		waitValue(t, m, "/p/before", "1")
	}

	// The leader alone, then a follower alone: the other two are stopped.
	isolated(t, c, leader, "leader")
	c.waitLeader(20 * time.Second)
	var follower *member
	for _, m := range c.Members {
		if s, err := m.self(); err == nil && s.State == "StateFollower" {
			follower = m
			break
		}
	}
	if follower == nil {
		t.Fatal("no follower")
	}
	isolated(t, c, follower, "follower")

	// Cut off one member while the majority writes; it catches up.
	slow := &http.Client{Timeout: 30 * time.Second}
	behind := c.Members[0]
	behind.signal(t, syscall.SIGSTOP)
	majority := c.Members[1]
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < 10; {
		code, _, _, err := put(ctx, slow, majority.ClientURL, fmt.Sprintf("/p/while-away-%d", i), "y", nil)
		if err == nil && code == http.StatusCreated {
			i++
			continue
		}
		if time.Now().After(deadline) {
			c.dumpLogs()
			t.Fatalf("the majority does not take writes: %d %v", code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	behind.signal(t, syscall.SIGCONT)
	for i := 0; i < 10; i++ {
		waitValue(t, behind, fmt.Sprintf("/p/while-away-%d", i), "y")
	}
	if code, ev, _, err := get(ctx, slow, behind.ClientURL, "/p/while-away-9", true); err != nil || code != 200 || ev.Node.StringValue() != "y" {
		t.Fatalf("quorum GET on the healed member: %d %v", code, err)
	}
}

// waitValue polls a local read on m until key has value.
func waitValue(t *testing.T, m *member, key, value string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, ev, _, err := get(t.Context(), quick, m.ClientURL, key, false)
		if err == nil && code == 200 && ev.Node.StringValue() == value {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never showed %s=%s (last: %d %v)", m.Name, key, value, code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// isolated stops every member but lonely, checks that lonely refuses a
// write and a quorum read, and resumes the others.
func isolated(t *testing.T, c *cluster, lonely *member, role string) {
	t.Helper()
	ctx := t.Context()
	var others []*member
	for _, m := range c.Members {
		if m != lonely {
			others = append(others, m)
			m.signal(t, syscall.SIGSTOP)
		}
	}
	slow := &http.Client{Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	var putCode, getCode int
	var putErr, getErr error
	var getBody string
	wg.Add(2)
	go func() {
		defer wg.Done()
		putCode, _, _, putErr = put(ctx, slow, lonely.ClientURL, "/p/minority-"+role, "x", nil)
	}()
	go func() {
		defer wg.Done()
		code, ev, verr, err := get(ctx, slow, lonely.ClientURL, "/p/before", true)
		getCode, getErr = code, err
		if ev != nil {
			getBody = fmt.Sprintf("%+v", ev.Node)
		} else if verr != nil {
			getBody = verr.Message
		}
	}()
	wg.Wait()
	if putErr != nil || putCode < 500 {
		t.Errorf("%s alone: PUT: %d %v, want an etcd error (5xx)", role, putCode, putErr)
	}
	if getErr != nil || getCode < 500 {
		t.Errorf("%s alone: quorum GET: %d %v %s, want an etcd error (5xx)", role, getCode, getErr, getBody)
	}
	t.Logf("%s alone answers: PUT %d, quorum GET %d (%s)", role, putCode, getCode, getBody)

	for _, m := range others {
		m.signal(t, syscall.SIGCONT)
	}
	c.waitLeader(20 * time.Second)
}
