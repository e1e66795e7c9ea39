package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/corekit/corekit/cloudinit/units"
	"github.com/corekit/corekit/internal/nspawn"
	"github.com/corekit/corekit/vagrant/internal/userdata"
)

// Guest paths.
const (
	GuestBinDir   = "/opt/corekit/bin"
	GuestUserData = units.UserDataPath
)

// Host service ports on the bridge address.
const (
	hostEtcdClientPort = 2379
	hostEtcdPeerPort   = 2380
	discoveryPort      = 8087
)

// stepError names the machine and step that failed.
type stepError struct {
	who, step string
	err       error
	journal   string
}

func (e *stepError) Error() string {
	s := fmt.Sprintf("%s: %s: %v", e.who, e.step, e.err)
	if e.journal != "" {
		s += "\n--- journal of " + e.who + " (last lines) ---\n" + strings.TrimRight(e.journal, "\n")
	}
	return s
}

func (e *stepError) Unwrap() error { return e.err }

// brief drops the journal from step errors, for the last line of a failed
// `up` (the journal was printed once with the FAILED line already).
func brief(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var errs []error
		for _, e := range j.Unwrap() {
			errs = append(errs, brief(e))
		}
		return errors.Join(errs...)
	}
	var se *stepError
	if errors.As(err, &se) && se.journal != "" {
		short := *se
		short.journal = ""
		return fmt.Errorf("%w (journal above)", &short)
	}
	return err
}

// binaries the cluster uses, by name in bin/.
type binaries struct {
	dir     string
	present map[string]bool
}

func (b binaries) has(name string) bool { return b.present[name] }
func (b binaries) path(name string) string {
	return filepath.Join(b.dir, name)
}

func (p *Provider) findBinaries() binaries {
	b := binaries{dir: p.opts.BinDir, present: map[string]bool{}}
	for _, n := range []string{"etcd", "etcdctl", "discovery", "coreos-cloudinit", "fleetd", "fleetctl"} {
		if fi, err := os.Stat(b.path(n)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			b.present[n] = true
		}
	}
	return b
}

// Up boots the cluster. If one is up already it says so and changes
// nothing; leftovers of a broken one are torn down first. On failure it
// tears down everything it started and returns an error naming the machine
// and step.
func (p *Provider) Up(ctx context.Context) error {
	if err := p.store.Lock(); err != nil {
		return err
	}
	defer p.store.Unlock()
	if err := nspawn.Check(); err != nil {
		return err
	}
	if st, err := p.store.Load(); err != nil {
		return err
	} else if st != nil {
		why := p.unhealthy(st)
		if st.Status == "up" && why == "" {
			p.say("corekit", "cluster is already up (%d machines); `make down` first to rebuild it", len(st.Machines))
			p.printUsage(st)
			return nil
		}
		if why == "" {
			why = "its last `up` did not finish"
		}
		p.say("corekit", "found a previous cluster that is not fully running (%s); tearing it down first", why)
		if err := p.teardown(ctx, st); err != nil {
			return err
		}
	}
	start := time.Now()
	st := &State{Status: "booting", UserData: p.opts.UserData}
	if err := p.store.Save(st); err != nil {
		return err
	}
	err := p.up(ctx, st)
	if err != nil {
		st.Status = "failed"
		_ = p.store.Save(st)
		fmt.Fprintf(p.out, "==> corekit: FAILED: %v\n==> corekit: tearing down what this run started\n", err)
		if terr := p.teardown(context.WithoutCancel(ctx), st); terr != nil {
			return errors.Join(brief(err), fmt.Errorf("teardown: %w", terr))
		}
		return brief(err)
	}
	st.Status = "up"
	if err := p.store.Save(st); err != nil {
		return err
	}
	p.say("corekit", "cluster up in %s", time.Since(start).Round(100*time.Millisecond))
	p.printUsage(st)
	return nil
}

