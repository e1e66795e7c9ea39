package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/buildbin"
	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/nspawn"
	"github.com/corekit/corekit/internal/testbed"
)

// N is the cluster size of the story.
const N = 3

// story is one `make up` cluster under test.
type story struct {
	t       *testing.T
	root    string            // module root
	bin     string            // freshly built binaries (what `make build` puts in bin/)
	state   string            // the provider's state directory (.corekit/)
	flags   []string          // the provider flags common to every command
	env     map[string]string // cluster.env
	st      clusterState
	etcdArg string // etcd unit of the user-data (etcd.service / etcd2.service)

	start      time.Time     // when `make up` started
	fleetReady time.Duration // from start to 3 machines in fleetctl list-machines
}

// clusterState is the part of .corekit/state.json the test reads.
type clusterState struct {
	Status       string        `json:"status"`
	DiscoveryURL string        `json:"discovery_url"`
	ClientPort   int           `json:"client_port"`
	EtcdUnit     string        `json:"etcd_unit"`
	Machines     []nspawn.Info `json:"machines"`
	Discovery    *struct {
		URL string `json:"url"`
	} `json:"discovery"`
}

func (m machine) String() string { return m.name }

type machine struct{ name, ip string }

func (s *story) machines() []machine {
	var out []machine
	for _, i := range s.st.Machines {
		out = append(out, machine{i.Name, strings.SplitN(i.Addr, "/", 2)[0]})
	}
	return out
}

func (s *story) endpoint(m machine) string {
	return fmt.Sprintf("http://%s:%d", m.ip, s.st.ClientPort)
}

