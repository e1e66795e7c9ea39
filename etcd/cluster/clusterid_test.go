package cluster

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
)

// TestClusterIDMismatch points two separately bootstrapped members at each
// other: b is a single-member cluster (token tok-b); a bootstraps
// "a,b" with token tok-a, so its data dir belongs to another cluster than
// its only peer. a logs both IDs and exits non-zero; b refuses a peer
// request carrying a foreign X-Etcd-Cluster-ID with 412 and a log line.
func TestClusterIDMismatch(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: multi-process test (-short)")
	}
	bin := binary(t, etcdtest.Ours)
	a, b := newMember(t, "a"), newMember(t, "b")
	args := func(m *member, ic, token string) []string {
		return []string{
			"--name", m.Name, "--data-dir", m.DataDir,
			"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--initial-cluster", ic, "--initial-cluster-token", token,
			"--heartbeat-interval", "50", "--election-timeout", "500",
		}
	}
	b.bin, b.args = bin, args(b, "b="+b.PeerURL, "tok-b")
	b.start(t)
	cb := &cluster{t: t, kind: etcdtest.Ours, bin: bin, Members: []*member{b}}
	cb.waitLeader(30 * time.Second)

	resp, err := quick.Get(b.PeerURL + "/members")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	bID := resp.Header.Get("X-Etcd-Cluster-ID")
	if bID == "" {
		t.Fatal("b's /members has no X-Etcd-Cluster-ID")
	}

	// A forwarded proposal from "another cluster" is refused and logged.
	req, _ := http.NewRequest(http.MethodPost, b.PeerURL+"/corekit/propose", strings.NewReader("x"))
	req.Header.Set("X-Etcd-Cluster-ID", "deadbeef")
	resp, err = quick.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPreconditionFailed || strings.TrimSpace(string(body)) != "cluster ID mismatch" ||
		resp.Header.Get("X-Etcd-Cluster-ID") != bID {
		t.Fatalf("foreign proposal: %d %q header %q", resp.StatusCode, body, resp.Header.Get("X-Etcd-Cluster-ID"))
	}
	want := "request cluster ID mismatch (got deadbeef want " + bID + ")"
	waitLog(t, b, want)

	a.bin, a.args = bin, args(a, "a="+a.PeerURL+",b="+b.PeerURL, "tok-a")
	a.start(t)
	select {
	case <-a.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("a kept running although its only peer is in another cluster:\n%s", a.logTail())
	}
	if code := a.cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("a exited with 0")
	}
	log := a.logTail()
	if !strings.Contains(log, "but all its peers report cluster "+bID+"; refusing to serve") ||
		strings.Contains(log, "belongs to cluster "+bID+" ") {
		t.Errorf("a's log lacks the mismatch line naming both IDs (b=%s):\n%s", bID, log)
	}
	// b is unaffected.
	if _, err := b.self(); err != nil || !b.running() {
		t.Errorf("b stopped: %v", err)
	}
}

// waitLog polls m's log for want.
func waitLog(t *testing.T, m *member, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(m.logTail(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s's log lacks %q:\n%s", m.Name, want, m.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
