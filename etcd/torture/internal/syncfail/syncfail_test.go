package syncfail

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/buildbin"
)

// TestSupervisorFailsFsync runs dd with conv=fsync under the wrapper: its
// fsync succeeds while the supervisor lets calls run and fails with EIO
// while SetFail(true).
func TestSupervisorFailsFsync(t *testing.T) {
	dd, err := exec.LookPath("dd")
	if err != nil {
		t.Skip("SKIP: dd not installed")
	}
	wrapper, sock, s, dir := supervised(t)
	run := func() (string, error) {
		out, err := exec.Command(wrapper, sock, dd, "if=/dev/zero", "of="+filepath.Join(dir, "f"), "bs=512", "count=1", "conv=fsync").CombinedOutput()
		return string(out), err
	}
	if out, err := run(); err != nil {
		if strings.Contains(out, "seccomp") {
			t.Skipf("SKIP: seccomp user notification unavailable: %s", out)
		}
		t.Fatalf("fsync allowed: dd failed: %v\n%s", err, out)
	}
	s.SetFail(true)
	out, err := run()
	if err == nil || !strings.Contains(out, "Input/output error") {
		t.Fatalf("fsync failing: dd err=%v, output:\n%s\nwant an Input/output error", err, out)
	}
	if s.Failed() == 0 {
		t.Error("Failed() = 0 after a failed fsync")
	}
	s.SetFail(false)
	if out, err := run(); err != nil {
		t.Fatalf("fsync allowed again: dd failed: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "f")); err != nil {
		t.Error(err)
	}
}

// TestSupervisorSurvivesSignals: a long-lived process that is signalled
// while its fsyncs wait for the supervisor must keep getting answers. The
// first version stopped serving when a receive failed with ENOENT (the
// caller was interrupted by a signal — Go's runtime sends itself SIGURG all
// the time), after which every fsync failed with ENOSYS and etcd 3.4 exited
// ("failed to save Raft hard state and entries: function not implemented")
// in a torture run (reference, seed 10501) outside any fault.
func TestSupervisorSurvivesSignals(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("SKIP: python3 not installed")
	}
	wrapper, sock, _, dir := supervised(t)
	script := `import os, signal, sys
signal.signal(signal.SIGUSR1, lambda *a: None)
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT)
print("ready", flush=True)
for i in range(3000):
    os.write(fd, b"x")
    os.fsync(fd)
print("done", flush=True)
sys.stdin.read()
`
	cmd := exec.Command(wrapper, sock, py, "-c", script, filepath.Join(dir, "f"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	buf := make([]byte, 6)
	if _, err := io.ReadFull(stdout, buf); err != nil {
		t.Fatalf("no ready line: %v; stderr:\n%s", err, stderr.String())
	}
	// The loop prints "done" and then waits for stdin to close, so no
	// signal arrives while it exits.
	done := make(chan error, 1)
	go func() {
		b, err := io.ReadAll(io.LimitReader(stdout, 5))
		if err == nil && string(b) != "done\n" {
			err = fmt.Errorf("output %q, want done", b)
		}
		done <- err
	}()
	signals := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				cmd.Process.Kill()
				werr := cmd.Wait()
				t.Fatalf("fsync loop under signals failed: %v / %v (after %d signals)\n%s", err, werr, signals, stderr.String())
			}
			stdin.Close()
			if err := cmd.Wait(); err != nil {
				t.Fatalf("exit: %v\n%s", err, stderr.String())
			}
			if signals == 0 {
				t.Log("note: the loop ended before any signal was sent")
			}
			return
		case <-time.After(time.Millisecond):
			if cmd.Process.Signal(syscall.SIGUSR1) == nil {
				signals++
			}
		}
	}
}

// supervised builds the wrapper and starts a supervisor on a socket in a
// fresh directory, closed when t ends.
func supervised(t *testing.T) (wrapper, sock string, s *Supervisor, dir string) {
	t.Helper()
	b, err := buildbin.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Cleanup)
	wrapper, err = b.Build(context.Background(), "etcd/torture/syncfail", "syncfail")
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	sock = filepath.Join(dir, "s.sock")
	if s, err = Listen(sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return wrapper, sock, s, dir
}
