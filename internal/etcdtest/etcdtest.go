// Package etcdtest starts single-member etcd servers as real processes for
// tests: ours (built from ./etcd with internal/buildbin) or the reference,
// Debian's etcd-server 3.4 with --enable-v2. Both listen on free loopback
// ports, keep their data in a t.TempDir, and are killed by t.Cleanup.
//
// Tests that encode v2 behaviour should run against both (ForEach), so the
// suite proves it matches the reference rather than our guesses.
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/buildbin"
)

// ReferenceBinary is where Debian's etcd-server package installs etcd 3.4.
const ReferenceBinary = "/usr/bin/etcd"

// Kind names which implementation a Server runs.
type Kind string

const (
	Ours      Kind = "corekit"
	Reference Kind = "etcd-3.4"
)

// Server is one running member.
type Server struct {
	Kind      Kind
	Name      string
	ClientURL string // http://127.0.0.1:PORT
	PeerURL   string
	DataDir   string
	Binary    string
	Args      []string

	t         testing.TB
	mu        sync.Mutex
	cmd       *exec.Cmd
	log       *os.File
	restarted bool
}

var (
	builderOnce sync.Once
	builder     *buildbin.Builder
	builderErr  error
)

// OurBinary builds ./etcd once per test process and returns its path.
func OurBinary(t testing.TB) string {
	t.Helper()
	builderOnce.Do(func() { builder, builderErr = buildbin.New() })
	if builderErr != nil {
		t.Fatal(builderErr)
	}
	p, err := builder.Build(context.Background(), "etcd", "etcd")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// HaveReference reports whether Debian's etcd 3.4 is installed.
func HaveReference() bool {
	_, err := os.Stat(ReferenceBinary)
	return err == nil
}

// FreePort returns a TCP port on 127.0.0.1 that is free now and that no
// other corekit test process hands out until t ends.
//
// Asking the kernel for port 0 and closing the listener races: under a
// parallel `go test ./...` another process's outgoing connection or another
// test's server can take the port before our etcd binds it, and raft then
// talks to a stranger (seen in CI as peers timing out for a minute). So
// ports come from below the kernel's ephemeral range (never picked for
// outgoing connections), and each is reserved across processes with an
// flock on a file in os.TempDir()/corekit-test-ports, held until t's
// cleanup (or the process's death) releases it.
func FreePort(t testing.TB) int {
	t.Helper()
	p, release, err := reservePort()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return p
}

// portRange is where reserved test ports come from: [portLow, high) with
// high the start of the kernel's ephemeral range (32768 unless configured).
const portLow = 20000

func reservePort() (int, func(), error) {
	high := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil && lo > portLow+1000 {
				high = lo
			}
		}
	}
	dir := filepath.Join(os.TempDir(), "corekit-test-ports")
	if err := os.MkdirAll(dir, 0o1777); err != nil {
		return 0, nil, fmt.Errorf("etcdtest: port reservations: %w", err)
	}
	n := high - portLow
	start := int(time.Now().UnixNano()/1000+int64(os.Getpid())*7919) % n
	for i := 0; i < n; i++ {
		port := portLow + (start+i)%n
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			return 0, nil, fmt.Errorf("etcdtest: port reservations: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue // another test process holds it
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			f.Close() // in use by something outside our tests
			continue
		}
		l.Close()
		return port, func() { f.Close() }, nil
	}
	return 0, nil, fmt.Errorf("etcdtest: no free port in [%d,%d)", portLow, high)
}

// Start starts a single-member server of the given kind and waits until it
// answers /v2/keys. Extra args are appended to the command line. A missing
// reference binary skips the test with a loud message.
func Start(t testing.TB, kind Kind, extra ...string) *Server {
	t.Helper()
	return StartOn(t, kind, "127.0.0.1", extra...)
}