func (p *Provider) up(ctx context.Context, st *State) error {
	o := p.opts
	bins := p.findBinaries()

	// 1. user-data: read and check before touching the host.
	raw, err := os.ReadFile(o.UserData)
	if err != nil {
		return &stepError{who: "corekit", step: "read user-data", err: err}
	}
	info, err := userdata.Inspect(raw)
	if err != nil {
		return &stepError{who: "corekit", step: "check user-data " + o.UserData, err: err}
	}
	st.ClientPort = info.ClientPort
	p.say("corekit", "user-data %s (etcd section %q, client port %d)", rel(o.Root, o.UserData), info.EtcdSection, info.ClientPort)
	for _, n := range []string{"coreos-cloudinit", "etcd", "fleetd", "discovery"} {
		if !bins.has(n) {
			p.say("corekit", "WARNING: bin/%s is missing (not built yet?): %s", n, missingEffect(n))
		}
	}

	// 2. bridge.
	subnet, err := netip.ParsePrefix(o.Subnet)
	if err != nil || subnet.Bits() != 24 || !subnet.Addr().Is4() {
		return usageError{fmt.Errorf("-subnet %q: want an IPv4 /24 such as 172.17.8.0/24", o.Subnet)}
	}
	subnet = subnet.Masked()
	gw, err := nspawn.GatewayFor(subnet)
	if err != nil {
		return err
	}
	br, err := nspawn.CreateBridge(ctx, o.Bridge, gw)
	if err != nil {
		return &stepError{who: "corekit", step: "create bridge", err: err}
	}
	st.Bridge, st.Gateway = br.Name, gw.String()
	if err := p.store.Save(st); err != nil {
		return err
	}
	p.say("corekit", "bridge %s, host address %s", br.Name, gw)
	host := gw.Addr().String()

	// 3. host etcd (the discovery service's store).
	if err := os.MkdirAll(filepath.Join(o.StateDir, "logs"), 0o755); err != nil {
		return err
	}
	etcdBin, etcdKind := bins.path("etcd"), "bin/etcd"
	if !bins.has("etcd") {
		etcdBin, etcdKind = "/usr/bin/etcd", "Debian's /usr/bin/etcd (bin/etcd missing)"
		if _, err := os.Stat(etcdBin); err != nil {
			return &stepError{who: "corekit", step: "host etcd", err: errors.New("neither bin/etcd nor /usr/bin/etcd exists: run `make build` (or apt-get install -y etcd-server)")}
		}
	}
	clientURL := fmt.Sprintf("http://%s:%d", host, hostEtcdClientPort)
	peerURL := fmt.Sprintf("http://%s:%d", host, hostEtcdPeerPort)
	args := []string{
		"--name", "corekit-host",
		"--data-dir", filepath.Join(o.StateDir, "host-etcd"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "corekit-host=" + peerURL,
	}
	if isReferenceEtcd(etcdBin) {
		args = append(args, "--enable-v2") // etcd 3.x serves the v2 API only when asked
	}
	he, err := startHostProcess("host etcd", etcdBin, args, filepath.Join(o.StateDir, "logs", "host-etcd.log"))
	if err != nil {
		return &stepError{who: "corekit", step: "host etcd", err: err}
	}
	he.URL = clientURL
	st.HostEtcd = he
	if err := p.store.Save(st); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = waitHTTP(wctx, he, clientURL+"/v2/keys/")
	cancel()
	if err != nil {
		return &stepError{who: "corekit", step: "host etcd", err: err}
	}
	p.say("corekit", "host etcd on %s (%s)", clientURL, etcdKind)

	// 4. discovery and the cluster's token.
	if !info.NeedsToken() {
		st.DiscoveryURL = info.Discovery
		if info.EtcdSection != "" {
			p.say("corekit", "user-data sets its own discovery URL %s; using it", info.Discovery)
		}
	} else if bins.has("discovery") {
		discURL := fmt.Sprintf("http://%s:%d", host, discoveryPort)
		dp, err := startHostProcess("discovery", bins.path("discovery"), []string{
			"--etcd", clientURL, "--host", discURL, "--addr", fmt.Sprintf("%s:%d", host, discoveryPort), "--new-rate", "-1",
		}, filepath.Join(o.StateDir, "logs", "discovery.log"))
		if err != nil {
			return &stepError{who: "corekit", step: "discovery", err: err}
		}
		dp.URL = discURL
		st.Discovery = dp
		if err := p.store.Save(st); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		tok, err := newToken(wctx, dp, fmt.Sprintf("%s/new?size=%d", discURL, o.N))
		cancel()
		if err != nil {
			return &stepError{who: "corekit", step: "discovery /new", err: err}
		}
		st.DiscoveryURL = tok
		p.say("corekit", "discovery on %s, token %s (size %d)", discURL, tok, o.N)
	} else {
		tok, err := etcdToken(ctx, clientURL, o.N)
		if err != nil {
			return &stepError{who: "corekit", step: "discovery token in host etcd", err: err}
		}
		st.DiscoveryURL = tok
		p.say("corekit", "discovery token %s (served by the host etcd directly, size %d)", tok, o.N)
	}
	if err := p.store.Save(st); err != nil {
		return err
	}

	// 5. machines.
	binds, pathUnit, serviceUnit, err := p.binds(bins)
	if err != nil {
		return &stepError{who: "corekit", step: "units", err: err}
	}
	type booted struct {
		i   int
		m   *nspawn.Machine
		err error
	}
	results := make(chan booted, o.N)
	rendered := make([][]byte, o.N)
	for i := 1; i <= o.N; i++ {
		name := fmt.Sprintf("%s-%02d", o.Prefix, i)
		addr, err := nspawn.HostAddrN(subnet, 100+i)
		if err != nil {
			return err
		}
		dir := filepath.Join(o.StateDir, "machines", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		ud := raw
		if info.NeedsToken() {
			if ud, err = userdata.SetDiscovery(raw, st.DiscoveryURL); err != nil {
				return &stepError{who: name, step: "render user-data", err: err}
			}
		}
		udPath := filepath.Join(dir, "user-data")
		if err := os.WriteFile(udPath, ud, 0o644); err != nil {
			return err
		}
		if i == 1 && bins.has("coreos-cloudinit") {
			if err := validateUserData(ctx, bins.path("coreos-cloudinit"), udPath); err != nil {
				return &stepError{who: "corekit", step: "validate user-data " + rel(o.Root, o.UserData), err: err}
			}
		}
		rendered[i-1] = ud
		cfg := nspawn.Config{
			Name: name, Hostname: name, Bridge: br.Name, Addr: addr, Binds: binds,
			Dir: dir, Detach: true, BootTimeout: o.Timeout,
		}
		go func() {
			t0 := time.Now()
			m, err := nspawn.Boot(ctx, cfg, p.log)
			if err == nil {
				p.say(name, "booted in %s at %s", time.Since(t0).Round(10*time.Millisecond), addr.Addr())
			}
			results <- booted{i, m, err}
		}()
	}
	machines := make([]*nspawn.Machine, o.N)
	var bootErrs []error
	for range o.N {
		r := <-results
		if r.err != nil {
			bootErrs = append(bootErrs, &stepError{who: fmt.Sprintf("%s-%02d", o.Prefix, r.i), step: "boot", err: r.err})
			continue
		}
		machines[r.i-1] = r.m
		st.Machines = append(st.Machines, r.m.Info())
		sort.Slice(st.Machines, func(a, b int) bool { return st.Machines[a].Name < st.Machines[b].Name })
		if err := p.store.Save(st); err != nil {
			return err
		}
	}
	if len(bootErrs) > 0 {
		return errors.Join(bootErrs...)
	}
	if err := p.writeEnv(st); err != nil {
		return err
	}

	// 6. user-data on every machine, applied by coreos-cloudinit.
	if !bins.has("coreos-cloudinit") {
		p.say("corekit", "SKIPPED applying user-data: bin/coreos-cloudinit is missing (build ./cloudinit); the machines run without etcd/fleet")
		return nil
	}
	if err := parallel(machines, func(m *nspawn.Machine) error {
		return p.provision(ctx, m, rendered[indexOf(machines, m)], pathUnit, serviceUnit)
	}); err != nil {
		return err
	}

	// 7. etcd forms through discovery.
	if info.StartsEtcd && !bins.has("etcd") {
		p.say("corekit", "SKIPPED waiting for etcd: bin/etcd is missing (build ./etcd), so etcd.service cannot run on the machines")
	}
	if info.StartsEtcd && bins.has("etcd") {
		unit := "etcd.service"
		if info.EtcdSection == "etcd2" {
			unit = "etcd2.service"
		}
		st.EtcdUnit = unit
		if err := parallel(machines, func(m *nspawn.Machine) error { return p.waitActive(ctx, m, unit) }); err != nil {
			return err
		}
		if err := p.waitMembers(ctx, machines, st.ClientPort, unit); err != nil {
			return err
		}
	}
	// 8. fleet.
	if info.StartsFleet && !bins.has("fleetd") {
		p.say("corekit", "SKIPPED waiting for fleet: bin/fleetd is missing (build ./fleet)")
	}
	if info.StartsFleet && bins.has("fleetd") {
		if err := parallel(machines, func(m *nspawn.Machine) error { return p.waitActive(ctx, m, "fleet.service") }); err != nil {
			return err
		}
		if st.EtcdUnit != "" {
			if err := p.waitFleetMachines(ctx, machines, st.ClientPort); err != nil {
				return err
			}
		}
	}
	return nil
}

// fleetMachinesKey is where every fleetd announces itself (fleet's default
// etcd_key_prefix).
const fleetMachinesKey = "/_coreos.com/fleet/machines"

// waitFleetMachines waits until every machine's fleetd has registered in the
// store, which is what `fleetctl list-machines` lists.
func (p *Provider) waitFleetMachines(ctx context.Context, machines []*nspawn.Machine, port int) error {
	wctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	client := &http.Client{Timeout: 3 * time.Second}
	base := fmt.Sprintf("http://%s:%d", machines[0].Addr().Addr(), port)
	var last error
	for {
		n, err := countFleetMachines(wctx, client, base)
		if err == nil && n >= len(machines) {
			p.say("corekit", "fleet: %d machines registered", n)
			return nil
		}
		if err == nil {
			err = fmt.Errorf("%d of %d machines registered", n, len(machines))
		}
		last = err
		if err := sleep(wctx, 300*time.Millisecond); err != nil {
			// Name a machine whose fleetd has not registered.
			who := machines[0]
			if ips, err := fleetMachineIPs(context.WithoutCancel(ctx), client, base); err == nil {
				for _, m := range machines {
					if !ips[m.Addr().Addr().String()] {
						who = m
						break
					}
				}
			}
			return &stepError{who: who.Hostname(), step: "fleet machines", err: fmt.Errorf("after %s: %w", p.opts.Timeout, last),
				journal: who.JournalTail(context.WithoutCancel(ctx), "fleet.service", 25)}
		}
	}
}

func countFleetMachines(ctx context.Context, c *http.Client, base string) (int, error) {
	ips, err := fleetMachineIPs(ctx, c, base)
	return len(ips), err
}

// fleetMachineIPs returns the PublicIP of every registered fleet machine.
func fleetMachineIPs(ctx context.Context, c *http.Client, base string) (map[string]bool, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v2/keys"+fleetMachinesKey+"?recursive=true&quorum=true", nil)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return map[string]bool{}, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", fleetMachinesKey, resp.Status)
	}
	var v struct {
		Node struct {
			Nodes []struct {
				Nodes []struct {
					Key   string `json:"key"`
					Value string `json:"value"`
				} `json:"nodes"`
			} `json:"nodes"`
		} `json:"node"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&v); err != nil {
		return nil, err
	}
	ips := map[string]bool{}
	for _, m := range v.Node.Nodes {
		for _, f := range m.Nodes {
			if !strings.HasSuffix(f.Key, "/object") {
				continue
			}
			var obj struct{ PublicIP string }
			if json.Unmarshal([]byte(f.Value), &obj) == nil && obj.PublicIP != "" {
				ips[obj.PublicIP] = true
			}
		}
	}
	return ips, nil
}

func missingEffect(bin string) string {
	switch bin {
	case "coreos-cloudinit":
		return "machines boot but user-data is not applied"
	case "etcd":
		return "the host store falls back to /usr/bin/etcd; etcd.service fails on the machines"
	case "fleetd":
		return "fleet.service fails on the machines"
	case "discovery":
		return "the token is served straight from the host etcd's keyspace"
	}
	return ""
}

// binds lists what every machine gets: bin/ read-only at /opt/corekit/bin,
// the image's etcd/fleet units (vagrant/units) and cloudinit's machine units
// (cloudinit/units, rendered for /opt/corekit/bin/coreos-cloudinit) in
// /etc/systemd/system. It returns the path and service unit names of the
// user-data watcher.
func (p *Provider) binds(bins binaries) (out []nspawn.Bind, pathUnit, serviceUnit string, err error) {
	if err := os.MkdirAll(bins.dir, 0o755); err != nil {
		return nil, "", "", err
	}
	out = []nspawn.Bind{{Host: bins.dir, Guest: GuestBinDir, ReadOnly: true}}
	dir := filepath.Join(p.opts.Root, "vagrant", "units")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, "", "", err
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".service") {
			out = append(out, nspawn.Bind{Host: filepath.Join(dir, e.Name()), Guest: "/etc/systemd/system/" + e.Name(), ReadOnly: true})
		}
	}
	rendered := filepath.Join(p.opts.StateDir, "units")
	if err := os.MkdirAll(rendered, 0o755); err != nil {
		return nil, "", "", err
	}
	paths, err := units.WriteDir(rendered, GuestBinDir+"/coreos-cloudinit")
	if err != nil {
		return nil, "", "", err
	}
	for _, hp := range paths {
		n := filepath.Base(hp)
		switch {
		case strings.HasSuffix(n, ".path"):
			pathUnit = n
		case strings.HasSuffix(n, ".service"):
			serviceUnit = n
		}
		out = append(out, nspawn.Bind{Host: hp, Guest: "/etc/systemd/system/" + n, ReadOnly: true})
	}
	if pathUnit == "" || serviceUnit == "" {
		return nil, "", "", fmt.Errorf("cloudinit/units provides no .path and .service unit (got %v)", paths)
	}
	return out, pathUnit, serviceUnit, nil
}

// provision does on one machine what Vagrant's network capability and file
// provisioner do: /etc/environment with the machine's address, then the
// rendered user-data at /var/lib/coreos-vagrant/vagrantfile-user-data, which
// the path unit hands to coreos-cloudinit.
func (p *Provider) provision(ctx context.Context, m *nspawn.Machine, ud []byte, pathUnit, serviceUnit string) error {
	name := m.Hostname()
	ip := m.Addr().Addr().String()
	env := fmt.Sprintf("COREOS_PUBLIC_IPV4=%s\nCOREOS_PRIVATE_IPV4=%s\n", ip, ip)
	if err := m.WriteFile("/etc/environment", []byte(env), 0o644); err != nil {
		return &stepError{who: name, step: "write /etc/environment", err: err}
	}
	if err := m.WriteFile(GuestUserData, ud, 0o600); err != nil {
		return &stepError{who: name, step: "upload user-data", err: err}
	}
	if r := m.Run(ctx, "systemctl", "start", pathUnit); !r.OK() {
		return &stepError{who: name, step: "start " + pathUnit, err: fmt.Errorf("%w: %s", r.Err, strings.TrimSpace(r.Stderr)),
			journal: m.JournalTail(ctx, "", 30)}
	}
	if err := p.waitActive(ctx, m, serviceUnit); err != nil {
		return err
	}
	p.say(name, "user-data applied by coreos-cloudinit")
	return nil
}

// waitActive waits until unit is active on m; failed (or the timeout) is an
// error carrying the unit's journal.
func (p *Provider) waitActive(ctx context.Context, m *nspawn.Machine, unit string) error {
	wctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	last := ""
	for {
		r := m.Run(wctx, "systemctl", "is-active", unit)
		state := strings.TrimSpace(r.Stdout)
		switch state {
		case "active":
			if !strings.Contains(unit, "cloudinit") {
				p.say(m.Hostname(), "%s active", unit)
			}
			return nil
		case "failed":
			return &stepError{who: m.Hostname(), step: unit, err: errors.New("unit failed"),
				journal: m.JournalTail(context.WithoutCancel(ctx), unit, 25)}
		}
		if state != "" {
			last = state
		}
		if err := sleep(wctx, 200*time.Millisecond); err != nil {
			return &stepError{who: m.Hostname(), step: unit, err: fmt.Errorf("not active after %s (state %q)", p.opts.Timeout, last),
				journal: m.JournalTail(context.WithoutCancel(ctx), unit, 25)}
		}
	}
}

// waitMembers waits until the first machine's etcd lists every machine as a
// member (v2 /v2/members, or /v2/machines of etcd 0.4).
func (p *Provider) waitMembers(ctx context.Context, machines []*nspawn.Machine, port int, unit string) error {
	wctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	client := &http.Client{Timeout: 3 * time.Second}
	base := fmt.Sprintf("http://%s:%d", machines[0].Addr().Addr(), port)
	got, lastErr := 0, error(nil)
	for {
		n, err := countMembers(wctx, client, base)
		if err == nil && n >= len(machines) {
			// Members are listed as soon as the cluster is configured; it
			// serves only once a leader is elected: wait for a quorum read.
			if err = quorumRead(wctx, client, base); err == nil {
				p.say("corekit", "etcd formed: %d members and a leader (asked %s)", n, base)
				return nil
			}
			err = fmt.Errorf("%d members, no leader yet: %w", n, err)
		}
		if err != nil {
			lastErr = err
		} else {
			got = n
		}
		// A member that keeps crashing will not join: say so now, not at the timeout.
		for _, m := range machines {
			r := m.Run(wctx, "systemctl", "show", "-P", "NRestarts", unit)
			if n, _ := strconv.Atoi(strings.TrimSpace(r.Stdout)); n >= 3 {
				return &stepError{who: m.Hostname(), step: "etcd members",
					err:     fmt.Errorf("%s keeps exiting (restarted %d times)", unit, n),
					journal: m.JournalTail(context.WithoutCancel(ctx), unit, 25)}
			}
		}
		if err := sleep(wctx, 500*time.Millisecond); err != nil {
			return &stepError{who: machines[0].Hostname(), step: "etcd members",
				err:     fmt.Errorf("%d of %d members after %s (last error: %v)", got, len(machines), p.opts.Timeout, lastErr),
				journal: machines[0].JournalTail(context.WithoutCancel(ctx), unit, 25)}
		}
	}
}

// quorumRead does a linearizable read of the v2 key space, which only a
// cluster with a leader answers. An etcd that serves no v2 API (404) passes:
// there the member list is all we can check.
func quorumRead(ctx context.Context, c *http.Client, base string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v2/keys/?quorum=true", nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotFound && !strings.Contains(string(b), `"errorCode"`) {
		return nil
	}
	return fmt.Errorf("GET %s/v2/keys/?quorum=true: %s %s", base, resp.Status, strings.TrimSpace(string(b)))
}

// countMembers asks an etcd member for the member list: v2 /v2/members,
// else /v2/machines (etcd 0.4), else the v3 gateway's
// /v3/cluster/member/list (etcd 3.x without --enable-v2).
func countMembers(ctx context.Context, c *http.Client, base string) (int, error) {
	var errs []string
	for _, probe := range []struct {
		method, path string
		parse        func([]byte) (int, bool)
	}{
		{http.MethodGet, "/v2/members", parseMemberList},
		{http.MethodGet, "/v2/machines", parseMachines},
		{http.MethodPost, "/v3/cluster/member/list", parseMemberList},
	} {
		var body io.Reader
		if probe.method == http.MethodPost {
			body = strings.NewReader("{}")
		}
		req, _ := http.NewRequestWithContext(ctx, probe.method, base+probe.path, body)
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			if n, ok := probe.parse(b); ok {
				return n, nil
			}
		}
		errs = append(errs, probe.path+": "+resp.Status)
	}
	return 0, errors.New(strings.Join(errs, "; "))
}

func parseMemberList(b []byte) (int, bool) {
	var v struct {
		Members []json.RawMessage `json:"members"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return 0, false
	}
	return len(v.Members), true
}

