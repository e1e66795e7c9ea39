package torture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/corekit/corekit/etcd/torture/internal/syncfail"
)

// Clock jumps and disk faults: the parts of the cluster and the nemesis
// that need more than signals and routes.

// clockLag is how long after the harness rewrites a member's clock offset
// file the member may still use the old offset: our etcd re-reads the file
// at most every 100 ms (etcd/etcdmain/clockhook.go); the rest is slack for
// a loaded machine. The TTL checker widens every offset change by it.
const clockLag = time.Second

// expireSlack bounds how long before the leader appends an expire command
// it read the clock for its cutoff: etcdserver proposes it with its request
// timeout (5 s + 2 × election timeout = 7 s) right after reading the clock.
const expireSlack = 10 * time.Second

// clockChange is one rewrite of a member's offset file.
type clockChange struct {
	At     int64         `json:"at"` // ns since the run started, taken before the write
	Offset time.Duration `json:"offset"`
	// MaybeLeader: the member said it led (/v2/stats/self, polled every
	// 50 ms) at some moment while this offset was set, or it could not be
	// asked. Only such offsets can be in an expire command's cutoff.
	MaybeLeader bool `json:"maybeLeader"`
}

// clockTimeline is every member's offset history (offset 0 before its
// first change).
type clockTimeline struct {
	mu      sync.Mutex
	Members [][]clockChange `json:"members"`
}

func newClockTimeline(n int) *clockTimeline {
	return &clockTimeline{Members: make([][]clockChange, n)}
}

func (tl *clockTimeline) record(m int, at int64, off time.Duration) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.Members[m] = append(tl.Members[m], clockChange{At: at, Offset: off})
}

// mayLead marks member m's current offset as possibly used by a leader.
func (tl *clockTimeline) mayLead(m int) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if ch := tl.Members[m]; len(ch) > 0 {
		ch[len(ch)-1].MaybeLeader = true
	}
}

// jumped reports whether any offset was ever non-zero.
func (tl *clockTimeline) jumped() bool {
	if tl == nil {
		return false
	}
	for _, ch := range tl.Members {
		for _, c := range ch {
			if c.Offset != 0 {
				return true
			}
		}
	}
	return false
}

// segment is an offset a member may have used during [From, To).
type segment struct {
	From, To    int64
	Off         time.Duration
	MaybeLeader bool
}

// segments returns member m's offsets as intervals, each widened at the
// end by clockLag (a member sees a change up to clockLag late).
func (tl *clockTimeline) segments(m int) []segment {
	const inf = int64(1) << 62
	segs := []segment{{From: -inf, To: inf, Off: 0, MaybeLeader: true}}
	for _, c := range tl.Members[m] {
		segs[len(segs)-1].To = c.At + int64(clockLag)
		segs = append(segs, segment{From: c.At, To: inf, Off: c.Offset, MaybeLeader: c.MaybeLeader || c.Offset == 0})
	}
	return segs
}

// offsetRange is the smallest and largest offset member m may have used at
// some moment of [from, to].
func (tl *clockTimeline) offsetRange(m int, from, to int64) (lo, hi time.Duration) {
	first := true
	for _, s := range tl.segments(m) {
		if s.From > to || s.To <= from {
			continue
		}
		if first || s.Off < lo {
			lo = s.Off
		}
		if first || s.Off > hi {
			hi = s.Off
		}
		first = false
	}
	return lo, hi
}

// maxClock is the latest wall-clock reading (run-relative ns, offset
// included) a leader could have taken during [from, g]: the latest cutoff
// an expire command appended in that time can carry. Offsets of members
// that never said they led are left out.
func (tl *clockTimeline) maxClock(from, g int64) int64 {
	best := g
	for m := range tl.Members {
		for _, s := range tl.segments(m) {
			if s.From <= g && s.To > from && s.MaybeLeader {
				best = max(best, min(s.To, g)+int64(s.Off))
			}
		}
	}
	return best
}

// anyOffset is the range of offsets any member may have used in [from, to].
func (tl *clockTimeline) anyOffset(from, to int64) (lo, hi time.Duration) {
	for m := range tl.Members {
		l, h := tl.offsetRange(m, from, to)
		lo, hi = min(lo, l), max(hi, h)
	}
	return lo, hi
}

