package etcdctlmain

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/buildbin"
	"github.com/corekit/corekit/internal/etcdtest"
)

// node is one member process of a test cluster.
type node struct {
	name, clientURL, peerURL, dataDir string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// cluster is a multi-member etcd started as real processes on free
// loopback ports, ours or the reference (etcdtest.Reference).
type cluster struct {
	t      *testing.T
	kind   etcdtest.Kind
	binary string
	token  string
	nodes  []*node
}

// newNode reserves ports and a data dir for a member named name.
func (c *cluster) newNode(name string) *node {
	return &node{
		name:      name,
		clientURL: fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(c.t)),
		peerURL:   fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(c.t)),
		dataDir:   filepath.Join(c.t.TempDir(), name+".etcd"),
	}
}

// startCluster starts n members m1..mn with a static --initial-cluster and
// waits until every one serves /v2/keys and knows a leader. It skips
// loudly when the binary under test is missing.
func startCluster(t *testing.T, kind etcdtest.Kind, n int) *cluster {
	t.Helper()
	c := &cluster{t: t, kind: kind, token: "ctl-" + strconv.Itoa(etcdtest.FreePort(t))}
	switch kind {
	case etcdtest.Reference:
		if !etcdtest.HaveReference() {
			t.Skipf("SKIP: %s not installed (apt-get install etcd-server); .ci/run installs it", etcdtest.ReferenceBinary)
		}
		c.binary = etcdtest.ReferenceBinary
	default:
		root, err := buildbin.ModuleRoot()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(root, "etcd", "main.go")); err != nil {
			t.Skip("SKIP: etcd/main.go does not exist yet")
		}
		c.binary = etcdtest.OurBinary(t)
	}
	var initial []string
	for i := 1; i <= n; i++ {
		nd := c.newNode("m" + strconv.Itoa(i))
		c.nodes = append(c.nodes, nd)
		initial = append(initial, nd.name+"="+nd.peerURL)
	}
	for _, nd := range c.nodes {
		c.start(nd, strings.Join(initial, ","), "new")
	}
	for _, nd := range c.nodes {
		c.waitReady(nd)
	}
	c.waitPublished()
	return c
}

