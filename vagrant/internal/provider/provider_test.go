package provider

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/buildbin"
	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/nspawn"
	"github.com/corekit/corekit/internal/testbed"
)

// cluster is the fixture for one provider run: a leased test subnet, names
// unique on the host, a temporary state directory and freshly built binaries.
type cluster struct {
	args   []string
	state  string
	bin    string
	root   string
	br     string
	prefix string
}

func newCluster(t *testing.T, n int, userData string, bins ...string) *cluster {
	t.Helper()
	testbed.Require(t)
	ctx := context.Background()
	lease, err := nspawn.LeaseTestSubnet(ctx, os.Getpid()+7)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lease.Release)
	root, err := buildbin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := buildbin.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Cleanup)
	binDir := "" // buildbin keeps all binaries in one directory; bind that
	refEtcd := false
	for _, pkgName := range bins {
		if pkgName == "reference:etcd" {
			refEtcd = true
			continue
		}
		pkg, name, _ := strings.Cut(pkgName, ":")
		if _, err := os.Stat(filepath.Join(root, pkg, "main.go")); err != nil {
			t.Logf("not building %s: %s/main.go does not exist yet", name, pkg)
			continue
		}
		p, err := b.Build(ctx, pkg, name)
		if err != nil {
			t.Fatal(err)
		}
		binDir = filepath.Dir(p)
	}
	if binDir == "" {
		binDir = t.TempDir()
	}
	if refEtcd {
		// Debian's etcd 3.4 as the machines' etcd: /usr is the host's in
		// every machine, so a link to /usr/bin/etcd works inside too.
		if err := os.Symlink("/usr/bin/etcd", filepath.Join(binDir, "etcd")); err != nil {
			t.Fatal(err)
		}
	}
	x := lease.Subnet.Addr().As4()[2]
	c := &cluster{state: t.TempDir(), bin: binDir, root: root, br: fmt.Sprintf("bp%d", x), prefix: fmt.Sprintf("p%d", x)}
	c.args = []string{
		"-root", root, "-bin", binDir, "-state-dir", c.state,
		"-n", fmt.Sprint(n), "-prefix", c.prefix,
		"-subnet", lease.Subnet.String(), "-bridge", c.br,
		"-user-data", userData, "-timeout", "60s",
	}
	t.Cleanup(func() {
		// Down is idempotent; it must leave nothing even if the test failed.
		var out bytes.Buffer
		if code := Run(context.Background(), append([]string{"down"}, c.args...), &out, &out); code != 0 {
			t.Errorf("cleanup: down exited %d:\n%s", code, out.String())
		}
		if nspawn.LinkExists(c.br) {
			t.Errorf("cleanup: bridge %s still exists", c.br)
		}
	})
	return c
}

func (c *cluster) run(t *testing.T, cmd string, extra ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	code := Run(ctx, append(append([]string{cmd}, c.args...), extra...), &out, &out)
	return code, out.String()
}

