package cluster

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
)

// etcdctlBinary is Debian's etcdctl 3.4, which speaks the v2 API with
// ETCDCTL_API=2.
const etcdctlBinary = "/usr/bin/etcdctl"

// etcdctl runs Debian's etcdctl in v2 mode against endpoints.
func etcdctl(t *testing.T, endpoints []string, args ...string) (string, error) {
	t.Helper()
	if _, err := os.Stat(etcdctlBinary); err != nil {
		t.Skip("SKIP: Debian's etcdctl 3.4 (" + etcdctlBinary + ") is not installed")
	}
	cmd := exec.CommandContext(t.Context(), etcdctlBinary, append([]string{"--endpoints", strings.Join(endpoints, ",")}, args...)...)
	cmd.Env = []string{"ETCDCTL_API=2", "PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var (
	memberLine    = regexp.MustCompile(`^([0-9a-f]+): name=(\S*) peerURLs=(\S+) clientURLs=(\S*) isLeader=(true|false)$`)
	unstartedLine = regexp.MustCompile(`^([0-9a-f]+)\[unstarted\]: peerURLs=(\S+)$`)
)

type listed struct {
	id, name, peer, client string
	leader, unstarted      bool
}

func memberList(t *testing.T, c *cluster) map[string]listed {
	t.Helper()
	got, err := tryMemberList(t, c)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// tryMemberList runs etcdctl member list against the running members and
// parses its output by peer URL.
func tryMemberList(t *testing.T, c *cluster) (map[string]listed, error) {
	t.Helper()
	var eps []string
	for _, m := range c.running() {
		eps = append(eps, m.ClientURL)
	}
	out, err := etcdctl(t, eps, "member", "list")
	if err != nil {
		return nil, fmt.Errorf("etcdctl member list: %w\n%s", err, out)
	}
	got := map[string]listed{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if m := unstartedLine.FindStringSubmatch(l); m != nil {
			got[m[2]] = listed{id: m[1], peer: m[2], unstarted: true}
			continue
		}
		m := memberLine.FindStringSubmatch(l)
		if m == nil {
			return nil, fmt.Errorf("etcdctl member list: unexpected line %q", l)
		}
		got[m[3]] = listed{id: m[1], name: m[2], peer: m[3], client: m[4], leader: m[5] == "true"}
	}
	return got, nil
}

// TestMembershipWithEtcdctl: Debian's etcdctl lists the members (with the
// leader), adds a fourth member that then joins with the printed
// environment, removes a follower, and reports the cluster healthy.
func TestMembershipWithEtcdctl(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: multi-process cluster test (-short)")
	}
	c := startCluster(t, etcdtest.Ours, 3)
	leader := c.waitLeader(10 * time.Second)
	ls, _ := leader.self()

	// Each member publishes its name and client URLs once it is up (a
	// replicated write): wait until all three have, as etcd's own tests do.
	var list map[string]listed
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		list = memberList(t, c)
		published := 0
		for _, l := range list {
			if l.client != "" {
				published++
			}
		}
		if published == 3 || time.Now().After(deadline) {
			break
		}
	}
	if len(list) != 3 {
		t.Fatalf("member list has %d members, want 3: %v", len(list), list)
	}
	for _, m := range c.Members {
		l, ok := list[m.PeerURL]
		if !ok || l.name != m.Name || l.client != m.ClientURL {
			t.Errorf("member list entry for %s = %+v", m.Name, l)
		}
		if l.leader != (l.id == ls.ID) {
			t.Errorf("%s isLeader=%v, leader is %s", m.Name, l.leader, ls.ID)
		}
	}

	// member add prints the environment for the new member.
	m4 := newMember(t, "m4")
	out, err := etcdctl(t, []string{c.Members[0].ClientURL}, "member", "add", "m4", m4.PeerURL)
	if err != nil {
		t.Fatalf("etcdctl member add: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^Added member named m4 with ID [0-9a-f]+ to cluster$`).MatchString(out) ||
		!strings.Contains(out, `ETCD_NAME="m4"`) || !strings.Contains(out, `ETCD_INITIAL_CLUSTER_STATE="existing"`) {
		t.Fatalf("etcdctl member add output:\n%s", out)
	}
	ic := regexp.MustCompile(`ETCD_INITIAL_CLUSTER="([^"]+)"`).FindStringSubmatch(out)
	if ic == nil || !strings.Contains(ic[1], "m4="+m4.PeerURL) {
		t.Fatalf("no usable ETCD_INITIAL_CLUSTER in:\n%s", out)
	}
	if l := memberList(t, c)[m4.PeerURL]; l.id == "" || !l.unstarted {
		t.Errorf("added, unstarted member listed as %+v, want no name yet", l)
	}
	m4.bin = c.bin
	m4.args = m4.baseArgs(c.kind, ic[1], "existing")
	c.Members = append(c.Members, m4)
	m4.start(t)
	// It joins: publishes its name and client URL, takes writes.
	deadline := time.Now().Add(20 * time.Second)
	for {
		// While m4 joins it may answer "has no leader": retry.
		list, err := tryMemberList(t, c)
		if l := list[m4.PeerURL]; err == nil && l.name == "m4" && l.client == m4.ClientURL {
			break
		}
		if time.Now().After(deadline) {
			c.dumpLogs()
			t.Fatalf("m4 never published its attributes: %v %v", list, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ctx := t.Context()
	if code, _, verr, err := put(ctx, quick, m4.ClientURL, "/via-m4", "yes", nil); err != nil || code != http.StatusCreated {
		t.Fatalf("PUT through the new member: %d %v %v", code, verr, err)
	}
	if code, ev, _, err := get(ctx, quick, c.Members[0].ClientURL, "/via-m4", true); err != nil || code != 200 || ev.Node.StringValue() != "yes" {
		t.Fatalf("quorum GET of m4's write on m1: %d %v", code, err)
	}

	// Remove a follower other than m4.
	var victim *member
	for _, m := range c.Members[:3] {
		if m != leader {
			victim = m
			break
		}
	}
	id := memberList(t, c)[victim.PeerURL].id
	if out, err := etcdctl(t, []string{leader.ClientURL}, "member", "remove", id); err != nil ||
		!strings.Contains(out, "Removed member "+id+" from cluster") {
		t.Fatalf("etcdctl member remove %s: %v\n%s", id, err, out)
	}
	victim.kill() // etcd's removed member shuts itself down; don't depend on it
	list = memberList(t, c)
	if _, ok := list[victim.PeerURL]; ok || len(list) != 3 {
		t.Fatalf("after remove, member list = %v", list)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		out, err = etcdctl(t, []string{leader.ClientURL}, "cluster-health")
		if err == nil && strings.HasSuffix(strings.TrimSpace(out), "cluster is healthy") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcdctl cluster-health: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := strings.Count(out, "is healthy: got healthy result from"); n != 3 {
		t.Errorf("cluster-health lists %d healthy members, want 3:\n%s", n, out)
	}
	if code, _, verr, err := put(ctx, quick, m4.ClientURL, "/after-remove", "yes", nil); err != nil || code != http.StatusCreated {
		t.Fatalf("PUT after the removal: %d %v %v", code, verr, err)
	}
}