// waitPublished polls every member's /v2/members until each lists all
// members with a name and client URLs. (etcd 3.4 serves clients only after
// the member published its attributes; ours may answer a little earlier.)
func (c *cluster) waitPublished() {
	c.t.Helper()
	var last string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ok := true
		for _, nd := range c.nodes {
			resp, err := http.Get(nd.clientURL + "/v2/members")
			if err != nil {
				ok, last = false, err.Error()
				break
			}
			var body struct {
				Members []struct {
					Name       string   `json:"name"`
					ClientURLs []string `json:"clientURLs"`
				} `json:"members"`
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			published := 0
			for _, m := range body.Members {
				if m.Name != "" && len(m.ClientURLs) > 0 {
					published++
				}
			}
			if err != nil || published != len(c.nodes) || len(body.Members) != len(c.nodes) {
				ok, last = false, fmt.Sprintf("%s: %d of %d members published (%v)", nd.name, published, len(c.nodes), err)
				break
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s cluster: members never all published: %s\n%s", c.kind, last, c.diag())
		}
	}
}

// start runs the member process; t.Cleanup kills it.
func (c *cluster) start(nd *node, initialCluster, state string) {
	c.t.Helper()
	args := []string{
		"--name", nd.name,
		"--data-dir", nd.dataDir,
		"--listen-client-urls", nd.clientURL,
		"--advertise-client-urls", nd.clientURL,
		"--listen-peer-urls", nd.peerURL,
		"--initial-advertise-peer-urls", nd.peerURL,
		"--initial-cluster", initialCluster,
		"--initial-cluster-state", state,
		"--initial-cluster-token", c.token,
	}
	if c.kind == etcdtest.Reference {
		args = append(args, "--enable-v2", "--logger", "zap", "--log-outputs", "stderr")
	}
	nd.log = filepath.Join(c.t.TempDir(), nd.name+".log")
	logf, err := os.Create(nd.log)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.binary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") && !strings.HasPrefix(kv, "ETCDCTL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatalf("start %s: %v", c.binary, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	nd.mu.Lock()
	nd.cmd, nd.done = cmd, done
	nd.mu.Unlock()
	c.t.Cleanup(nd.kill)
}

// kill sends SIGKILL (kill -9) and waits until the process is reaped.
func (nd *node) kill() {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil {
		return
	}
	_ = nd.cmd.Process.Kill()
	<-nd.done
	nd.cmd = nil
}

func (c *cluster) waitReady(nd *node) {
	c.t.Helper()
	if err := etcdtest.WaitReady(c.t.Context(), nd.clientURL, 20*time.Second); err != nil {
		b, _ := os.ReadFile(nd.log)
		c.t.Fatalf("%s %s not ready: %v\nlog:\n%s", c.kind, nd.name, err, b)
	}
}

// node returns the member with the given client URL.
func (c *cluster) byClientURL(u string) *node {
	for _, nd := range c.nodes {
		if nd.clientURL == u {
			return nd
		}
	}
	return nil
}

// clusterRecorder runs etcdctl commands and writes a transcript whose
// run-specific values (URLs, member IDs, which member leads, the order of
// members, which follows their random IDs) are normalised.
type clusterRecorder struct {
	c     *cluster
	b     strings.Builder
	ids   map[string]string // member ID -> name
	extra map[string]string // other run-specific strings -> tokens
	idx   *normalizer       // indexes relative to a base, once set
	// leader, when set, is named "leader" in command lines: the runs
	// that go to whichever member leads.
	leader *node
}

var (
	reMemberID  = regexp.MustCompile(`(?m)^([0-9a-f]+)(?:\[unstarted\])?: `)
	reAddedID   = regexp.MustCompile(`with ID ([0-9a-f]+) to cluster`)
	reInitial   = regexp.MustCompile(`ETCD_INITIAL_CLUSTER="([^"]*)"`)
	reLeaderVal = regexp.MustCompile(`isLeader=(true|false)`)
)

// learnIDs records member IDs from `member list` output.
func (r *clusterRecorder) learnIDs(out string) {
	for _, line := range strings.Split(out, "\n") {
		m := reMemberID.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if i := strings.Index(line, "name="); i >= 0 {
			name := strings.Fields(line[i+len("name="):])[0]
			r.ids[m[1]] = name
		}
	}
}

func (r *clusterRecorder) normalize(s string) string {
	for _, nd := range r.c.nodes {
		s = strings.ReplaceAll(s, nd.clientURL, "<client:"+nd.name+">")
		s = strings.ReplaceAll(s, nd.peerURL, "<peer:"+nd.name+">")
		s = strings.ReplaceAll(s, strings.TrimPrefix(nd.clientURL, "http://"), "<client-addr:"+nd.name+">")
	}
	for from, to := range r.extra {
		s = strings.ReplaceAll(s, from, to)
	}
	if r.idx != nil {
		s = r.idx.apply(s)
	}
	for id, name := range r.ids {
		s = regexp.MustCompile(`\b`+id+`\b`).ReplaceAllString(s, "<id:"+name+">")
	}
	s = reLeaderVal.ReplaceAllString(s, "isLeader=<bool>")
	s = reInitial.ReplaceAllStringFunc(s, func(m string) string {
		parts := strings.Split(reInitial.FindStringSubmatch(m)[1], ",")
		sort.Strings(parts)
		return `ETCD_INITIAL_CLUSTER="` + strings.Join(parts, ",") + `"`
	})
	// Members come in the order of their (random) IDs: sort each run of
	// lines that name a member.
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); {
		j := i
		for j < len(lines) && strings.Contains(lines[j], "<id:") && !strings.HasPrefix(lines[j], "Added") {
			j++
		}
		if j > i {
			run := lines[i:j]
			sort.SliceStable(run, func(a, b int) bool { return memberKey(run[a]) < memberKey(run[b]) })
			i = j
		} else {
			i++
		}
	}
	return strings.Join(lines, "\n")
}

// memberKey is the first normalised member ID in line.
func memberKey(line string) string {
	i := strings.Index(line, "<id:")
	j := strings.Index(line[i:], ">")
	return line[i : i+j]
}

// do runs our etcdctl with --endpoints nd's client URL and records it.
func (r *clusterRecorder) do(nd *node, args ...string) result {
	r.c.t.Helper()
	ctx, cancel := context.WithTimeout(r.c.t.Context(), 20*time.Second)
	defer cancel()
	res := run(ctx, "", append([]string{"--endpoints", nd.clientURL}, args...)...)
	r.record(nd, res, args...)
	return res
}

// record adds a finished run of args against nd to the transcript.
func (r *clusterRecorder) record(nd *node, res result, args ...string) {
	if m := reAddedID.FindStringSubmatch(res.stdout); m != nil {
		r.ids[m[1]] = args[len(args)-2]
	}
	label := nd.name
	if r.leader == nd {
		label = "leader"
	}
	fmt.Fprintf(&r.b, "$ etcdctl --endpoints <client:%s> %s\n", label, r.normalize(strings.Join(args, " ")))
	fmt.Fprintf(&r.b, "--- stdout\n%s--- stderr\n%s--- exit %d\n\n", r.normalize(res.stdout), r.normalize(res.stderr), res.code)
}

// checkMemberList asserts that raw `member list` output lists want members
// in ascending ID order (as etcd's members API returns them) with exactly
// one leader, and returns the leader's client URL.
func checkMemberList(t *testing.T, out string, want int) string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != want {
		t.Fatalf("member list has %d lines, want %d:\n%s", len(lines), want, out)
	}
	var ids []uint64
	leader, leaders := "", 0
	for _, l := range lines {
		m := reMemberID.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("member list line %q has no ID", l)
		}
		id, _ := strconv.ParseUint(m[1], 16, 64)
		ids = append(ids, id)
		if strings.HasSuffix(l, "isLeader=true") {
			leaders++
			i := strings.Index(l, "clientURLs=")
			leader = strings.Fields(l[i+len("clientURLs="):])[0]
		}
	}
	if !sort.SliceIsSorted(ids, func(i, j int) bool { return ids[i] < ids[j] }) {
		t.Errorf("member list not in ID order:\n%s", out)
	}
	if leaders != 1 {
		t.Fatalf("member list has %d leaders, want 1:\n%s", leaders, out)
	}
	return leader
}