// TestUpStatusDown is `make up` on real machines with the seeds' user-data:
// bridge, host store + discovery, machines booted, user-data rendered per
// machine with the cluster's token and applied by our coreos-cloudinit,
// fleet.service running; a second up changes nothing; status lists the
// machines; down removes everything. (etcd formation is covered by the
// TestUpFormsEtcd* tests; here bin/etcd is absent and that step is skipped.)
func TestUpStatusDown(t *testing.T) {
	c := newCluster(t, 3, "../../user-data.sample",
		"cloudinit:coreos-cloudinit", "discovery:discovery", "fleet:fleetd")
	code, out := c.run(t, "up")
	t.Logf("up:\n%s", out)
	if code != 0 {
		t.Fatalf("up exited %d", code)
	}
	st, err := (&Store{Dir: c.state}).Load()
	if err != nil || st == nil {
		t.Fatalf("state: %v %v", st, err)
	}
	if st.Status != "up" || len(st.Machines) != 3 || st.DiscoveryURL == "" {
		t.Fatalf("state after up: %+v", st)
	}
	if !strings.Contains(out, "cluster up in") {
		t.Errorf("up did not report success")
	}
	haveCloudinit := fileExists(filepath.Join(c.bin, "coreos-cloudinit"))
	for _, info := range st.Machines {
		m, err := nspawn.Attach(info, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "==> "+info.Name+": booted in") {
			t.Errorf("no boot progress line for %s", info.Name)
		}
		ud, err := m.ReadFile(GuestUserData)
		if err != nil {
			t.Fatalf("%s: user-data not uploaded: %v", info.Name, err)
		}
		if !strings.Contains(string(ud), "discovery: "+st.DiscoveryURL+"\n") || !strings.Contains(string(ud), "# WARNING: replace each time") {
			t.Errorf("%s: user-data not rendered with the token (or comments lost):\n%s", info.Name, ud)
		}
		env, _ := m.ReadFile("/etc/environment")
		ip := strings.Split(info.Addr, "/")[0]
		if !strings.Contains(string(env), "COREOS_PUBLIC_IPV4="+ip+"\n") {
			t.Errorf("%s: /etc/environment = %q", info.Name, env)
		}
		if haveCloudinit {
			dropin, err := m.ReadFile("/run/systemd/system/etcd.service.d/20-cloudinit.conf")
			if err != nil || !strings.Contains(string(dropin), st.DiscoveryURL) || !strings.Contains(string(dropin), ip+":7001") {
				t.Errorf("%s: etcd drop-in from cloudinit: %q %v", info.Name, dropin, err)
			}
		}
	}
	// The user's file is untouched.
	sample, _ := os.ReadFile("../../user-data.sample")
	if !strings.Contains(string(sample), "discovery: https://discovery.etcd.io/<token>") {
		t.Error("user-data.sample was rewritten")
	}
	env, err := os.ReadFile(filepath.Join(c.state, "cluster.env"))
	if err != nil || !strings.Contains(string(env), "export DISCOVERY_URL="+st.DiscoveryURL) || !strings.Contains(string(env), "export ETCDCTL_ENDPOINT=http://") {
		t.Errorf("cluster.env: %q %v", env, err)
	}

	code, out = c.run(t, "up")
	if code != 0 || !strings.Contains(out, "already up") {
		t.Errorf("second up: exit %d:\n%s", code, out)
	}
	st2, _ := (&Store{Dir: c.state}).Load()
	if st2.DiscoveryURL != st.DiscoveryURL || st2.Machines[0].PID1 != st.Machines[0].PID1 {
		t.Error("second up changed the cluster")
	}

	code, out = c.run(t, "status")
	if code != 0 || strings.Count(out, "  running (running)")+strings.Count(out, "  running (degraded)") != 3 {
		t.Errorf("status: exit %d:\n%s", code, out)
	}

	code, out = c.run(t, "down")
	if code != 0 {
		t.Fatalf("down exited %d:\n%s", code, out)
	}
	if nspawn.LinkExists(c.br) {
		t.Errorf("bridge %s left after down", c.br)
	}
	for _, info := range st.Machines {
		if _, err := nspawn.Attach(info, nil); err == nil {
			t.Errorf("%s still runs after down", info.Name)
		}
	}
	for _, h := range []*HostProcess{st.HostEtcd, st.Discovery} {
		if h != nil && h.Alive() {
			t.Errorf("host %s still runs after down", h.Name)
		}
	}
	if fileExists(filepath.Join(c.state, "state.json")) || fileExists(filepath.Join(c.state, "machines")) {
		t.Error("state left after down")
	}
}

