package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/v2api"
)

// Raft timing of every test cluster (milliseconds): fast elections keep
// the tests short. Request timeout is 5 s + 2 × election.
const (
	heartbeatMs = 50
	electionMs  = 500
)

// member is one etcd process.
type member struct {
	Name      string
	PeerURL   string
	ClientURL string
	DataDir   string
	args      []string
	bin       string

	mu      sync.Mutex
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
}

// cluster is a set of members started from one static --initial-cluster.
type cluster struct {
	t       testing.TB
	kind    etcdtest.Kind
	bin     string
	Members []*member
}

func binary(t testing.TB, kind etcdtest.Kind) string {
	t.Helper()
	if kind == etcdtest.Reference {
		if !etcdtest.HaveReference() {
			t.Skip("SKIP: Debian's etcd 3.4 (" + etcdtest.ReferenceBinary + ") is not installed")
		}
		return etcdtest.ReferenceBinary
	}
	return etcdtest.OurBinary(t)
}

func newMember(t testing.TB, name string) *member {
	return &member{
		Name:      name,
		PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t)),
		ClientURL: fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t)),
		DataDir:   filepath.Join(t.TempDir(), name),
	}
}

func (m *member) baseArgs(kind etcdtest.Kind, initialCluster, state string) []string {
	a := []string{
		"--name", m.Name, "--data-dir", m.DataDir,
		"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
		"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
		"--initial-cluster", initialCluster, "--initial-cluster-state", state,
		"--initial-cluster-token", "cluster-test",
		"--heartbeat-interval", fmt.Sprint(heartbeatMs), "--election-timeout", fmt.Sprint(electionMs),
	}
	if kind == etcdtest.Reference {
		a = append(a, "--enable-v2", "--logger", "zap", "--log-outputs", "stderr")
	}
	return a
}

// startCluster starts n members and waits until they agree on a leader.
func startCluster(t testing.TB, kind etcdtest.Kind, n int) *cluster {
	t.Helper()
	c := &cluster{t: t, kind: kind, bin: binary(t, kind)}
	var parts []string
	for i := 1; i <= n; i++ {
		m := newMember(t, fmt.Sprintf("m%d", i))
		c.Members = append(c.Members, m)
		parts = append(parts, m.Name+"="+m.PeerURL)
	}
	for _, m := range c.Members {
		m.bin = c.bin
		m.args = m.baseArgs(kind, strings.Join(parts, ","), "new")
		m.start(t)
	}
	c.waitLeader(30 * time.Second)
	return c
}

func (m *member) start(t testing.TB) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.logPath == "" {
		m.logPath = m.DataDir + ".log"
	}
	lf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(m.bin, m.args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + os.TempDir()}
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		t.Fatalf("start %s: %v", m.Name, err)
	}
	m.cmd = cmd
	exited := make(chan struct{})
	m.exited = exited
	go func() {
		_ = cmd.Wait()
		lf.Close()
		close(exited)
	}()
	t.Cleanup(func() { m.kill() })
}

// kill sends SIGKILL (after SIGCONT, in case it is stopped) and waits.
func (m *member) kill() {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Kill()
	<-exited
}

// signal sends sig to the running process.
func (m *member) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		t.Fatalf("%s is not running", m.Name)
	}
	if err := m.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", m.Name, err)
	}
}

func (m *member) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd != nil
}

// logTail returns the end of the member's log for failure messages.
func (m *member) logTail() string {
	b, _ := os.ReadFile(m.logPath)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b)
}

func (c *cluster) dumpLogs() {
	for _, m := range c.Members {
		m.mu.Lock()
		state := "not started"
		if m.cmd != nil {
			state = "running"
			select {
			case <-m.exited:
				state = "EXITED on its own"
			default:
			}
		}
		m.mu.Unlock()
		c.t.Logf("--- log of %s (%s):\n%s", m.Name, state, m.logTail())
	}
}

// selfStats is the part of /v2/stats/self the tests read.
type selfStats struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	State      string `json:"state"`
	LeaderInfo struct {
		Leader string `json:"leader"`
	} `json:"leaderInfo"`
	RecvAppendRequestCnt uint64  `json:"recvAppendRequestCnt"`
	SendAppendRequestCnt uint64  `json:"sendAppendRequestCnt"`
	RecvPkgRate          float64 `json:"recvPkgRate"`
	SendPkgRate          float64 `json:"sendPkgRate"`
}

var quick = &http.Client{Timeout: 2 * time.Second}

func (m *member) self() (*selfStats, error) {
	resp, err := quick.Get(m.ClientURL + "/v2/stats/self")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var s selfStats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, err
	}
	return &s, nil
}

// waitLeader waits until every running member reports the same leader,
// which is one of them and says StateLeader, and returns it.
func (c *cluster) waitLeader(timeout time.Duration) *member {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var leader *member
		agree, ids := true, map[string]bool{}
		for _, m := range c.Members {
			if !m.running() {
				continue
			}
			s, err := m.self()
			if err != nil || s.LeaderInfo.Leader == "" {
				agree = false
				break
			}
			ids[s.LeaderInfo.Leader] = true
			if s.State == "StateLeader" && s.ID == s.LeaderInfo.Leader {
				leader = m
			}
		}
		if agree && len(ids) == 1 && leader != nil {
			return leader
		}
		if time.Now().After(deadline) {
			c.dumpLogs()
			c.t.Fatalf("no agreed leader after %v (seen %v)", timeout, ids)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *cluster) running() []*member {
	var out []*member
	for _, m := range c.Members {
		if m.running() {
			out = append(out, m)
		}
	}
	return out
}

// do sends a form request and decodes an event or a v2 error.
func do(ctx context.Context, hc *http.Client, method, u string, form url.Values) (int, *v2api.Event, *v2api.Error, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, nil, nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, nil, err
	}
	if resp.StatusCode >= 300 {
		var e v2api.Error
		if json.Unmarshal(b, &e) != nil {
			return resp.StatusCode, nil, nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
		}
		return resp.StatusCode, nil, &e, nil
	}
	var ev v2api.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return resp.StatusCode, nil, nil, fmt.Errorf("bad body %q: %w", b, err)
	}
	return resp.StatusCode, &ev, nil, nil
}

func put(ctx context.Context, hc *http.Client, base, key, value string, extra url.Values) (int, *v2api.Event, *v2api.Error, error) {
	form := url.Values{"value": {value}}
	for k, v := range extra {
		form[k] = v
	}
	return do(ctx, hc, http.MethodPut, base+"/v2/keys"+key, form)
}

func get(ctx context.Context, hc *http.Client, base, key string, quorum bool) (int, *v2api.Event, *v2api.Error, error) {
	u := base + "/v2/keys" + key
	if quorum {
		u += "?quorum=true"
	}
	return do(ctx, hc, http.MethodGet, u, nil)
}

// listDir returns key → value under dir on m (a local read, or quorum).
func listDir(ctx context.Context, base, dir string, quorum bool) (map[string]string, error) {
	u := base + "/v2/keys" + dir + "?recursive=true"
	if quorum {
		u += "&quorum=true"
	}
	code, ev, verr, err := do(ctx, &http.Client{Timeout: 10 * time.Second}, http.MethodGet, u, nil)
	switch {
	case err != nil:
		return nil, err
	case verr != nil && verr.ErrorCode == v2api.EcodeKeyNotFound:
		return map[string]string{}, nil
	case verr != nil:
		return nil, fmt.Errorf("HTTP %d: %s", code, verr.Message)
	}
	out := map[string]string{}
	for _, n := range ev.Node.Nodes {
		out[n.Key] = n.StringValue()
	}
	return out, nil
}
