package etcdctlmain

import (
	"fmt"
	"strings"
	"testing"

	"github.com/corekit/corekit/internal/etcdtest"
)

// TestEndpointPrecedence: --endpoints, ETCDCTL_ENDPOINTS, --endpoint,
// ETCDCTL_ENDPOINT, --peers/-C, ETCDCTL_PEERS; the first one set wins. A
// dead endpoint in the winning position makes the command fail with exit 2
// (sync failed with connection errors), so each case proves which won.
func TestEndpointPrecedence(t *testing.T) {
	s := etcdtest.Start(t, etcdtest.Reference)
	dead := fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t))
	good := s.ClientURL
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want int
	}{
		{"flag beats env", map[string]string{"ETCDCTL_ENDPOINTS": dead}, []string{"--endpoints", good}, 0},
		{"env endpoints beats endpoint flag", map[string]string{"ETCDCTL_ENDPOINTS": good}, []string{"--endpoint", dead}, 0},
		{"endpoint flag beats env endpoint", map[string]string{"ETCDCTL_ENDPOINT": dead}, []string{"--endpoint", good}, 0},
		{"env endpoint beats peers", map[string]string{"ETCDCTL_ENDPOINT": good}, []string{"-C", dead}, 0},
		{"peers flag beats env peers", map[string]string{"ETCDCTL_PEERS": dead}, []string{"--peers", good}, 0},
		{"env peers", map[string]string{"ETCDCTL_PEERS": good}, nil, 0},
		{"dead wins", map[string]string{"ETCDCTL_PEERS": good}, []string{"--endpoints", dead}, 2},
		{"scheme defaults to http", nil, []string{"--endpoints", strings.TrimPrefix(good, "http://")}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			r := run(t.Context(), "", append(c.args, "ls", "/")...)
			if r.code != c.want {
				t.Fatalf("exit %d, want %d; stderr %q", r.code, c.want, r.stderr)
			}
		})
	}
}

// TestConnectionErrors: a failed sync exits 2; with --no-sync the same
// failure is a command failure, exit 4; both print the cluster error and
// its per-endpoint detail.
func TestConnectionErrors(t *testing.T) {
	clearEnv(t)
	dead := fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t))
	line := fmt.Sprintf("dial tcp %s: connect: connection refused", strings.TrimPrefix(dead, "http://"))
	want := "Error:  client: etcd cluster is unavailable or misconfigured; error #0: " + line + "\n\nerror #0: " + line + "\n\n"
	r := run(t.Context(), "", "--endpoints", dead, "get", "/a")
	if r.code != 2 || r.stderr != want || r.stdout != "" {
		t.Fatalf("sync failure: %d %q", r.code, r.stderr)
	}
	r = run(t.Context(), "", "--no-sync", "--endpoints", dead, "get", "/a")
	if r.code != 4 || r.stderr != want {
		t.Fatalf("no-sync failure: %d %q", r.code, r.stderr)
	}
	r = run(t.Context(), "", "--endpoints", dead, "cluster-health")
	if r.code != 4 || r.stdout != "cluster may be unhealthy: failed to list members\n" || r.stderr != want {
		t.Fatalf("cluster-health: %d %q %q", r.code, r.stdout, r.stderr)
	}
}

// TestSyncAndDebug: without --no-sync the endpoints are replaced by the
// advertised client URLs (so a second, unreachable endpoint disappears);
// --debug prints the sync and each request as a curl command.
func TestSyncAndDebug(t *testing.T) {
	clearEnv(t)
	s := etcdtest.Start(t, etcdtest.Reference)
	dead := fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t))
	r := run(t.Context(), "", "--debug", "--endpoints", s.ClientURL+","+dead, "set", "/dbg", "v")
	want := fmt.Sprintf("start to sync cluster using endpoints(%[1]s,%[2]s)\n"+
		"cURL Command: curl -X GET %[1]s/v2/members\n"+
		"got endpoints(%[1]s) after sync\n"+
		"Cluster-Endpoints: %[1]s\n"+
		"cURL Command: curl -X PUT %[1]s/v2/keys/dbg -d \"value=v\"\n", s.ClientURL, dead)
	if r.code != 0 || r.stdout != "v\n" || r.stderr != want {
		t.Fatalf("debug: %d %q\n%q\nwant\n%q", r.code, r.stdout, r.stderr, want)
	}
	r = run(t.Context(), "", "--debug", "--no-sync", "--endpoints", s.ClientURL+","+dead, "get", "/dbg")
	want = fmt.Sprintf("Cluster-Endpoints: %[1]s, %[2]s\ncURL Command: curl -X GET %[1]s/v2/keys/dbg?quorum=false&recursive=false&sorted=false\n", s.ClientURL, dead)
	if r.code != 0 || r.stderr != want {
		t.Fatalf("debug no-sync: %d %q\nwant %q", r.code, r.stderr, want)
	}
}

// TestClusterHealthUnhealthy: a member whose client URL is unreachable
// makes the cluster unavailable (exit 5). Here the only member advertises a
// dead client URL.
func TestClusterHealthUnhealthy(t *testing.T) {
	clearEnv(t)
	dead := fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t))
	s := etcdtest.Start(t, etcdtest.Reference, "--advertise-client-urls", dead)
	r := run(t.Context(), "", "--endpoints", s.ClientURL, "cluster-health")
	if r.code != 5 || !strings.HasSuffix(r.stdout, "are all unreachable\ncluster is unavailable\n") ||
		!strings.Contains(r.stdout, "failed to check the health of member ") {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// key commands sync to the advertised (dead) URL and fail; --no-sync works
	if r := run(t.Context(), "", "--endpoints", s.ClientURL, "ls"); r.code != 4 {
		t.Fatalf("synced to dead URL: exit %d %q", r.code, r.stderr)
	}
	if r := run(t.Context(), "", "--no-sync", "--endpoints", s.ClientURL, "ls"); r.code != 0 {
		t.Fatalf("--no-sync: exit %d %q", r.code, r.stderr)
	}
}