// describe lists the offsets in use during [from, to] for an anomaly line.
func (tl *clockTimeline) describe(from, to int64) string {
	if !tl.jumped() {
		return ""
	}
	var parts []string
	for m := range tl.Members {
		if lo, hi := tl.offsetRange(m, from, to); lo != 0 || hi != 0 {
			parts = append(parts, fmt.Sprintf("m%d %v..%v", m, lo, hi))
		}
	}
	if len(parts) == 0 {
		return " (no clock offsets then)"
	}
	return " (clock offsets then: " + strings.Join(parts, ", ") + ")"
}

// ttlVerdict applies the TTL rule to a key set on member stamp with the set
// sent at call and acknowledged at ret, seen gone by a read that returned
// at gone (all run-relative ns).
//
// etcd's semantics: the member that receives the set stamps
// expiry = its wall clock + TTL, at some moment in [call, ret]; the leader
// deletes the key once an expire command whose cutoff (the leader's wall
// clock when it proposed) is at or past that expiry is applied. So the key
// may be gone at g only if some member that may have led read a clock of at
// least call + (the stamping member's smallest offset during [call, ret])
// + TTL, at a moment between call − expireSlack (the command must be
// appended after the set) and g. With no offsets this is the plain rule
// "not gone before call + TTL".
//
// early: the rule was broken. byClock: the key went before call + TTL in
// real time, and the clock offsets explain it.
func (tl *clockTimeline) ttlVerdict(stamp int, call, ret, gone int64, ttl time.Duration) (early, byClock bool) {
	realEarly := gone < call+int64(ttl)
	if tl == nil {
		return realEarly, false
	}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	lo, _ := tl.offsetRange(stamp, call, ret)
	deadline := call + int64(lo) + int64(ttl)
	if tl.maxClock(call-int64(expireSlack), gone) < deadline {
		return true, false
	}
	return false, realEarly
}

// setClock writes a member's offset file ("+30s", "-5s", "0s").
func (m *member) setClock(off time.Duration) error {
	if m.clockFile == "" {
		return fmt.Errorf("torture: %s has no clock hook", m.name)
	}
	s := fmtOffset(off)
	tmp := m.clockFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(s+"\n"), 0o644); err != nil {
		return fmt.Errorf("torture: %w", err)
	}
	if err := os.Rename(tmp, m.clockFile); err != nil {
		return fmt.Errorf("torture: %w", err)
	}
	return nil
}

// enableClocks gives every member of our etcd an offset file (the hidden
// --experimental-clock-offset-file flag).
func (c *cluster) enableClocks(dir string) {
	for _, m := range c.members {
		m.clockFile = filepath.Join(dir, m.name+".clock")
		m.args = append(m.args, "--experimental-clock-offset-file", m.clockFile)
	}
}

// tmpfsSize is each member's data-dir tmpfs: both implementations
// preallocate 64 MiB WAL segments (etcd 3.4 keeps the next one ready too),
// and raft-wal creates a new one for every tail truncation; 256 MiB ran out
// outside any disk fault (seed 70126), so there is room for several.
const tmpfsSize = "1g"

// tmpfsSource names the mounts this package makes ("ck-tort-<pid>"), so a
// later run can unmount what a killed test binary left behind.
func tmpfsSource(pid int) string { return nsPrefix + strconv.Itoa(pid) }

// mountDataDirs puts every member's data dir on its own small tmpfs inside
// the run's directory. Unmounted by unmountDataDirs.
func (c *cluster) mountDataDirs(ctx context.Context) error {
	for _, m := range c.members {
		if err := os.MkdirAll(m.dataDir, 0o700); err != nil {
			return fmt.Errorf("torture: %w", err)
		}
		if err := run(ctx, "mount", "-t", "tmpfs", "-o", "size="+tmpfsSize+",mode=0700", tmpfsSource(os.Getpid()), m.dataDir); err != nil {
			return fmt.Errorf("torture: data-dir tmpfs: %w", err)
		}
		m.tmpfs = true
	}
	return nil
}

// unmountDataDirs unmounts the members' tmpfs; with keep, their content is
// first copied to <data-dir>.kept as evidence.
func (c *cluster) unmountDataDirs(keep bool) {
	for _, m := range c.members {
		if !m.tmpfs {
			continue
		}
		if keep {
			_ = exec.Command("cp", "-a", m.dataDir, m.dataDir+".kept").Run()
		}
		if err := run(context.Background(), "umount", m.dataDir); err != nil {
			// a process may still hold it: lazily detach instead
			_ = run(context.Background(), "umount", "-l", m.dataDir)
		}
		m.tmpfs = false
	}
}