// build compiles every binary `make build` and `make nspawn-bin` make, in one
// go invocation, into a fresh directory with the names bin/ uses.
func build(t *testing.T, root string) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pkgs := map[string]string{ // package dir → binary name
		"etcd": "etcd", "etcdctl": "etcdctl", "discovery": "discovery", "cloudinit": "coreos-cloudinit",
		"fleet": "fleetd", "fleetctl": "fleetctl", "vagrant/nspawn": "corekit-nspawn",
	}
	args := []string{"build", "-o", dir + "/"}
	for p := range pkgs {
		args = append(args, "./"+p)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	t0 := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for p, name := range pkgs {
		if base := filepath.Base(p); base != name {
			if err := os.Rename(filepath.Join(dir, base), filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("built the binaries in %s", time.Since(t0).Round(100*time.Millisecond))
	return dir
}

// provider runs bin/corekit-nspawn COMMAND with the story's flags.
func (s *story) provider(ctx context.Context, command string, extra ...string) (string, error) {
	args := append(append([]string{command}, s.flags...), extra...)
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "corekit-nspawn"), args...)
	cmd.Dir = s.root
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// onMachine runs a command on machine m the way `make ssh M=m` enters it.
func (s *story) onMachine(ctx context.Context, m machine, args ...string) (string, error) {
	out, err := s.provider(ctx, "ssh", append([]string{m.name, "--"}, args...)...)
	if err != nil {
		return out, fmt.Errorf("on %s: %s: %w\n%s", m.name, strings.Join(args, " "), err, out)
	}
	return out, nil
}

// host runs one of the cluster's client binaries on the host with the
// environment of cluster.env, in dir.
func (s *story) host(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + s.state}
	for k, v := range s.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("host: %s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// eventually polls f until it returns nil or the deadline passes; it
// returns how long it took.
func eventually(t *testing.T, what string, timeout time.Duration, f func() error) time.Duration {
	t.Helper()
	t0 := time.Now()
	deadline := t0.Add(timeout)
	for {
		err := f()
		if err == nil {
			return time.Since(t0)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func readEnv(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "export ") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		}
		env[k] = v
	}
	return env, sc.Err()
}

// TestStory is DESIGN.md's user story on `make up`'s cluster.
func TestStory(t *testing.T) {
	testbed.Require(t)
	root, err := buildbin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lease, err := nspawn.LeaseTestSubnet(ctx, os.Getpid()+11)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lease.Release)

	userData := filepath.Join(root, "vagrant", "user-data.sample")
	s := &story{t: t, root: root, bin: build(t, root), state: t.TempDir(), etcdArg: "etcd.service"}
	if os.Getenv("COREKIT_E2E_ETCD") == "reference" {
		// Debian's etcd 3.4 on the machines, with the etcd2 form of the
		// seeds' user-data: the story with a reference store.
		if !etcdtest.HaveReference() {
			t.Skip("SKIP: COREKIT_E2E_ETCD=reference but /usr/bin/etcd is not installed")
		}
		if err := os.Remove(filepath.Join(s.bin, "etcd")); err != nil {
			t.Fatal(err)
		}
		// /usr is the host's on every machine; etcd 3.4 serves the v2 API
		// (which fleet and etcdctl use) only with --enable-v2.
		wrapper := "#!/bin/sh\nexec /usr/bin/etcd --enable-v2 \"$@\"\n"
		if err := os.WriteFile(filepath.Join(s.bin, "etcd"), []byte(wrapper), 0o755); err != nil {
			t.Fatal(err)
		}
		userData, _ = filepath.Abs("testdata/etcd2.user-data")
		s.etcdArg = "etcd2.service"
		t.Log("COREKIT_E2E_ETCD=reference: Debian's etcd 3.4 runs on the machines (etcd2 user-data)")
	} else if msg := discoveryUnsupported(t, filepath.Join(s.bin, "etcd")); msg != "" {
		t.Skipf("SKIP: our etcd cannot join a cluster through a discovery token yet (%s); "+
			"COREKIT_E2E_ETCD=reference runs the story with Debian's etcd", msg)
	}
	x := lease.Subnet.Addr().As4()[2]
	s.flags = []string{
		"-root", root, "-bin", s.bin, "-state-dir", s.state,
		"-n", strconv.Itoa(N), "-user-data", userData,
		// Only these keep the run apart from a `make up` cluster of the user.
		"-subnet", lease.Subnet.String(), "-bridge", fmt.Sprintf("e2e%d", x), "-prefix", fmt.Sprintf("e%d", x),
		"-timeout", "90s",
	}
	bridge := fmt.Sprintf("e2e%d", x)
	t.Cleanup(func() {
		// `make down`, even when the test failed; it must leave nothing.
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := s.provider(cctx, "down")
		if err != nil {
			t.Errorf("cleanup: down: %v\n%s", err, out)
		}
		if nspawn.LinkExists(bridge) {
			t.Errorf("cleanup: bridge %s still exists after down", bridge)
		}
		for _, info := range s.st.Machines {
			if m, err := nspawn.Attach(info, nil); err == nil {
				t.Errorf("cleanup: %s still runs after down; killing it", info.Name)
				_ = m.Kill(cctx)
			}
		}
	})

	// Steps 1–3: `make up` (token from discovery /new, machines booted from
	// the seeds' user-data, coreos-cloudinit applies it).
	t0 := time.Now()
	s.start = t0
	upCtx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	out, err := s.provider(upCtx, "up")
	cancel()
	upTook := time.Since(t0)
	t.Logf("make up (%s):\n%s", upTook.Round(100*time.Millisecond), out)
	s.loadState() // so that cleanup knows the machines even if up failed
	if err != nil {
		t.Fatalf("make up failed: %v", err)
	}
	s.checkUpOutput(out)
	s.env, err = readEnv(filepath.Join(s.state, "cluster.env"))
	if err != nil {
		t.Fatalf("cluster.env: %v", err)
	}

	t.Run("up_again_and_status", s.stepUpAgain)
	t.Run("1_discovery_new", s.stepDiscovery)
	t.Run("2_3_user_data_applied", func(t *testing.T) { s.stepUserData(t, userData) })
	if t.Failed() {
		return
	}
	t.Run("4_etcd_formed", s.stepEtcd)
	if t.Failed() {
		return
	}
	formed := time.Since(t0)
	t.Run("5_fleet", s.stepFleet)
	if t.Failed() {
		return
	}
	t.Logf("MEASURE up: `up` returned after %s; etcd had 3 members at %s (step 4 done); fleetctl list-machines showed 3 machines at %s",
		upTook.Round(100*time.Millisecond), formed.Round(100*time.Millisecond), s.fleetReady.Round(100*time.Millisecond))
	s.measureMemory(t)
	t.Run("6_poweroff_failover", s.stepFailover)
	t.Run("up_rebuilds_a_broken_cluster", s.stepUpRebuilds)
}

// stepUpRebuilds: `make up` on the cluster with a powered-off machine says
// what is wrong, tears it down and boots a new one.
func (s *story) stepUpRebuilds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	before := s.st
	out, err := s.provider(ctx, "up")
	s.loadState()
	if err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`found a previous cluster that is not fully running \(\S+ is not running\); tearing it down first`).MatchString(out) ||
		!strings.Contains(out, "cluster up in") {
		t.Errorf("up on a broken cluster:\n%s", out)
	}
	if len(s.st.Machines) != N || s.st.DiscoveryURL == before.DiscoveryURL {
		t.Errorf("up did not build a new cluster with a new token: %+v", s.st)
	}
}

