package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/buildbin"
	"github.com/corekit/corekit/internal/etcdtest"
)

// startService runs corekit's discovery service (./discovery) as a process
// backed by s and returns its base URL.
func startService(t *testing.T, s *etcdtest.Server) string {
	t.Helper()
	b, err := buildbin.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Cleanup)
	bin, err := b.Build(t.Context(), "discovery", "discovery")
	if err != nil {
		t.Skipf("SKIP: the discovery service does not build yet: %v", err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t))
	cmd := exec.Command(bin, "--etcd", s.ClientURL, "--addr", strings.TrimPrefix(base, "http://"), "--host", base)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("discovery service not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func newToken(t *testing.T, base string, size int) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/new?size=%d", base, size))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("/new: %s %s", resp.Status, b)
	}
	tok := strings.TrimSpace(string(b))
	if !strings.HasPrefix(tok, base+"/") {
		t.Fatalf("/new returned %q, want a URL under %s", tok, base)
	}
	return tok
}

func TestJoinOnDiscoveryService(t *testing.T) {
	s := etcdtest.Start(t, etcdtest.Reference)
	base := startService(t, s)

	tok := newToken(t, base, 3)
	logs := &logBuffer{}
	cluster := joinThree(t, tok, logs)
	if _, err := Join(t.Context(), member(tok, "m3", 12383, nil)); !errors.Is(err, ErrFull) {
		t.Fatalf("4th member: %v, want ErrFull", err)
	}
	if got, err := GetCluster(t.Context(), Config{DiscoveryURL: tok}); err != nil || got != cluster {
		t.Fatalf("GetCluster = %q, %v; want %q", got, err, cluster)
	}

	one := newToken(t, base, 1)
	cfg := member(one, "solo", 1, nil)
	if got, err := Join(t.Context(), cfg); err != nil || got != "solo=http://127.0.0.1:1" {
		t.Fatalf("Join = %q, %v", got, err)
	}
	if _, err := Join(t.Context(), cfg); !errors.Is(err, ErrDuplicateID) {
		t.Fatalf("second Join: %v, want ErrDuplicateID", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// A service token is never defaulted, even with DefaultSize set.
	unknown := member(base+"/0123456789abcdef0123456789abcdef", "m1", 1, nil)
	unknown.DefaultSize = 3
	_, err := Join(ctx, unknown)
	if !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("unknown token: %v, want ErrTokenNotFound", err)
	}
}
