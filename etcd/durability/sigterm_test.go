package durability

import (
	"bytes"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
)

// TestSIGTERMShutsDownGracefully sends SIGTERM (and SIGINT) to the real
// binary: it must exit 0 promptly, and a restart on the same data dir must
// find the data (the data dir lock and the log were released cleanly).
func TestSIGTERMShutsDownGracefully(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: process-level test (-short)")
	}
	bin := etcdtest.OurBinary(t)
	dir := filepath.Join(t.TempDir(), "data.etcd")
	for i, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		client := fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t))
		peer := fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t))
		cmd := exec.Command(bin, "--data-dir", dir,
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", "default="+peer)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		if err := etcdtest.WaitReady(t.Context(), client, 20*time.Second); err != nil {
			t.Fatalf("not ready: %v\n%s", err, out.String())
		}
		key := fmt.Sprintf("/sig%d", i)
		if _, err := putKey(t.Context(), client, key, url.Values{"value": {"kept"}}); err != nil {
			t.Fatal(err)
		}
		if i > 0 { // the previous run's key survived the graceful stop
			if got := list(t, client, "/"); got["/sig0"] == nil || got["/sig0"].StringValue() != "kept" {
				t.Errorf("key written before %v missing after restart: %v", syscall.SIGTERM, got)
			}
		}
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("exit after %v: %v\n%s", sig, err, out.String())
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("still running 15 s after %v\n%s", sig, out.String())
		}
		if !bytes.Contains(out.Bytes(), []byte("etcdmain: stopped")) {
			t.Errorf("no shutdown log after %v:\n%s", sig, out.String())
		}
	}
}
