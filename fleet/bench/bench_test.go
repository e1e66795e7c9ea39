package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/corekit/corekit/internal/buildbin"
	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/fleetapi"
	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/testbed"
	"github.com/corekit/corekit/internal/unitfile"
	"github.com/corekit/corekit/internal/v2client"
)

// unitText is the trivial unit: a oneshot that stays active, so systemd
// holds 1,000 active units without 1,000 processes on a shared host.
const unitText = "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n"

const fleetService = `[Unit]
Description=fleet daemon
[Service]
ExecStart=/opt/fleet/fleetd
Restart=no
`

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// counts are the requests a countingProxy forwarded, by kind.
type counts struct {
	Reads, Watches, Writes, Deletes, Schedules int64
	// ReadBytes and WatchBytes are response body bytes of reads and watches.
	ReadBytes, WatchBytes int64
}

func (c counts) total() int64 { return c.Reads + c.Watches + c.Writes + c.Deletes }

func (c counts) sub(o counts) counts {
	return counts{c.Reads - o.Reads, c.Watches - o.Watches, c.Writes - o.Writes, c.Deletes - o.Deletes, c.Schedules - o.Schedules,
		c.ReadBytes - o.ReadBytes, c.WatchBytes - o.WatchBytes}
}

// countingProxy forwards every request to etcd and counts it: a GET with
// wait=true is a watch, a PUT or POST a write, and a PUT of job/<unit>/target
// a scheduling decision (the engine's create-only ScheduleUnit).
type countingProxy struct {
	reads, watches, writes, deletes, schedules atomic.Int64
	readBytes, watchBytes                      atomic.Int64
	rp                                         *httputil.ReverseProxy

	mu      sync.Mutex
	byClass map[string]int64 // "PUT job/*/target" → requests
}

// keyClass names a request by method and key with unit names and machine
// IDs replaced by *: "PUT job/*/target", "GET(wait) job", "GET states".
func keyClass(r *http.Request) string {
	k := strings.TrimPrefix(r.URL.Path, "/v2/keys/")
	k = strings.TrimPrefix(strings.TrimPrefix(k, "_coreos.com/fleet"), "/")
	parts := strings.Split(strings.Trim(k, "/"), "/")
	switch {
	case len(parts) >= 3 && parts[0] == "states":
		parts = []string{parts[0], "*", "*"}
	case len(parts) >= 2 && parts[0] != "engine" && parts[0] != "lease":
		parts[1] = "*"
	}
	m := r.Method
	if r.URL.Query().Get("wait") == "true" {
		m += "(wait)"
	}
	return m + " " + strings.Join(parts, "/")
}

func (p *countingProxy) classes() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int64, len(p.byClass))
	for k, v := range p.byClass {
		out[k] = v
	}
	return out
}

func newCountingProxy(target *url.URL) *countingProxy {
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1 // stream watch responses at once
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		if r.Context().Err() == nil { // a cancelled watch is not an error
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	}
	return &countingProxy{rp: rp, byClass: map[string]int64{}}
}

// byteCounter counts the response body bytes written through it.
type byteCounter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (b byteCounter) Write(p []byte) (int, error) {
	n, err := b.ResponseWriter.Write(p)
	b.n.Add(int64(n))
	return n, err
}

func (b byteCounter) Flush() {
	if f, ok := b.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (p *countingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v2/keys/") {
		p.mu.Lock()
		p.byClass[keyClass(r)]++
		p.mu.Unlock()
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			if r.URL.Query().Get("wait") == "true" {
				p.watches.Add(1)
				w = byteCounter{w, &p.watchBytes}
			} else {
				p.reads.Add(1)
				w = byteCounter{w, &p.readBytes}
			}
		case http.MethodPut, http.MethodPost:
			p.writes.Add(1)
			if strings.Contains(r.URL.Path, "/job/") && strings.HasSuffix(r.URL.Path, "/target") {
				p.schedules.Add(1)
			}
		case http.MethodDelete:
			p.deletes.Add(1)
		}
	}
	p.rp.ServeHTTP(w, r)
}

func (p *countingProxy) snapshot() counts {
	return counts{p.reads.Load(), p.watches.Load(), p.writes.Load(), p.deletes.Load(), p.schedules.Load(),
		p.readBytes.Load(), p.watchBytes.Load()}
}

// etcdProc is the etcd the cluster uses.
type etcdProc struct {
	url string // loopback client URL (the benchmark's own, uncounted reads)
	pid int
	bin string
}