func parseMachines(b []byte) (int, bool) {
	n := 0
	for _, f := range strings.Split(string(b), ",") {
		if strings.TrimSpace(f) != "" {
			n++
		}
	}
	return n, n > 0
}

// isReferenceEtcd reports whether bin is (a link to) Debian's etcd 3.x.
func isReferenceEtcd(bin string) bool {
	p, err := filepath.EvalSymlinks(bin)
	return err == nil && p == "/usr/bin/etcd"
}

// validateUserData runs `coreos-cloudinit -validate` on the host, so a bad
// file fails before any machine boots, with the validator's line numbers.
func validateUserData(ctx context.Context, bin, path string) error {
	out, err := exec.CommandContext(ctx, bin, "-validate", "-from-file", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w\n%s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newToken asks the discovery service for a token URL.
func newToken(ctx context.Context, h *HostProcess, newURL string) (string, error) {
	if err := waitHTTP(ctx, h, newURL); err != nil {
		return "", err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, newURL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	tok := strings.TrimSpace(string(b))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", newURL, resp.Status, tok)
	}
	if u, err := url.Parse(tok); err != nil || u.Host == "" {
		return "", fmt.Errorf("GET %s: not a URL: %q", newURL, tok)
	}
	return tok, nil
}

// etcdToken makes a discovery token directly in the host etcd, as
// discovery.etcd.io does in its own store: a random key under
// /_etcd/registry with _config/size = n.
func etcdToken(ctx context.Context, clientURL string, n int) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	tok := clientURL + "/v2/keys/_etcd/registry/" + hex.EncodeToString(b[:])
	form := url.Values{"value": {fmt.Sprint(n)}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, tok+"/_config/size", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("PUT %s/_config/size: %s", tok, resp.Status)
	}
	return tok, nil
}

// parallel runs f on every machine at once and joins the errors.
func parallel(ms []*nspawn.Machine, f func(*nspawn.Machine) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(ms))
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(m)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func indexOf(ms []*nspawn.Machine, m *nspawn.Machine) int {
	for i, x := range ms {
		if x == m {
			return i
		}
	}
	return -1
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}
