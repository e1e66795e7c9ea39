package torture

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/corekit/corekit/etcd/torture/internal/syncfail"
)

// Impl names the etcd implementation under test.
type Impl string

// The implementations Run knows how to start.
const (
	Ours      Impl = "ours"
	Reference Impl = "reference"
)

// ReferenceBinary is Debian's etcd-server 3.4, served with --enable-v2.
const ReferenceBinary = "/usr/bin/etcd"

type memberState int

const (
	running memberState = iota
	killed
	paused
)

// member is one etcd process inside its own network namespace.
type member struct {
	idx     int
	name    string
	ns      string
	ip      string
	dataDir string
	logPath string
	args    []string
	binary  string
	// clockFile is our etcd's --experimental-clock-offset-file (empty: no
	// clock hook); tmpfs tells whether dataDir is a tmpfs of its own.
	clockFile string
	tmpfs     bool
	// syncSup, when set, decides the member's fsyncs: it runs under the
	// syncfail wrapper (wrapper, then its socket) .
	syncSup *syncfail.Supervisor
	wrapper []string

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
	state memberState
}

func (m *member) clientURL() string { return "http://" + m.ip + ":2379" }

// cluster is N members on a network.
type cluster struct {
	impl    Impl
	nw      *network
	members []*member
}

func newCluster(impl Impl, binary string, nw *network, dir string, token string) *cluster {
	c := &cluster{impl: impl, nw: nw}
	var ic []string
	for i := range nw.ns {
		ic = append(ic, fmt.Sprintf("m%d=http://%s:2380", i, nw.ip(i)))
	}
	for i, ns := range nw.ns {
		m := &member{idx: i, name: fmt.Sprintf("m%d", i), ns: ns, ip: nw.ip(i), binary: binary,
			dataDir: filepath.Join(dir, fmt.Sprintf("m%d.etcd", i)),
			logPath: filepath.Join(dir, fmt.Sprintf("m%d.log", i))}
		m.args = []string{
			"--name", m.name,
			"--data-dir", m.dataDir,
			"--listen-client-urls", m.clientURL(),
			"--advertise-client-urls", m.clientURL(),
			"--listen-peer-urls", "http://" + m.ip + ":2380",
			"--initial-advertise-peer-urls", "http://" + m.ip + ":2380",
			"--initial-cluster", strings.Join(ic, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", token,
		}
		if impl == Reference {
			m.args = append(m.args, "--enable-v2", "--logger", "zap", "--log-outputs", "stderr")
		}
		c.members = append(c.members, m)
	}
	return c
}

// start launches the member's process (again, after a kill).
func (m *member) start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("torture: %w", err)
	}
	fmt.Fprintf(logf, "\n=== torture: start %s %s\n", m.name, time.Now().Format(time.RFC3339Nano))
	argv := append(append([]string{"netns", "exec", m.ns}, m.wrapper...), m.binary)
	cmd := exec.Command("ip", append(argv, m.args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("torture: start %s: %w", m.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	m.cmd, m.done, m.state = cmd, done, running
	return nil
}

// signal sends sig to the process (ip netns exec execs the binary, so the
// pid is etcd's own).
func (m *member) signal(sig syscall.Signal) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return fmt.Errorf("torture: %s not running", m.name)
	}
	return m.cmd.Process.Signal(sig)
}

// kill sends SIGKILL and waits for the process to be gone.
func (m *member) kill() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd, m.state = nil, killed
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Process.Signal(syscall.SIGCONT)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

func (m *member) pause() error {
	if err := m.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	m.mu.Lock()
	m.state = paused
	m.mu.Unlock()
	return nil
}

func (m *member) resume() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || m.state != paused {
		return nil
	}
	m.state = running
	return m.cmd.Process.Signal(syscall.SIGCONT)
}

// exited reports whether the process died on its own (not by our kill).
func (m *member) exited() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ETCD_") || strings.HasPrefix(kv, "ETCDCTL_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (c *cluster) startAll() error {
	for _, m := range c.members {
		if err := m.start(); err != nil {
			return err
		}
	}
	return nil
}

func (c *cluster) killAll() {
	for _, m := range c.members {
		m.kill()
	}
}

// waitHealthy waits until every member answers a plain read and one
// member answers a quorum read (so a leader exists and a quorum is up).
func (c *cluster) waitHealthy(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl := newClient(2 * time.Second)
	defer cl.close()
	wait := func(m *member, q url.Values) error {
		for {
			r, err := cl.do(ctx, http.MethodGet, m.clientURL(), "/", q, nil)
			if err == nil && r.status == http.StatusOK {
				return nil
			}
			if m.exited() {
				return fmt.Errorf("torture: %s exited; log %s", m.name, m.logPath)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("torture: %s not healthy: %w (last: %v)", m.name, ctx.Err(), describe(r, err))
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	for _, m := range c.members {
		if err := wait(m, nil); err != nil {
			return err
		}
	}
	for {
		for _, m := range c.members {
			r, err := cl.do(ctx, http.MethodGet, m.clientURL(), "/", url.Values{"quorum": {"true"}}, nil)
			if err == nil && r.status == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("torture: no member answers a quorum read: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func describe(r *response, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case r.err != nil:
		return r.err.Error()
	}
	return fmt.Sprintf("status %d", r.status)
}

// leader returns the index of the member that says it leads, or -1.
func (c *cluster) leader(ctx context.Context) int {
	for _, m := range c.members {
		if c.leaderOf(ctx, m) {
			return m.idx
		}
	}
	return -1
}

// leaderOf reports whether m says (in /v2/stats/self) that it leads.
func (c *cluster) leaderOf(ctx context.Context, m *member) bool {
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.clientURL()+"/v2/stats/self", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var st struct {
		State string `json:"state"`
	}
	return json.NewDecoder(resp.Body).Decode(&st) == nil && st.State == "StateLeader"
}