// startEtcd runs etcd on a loopback client URL: ours, or Debian's 3.4 with
// FLEET_BENCH_ETCD=reference. The guests reach it through the proxy only.
func startEtcd(b *testing.B) etcdProc {
	b.Helper()
	kind := etcdtest.Ours
	if os.Getenv("FLEET_BENCH_ETCD") == "reference" {
		kind = etcdtest.Reference
	}
	s := etcdtest.Start(b, kind)
	return etcdProc{url: s.ClientURL, pid: s.PID(), bin: s.Binary}
}

// storeWrites reads etcd's /v2/stats/store write counters (sets, creates,
// updates, compare-and-swaps, deletes, compare-and-deletes; success+fail).
func storeWrites(ctx context.Context, etcdURL string) (int64, error) {
	s, err := storeStats(ctx, etcdURL)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, k := range []string{"setsSuccess", "setsFail", "createSuccess", "createFail", "updateSuccess", "updateFail",
		"compareAndSwapSuccess", "compareAndSwapFail", "deleteSuccess", "deleteFail", "compareAndDeleteSuccess", "compareAndDeleteFail"} {
		n += s[k]
	}
	return n, nil
}

// storeStats reads etcd's /v2/stats/store counters.
func storeStats(ctx context.Context, etcdURL string) (map[string]int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, etcdURL+"/v2/stats/store", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var s map[string]int64
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return nil, fmt.Errorf("/v2/stats/store: %w", err)
	}
	return s, nil
}

// procMemory parses VmRSS and VmHWM (kB) from a /proc/<pid>/status text.
func procMemory(status string) (rss, hwm int64) {
	for _, l := range strings.Split(status, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
	}
	return rss, hwm
}