// discoveryUnsupported runs etcd with --discovery against a closed port and
// returns its complaint if it rejects the flag as not supported.
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

func (s *story) loadState() {
	b, err := os.ReadFile(filepath.Join(s.state, "state.json"))
	if err != nil {
		return
	}
	var st clusterState
	if json.Unmarshal(b, &st) == nil {
		s.st = st
	}
}

// checkUpOutput: progress per machine, and how to use the cluster.
func (s *story) checkUpOutput(out string) {
	t := s.t
	if s.st.Status != "up" || len(s.st.Machines) != N {
		t.Fatalf("state after up: status %q, %d machines", s.st.Status, len(s.st.Machines))
	}
	for _, m := range s.machines() {
		for _, want := range []string{
			"==> " + m.name + ": booted in",
			"==> " + m.name + ": user-data applied by coreos-cloudinit",
			"==> " + m.name + ": " + s.etcdArg + " active",
			"==> " + m.name + ": fleet.service active",
			"  " + m.name + "  " + m.ip,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("up output lacks %q", want)
			}
		}
	}
	for _, want := range []string{"etcd formed: 3 members and a leader", "fleet: 3 machines registered", "cluster up in", "bin/etcdctl --endpoints http://", "bin/fleetctl --driver etcd --endpoint http://", "cluster.env"} {
		if !strings.Contains(out, want) {
			t.Errorf("up output lacks %q", want)
		}
	}
}

// stepUpAgain: a second `make up` on the healthy cluster changes nothing,
// and `make status` shows every machine with etcd and fleet active.
func (s *story) stepUpAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := s.st
	out, err := s.provider(ctx, "up")
	if err != nil || !strings.Contains(out, "cluster is already up") {
		t.Errorf("second up: %v\n%s", err, out)
	}
	s.loadState()
	if s.st.DiscoveryURL != before.DiscoveryURL || len(s.st.Machines) != N {
		t.Fatalf("second up changed the cluster: %+v", s.st)
	}
	for i := range s.st.Machines {
		if s.st.Machines[i].PID1 != before.Machines[i].PID1 {
			t.Errorf("second up rebooted %s", s.st.Machines[i].Name)
		}
	}
	out, err = s.provider(ctx, "status")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, m := range s.machines() {
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(m.name) + `\s+` + regexp.QuoteMeta(m.ip) + `\s+running \((running|degraded)\)\s+active\s+active$`)
		if !re.MatchString(out) {
			t.Errorf("status does not show %s running with etcd and fleet active:\n%s", m, out)
		}
	}
}

// Step 1: `curl http://DISCOVERY/new?size=3` prints a token URL, and the
// cluster's own token came from there.
func (s *story) stepDiscovery(t *testing.T) {
	if s.st.Discovery == nil || s.st.Discovery.URL == "" {
		t.Fatal("no discovery service recorded in state.json")
	}
	out, err := curl(t, s.st.Discovery.URL+"/new?size=3")
	if err != nil {
		t.Fatalf("curl /new?size=3: %v\n%s", err, out)
	}
	tok := strings.TrimSpace(string(out))
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(s.st.Discovery.URL) + `/[0-9a-f]{32}$`)
	if !re.MatchString(tok) {
		t.Errorf("curl /new?size=3 = %q, want %s/<32 hex digits>", tok, s.st.Discovery.URL)
	}
	if !re.MatchString(s.st.DiscoveryURL) || s.st.DiscoveryURL == tok {
		t.Errorf("cluster token %q: not a fresh token of %s", s.st.DiscoveryURL, s.st.Discovery.URL)
	}
	if s.env["DISCOVERY_URL"] != s.st.DiscoveryURL {
		t.Errorf("cluster.env DISCOVERY_URL = %q, want %q", s.env["DISCOVERY_URL"], s.st.DiscoveryURL)
	}
}