// TestCluster runs the member, health, sync, replication and watch
// commands against a real three-member cluster of our etcd and of the
// reference, and requires the same normalised transcript
// (testdata/cluster.golden) from both.
func TestCluster(t *testing.T) {
	for _, k := range []etcdtest.Kind{etcdtest.Ours, etcdtest.Reference} {
		t.Run(string(k), func(t *testing.T) {
			clearEnv(t)
			testCluster(t, k)
		})
	}
}

func testCluster(t *testing.T, kind etcdtest.Kind) {
	c := startCluster(t, kind, 3)
	r := &clusterRecorder{c: c, ids: map[string]string{}, extra: map[string]string{}}
	m1 := c.nodes[0]

	// member list: three members, one leader.
	res := r.do(m1, "member", "list")
	r.learnIDs(res.stdout)
	r.b.Reset() // the first listing was only for learning IDs
	res = r.do(m1, "member", "list")
	leader := c.byClientURL(checkMemberList(t, res.stdout, 3))
	if leader == nil {
		t.Fatalf("leader's client URL is not one of ours:\n%s", res.stdout)
	}
	var followers []*node
	for _, nd := range c.nodes {
		if nd != leader {
			followers = append(followers, nd)
		}
	}
	r.do(m1, "cluster-health")

	// Debian's etcdctl prints the same bytes against this cluster.
	compareWithDebian(t, m1, "member", "list")
	compareWithDebian(t, m1, "cluster-health")

	// Without --no-sync, the endpoints become every member's client URL.
	checkSync(t, c, followers[0])

	// A write through m1 is read back from m2 and m3 (once they applied it:
	// a v2 read without --quorum is served from the member's own store).
	r.idx = &normalizer{s: &etcdtest.Server{ClientURL: "\x00", PeerURL: "\x00"}, base: storeIndex(t, m1)}
	r.do(m1, "--no-sync", "set", "/replicated", "hello")
	for _, nd := range c.nodes[1:] {
		waitFor(t, 10*time.Second, nd.name+" to apply the write", func() bool {
			return run(t.Context(), "", "--no-sync", "--endpoints", nd.clientURL, "get", "/replicated").code == 0
		})
	}
	r.do(c.nodes[1], "--no-sync", "get", "/replicated")
	r.do(c.nodes[2], "--no-sync", "-o", "json", "get", "/replicated")
	r.do(c.nodes[2], "--no-sync", "get", "--quorum", "/replicated")
	watchFollower(t, leader, followers[0])
	execWatchFollower(t, leader, followers[1])

	// member add, then start the new member as an existing-cluster joiner.
	m4 := c.newNode("m4")
	c.nodes = append(c.nodes, m4)
	// etcd 3.4 refuses to add a member (503) until every member has been
	// connected for 5 s (--strict-reconfig-check); retry until it accepts.
	waitFor(t, 20*time.Second, "member add to succeed", func() bool {
		res = run(t.Context(), "", "--endpoints", m1.clientURL, "member", "add", "m4", m4.peerURL)
		if res.code != 0 && !strings.Contains(res.stderr, "has no leader") {
			t.Fatalf("member add: exit %d: %s", res.code, res.stderr)
		}
		return res.code == 0
	})
	r.record(m1, res, "member", "add", "m4", m4.peerURL)
	initial := reInitial.FindStringSubmatch(res.stdout)
	if initial == nil || !strings.Contains(res.stdout, `ETCD_INITIAL_CLUSTER_STATE="existing"`) {
		t.Fatalf("member add output lacks the environment lines:\n%s", res.stdout)
	}
	c.start(m4, initial[1], "existing")
	c.waitReady(m4)
	c.waitPublished()
	list := ctl(t, &etcdtest.Server{ClientURL: m1.clientURL}, "member", "list")
	checkMemberList(t, list, 4)
	r.do(m1, "member", "list")
	r.do(m4, "--no-sync", "get", "/replicated")

	// member update moves m4's peer URL; member remove takes it out.
	var m4ID string
	for id, name := range r.ids {
		if name == "m4" {
			m4ID = id
		}
	}
	moved := fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t))
	r.extra[moved] = "<peer:m4-moved>"
	// These go to the leader with --no-sync. KNOWN BUG (ours): served by a
	// follower, the raft configuration lags the member list by up to a
	// reconcile period; see TestClusterRemoveViaFollower.
	r.leader = leader
	res = r.do(leader, "--no-sync", "member", "update", m4ID, moved)
	if res.code != 0 {
		t.Fatalf("member update: exit %d: %s", res.code, res.stderr)
	}
	list = ctl(t, &etcdtest.Server{ClientURL: m1.clientURL}, "member", "list")
	if !strings.Contains(list, "peerURLs="+moved+" ") {
		t.Errorf("member list after update lacks %s:\n%s", moved, list)
	}
	r.do(leader, "--no-sync", "member", "remove", m4ID)
	r.leader = nil
	m4.kill()
	c.nodes = c.nodes[:3]
	c.waitPublished()
	list = ctl(t, &etcdtest.Server{ClientURL: m1.clientURL}, "member", "list")
	checkMemberList(t, list, 3)
	r.do(m1, "member", "list")

	// kill -9 m3 (whichever role it has): degraded, exit 5. If it led,
	// poll until the other two have elected a new leader and say healthy.
	t.Logf("m3 led: %v", leader == c.nodes[2])
	c.nodes[2].kill()
	survivor := c.nodes[1]
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		res = run(t.Context(), "", "--endpoints", survivor.clientURL, "cluster-health")
		if strings.Count(res.stdout, " is healthy") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("m1 and m2 never both healthy after m3 was killed (m3 led: %v); last cluster-health (exit %d):\n%s%s\n%s", leader == c.nodes[2], res.code, res.stdout, res.stderr, c.diag())
		}
	}
	r.record(survivor, res, "cluster-health")
	if res.code != 5 {
		t.Errorf("cluster-health with a dead member: exit %d, want 5:\n%s%s", res.code, res.stdout, res.stderr)
	}
	compareWithDebian(t, survivor, "cluster-health")
	compareGolden(t, "cluster", r.b.String())
}

