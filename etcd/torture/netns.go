package torture

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// network is a private bridge with one network namespace per member. The
// host keeps .1 on the bridge so clients reach every member directly;
// partitions are blackhole routes inside the members' namespaces, so the
// host's own routing and firewall are never touched.
type network struct {
	bridge  string
	prefix  string // "10.234.X."
	ns      []string
	veths   []string
	mu      sync.Mutex
	holes   map[[2]int]bool // blackholes currently installed: from→to
	closeMu sync.Once
}

// nsPrefix starts every namespace this package creates; the pid that follows
// lets a later run remove what a killed run left behind.
const nsPrefix = "ck-tort-"

// bridgeName matches the bridges this package creates: "cktor", the pid and
// the run number in base 36, separated by "x".
var bridgeName = regexp.MustCompile(`^cktor([0-9a-z]{1,6})x[0-9a-z]{1,2}$`)

func run(ctx context.Context, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// sweepStale removes namespaces and bridges of earlier runs whose process
// is gone (a test binary killed by a timeout cannot run its cleanups). Only
// names this package creates are considered.
func sweepStale(ctx context.Context) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || !strings.HasPrefix(f[0], nsPrefix) {
				continue
			}
			pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(f[0], nsPrefix), "-", 2)[0])
			if err != nil || pidAlive(pid) {
				continue
			}
			_ = run(ctx, "ip", "netns", "del", f[0])
		}
	}
	out, err = exec.CommandContext(ctx, "ip", "-o", "link", "show", "type", "bridge").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := strings.TrimSuffix(f[1], ":")
		m := bridgeName.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		pid, err := strconv.ParseInt(m[1], 36, 64)
		if err != nil || pidAlive(int(pid)) {
			continue
		}
		_ = run(ctx, "ip", "link", "del", name)
	}
}

func pidAlive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}

// pickSubnet returns a 10.234.X. prefix that no host interface uses yet.
func pickSubnet(seed int) (string, error) {
	out, err := exec.Command("ip", "-o", "-4", "addr", "show").Output()
	if err != nil {
		return "", fmt.Errorf("torture: ip addr: %w", err)
	}
	for i := 0; i < 250; i++ {
		p := fmt.Sprintf("10.234.%d.", (seed+i)%250+1)
		if !strings.Contains(string(out), " "+p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("torture: no free 10.234.X.0/24 subnet")
}

// newNetwork creates the bridge and n namespaces. The token makes names
// unique per process and run.
func newNetwork(ctx context.Context, n int, runNum int) (_ *network, err error) {
	pid := os.Getpid()
	token := strconv.FormatInt(int64(pid), 36) + "x" + strconv.FormatInt(int64(runNum%1296), 36)
	prefix, err := pickSubnet(pid + runNum*7)
	if err != nil {
		return nil, err
	}
	nw := &network{bridge: "cktor" + token, prefix: prefix, holes: map[[2]int]bool{}}
	defer func() {
		if err != nil {
			nw.close()
		}
	}()
	steps := [][]string{
		{"ip", "link", "add", nw.bridge, "type", "bridge"},
		{"ip", "addr", "add", prefix + "1/24", "dev", nw.bridge},
		{"ip", "link", "set", nw.bridge, "up"},
	}
	if err := runAll(ctx, steps); err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		ns := fmt.Sprintf("%s%d-%d-%d", nsPrefix, pid, runNum, i)
		hostIf := fmt.Sprintf("ckv%s%d", token, i)
		peerIf := fmt.Sprintf("ckp%s%d", token, i)
		if err := run(ctx, "ip", "netns", "add", ns); err != nil {
			return nil, err
		}
		nw.ns = append(nw.ns, ns)
		if err := run(ctx, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", peerIf); err != nil {
			return nil, err
		}
		nw.veths = append(nw.veths, hostIf)
		steps := [][]string{
			{"ip", "link", "set", peerIf, "netns", ns},
			{"ip", "-n", ns, "link", "set", peerIf, "name", "eth0"},
			{"ip", "-n", ns, "addr", "add", nw.ip(i) + "/24", "dev", "eth0"},
			{"ip", "-n", ns, "link", "set", "eth0", "up"},
			{"ip", "-n", ns, "link", "set", "lo", "up"},
			{"ip", "link", "set", hostIf, "master", nw.bridge},
			{"ip", "link", "set", hostIf, "up"},
		}
		if err := runAll(ctx, steps); err != nil {
			return nil, err
		}
	}
	return nw, nil
}

func runAll(ctx context.Context, steps [][]string) error {
	for _, s := range steps {
		if err := run(ctx, s[0], s[1:]...); err != nil {
			return fmt.Errorf("torture: network setup: %w", err)
		}
	}
	return nil
}

// ip returns member i's address.
func (nw *network) ip(i int) string { return nw.prefix + strconv.Itoa(10+i) }

// cut makes the link between members a and b drop packets both ways.
func (nw *network) cut(ctx context.Context, a, b int) error {
	if err := nw.cutOneWay(ctx, a, b); err != nil {
		return err
	}
	return nw.cutOneWay(ctx, b, a)
}

// cutOneWay makes member from drop what it sends to member to (a blackhole
// route in from's namespace); healAll removes it.
func (nw *network) cutOneWay(ctx context.Context, from, to int) error {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	d := [2]int{from, to}
	if nw.holes[d] {
		return nil
	}
	if err := run(ctx, "ip", "-n", nw.ns[from], "route", "add", "blackhole", nw.ip(to)+"/32"); err != nil {
		return err
	}
	nw.holes[d] = true
	return nil
}

// healAll removes every blackhole route.
func (nw *network) healAll(ctx context.Context) error {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	var first error
	for d := range nw.holes {
		if err := run(ctx, "ip", "-n", nw.ns[d[0]], "route", "del", "blackhole", nw.ip(d[1])+"/32"); err != nil && first == nil {
			first = err
		}
		delete(nw.holes, d)
	}
	return first
}

// close removes the namespaces (their veth ends go with them), the host
// veths and the bridge. Safe to call more than once.
func (nw *network) close() {
	nw.closeMu.Do(func() {
		ctx := context.Background()
		for _, ns := range nw.ns {
			_ = run(ctx, "ip", "netns", "del", ns)
		}
		for _, v := range nw.veths {
			if exec.Command("ip", "link", "show", v).Run() == nil {
				_ = run(ctx, "ip", "link", "del", v)
			}
		}
		_ = run(ctx, "ip", "link", "del", nw.bridge)
	})
}