// StartOn is Start with the client URL bound to host only (e.g. the host's
// address on a test bridge, so that nspawn guests reach the server and
// nothing else does); peers stay on loopback.
func StartOn(t testing.TB, kind Kind, host string, extra ...string) *Server {
	t.Helper()
	s := &Server{Kind: kind, t: t, Name: "default"}
	switch kind {
	case Reference:
		if !HaveReference() {
			t.Skipf("SKIP: %s not installed (apt-get install etcd-server); .ci/run installs it", ReferenceBinary)
		}
		s.Binary = ReferenceBinary
	case Ours:
		s.Binary = OurBinary(t)
	default:
		t.Fatalf("etcdtest: unknown kind %q", kind)
	}
	s.DataDir = filepath.Join(t.TempDir(), "data.etcd")
	s.ClientURL = fmt.Sprintf("http://%s:%d", host, FreePort(t))
	s.PeerURL = fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
	s.Args = []string{
		"--name", s.Name,
		"--data-dir", s.DataDir,
		"--listen-client-urls", s.ClientURL,
		"--advertise-client-urls", s.ClientURL,
		"--listen-peer-urls", s.PeerURL,
		"--initial-advertise-peer-urls", s.PeerURL,
		"--initial-cluster", s.Name + "=" + s.PeerURL,
	}
	if kind == Reference {
		s.Args = append(s.Args, "--enable-v2", "--logger", "zap", "--log-outputs", "stderr")
	}
	s.Args = append(s.Args, extra...)
	s.start()
	t.Cleanup(s.Kill)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	logf, err := os.CreateTemp("", "etcdtest-*.log")
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.Binary, s.Args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("etcdtest: start %s: %v", s.Binary, err)
	}
	s.cmd, s.log = cmd, logf
	go cmd.Wait() //nolint:errcheck // reaped here; Kill waits on ProcessState via the pid
	if err := WaitReady(context.Background(), s.ClientURL, 20*time.Second); err != nil {
		s.t.Fatalf("etcdtest: %s not ready: %v\nlog:\n%s", s.Kind, err, s.Log())
	}
	if s.Kind == Reference && !s.restarted {
		// etcd 3.4 writes three internal entries into its v2 store after
		// it starts serving (member raft attributes, member attributes,
		// cluster version). Hand the server over only once they are in,
		// so that tests see a quiet store whose index does not move
		// under them.
		if err := waitIndexAtLeast(context.Background(), s.ClientURL, 3, 20*time.Second); err != nil {
			s.t.Fatalf("etcdtest: %s: %v\nlog:\n%s", s.Kind, err, s.Log())
		}
	}
}

// cleanEnv drops ETCD_* and ETCDCTL_* variables so the host cannot configure
// the server behind the test's back.
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

// Log returns what the server wrote to stdout and stderr so far.
func (s *Server) Log() string {
	if s.log == nil {
		return ""
	}
	b, _ := os.ReadFile(s.log.Name())
	return string(b)
}

// Kill sends SIGKILL (kill -9) and waits until the process is gone. Safe to
// call twice.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := s.cmd.Process.Signal(syscall.Signal(0)); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.log != nil {
		if testing.Verbose() {
			s.t.Logf("etcdtest: %s log:\n%s", s.Kind, s.Log())
		}
		s.log.Close()
		os.Remove(s.log.Name())
		s.log = nil
	}
	s.cmd = nil
}

// Restart starts the server again with the same arguments and data dir.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.restarted = true
	s.start()
}

// PID returns the process ID, or 0 when not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// WaitReady polls url until /v2/keys answers 200 and /v2/members/leader names
// a leader (a member may serve reads before its first election ends), or the
// timeout passes.
func WaitReady(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		last = nil
		for _, path := range []string{"/v2/keys/", "/v2/members/leader"} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				last = err
				break
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				last = fmt.Errorf("%s: status %d", path, resp.StatusCode)
				break
			}
		}
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitIndexAtLeast polls url/v2/keys until X-Etcd-Index reaches min.
func waitIndexAtLeast(ctx context.Context, url string, min uint64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var idx uint64
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v2/keys/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			idx, _ = strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
			if idx >= min {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("store index stayed at %d, want >= %d: %w", idx, min, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ForEach runs f as a subtest against our server and against the reference,
// each freshly started. Use it for every test that encodes v2 behaviour.
func ForEach(t *testing.T, f func(t *testing.T, s *Server), extra ...string) {
	for _, k := range []Kind{Ours, Reference} {
		t.Run(string(k), func(t *testing.T) {
			f(t, Start(t, k, extra...))
		})
	}
}