// curl GETs url with curl(1), as the user would; without curl installed it
// says so and uses Go's client.
func curl(t *testing.T, url string) ([]byte, error) {
	if _, err := exec.LookPath("curl"); err == nil {
		return exec.Command("curl", "-fsS", url).CombinedOutput()
	}
	t.Logf("curl is not installed (apt-get install -y curl); GET %s with Go's client", url)
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, err
}

// Steps 2–3: each machine got the seeds' user-data with only the token
// filled in, and coreos-cloudinit wrote the drop-ins with its address.
func (s *story) stepUserData(t *testing.T, userData string) {
	sample, err := os.ReadFile(userData)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range s.machines() {
		info := s.info(m)
		pm, err := nspawn.Attach(info, nil)
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		ud, err := pm.ReadFile("/var/lib/coreos-vagrant/vagrantfile-user-data")
		if err != nil {
			t.Fatalf("%s: user-data not uploaded: %v", m, err)
		}
		want := regexp.MustCompile(`(?m)^(\s*discovery:).*$`).ReplaceAllString(string(sample), "${1} "+s.st.DiscoveryURL)
		if string(ud) != want {
			t.Errorf("%s: user-data is not the seeds' file with the token filled in:\n%s", m, ud)
		}
		var dropin []byte
		var etcdWant []string
		if s.etcdArg == "etcd.service" {
			dropin, err = pm.ReadFile("/run/systemd/system/etcd.service.d/20-cloudinit.conf")
			etcdWant = []string{
				`Environment="ETCD_ADDR=` + m.ip + `:4001"`,
				`Environment="ETCD_PEER_ADDR=` + m.ip + `:7001"`,
				`Environment="ETCD_DISCOVERY=` + s.st.DiscoveryURL + `"`,
			}
		} else {
			dropin, err = pm.ReadFile("/run/systemd/system/etcd2.service.d/20-cloudinit.conf")
			etcdWant = []string{`Environment="ETCD_ADVERTISE_CLIENT_URLS=http://` + m.ip + `:2379"`}
		}
		if err != nil {
			t.Errorf("%s: etcd drop-in: %v", m, err)
		}
		for _, w := range etcdWant {
			if !strings.Contains(string(dropin), w+"\n") {
				t.Errorf("%s: etcd drop-in lacks %s:\n%s", m, w, dropin)
			}
		}
		fdrop, err := pm.ReadFile("/run/systemd/system/fleet.service.d/20-cloudinit.conf")
		if err != nil || !strings.Contains(string(fdrop), `Environment="FLEET_PUBLIC_IP=`+m.ip+`"`) {
			t.Errorf("%s: fleet drop-in: %v\n%s", m, err, fdrop)
		}
	}
}

// info is what state.json records about m (zero if nothing).
func (s *story) info(m machine) nspawn.Info {
	for _, i := range s.st.Machines {
		if i.Name == m.name {
			return i
		}
	}
	return nspawn.Info{}
}

var memberLine = regexp.MustCompile(`(?m)^[0-9a-f]+: name=\S+ peerURLs=\S+ clientURLs=\S+`)

// Step 4: three members, from every machine; a key set on one is read on
// the others and from the host.
func (s *story) stepEtcd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ms := s.machines()
	for _, m := range ms {
		out, err := s.onMachine(ctx, m, "etcdctl", "member", "list")
		if err != nil {
			t.Fatal(err)
		}
		if got := len(memberLine.FindAllString(out, -1)); got != N {
			t.Errorf("%s: etcdctl member list shows %d members, want %d:\n%s", m, got, N, out)
		}
		for _, o := range ms {
			if !strings.Contains(out, o.ip) {
				t.Errorf("%s: etcdctl member list lacks %s (%s):\n%s", m, o, o.ip, out)
			}
		}
	}
	if out, err := s.onMachine(ctx, ms[0], "etcdctl", "set", "/message", "hi"); err != nil || strings.TrimSpace(out) != "hi" {
		t.Fatalf("etcdctl set /message hi on %s: %q %v", ms[0], out, err)
	}
	for _, m := range ms[1:] {
		out, err := s.onMachine(ctx, m, "etcdctl", "get", "/message")
		if err != nil || strings.TrimSpace(out) != "hi" {
			t.Errorf("etcdctl get /message on %s: %q %v", m, out, err)
		}
	}
	// From the host, with cluster.env's ETCDCTL_ENDPOINT.
	out, err := s.host(ctx, s.state, "etcdctl", "get", "/message")
	if err != nil || strings.TrimSpace(out) != "hi" {
		t.Errorf("host etcdctl get /message (ETCDCTL_ENDPOINT=%s): %q %v", s.env["ETCDCTL_ENDPOINT"], out, err)
	}
	// The discovery token lists every member.
	out2, err := curl(t, s.st.DiscoveryURL)
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", s.st.DiscoveryURL, err, out2)
	}
	for _, m := range ms {
		if !strings.Contains(string(out2), m.ip) {
			t.Errorf("discovery token does not list %s (%s):\n%s", m, m.ip, out2)
		}
	}
}

