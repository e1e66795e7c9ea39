package fleetfaults

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/buildbin"
	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/fleetapi"
	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/nspawn"
	"github.com/corekit/corekit/internal/v2client"
)

// guestBinDir is where the image's units run the binaries from
// (vagrant/units, ExecStart=/opt/corekit/bin/...).
const guestBinDir = "/opt/corekit/bin"

// metadataFor is the fleet metadata of machines core-01…core-0n: the first
// two have disk=ssd, the others disk=hdd.
func metadataFor(n int) map[string]map[string]string {
	out := map[string]map[string]string{}
	for i := 1; i <= n; i++ {
		disk := "hdd"
		if i <= 2 {
			disk = "ssd"
		}
		h := fmt.Sprintf("core-%02d", i)
		out[h] = map[string]string{"hostname": h, "disk": disk}
	}
	return out
}

// node is one machine of the cluster across its incarnations: the same
// name, address, machine-id, etcd data directory and start log every time
// it boots.
type node struct {
	host string
	ip   netip.Addr
	id   string // /etc/machine-id (fleet's machine ID and etcd's member name)
	dir  string // host directory with what survives a reboot
	cfg  nspawn.Config

	mu sync.Mutex
	m  *nspawn.Machine // current incarnation; nil while down

	lingering []string // processes left in the guest 3 s into its last poweroff (diagnostics)
}

func (n *node) machine() *nspawn.Machine {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.m
}

func (n *node) set(m *nspawn.Machine) {
	n.mu.Lock()
	n.m = m
	n.mu.Unlock()
}

// cluster is N machines on a private bridge with our etcd and fleetd.
type cluster struct {
	t      *testing.T
	log    *slog.Logger
	nodes  []*node
	bin    string // host directory with the built binaries
	ttl    time.Duration
	bridge *nspawn.Bridge
	reg    *fleetregistry.Registry // fleet's registry in the machines' etcd (any member)
}