// compareWithDebian runs args with our etcdctl and with Debian's against
// nd and requires identical raw bytes and exit codes.
func compareWithDebian(t *testing.T, nd *node, args ...string) {
	t.Helper()
	if _, err := os.Stat(debianEtcdctl); err != nil {
		t.Logf("SKIP comparison: %s not installed (apt-get install etcd-client)", debianEtcdctl)
		return
	}
	full := append([]string{"--endpoints", nd.clientURL}, args...)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ours, theirs := run(ctx, "", full...), runDebian(ctx, "", full...)
	if ours != theirs {
		t.Errorf("etcdctl %v: ours differs from Debian's:\nours   %+v\ntheirs %+v", args, ours, theirs)
	}
}

var reSynced = regexp.MustCompile(`(?m)^got endpoints\((.*)\) after sync$`)

// checkSync gives etcdctl one member's endpoint and checks (with --debug)
// that it synced to all members' client URLs, ours and Debian's alike.
func checkSync(t *testing.T, c *cluster, nd *node) {
	t.Helper()
	var want []string
	for _, n := range c.nodes {
		want = append(want, n.clientURL)
	}
	sort.Strings(want)
	runners := map[string]runner{"ours": run}
	if _, err := os.Stat(debianEtcdctl); err == nil {
		runners["debian"] = runDebian
	}
	for who, rn := range runners {
		res := rn(t.Context(), "", "--debug", "--endpoints", nd.clientURL, "get", "/nothing")
		m := reSynced.FindStringSubmatch(res.stderr)
		if m == nil {
			t.Errorf("%s etcdctl --debug printed no synced endpoints:\n%s", who, res.stderr)
			continue
		}
		got := strings.Split(m[1], ",")
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s etcdctl synced to %v, want %v", who, got, want)
		}
		if res.code != 4 {
			t.Errorf("%s etcdctl get /nothing: exit %d, want 4", who, res.code)
		}
	}
}