// Step 5: fleet sees three machines, runs hello.service, shows its state and
// journal.
func (s *story) stepFleet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ms := s.machines()
	eventually(t, "fleetctl list-machines shows 3 machines", 60*time.Second, func() error {
		out, err := s.host(ctx, s.state, "fleetctl", "list-machines", "--no-legend", "--full")
		if err != nil {
			return err
		}
		for _, m := range ms {
			if !strings.Contains(out, "\t"+m.ip+"\t") {
				return fmt.Errorf("%s (%s) missing:\n%s", m, m.ip, out)
			}
		}
		if n := strings.Count(strings.TrimSpace(out), "\n") + 1; n != N {
			return fmt.Errorf("%d machines:\n%s", n, out)
		}
		s.fleetReady = time.Since(s.start)
		return nil
	})

	dir := t.TempDir()
	hello, err := os.ReadFile("testdata/hello.service")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello.service"), hello, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"submit", "load", "start"} {
		out, err := s.host(ctx, dir, "fleetctl", verb, "hello.service")
		t.Logf("fleetctl %s hello.service:\n%s", verb, out)
		if err != nil {
			t.Fatal(err)
		}
	}
	var where machine
	eventually(t, "fleetctl list-units shows hello.service active running", 30*time.Second, func() error {
		m, err := s.runningOn(ctx, "")
		where = m
		return err
	})
	t.Logf("hello.service runs on %s (%s)", where, where.ip)
	out, err := s.onMachine(ctx, where, "systemctl", "is-active", "hello.service")
	if err != nil || strings.TrimSpace(out) != "active" {
		t.Errorf("systemctl is-active hello.service on %s: %q %v", where, out, err)
	}
	// fleetctl journal on the unit's machine runs journalctl there.
	eventually(t, "fleetctl journal hello.service shows Hello World", 15*time.Second, func() error {
		out, err := s.onMachine(ctx, where, "fleetctl", "journal", "hello.service")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "Hello World") {
			return fmt.Errorf("no Hello World:\n%s", out)
		}
		return nil
	})
}

// runningOn returns the machine on which fleetctl list-units shows
// hello.service active/running; not (a name) excludes a machine. Rows of a
// machine that is gone (shown without an address, kept until the state's
// TTL) are skipped.
func (s *story) runningOn(ctx context.Context, not string) (machine, error) {
	out, err := s.host(ctx, s.state, "fleetctl", "list-units", "--no-legend", "--full", "--fields=unit,machine,active,sub")
	if err != nil {
		return machine{}, err
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "hello.service" || f[2] != "active" || f[3] != "running" {
			continue
		}
		_, ip, _ := strings.Cut(f[1], "/")
		for _, m := range s.machines() {
			if m.ip == ip && m.name != not {
				return m, nil
			}
		}
	}
	if not != "" {
		return machine{}, fmt.Errorf("hello.service not active/running on a machine other than %s:\n%s", not, out)
	}
	return machine{}, fmt.Errorf("hello.service not active/running:\n%s", out)
}