// sweepStaleMounts unmounts data-dir tmpfs left by dead test binaries: only
// mounts whose source is "ck-tort-<pid>" with that pid gone.
func sweepStaleMounts(ctx context.Context) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[2] != "tmpfs" || !strings.HasPrefix(f[0], nsPrefix) {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimPrefix(f[0], nsPrefix))
		if err != nil || pidAlive(pid) {
			continue
		}
		_ = run(ctx, "umount", "-l", strings.ReplaceAll(f[1], `\040`, " "))
	}
}

const fillerName = "torture-disk-filler"

// fillDisk takes every free block of the member's tmpfs, so the next write
// that needs space fails with ENOSPC.
func (m *member) fillDisk() error {
	if !m.tmpfs {
		return fmt.Errorf("torture: %s's data dir is not on a tmpfs", m.name)
	}
	f, err := os.OpenFile(filepath.Join(m.dataDir, fillerName), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("torture: %w", err)
	}
	defer f.Close()
	var st syscall.Statfs_t
	if err := syscall.Statfs(m.dataDir, &st); err != nil {
		return fmt.Errorf("torture: %w", err)
	}
	size := int64(st.Bavail) * st.Bsize
	// fallocate the free space at once, then top up page by page what
	// others freed or took meanwhile.
	if size > 0 {
		if err := syscall.Fallocate(int(f.Fd()), 0, 0, size); err != nil && !errors.Is(err, syscall.ENOSPC) {
			return fmt.Errorf("torture: fallocate: %w", err)
		}
	}
	st2, _ := f.Stat()
	off := st2.Size()
	page := make([]byte, 4096)
	for i := 0; i < 1<<16; i++ {
		if _, err := f.WriteAt(page, off); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return fmt.Errorf("torture: filling %s: %w", m.dataDir, err)
		}
		off += int64(len(page))
	}
	return fmt.Errorf("torture: %s never filled up", m.dataDir)
}

// freeDisk removes the filler.
func (m *member) freeDisk() error {
	err := os.Remove(filepath.Join(m.dataDir, fillerName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("torture: %w", err)
	}
	return nil
}

// clockJump is one clock fault's offset: ±(5..60) s.
func clockJump(r interface{ Intn(int) int }) time.Duration {
	d := time.Duration(5+r.Intn(56)) * time.Second
	if r.Intn(2) == 0 {
		d = -d
	}
	return d
}

// mayBeLeader reports whether m says it leads, or cannot be asked.
func (c *cluster) mayBeLeader(ctx context.Context, m *member) bool {
	hc := &http.Client{Timeout: 500 * time.Millisecond}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.clientURL()+"/v2/stats/self", nil)
	if err != nil {
		return true
	}
	resp, err := hc.Do(req)
	if err != nil {
		return true
	}
	defer resp.Body.Close()
	var st struct {
		State string `json:"state"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return true
	}
	return st.State == "StateLeader"
}

// watchLeader polls, every 50 ms until the returned stop is called,
// whether the members with a shifted clock may lead, and marks their
// current offset if so.
func (n *nemesis) watchLeader() (stop func()) {
	if n.clocks == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	poll := func(ctx context.Context) {
		for _, m := range n.c.members {
			n.clocks.mu.Lock()
			ch := n.clocks.Members[m.idx]
			shifted := len(ch) > 0 && ch[len(ch)-1].Offset != 0
			n.clocks.mu.Unlock()
			if shifted && n.c.mayBeLeader(ctx, m) && ctx.Err() == nil {
				n.clocks.mayLead(m.idx)
			}
		}
	}
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			poll(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() {
		cancel()
		<-done
		poll(context.Background()) // once more, before the offsets are reset
	}
}

// fmtOffset writes a signed duration as the clock hook reads it: "+30s".
func fmtOffset(d time.Duration) string {
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}

// enableSyncFail runs every member under the syncfail wrapper with a
// supervisor of its own (socket in dir), so the nemesis can make its
// fsyncs fail.
func (c *cluster) enableSyncFail(dir, wrapper string) error {
	for _, m := range c.members {
		sock := filepath.Join(dir, m.name+".sync")
		sup, err := syncfail.Listen(sock)
		if err != nil {
			return err
		}
		m.syncSup, m.wrapper = sup, []string{wrapper, sock}
	}
	return nil
}

// closeSyncFail stops the supervisors (after the members are gone).
func (c *cluster) closeSyncFail() {
	for _, m := range c.members {
		if m.syncSup != nil {
			m.syncSup.Close()
		}
	}
}