// watchFollower watches on a follower (--no-sync, so the watch really is
// served there) while the leader takes writes, and requires every event in
// write order.
func watchFollower(t *testing.T, leader, follower *node) {
	t.Helper()
	base := strconv.FormatUint(storeIndex(t, follower), 10)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"--no-sync", "--endpoints", follower.clientURL, "watch", "--recursive", "--forever", "--after-index", base, "/w"},
			strings.NewReader(""), &out, &errb)
	}()
	var want strings.Builder
	for i := 1; i <= 5; i++ {
		key := fmt.Sprintf("/w/k%d", i%2)
		res := run(t.Context(), "", "--no-sync", "--endpoints", leader.clientURL, "set", key, strconv.Itoa(i))
		if res.code != 0 {
			t.Fatalf("set on leader: exit %d: %s", res.code, res.stderr)
		}
		fmt.Fprintf(&want, "[set] %s\n%d\n", key, i)
	}
	res := run(t.Context(), "", "--no-sync", "--endpoints", leader.clientURL, "rm", "/w/k1")
	if res.code != 0 {
		t.Fatalf("rm on leader: exit %d: %s", res.code, res.stderr)
	}
	want.WriteString("[delete] /w/k1\nPrevNode.Value: 5\n")
	waitFor(t, 15*time.Second, "the follower's watch to see all writes", func() bool {
		return strings.Count(out.String(), "\n") >= strings.Count(want.String(), "\n")
	})
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("watch exit %d after cancel, want 0", code)
	}
	if out.String() != want.String() || errb.String() != "" {
		t.Errorf("watch on follower:\n%q\nwant\n%q\nstderr %q", out.String(), want.String(), errb.String())
	}
}

