package etcdctlmain

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
)

// ctl runs our etcdctl against s and fails the test on a non-zero exit.
func ctl(t *testing.T, s *etcdtest.Server, args ...string) string {
	t.Helper()
	r := run(t.Context(), "", append([]string{"--endpoints", s.ClientURL}, args...)...)
	if r.code != 0 {
		t.Fatalf("etcdctl %v: exit %d: %s", args, r.code, r.stderr)
	}
	return r.stdout
}

// startCtl runs etcdctl in the background; wait returns its exit code.
func startCtl(ctx context.Context, s *etcdtest.Server, out, errOut *syncBuffer, args ...string) (wait func() int) {
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, append([]string{"--endpoints", s.ClientURL}, args...), strings.NewReader(""), out, errOut)
	}()
	return func() int { return <-done }
}

// TestWatchRecursiveForever reproduces the spec's transcript: set, set,
// delete, a directory (skipped), a create with a TTL that expires.
func TestWatchRecursiveForever(t *testing.T) {
	servers(t, func(t *testing.T, s *etcdtest.Server) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		var out, errb syncBuffer
		// a write first, so that base is never 0: --after-index 0 means
		// "from now", and a fresh store of ours starts at index 0.
		ctl(t, s, "set", "/w-seed", "x")
		base := newNormalizer(t, s).base
		// --after-index makes the watch independent of when the goroutine starts
		wait := startCtl(ctx, s, &out, &errb, "watch", "--recursive", "--forever", "--after-index", fmt.Sprint(base), "/w")
		ctl(t, s, "set", "/w/k", "v1")
		ctl(t, s, "set", "/w/k", "v2")
		ctl(t, s, "rm", "/w/k")
		ctl(t, s, "mkdir", "/w/dir")
		ctl(t, s, "mk", "--ttl", "1", "/w/t", "x")
		want := "[set] /w/k\nv1\n[set] /w/k\nv2\n[delete] /w/k\nPrevNode.Value: v2\n[create] /w/t\nx\n[expire] /w/t\n\n"
		waitFor(t, 20*time.Second, "the expire event", func() bool { return strings.Count(out.String(), "\n") >= strings.Count(want, "\n") })
		cancel() // Ctrl-C
		if code := wait(); code != 0 {
			t.Errorf("exit %d after cancel, want 0", code)
		}
		if out.String() != want || errb.String() != "" {
			t.Fatalf("watch output:\n%q\nwant\n%q\nstderr %q", out.String(), want, errb.String())
		}
	})
}

// TestWatchOnce: without --forever the first event ends the command; with
// -o extended the Index line is the watch's X-Etcd-Index.
func TestWatchOnce(t *testing.T) {
	servers(t, func(t *testing.T, s *etcdtest.Server) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		ctl(t, s, "set", "/once", "0")
		n := newNormalizer(t, s)
		var out, errb syncBuffer
		wait := startCtl(ctx, s, &out, &errb, "-o", "json", "watch", "--after-index", fmt.Sprint(n.base), "/once")
		ctl(t, s, "set", "/once", "1")
		ctl(t, s, "set", "/once", "2")
		if code := wait(); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		want := `{"action":"set","node":{"key":"/once","value":"1","nodes":null,"createdIndex":<i+1>,"modifiedIndex":<i+1>},"prevNode":{"key":"/once","value":"0","nodes":null,"createdIndex":<i+0>,"modifiedIndex":<i+0>}}` + "\n"
		if got := n.apply(out.String()); got != want {
			t.Fatalf("got %q\nwant %q", got, want)
		}

		// a watch on history that is gone: 401, exit 4
		for i := 0; i < 1005; i++ {
			if _, err := httpPut(s.ClientURL+"/v2/keys/churn", "x"); err != nil {
				t.Fatal(err)
			}
		}
		r := run(ctx, "", "--endpoints", s.ClientURL, "watch", "--after-index", "1", "/once")
		if r.code != 4 || !strings.HasPrefix(r.stderr, "Error:  401: The event in requested index is outdated and cleared (the requested history has been cleared [") {
			t.Fatalf("cleared history: exit %d %q", r.code, r.stderr)
		}
	})
}

// TestExecWatch runs a shell per event with the ETCD_WATCH_* environment,
// with a concurrent writer, and checks --after-index waits after exactly N
// (etcdctl 2.3.8 skipped one more event).
func TestExecWatch(t *testing.T) {
	servers(t, func(t *testing.T, s *etcdtest.Server) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		file := filepath.Join(t.TempDir(), "events")
		script := `echo "$ETCD_WATCH_MODIFIED_INDEX $ETCD_WATCH_ACTION $ETCD_WATCH_KEY [$ETCD_WATCH_VALUE]" >> ` + file
		// a write first, so that base is never 0: --after-index 0 means
		// "from now" in etcdctl, and a fresh store of ours starts at 0.
		ctl(t, s, "set", "/ew-seed", "x")
		base := newNormalizer(t, s).base
		// these happen before the watcher starts; --after-index replays them
		ctl(t, s, "set", "/ew/a", "one")
		ctl(t, s, "mkdir", "/ew/dir")
		var out, errb syncBuffer
		wait := startCtl(ctx, s, &out, &errb, "exec-watch", "--recursive", "--after-index", fmt.Sprint(base), "/ew", "--", "sh", "-c", script)
		go func() {
			for _, args := range [][]string{{"set", "/ew/b", "two"}, {"rm", "/ew/a"}} {
				r := run(ctx, "", append([]string{"--endpoints", s.ClientURL}, args...)...)
				if r.code != 0 {
					t.Errorf("writer %v: %d %s", args, r.code, r.stderr)
				}
			}
		}()
		read := func() []string {
			b, _ := os.ReadFile(file)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			sort.Strings(lines) // children run concurrently
			return lines
		}
		waitFor(t, 20*time.Second, "three exec-watch runs", func() bool { return len(read()) >= 3 && read()[0] != "" })
		cancel()
		if code := wait(); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		want := []string{
			fmt.Sprintf("%d set /ew/a [one]", base+1),
			fmt.Sprintf("%d set /ew/b [two]", base+3),
			fmt.Sprintf("%d delete /ew/a []", base+4),
		}
		sort.Strings(want)
		if got := read(); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("events:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if errb.String() != "Ignored dir /ew/dir change\n" {
			t.Fatalf("stderr %q", errb.String())
		}
	})
}

// TestExecWatchArgs: the key is the first argument before "--", the last
// argument without it; too few arguments is a usage error.
func TestExecWatchArgs(t *testing.T) {
	clearEnv(t)
	r := run(t.Context(), "", "--endpoints", "http://127.0.0.1:1", "exec-watch", "/k")
	if r.code != 1 || r.stderr != "Error:  key and command to exec required\n" {
		t.Fatalf("%d %q", r.code, r.stderr)
	}
}

func httpPut(u, v string) (int, error) {
	req, _ := http.NewRequest(http.MethodPut, u, strings.NewReader("value="+v))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