// tWriter sends slog lines to t.Log.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// bootCluster builds etcd, fleetd and fleetctl from the tree, boots n
// machines and waits until etcd has a quorum and every fleetd registered.
func bootCluster(t *testing.T, n int, agentTTL time.Duration) *cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	root, err := buildbin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := buildbin.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Cleanup)
	var bin string
	for _, p := range [][2]string{{"etcd", "etcd"}, {"fleet", "fleetd"}, {"fleetctl", "fleetctl"}} {
		path, err := b.Build(ctx, p[0], p[1])
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Dir(path)
	}
	c := &cluster{t: t, bin: bin, ttl: agentTTL,
		log: slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))}

	lease, err := nspawn.LeaseTestSubnet(ctx, os.Getpid()+23)
	if err != nil {
		t.Fatal(err)
	}
	x := lease.Subnet.Addr().As4()[2]
	gw, err := nspawn.GatewayFor(lease.Subnet)
	if err != nil {
		lease.Release()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for _, nd := range c.nodes {
			m := nd.machine()
			if m == nil {
				continue
			}
			if t.Failed() && m.Running() {
				t.Logf("journal of %s (fleet, last 30 lines):\n%s", nd.host, m.JournalTail(cctx, "fleet.service", 30))
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := m.Poweroff(cctx); err != nil {
					t.Errorf("cleanup: poweroff %s: %v", nd.host, err)
				}
			}()
		}
		wg.Wait()
		if c.bridge != nil {
			if err := c.bridge.Delete(cctx); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		lease.Release()
	})
	br, err := nspawn.CreateBridge(ctx, fmt.Sprintf("ffbr%d", x), gw)
	if err != nil {
		t.Fatal(err)
	}
	c.bridge = br

	meta := metadataFor(n)
	tmp := t.TempDir()
	var initial []string
	for i := 1; i <= n; i++ {
		addr, err := nspawn.HostAddrN(lease.Subnet, 100+i)
		if err != nil {
			t.Fatal(err)
		}
		idb := make([]byte, 16)
		_, _ = rand.Read(idb)
		nd := &node{host: fmt.Sprintf("core-%02d", i), ip: addr.Addr(), id: hex.EncodeToString(idb),
			dir: filepath.Join(tmp, fmt.Sprintf("core-%02d", i))}
		nd.cfg = nspawn.Config{
			Name: fmt.Sprintf("ff%d-%02d", x, i), Hostname: nd.host, Bridge: br.Name, Addr: addr,
			Dir: filepath.Join(nd.dir, "nspawn"), BootTimeout: 90 * time.Second,
		}
		c.nodes = append(c.nodes, nd)
		initial = append(initial, fmt.Sprintf("%s=http://%s:2380", nd.id, nd.ip))
	}
	for _, nd := range c.nodes {
		etcdDropin := "[Service]\n" +
			"Environment=ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379,http://0.0.0.0:4001\n" +
			fmt.Sprintf("Environment=ETCD_ADVERTISE_CLIENT_URLS=http://%s:2379\n", nd.ip) +
			fmt.Sprintf("Environment=ETCD_LISTEN_PEER_URLS=http://%s:2380\n", nd.ip) +
			fmt.Sprintf("Environment=ETCD_INITIAL_ADVERTISE_PEER_URLS=http://%s:2380\n", nd.ip) +
			"Environment=ETCD_INITIAL_CLUSTER=" + strings.Join(initial, ",") + "\n" +
			"Environment=ETCD_INITIAL_CLUSTER_STATE=new\n" +
			"Environment=ETCD_INITIAL_CLUSTER_TOKEN=fleetfaults\n"
		var md []string
		for _, k := range []string{"disk", "hostname"} {
			md = append(md, k+"="+meta[nd.host][k])
		}
		fleetDropin := "[Service]\n" +
			fmt.Sprintf("Environment=FLEET_PUBLIC_IP=%s\n", nd.ip) +
			"Environment=FLEET_METADATA=" + strings.Join(md, ",") + "\n" +
			fmt.Sprintf("Environment=FLEET_AGENT_TTL=%s\n", agentTTL)
		files := map[string]string{"etcd.conf": etcdDropin, "fleet.conf": fleetDropin, "machine-id": nd.id + "\n"}
		for _, d := range []string{"etcd", "starts", "journal"} {
			if err := os.MkdirAll(filepath.Join(nd.dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for name, text := range files {
			if err := os.WriteFile(filepath.Join(nd.dir, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		units := filepath.Join(root, "vagrant", "units")
		nd.cfg.Binds = []nspawn.Bind{
			{Host: bin, Guest: guestBinDir, ReadOnly: true},
			{Host: filepath.Join(units, "etcd.service"), Guest: "/etc/systemd/system/etcd.service", ReadOnly: true},
			{Host: filepath.Join(units, "fleet.service"), Guest: "/etc/systemd/system/fleet.service", ReadOnly: true},
			{Host: filepath.Join(nd.dir, "etcd.conf"), Guest: "/etc/systemd/system/etcd.service.d/10-fleetfaults.conf", ReadOnly: true},
			{Host: filepath.Join(nd.dir, "fleet.conf"), Guest: "/etc/systemd/system/fleet.service.d/10-fleetfaults.conf", ReadOnly: true},
			{Host: filepath.Join(nd.dir, "machine-id"), Guest: "/etc/machine-id", ReadOnly: true},
			{Host: filepath.Join(nd.dir, "etcd"), Guest: "/var/lib/etcd"},
			{Host: filepath.Join(nd.dir, "starts"), Guest: "/var/lib/fleetfaults"},
			// A persistent journal (journald uses /var/log/journal when it
			// exists) that outlives a poweroff or kill: read on the host
			// with journalctl -D.
			{Host: filepath.Join(nd.dir, "journal"), Guest: "/var/log/journal"},
		}
	}

	var eps []string
	for _, nd := range c.nodes {
		eps = append(eps, fmt.Sprintf("http://%s:2379", nd.ip))
	}
	vc, err := v2client.New(v2client.Config{Endpoints: eps, HeaderTimeout: 3 * time.Second, DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.reg = fleetregistry.NewEtcd(vc, "")

	t0 := time.Now()
	errs := make(chan error, n)
	for _, nd := range c.nodes {
		go func() { errs <- c.boot(ctx, nd) }()
	}
	for range c.nodes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := c.waitQuorum(ctx, c.nodes); err != nil {
		t.Fatal(err)
	}
	if err := c.waitMachines(ctx, len(c.nodes)); err != nil {
		t.Fatal(err)
	}
	t.Logf("MEASURE setup: %d machines booted, etcd formed and every fleetd registered in %s", n, time.Since(t0).Round(100*time.Millisecond))
	return c
}

// boot boots nd (again) and starts fleet.service (which wants etcd.service),
// as cloudinit's `command: start` does on a `make up` machine.
func (c *cluster) boot(ctx context.Context, nd *node) error {
	m, err := nspawn.Boot(ctx, nd.cfg, c.log)
	if err != nil {
		return err
	}
	nd.set(m)
	if r := m.Run(ctx, "systemctl", "start", "etcd.service", "fleet.service"); !r.OK() {
		return fmt.Errorf("%s: start etcd and fleet: %v\n%s%s", nd.host, r.Err, r.Stderr, m.JournalTail(ctx, "", 30))
	}
	return nil
}

// waitQuorum waits until a quorum read succeeds through every node of nodes.
func (c *cluster) waitQuorum(ctx context.Context, nodes []*node) error {
	for _, nd := range nodes {
		url := fmt.Sprintf("http://%s:2379", nd.ip)
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err := etcdtest.WaitReady(wctx, url, 60*time.Second)
		cancel()
		if err != nil {
			return fmt.Errorf("etcd on %s: %w", nd.host, err)
		}
	}
	return nil
}

// api is a fleet API client for nd's fleetd (its unix socket seen from the
// host).
func (c *cluster) api(nd *node) (*fleetapi.Client, error) {
	m := nd.machine()
	if m == nil {
		return nil, fmt.Errorf("%s is down", nd.host)
	}
	return fleetapi.NewClient("unix://"+m.GuestPath("/var/run/fleet.sock"), &http.Client{Timeout: 5 * time.Second})
}

// anyAPI returns the API of the first node for which ok holds.
func (c *cluster) anyAPI(ok func(*node) bool) (*fleetapi.Client, *node, error) {
	for _, nd := range c.nodes {
		if ok(nd) {
			cl, err := c.api(nd)
			return cl, nd, err
		}
	}
	return nil, nil, fmt.Errorf("no node to ask")
}

// waitMachines waits until fleet lists want machines.
func (c *cluster) waitMachines(ctx context.Context, want int) error {
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		cl, _, err := c.anyAPI(func(nd *node) bool { return nd.machine() != nil })
		if err == nil {
			ms, err := cl.Machines(ctx)
			if err == nil && len(ms) == want {
				return nil
			}
			last = fmt.Sprint(len(ms), " machines, ", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("fleet did not list %d machines within 60s (last: %s)", want, last)
}

// engineLeader returns the host whose fleetd holds the engine lease ("" if
// none or unknown).
func (c *cluster) engineLeader(ctx context.Context) string {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	l, err := c.reg.GetLease(lctx, "engine-leader")
	if err != nil || l == nil {
		return ""
	}
	if nd := c.byID(l.MachineID); nd != nil {
		return nd.host
	}
	return ""
}

// journal returns nd's persistent journal since t, as journalctl on the
// host reads it, keeping only the lines that match grep (a regexp for
// journalctl --grep; "" keeps all) and at most n of the last lines.
func (nd *node) journal(ctx context.Context, since time.Time, grep string, n int) string {
	args := []string{"-D", filepath.Join(nd.dir, "journal"), "--no-pager", "-q", "-o", "short-precise",
		"-S", fmt.Sprintf("@%d", since.Unix()), "-n", strconv.Itoa(n)}
	if grep != "" {
		args = append(args, "--grep", grep)
	}
	jctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(jctx, "journalctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(journalctl: %v) %s", err, out)
	}
	return string(out)
}

func (c *cluster) node(host string) *node {
	for _, nd := range c.nodes {
		if nd.host == host {
			return nd
		}
	}
	return nil
}

func (c *cluster) byID(id string) *node {
	for _, nd := range c.nodes {
		if nd.id == id {
			return nd
		}
	}
	return nil
}
