package v2conformance

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
)

// etcdctlBinary is Debian's etcdctl 3.4, which speaks v2 with ETCDCTL_API=2.
const etcdctlBinary = "/usr/bin/etcdctl"

// TestEtcdctl runs Debian's etcdctl (v2 mode) against both servers.
func TestEtcdctl(t *testing.T) {
	if _, err := os.Stat(etcdctlBinary); err != nil {
		t.Skipf("SKIP: %s not installed (apt-get install etcd-client); .ci/run installs it", etcdctlBinary)
	}
	etcdtest.ForEach(t, testEtcdctl)
}

func testEtcdctl(t *testing.T, s *etcdtest.Server) {
	settle(t, s)
	ctl := func(args ...string) (string, string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, etcdctlBinary, append([]string{"--endpoints", s.ClientURL}, args...)...)
		cmd.Env = append(os.Environ(), "ETCDCTL_API=2")
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("etcdctl %v: %v", args, err)
		}
		return out.String(), errb.String(), code
	}
	expect := func(wantOut string, wantCode int, args ...string) {
		t.Helper()
		out, errOut, code := ctl(args...)
		if out != wantOut || code != wantCode {
			t.Errorf("etcdctl %s: exit %d out %q err %q, want exit %d out %q", strings.Join(args, " "), code, out, errOut, wantCode, wantOut)
		}
	}
	expect("1\n", 0, "set", "/ctl/a", "1")
	expect("1\n", 0, "get", "/ctl/a")
	expect("2\n", 0, "mk", "/ctl/b", "2")
	if _, errOut, code := ctl("mk", "/ctl/a", "x"); code != 4 || !strings.HasPrefix(errOut, "Error:  105: Key already exists (/ctl/a) [") {
		t.Errorf("mk existing: exit %d stderr %q", code, errOut)
	}
	if _, errOut, code := ctl("get", "/ctl/nope"); code != 4 || !strings.HasPrefix(errOut, "Error:  100: Key not found (/ctl/nope) [") {
		t.Errorf("get missing: exit %d stderr %q", code, errOut)
	}
	expect("", 0, "mkdir", "/ctl/d")
	expect("3\n", 0, "set", "/ctl/d/c", "3")
	expect("/ctl/a\n/ctl/b\n/ctl/d\n/ctl/d/c\n", 0, "ls", "--sort", "--recursive", "/ctl")
	expect("PrevNode.Value: 1\n", 0, "rm", "/ctl/a")
	expect("", 0, "rm", "--recursive", "/ctl/d")
	expect("/ctl/b\n", 0, "ls", "/ctl")

	// watch with a concurrent writer: etcdctl prints the new value and exits.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, etcdctlBinary, "--endpoints", s.ClientURL, "watch", "/ctl/w")
	cmd.Env = append(os.Environ(), "ETCDCTL_API=2")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// Write until the watcher (registered at some unknown moment) sees it.
	var got string
	for got == "" && ctx.Err() == nil {
		expect("hello\n", 0, "set", "/ctl/w", "hello")
		select {
		case got = <-lines:
		case <-time.After(300 * time.Millisecond):
		}
	}
	if got != "hello" {
		t.Errorf("etcdctl watch printed %q, want hello", got)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("etcdctl watch: %v", err)
	}
}