// storeIndex returns nd's X-Etcd-Index.
func storeIndex(t *testing.T, nd *node) uint64 {
	t.Helper()
	resp, err := http.Get(nd.clientURL + "/v2/keys/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	v, err := strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
	if err != nil {
		t.Fatalf("X-Etcd-Index: %v", err)
	}
	return v
}

// diag returns each member's /v2/stats/self and the end of its log.
func (c *cluster) diag() string {
	var b strings.Builder
	for _, nd := range c.nodes {
		fmt.Fprintf(&b, "== %s\n", nd.name)
		if resp, err := http.Get(nd.clientURL + "/v2/stats/self"); err == nil {
			body := make([]byte, 2048)
			n, _ := resp.Body.Read(body)
			resp.Body.Close()
			fmt.Fprintf(&b, "stats/self: %s\n", body[:n])
		}
		log, _ := os.ReadFile(nd.log)
		lines := strings.Split(string(log), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		b.WriteString(strings.Join(lines, "\n"))
	}
	return b.String()
}

// execWatchFollower runs exec-watch on a follower while a concurrent writer
// sets a key on the leader six times; every write must run the command
// once, and ordered by ETCD_WATCH_MODIFIED_INDEX the values must come in
// write order (the children themselves run concurrently).
func execWatchFollower(t *testing.T, leader, follower *node) {
	t.Helper()
	base := storeIndex(t, follower)
	file := filepath.Join(t.TempDir(), "events")
	script := `echo "$ETCD_WATCH_MODIFIED_INDEX $ETCD_WATCH_ACTION $ETCD_WATCH_KEY $ETCD_WATCH_VALUE" >> ` + file
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"--no-sync", "--endpoints", follower.clientURL, "exec-watch", "--recursive",
			"--after-index", strconv.FormatUint(base, 10), "/ex", "--", "sh", "-c", script}, strings.NewReader(""), &out, &errb)
	}()
	const writes = 6
	writerErr := make(chan string, 1)
	go func() {
		for i := 1; i <= writes; i++ {
			res := run(ctx, "", "--no-sync", "--endpoints", leader.clientURL, "set", "/ex/k", strconv.Itoa(i))
			if res.code != 0 {
				writerErr <- fmt.Sprintf("set %d on leader: exit %d: %s", i, res.code, res.stderr)
				return
			}
		}
		writerErr <- ""
	}()
	if e := <-writerErr; e != "" {
		t.Fatal(e)
	}
	read := func() []string {
		b, _ := os.ReadFile(file)
		if len(b) == 0 {
			return nil
		}
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	waitFor(t, 15*time.Second, "six exec-watch runs", func() bool { return len(read()) >= writes })
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exec-watch exit %d after cancel, want 0: %s", code, errb.String())
	}
	lines := read()
	sort.Slice(lines, func(i, j int) bool {
		a, _ := strconv.Atoi(strings.Fields(lines[i])[0])
		b, _ := strconv.Atoi(strings.Fields(lines[j])[0])
		return a < b
	})
	var got []string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 4 {
			t.Fatalf("exec-watch line %q", l)
		}
		got = append(got, strings.Join(f[1:], " "))
	}
	var want []string
	for i := 1; i <= writes; i++ {
		want = append(want, fmt.Sprintf("set /ex/k %d", i))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("exec-watch on follower ran for:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// TestClusterRemoveViaFollower removes a fourth member through a follower,
// then kills another follower at once: the remaining leader and follower
// are two of three members and must stay (or become) healthy.
func TestClusterRemoveViaFollower(t *testing.T) {
	for _, k := range []etcdtest.Kind{etcdtest.Ours, etcdtest.Reference} {
		t.Run(string(k), func(t *testing.T) {
			clearEnv(t)
			c := startCluster(t, k, 3)
			list := run(t.Context(), "", "--endpoints", c.nodes[0].clientURL, "member", "list").stdout
			leader := c.byClientURL(checkMemberList(t, list, 3))
			var followers []*node
			for _, nd := range c.nodes {
				if nd != leader {
					followers = append(followers, nd)
				}
			}
			m4 := c.newNode("m4")
			var res result
			waitFor(t, 20*time.Second, "member add to succeed", func() bool {
				res = run(t.Context(), "", "--no-sync", "--endpoints", leader.clientURL, "member", "add", "m4", m4.peerURL)
				return res.code == 0
			})
			m := reAddedID.FindStringSubmatch(res.stdout)
			initial := reInitial.FindStringSubmatch(res.stdout)
			if m == nil || initial == nil {
				t.Fatalf("member add output:\n%s", res.stdout)
			}
			c.nodes = append(c.nodes, m4)
			c.start(m4, initial[1], "existing")
			c.waitReady(m4)
			c.waitPublished()
			res = run(t.Context(), "", "--no-sync", "--endpoints", followers[0].clientURL, "member", "remove", m[1])
			if res.code != 0 {
				t.Fatalf("member remove via follower: exit %d: %s", res.code, res.stderr)
			}
			m4.kill()
			followers[1].kill()
			c.nodes = []*node{leader, followers[0]}
			for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				res = run(t.Context(), "", "--endpoints", leader.clientURL, "cluster-health")
				if strings.Count(res.stdout, " is healthy") == 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("leader and follower never both healthy; last cluster-health (exit %d):\n%s%s\n%s", res.code, res.stdout, res.stderr, c.diag())
				}
			}
		})
	}
}