// Step 6: power off the unit's machine while writing keys; the unit comes up
// elsewhere and every acknowledged write is still there.
func (s *story) stepFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	where, err := s.runningOn(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var survivors []machine
	for _, m := range s.machines() {
		if m != where {
			survivors = append(survivors, m)
		}
	}

	// Writers: one per member, before and during the poweroff.
	w := &writer{client: &http.Client{Timeout: 2 * time.Second}}
	wctx, stopWriters := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, m := range s.machines() {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(wctx, s.endpoint(m), i) }()
	}
	time.Sleep(time.Second)
	if w.acked() == 0 {
		t.Fatal("no write acknowledged before the poweroff")
	}

	if out, err := s.onMachine(ctx, where, "systemctl", "poweroff"); err != nil {
		t.Fatalf("poweroff %s: %v\n%s", where, err, out)
	}
	var now machine
	took := eventually(t, "hello.service running on another machine", 60*time.Second, func() error {
		m, err := s.runningOn(ctx, where.name)
		now = m
		return err
	})
	t.Logf("MEASURE failover: hello.service active running on %s %s after `systemctl poweroff` of %s",
		now, took.Round(100*time.Millisecond), where)
	if out, err := s.onMachine(ctx, now, "systemctl", "is-active", "hello.service"); err != nil || strings.TrimSpace(out) != "active" {
		t.Errorf("systemctl is-active hello.service on %s: %q %v", now, out, err)
	}
	// The powered-off machine is gone.
	pm, _ := nspawn.Attach(s.info(where), nil)
	eventually(t, where.name+" powered off", 30*time.Second, func() error {
		if pm != nil && pm.Running() {
			return fmt.Errorf("%s still running", where)
		}
		return nil
	})
	time.Sleep(time.Second) // writes to the survivors after the failover too
	stopWriters()
	wg.Wait()

	// Every acknowledged key, read (quorum) from each survivor.
	keys := w.keys()
	t.Logf("%d writes acknowledged (%d refused or failed during the poweroff)", len(keys), w.failed())
	for _, m := range survivors {
		got, err := getDir(ctx, w.client, s.endpoint(m), "/e2e")
		if err != nil {
			t.Errorf("%s: read /e2e: %v", m, err)
			continue
		}
		missing := 0
		for k, v := range keys {
			if got[k] != v {
				missing++
				if missing <= 3 {
					t.Errorf("%s: acknowledged %s=%s reads %q", m, k, v, got[k])
				}
			}
		}
		if missing > 0 {
			t.Errorf("%s: %d of %d acknowledged keys lost", m, missing, len(keys))
		}
	}
	out, err := s.onMachine(ctx, survivors[0], "etcdctl", "get", "/message")
	if err != nil || strings.TrimSpace(out) != "hi" {
		t.Errorf("/message after the poweroff: %q %v", out, err)
	}
}

// writer writes /e2e/<member>-<n> = n through one member until ctx ends and
// records the writes etcd acknowledged.
type writer struct {
	client *http.Client
	mu     sync.Mutex
	ok     map[string]string
	nfail  int
}

func (w *writer) run(ctx context.Context, endpoint string, id int) {
	for n := 0; ctx.Err() == nil; n++ {
		key := fmt.Sprintf("/e2e/w%d-%04d", id, n)
		val := strconv.Itoa(n)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPut, endpoint+"/v2/keys"+key,
			strings.NewReader(url.Values{"value": {val}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := w.client.Do(req)
		w.mu.Lock()
		if err == nil && resp.StatusCode/100 == 2 {
			if w.ok == nil {
				w.ok = map[string]string{}
			}
			w.ok[key] = val
		} else {
			w.nfail++
		}
		w.mu.Unlock()
		if err == nil {
			resp.Body.Close()
		} else {
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *writer) acked() int { w.mu.Lock(); defer w.mu.Unlock(); return len(w.ok) }
func (w *writer) failed() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.nfail
}
func (w *writer) keys() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]string, len(w.ok))
	for k, v := range w.ok {
		out[k] = v
	}
	return out
}

// getDir reads every key under dir with one linearizable (quorum) GET.
func getDir(ctx context.Context, c *http.Client, endpoint, dir string) (map[string]string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/v2/keys"+dir+"?recursive=true&quorum=true", nil)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	type node struct {
		Key   string `json:"key"`
		Value string `json:"value"`
		Dir   bool   `json:"dir"`
		Nodes []node `json:"nodes"`
	}
	var v struct {
		Node    node   `json:"node"`
		Message string `json:"message"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, v.Message)
	}
	out := map[string]string{}
	var walk func(n node)
	walk = func(n node) {
		if !n.Dir {
			out[n.Key] = n.Value
		}
		for _, c := range n.Nodes {
			walk(c)
		}
	}
	walk(v.Node)
	return out, nil
}

// measureMemory logs each machine's memory: the summed RSS and PSS of every
// process in its PID namespace, and its largest processes.
func (s *story) measureMemory(t *testing.T) {
	for _, info := range s.st.Machines {
		mem, err := memoryOf(info.PID1)
		if err != nil {
			t.Logf("MEASURE memory %s: %v", info.Name, err)
			continue
		}
		t.Logf("MEASURE memory %s: %s", info.Name, mem)
	}
}
