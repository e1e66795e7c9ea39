package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
)

// TestDiscoveryKeysURLWithoutSize is seed 001's bootstrap: three members
// given `--discovery http://<host etcd>/v2/keys/<uuid>` where nobody set
// _config/size (etcd 0.4 had none). They assume the default size of 3
// (--discovery-default-size, a corekit extension), warn about it, and form
// one cluster.
func TestDiscoveryKeysURLWithoutSize(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: multi-process cluster test (-short)")
	}
	host := etcdtest.Start(t, etcdtest.Ours)
	token := host.ClientURL + "/v2/keys/" + fmt.Sprintf("seed001-%d", time.Now().UnixNano())
	c := &cluster{t: t, kind: etcdtest.Ours, bin: binary(t, etcdtest.Ours)}
	for i := 1; i <= 3; i++ {
		m := newMember(t, fmt.Sprintf("d%d", i))
		m.bin = c.bin
		m.args = []string{
			"--name", m.Name, "--data-dir", m.DataDir,
			"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--discovery", token,
			"--heartbeat-interval", fmt.Sprint(heartbeatMs), "--election-timeout", fmt.Sprint(electionMs),
		}
		c.Members = append(c.Members, m)
	}
	for _, m := range c.Members {
		m.start(t)
	}
	leader := c.waitLeader(60 * time.Second)

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	regs, err := listDir(ctx, host.ClientURL, strings.TrimPrefix(token, host.ClientURL+"/v2/keys"), false)
	if err != nil {
		t.Fatalf("list registrations: %v", err)
	}
	if len(regs) != 3 {
		t.Fatalf("registrations under the token: %v, want 3", regs)
	}
	for _, m := range c.Members {
		resp, err := quick.Get(m.ClientURL + "/v2/members")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /v2/members: %d", m.Name, resp.StatusCode)
		}
		b, _ := os.ReadFile(m.logPath)
		if want := "no size configured under " + token + ", assuming 3 members"; !strings.Contains(string(b), want) {
			t.Errorf("%s log lacks %q:\n%s", m.Name, want, m.logTail())
		}
	}
	if code, _, e, err := put(ctx, quick, leader.ClientURL, "/seed001", "ok", nil); err != nil || code != http.StatusCreated {
		t.Fatalf("write: %d %v %v", code, e, err)
	}
}

// TestDiscoveryUnknownKeysURLDisabledDefault: with
// --discovery-default-size 0 a keys URL without a size fails as in etcd
// 2.x, ending the member with "token not found". (Discovery service tokens
// are never defaulted; internal/discovery's tests cover that.)
func TestDiscoveryUnknownKeysURLDisabledDefault(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: multi-process test (-short)")
	}
	host := etcdtest.Start(t, etcdtest.Ours)
	token := host.ClientURL + "/v2/keys/" + fmt.Sprintf("nosize-%d", time.Now().UnixNano())
	m := newMember(t, "x1")
	m.bin = binary(t, etcdtest.Ours)
	m.args = []string{
		"--name", m.Name, "--data-dir", m.DataDir,
		"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
		"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
		"--discovery", token, "--discovery-default-size", "0", "--discovery-fallback", "exit",
	}
	m.start(t)
	select {
	case <-m.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("member kept running with the default size disabled:\n%s", m.logTail())
	}
	if !strings.Contains(m.logTail(), "token not found") {
		t.Errorf("log lacks 'token not found':\n%s", m.logTail())
	}
}