// BenchmarkRealCluster submits FLEET_BENCH_UNITS (1,000) trivial units to a
// 3-machine fleet on real systemd and waits until every one is active. Run
// it with -benchtime 1x: one iteration boots one cluster (about 1–3 min).
func BenchmarkRealCluster(b *testing.B) {
	testbed.Require(b)
	if b.N > 1 {
		b.Fatalf("b.N=%d: run with -benchtime 1x (one iteration boots one cluster)", b.N)
	}
	nUnits := envInt("FLEET_BENCH_UNITS", 1000)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	bb, err := buildbin.New()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bb.Cleanup)
	fleetd, err := bb.Build(ctx, "fleet", "fleetd")
	if err != nil {
		b.Fatal(err)
	}
	c := testbed.NewCluster(b, testbed.Options{N: 3, Binds: []testbed.Bind{{Host: filepath.Dir(fleetd), Guest: "/opt/fleet", ReadOnly: true}}})
	etcd := startEtcd(b)
	b.Logf("etcd: %s (pid %d)", etcd.bin, etcd.pid)

	target, _ := url.Parse(etcd.url)
	proxy := newCountingProxy(target)
	ln, err := net.Listen("tcp", net.JoinHostPort(c.HostAddr().String(), "0"))
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	proxyURL := "http://" + ln.Addr().String()

	byID := map[string]*testbed.Machine{}
	for _, m := range c.Machines {
		conf := fmt.Sprintf("etcd_servers=%s\netcd_request_timeout=3\npublic_ip=%s\nmetadata=hostname=%s\n", proxyURL, m.Addr(), m.Hostname())
		m.MustWriteFile("/etc/fleet/fleet.conf", []byte(conf), 0o644)
		m.MustWriteFile("/etc/systemd/system/fleet.service", []byte(fleetService), 0o644)
		m.MustRun(ctx, "systemctl", "daemon-reload")
		m.MustRun(ctx, "systemctl", "start", "fleet.service")
		byID[strings.TrimSpace(string(m.MustReadFile("/etc/machine-id")))] = m
	}
	if len(byID) != 3 {
		b.Fatalf("machines do not have distinct machine IDs: %v", byID)
	}
	vc, err := v2client.New(v2client.Config{Endpoints: []string{etcd.url}, HeaderTimeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	reg := fleetregistry.NewEtcd(vc, "")
	poll(ctx, b, "3 machines and an engine leader", func() (bool, string) {
		ms, err := reg.Machines(ctx)
		l, lerr := reg.GetLease(ctx, "engine-leader")
		return err == nil && lerr == nil && len(ms) == 3 && l != nil, fmt.Sprint(len(ms), err, l, lerr)
	})
	api, err := fleetapi.NewClient("unix://"+c.Machines[0].GuestPath("/var/run/fleet.sock"), nil)
	if err != nil {
		b.Fatal(err)
	}
	f, err := unitfile.Parse(unitText)
	if err != nil {
		b.Fatal(err)
	}
	opts := fleetapi.OptionsOf(f)

	// Idle cluster: what 3 fleetds cost the store with no units.
	time.Sleep(2 * time.Second)
	idle0, idleT := proxy.snapshot(), time.Now()
	time.Sleep(10 * time.Second)
	idleEmpty := float64(proxy.snapshot().sub(idle0).total()) / time.Since(idleT).Seconds()

	c0, k0 := proxy.snapshot(), proxy.classes()
	w0, err := storeWrites(ctx, etcd.url)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	var g errgroup.Group
	g.SetLimit(8)
	for i := range nUnits {
		g.Go(func() error {
			name := fmt.Sprintf("bench-%04d.service", i)
			if err := api.CreateUnit(ctx, &fleetapi.Unit{Name: name, Options: opts, DesiredState: "launched"}); err != nil {
				return fmt.Errorf("create %s: %w", name, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	submitted := time.Since(start)

	// All active, from systemd's view as the agents publish it. A unit
	// counts once it has been seen active: published states can expire
	// between two re-publishes (see docs/performance-fleet.md), so "all at
	// the same instant" may never hold under load.
	activeOn := map[string]int{}
	seen := map[string]string{} // unit → machine it was seen active on
	publishedNow := 0
	var allScheduled time.Duration
	poll(ctx, b, fmt.Sprintf("%d units active", nUnits), func() (bool, string) {
		if allScheduled == 0 && proxy.snapshot().sub(c0).Schedules >= int64(nUnits) {
			allScheduled = time.Since(start)
		}
		sts, err := reg.UnitStates(ctx)
		if err != nil {
			return false, err.Error()
		}
		publishedNow = 0
		for _, s := range sts {
			if strings.HasPrefix(s.UnitName, "bench-") && s.ActiveState == "active" {
				publishedNow++
				if _, ok := seen[s.UnitName]; !ok {
					seen[s.UnitName] = s.MachineID()
					activeOn[s.MachineID()]++
				}
			}
		}
		return len(seen) >= nUnits, fmt.Sprintf("%d of %d seen active, %d published now: %v", len(seen), nUnits, publishedNow, activeOn)
	})
	allActive := time.Since(start)
	b.StopTimer()
	c1 := proxy.snapshot().sub(c0)
	b.Logf("requests per decision by key, submit to all active:\n  %s", classDelta(k0, proxy.classes(), float64(nUnits)))
	w1, err := storeWrites(ctx, etcd.url)
	if err != nil {
		b.Fatal(err)
	}

	// Cross-check with systemd in each machine.
	sum := 0
	for id, m := range byID {
		out := m.MustRun(ctx, "systemctl", "list-units", "--type=service", "--state=active", "--no-legend", "--plain", "bench-*")
		n := 0
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "bench-") {
				n++
			}
		}
		if n != activeOn[id] {
			b.Errorf("%s: systemctl lists %d active bench units, the registry showed %d", m.Hostname(), n, activeOn[id])
		}
		b.Logf("%s: %d units active (systemctl list-units), %d seen active in the registry", m.Hostname(), n, activeOn[id])
		sum += n
	}
	if sum != nUnits {
		b.Errorf("systemctl list-units: %d active bench units in all, want %d", sum, nUnits)
	}
	if c1.Schedules != int64(nUnits) {
		b.Errorf("scheduling decisions (job/*/target PUTs) = %d, want one per unit (%d)", c1.Schedules, nUnits)
	}
	if got := w1 - w0; got < c1.Writes+c1.Deletes {
		b.Errorf("/v2/stats/store counted %d writes, the proxy forwarded %d", got, c1.Writes+c1.Deletes)
	}

	// Idle cluster with every unit running: store cost per second, over
	// more than one full re-publish period (4/5 of the 30 s agent_ttl).
	idle1, idleK, idleT := proxy.snapshot(), proxy.classes(), time.Now()
	ss0, err := storeStats(ctx, etcd.url)
	if err != nil {
		b.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	expiredByKey := expiries(wctx, etcd.url)
	<-wctx.Done()
	wcancel()
	idleFull := float64(proxy.snapshot().sub(idle1).total()) / time.Since(idleT).Seconds()
	ss1, err := storeStats(ctx, etcd.url)
	if err != nil {
		b.Fatal(err)
	}
	// Keys that expire (heartbeats or states not refreshed in time) wake
	// every watcher without a request.
	idleExpired := ss1["expireCount"] - ss0["expireCount"]
	b.Logf("idle with %d units: %d keys expired in %s (etcd expireCount); by key: %v", nUnits, idleExpired, time.Since(idleT).Round(time.Second), expiredByKey())
	b.Logf("idle requests per second by key, %d units running:\n  %s", nUnits, classDelta(idleK, proxy.classes(), time.Since(idleT).Seconds()))

	// Memory at the end.
	var fleetRSS, fleetHWM int64
	for _, m := range c.Machines {
		pid := strings.TrimSpace(m.MustRun(ctx, "systemctl", "show", "-p", "MainPID", "--value", "fleet.service"))
		rss, hwm := procMemory(m.MustRun(ctx, "cat", "/proc/"+pid+"/status"))
		b.Logf("%s: fleetd VmRSS %d kB, VmHWM %d kB", m.Hostname(), rss, hwm)
		fleetRSS, fleetHWM = max(fleetRSS, rss), max(fleetHWM, hwm)
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", etcd.pid))
	if err != nil {
		b.Fatal(err)
	}
	etcdRSS, etcdHWM := procMemory(string(st))

	dec := float64(max(c1.Schedules, 1))
	b.ReportMetric(allActive.Seconds(), "s-to-all-active")
	b.ReportMetric(submitted.Seconds(), "s-to-submit")
	b.ReportMetric(allScheduled.Seconds(), "s-to-all-scheduled")
	b.ReportMetric(float64(publishedNow), "active-published-at-end")
	b.ReportMetric(float64(c1.ReadBytes+c1.WatchBytes)/dec/1024, "resp-KiB/decision")
	b.ReportMetric(float64(c1.total())/dec, "req/decision")
	b.ReportMetric(float64(c1.Reads)/dec, "reads/decision")
	b.ReportMetric(float64(c1.Watches)/dec, "watches/decision")
	b.ReportMetric(float64(c1.Writes+c1.Deletes)/dec, "writes/decision")
	b.ReportMetric(idleEmpty, "idle-req/s-empty")
	b.ReportMetric(idleFull, "idle-req/s-full")
	b.ReportMetric(float64(idleExpired), "idle-expired-keys")
	b.ReportMetric(float64(fleetRSS)/1024, "fleetd-max-rss-MB")
	b.ReportMetric(float64(etcdRSS)/1024, "etcd-rss-MB")
	b.Logf("%d units on 3 machines (%s): submitted in %s, all scheduled after %s, all active after %s; %d decisions; store requests %d "+
		"(reads %d, watches %d, writes %d, deletes %d; /v2/stats/store writes %d; response bytes: reads %d, watches %d); idle %.1f req/s empty, %.1f req/s with %d units; "+
		"fleetd max VmRSS %d kB (VmHWM %d kB), etcd VmRSS %d kB (VmHWM %d kB)",
		nUnits, filepath.Base(etcd.bin), submitted.Round(time.Millisecond), allScheduled.Round(time.Millisecond), allActive.Round(time.Millisecond), c1.Schedules, c1.total(),
		c1.Reads, c1.Watches, c1.Writes, c1.Deletes, w1-w0, c1.ReadBytes, c1.WatchBytes, idleEmpty, idleFull, nUnits, fleetRSS, fleetHWM, etcdRSS, etcdHWM)
}

// expiries counts "expire" events below fleet's prefix, by key class, with
// one streaming watch straight to etcd (uncounted) until ctx ends; the
// returned func reads the counts.
func expiries(ctx context.Context, etcdURL string) func() map[string]int {
	var mu sync.Mutex
	n := map[string]int{}
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, etcdURL+"/v2/keys/_coreos.com/fleet?wait=true&recursive=true&stream=true", nil)
		if err != nil {
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var ev struct {
				Action string `json:"action"`
				Node   struct {
					Key string `json:"key"`
				} `json:"node"`
			}
			if dec.Decode(&ev) != nil {
				return
			}
			if ev.Action == "expire" {
				r := &http.Request{Method: "EXPIRE", URL: &url.URL{Path: "/v2/keys" + ev.Node.Key}}
				mu.Lock()
				n[keyClass(r)]++
				mu.Unlock()
			}
		}
	}()
	return func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		out := make(map[string]int, len(n))
		for k, v := range n {
			out[k] = v
		}
		return out
	}
}

// classDelta lists the per-class growth from before to after, divided by div.
func classDelta(before, after map[string]int64, div float64) string {
	var out []string
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out = append(out, fmt.Sprintf("%-28s %8.2f", k, float64(d)/div))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n  ")
}

// poll calls f every 500 ms until it reports true, or fails b when ctx ends.
func poll(ctx context.Context, b *testing.B, what string, f func() (bool, string)) {
	b.Helper()
	last := ""
	for {
		ok, s := f()
		if ok {
			return
		}
		last = s
		select {
		case <-ctx.Done():
			b.Fatalf("gave up waiting for %s: %v (last: %s)", what, ctx.Err(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