// TestUpFormsEtcdWithReferenceEtcd runs the whole path to a formed etcd
// cluster with Debian's etcd 3.4 on the machines (etcd2-style user-data):
// our discovery service hands out the token, our coreos-cloudinit writes the
// drop-ins and starts etcd2.service, and three members find each other.
func TestUpFormsEtcdWithReferenceEtcd(t *testing.T) {
	if !etcdtest.HaveReference() {
		t.Skip("SKIP: /usr/bin/etcd not installed (apt-get install -y etcd-server)")
	}
	c := newCluster(t, 3, "testdata/etcd2.user-data", "cloudinit:coreos-cloudinit", "discovery:discovery", "reference:etcd")
	if !fileExists(filepath.Join(c.bin, "coreos-cloudinit")) || !fileExists(filepath.Join(c.bin, "discovery")) {
		t.Skip("SKIP: cloudinit or discovery not buildable yet")
	}
	code, out := c.run(t, "up")
	t.Logf("up:\n%s", out)
	if code != 0 {
		t.Fatalf("up exited %d", code)
	}
	if !strings.Contains(out, "etcd formed: 3 members") {
		t.Errorf("no formed cluster reported")
	}
	st, _ := (&Store{Dir: c.state}).Load()
	// The token's registry on the discovery service lists three members.
	resp, err := http.Get(st.DiscoveryURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range st.Machines {
		ip := strings.Split(m.Addr, "/")[0]
		if !strings.Contains(string(body), "http://"+ip+":2380") {
			t.Errorf("discovery registry lacks %s:\n%s", m.Name, body)
		}
	}
}

// TestUpFormsEtcdWithOurEtcd is the seeds' story with our etcd: user-data
// with etcd 0.4 keys (addr/peer-addr on 4001/7001) and the discovery token;
// three members must form.
func TestUpFormsEtcdWithOurEtcd(t *testing.T) {
	c := newCluster(t, 3, "../../user-data.sample", "cloudinit:coreos-cloudinit", "discovery:discovery", "etcd:etcd")
	etcdBin := filepath.Join(c.bin, "etcd")
	if !fileExists(etcdBin) {
		t.Skip("SKIP: etcd/main.go does not exist yet")
	}
	if msg := discoveryUnsupported(t, etcdBin); msg != "" {
		t.Skipf("SKIP: our etcd does not support discovery yet (%s)", msg)
	}
	code, out := c.run(t, "up")
	t.Logf("up:\n%s", out)
	if code != 0 {
		t.Fatalf("up exited %d", code)
	}
	if !strings.Contains(out, "etcd formed: 3 members") {
		t.Errorf("no formed cluster reported")
	}
}

// discoveryUnsupported runs our etcd with -discovery against a closed port
// and returns its complaint if it rejects the flag as not supported.
func discoveryUnsupported(t *testing.T, bin string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	peer := fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t))
	client := fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t))
	// Free ports only: the probe must not take 2379/2380/4001/7001.
	cmd := exec.CommandContext(ctx, bin, "--name", "probe", "--data-dir", t.TempDir(),
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--discovery", "http://127.0.0.1:1/x")
	out, _ := cmd.CombinedOutput()
	if s := string(out); strings.Contains(s, "not supported") {
		return strings.TrimSpace(s)
	}
	return ""
}

// TestUpFailureTearsDown: a unit in user-data that cannot start makes up
// fail with the machine, the step and the journal, and leaves nothing.
func TestUpFailureTearsDown(t *testing.T) {
	c := newCluster(t, 1, "testdata/bad-unit.user-data", "cloudinit:coreos-cloudinit", "discovery:discovery")
	if !fileExists(filepath.Join(c.bin, "coreos-cloudinit")) {
		t.Skip("SKIP: cloudinit/main.go does not exist yet")
	}
	code, out := c.run(t, "up")
	t.Logf("up:\n%s", out)
	if code == 0 {
		t.Fatal("up succeeded with a unit that cannot start")
	}
	machine := c.prefix + "-01"
	if !strings.Contains(out, "FAILED: "+machine+": coreos-cloudinit.service") || !strings.Contains(out, "journal of "+machine) {
		t.Errorf("failure does not name the machine and step, or lacks the journal")
	}
	if !strings.Contains(out, "corekit-does-not-exist.service") {
		t.Errorf("journal tail does not show the failing unit")
	}
	if nspawn.LinkExists(c.br) {
		t.Errorf("bridge %s left after a failed up", c.br)
	}
	if fileExists(filepath.Join(c.state, "state.json")) {
		t.Error("state left after a failed up")
	}
}

// TestUpRejectsBadUserData fails before touching the host.
func TestUpRejectsBadUserData(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "user-data")
	os.WriteFile(bad, []byte("coreos:\n  etcd: {}\n"), 0o644)
	c := newCluster(t, 1, bad)
	code, out := c.run(t, "up")
	if code == 0 || !strings.Contains(out, "check user-data") || !strings.Contains(out, "#cloud-config") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	if nspawn.LinkExists(c.br) {
		t.Error("bridge created for invalid user-data")
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"nope"}, {"up", "-n", "0"}, {"up", "-prefix", "waytoolongprefix"}, {"up", "extra"}} {
		var out bytes.Buffer
		if code := Run(context.Background(), append(args, "-state-dir", t.TempDir()), &out, &out); code != exitUsage && !(len(args) == 0 && code == exitUsage) {
			t.Errorf("%v: exit %d, want %d\n%s", args, code, exitUsage, out.String())
		}
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
