package raftnode

import (
	"math"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// FollowerStats is what the leader measured of one follower's append
// requests (etcd's /v2/stats/leader entry): success and failure counts and
// the round-trip latency of successful ones, in milliseconds.
type FollowerStats struct {
	Success, Fail uint64
	// Current, Average, StdDev, Min and Max are milliseconds. Min is
	// 1<<63 until the first success (as etcd reports it).
	Current, Average, StdDev, Min, Max float64
	avgSquare                          float64
}

func (f *FollowerStats) succ(d time.Duration) {
	n := float64(f.Success)
	f.Success++
	ms := float64(d) / float64(time.Millisecond)
	f.Current = ms
	f.Max = max(f.Max, ms)
	f.Min = min(f.Min, ms)
	f.Average = (f.Average*n + ms) / float64(f.Success)
	f.avgSquare = (f.avgSquare*n + ms*ms) / float64(f.Success)
	f.StdDev = math.Sqrt(max(f.avgSquare-f.Average*f.Average, 0))
}

// rateWindow keeps the last rateSamples append requests (time, size) for
// etcd's package and bandwidth rates.
type rateWindow struct {
	at   [rateSamples]time.Time
	size [rateSamples]int
	n    int // samples stored, ≤ rateSamples
	next int
}

const rateSamples = 200

func (w *rateWindow) add(t time.Time, size int) {
	w.at[w.next], w.size[w.next] = t, size
	w.next = (w.next + 1) % rateSamples
	w.n = min(w.n+1, rateSamples)
}

// rates returns requests/s and bytes/s over the window; zero when the
// newest sample is more than a second old or there are fewer than two.
func (w *rateWindow) rates(now time.Time) (pkg, bw float64) {
	if w.n < 2 {
		return 0, 0
	}
	newest := w.at[(w.next+rateSamples-1)%rateSamples]
	oldest := w.at[(w.next+rateSamples-w.n)%rateSamples]
	if now.Sub(newest) > time.Second || !newest.After(oldest) {
		return 0, 0
	}
	total := 0
	for i := 0; i < w.n; i++ {
		total += w.size[i]
	}
	secs := newest.Sub(oldest).Seconds()
	return float64(w.n) / secs, float64(total) / secs
}

// AppendStats counts append requests carrying entries: sent by this member
// as leader (per follower, with latency) and received as follower.
type AppendStats struct {
	mu        sync.Mutex
	sent      uint64
	recv      uint64
	sendRate  rateWindow
	recvRate  rateWindow
	followers map[raft.ServerID]*FollowerStats
}

func appendSize(req *raft.AppendEntriesRequest) int {
	size := 0
	for _, e := range req.Entries {
		size += len(e.Data) + 24
	}
	return size
}

func (s *AppendStats) follower(id raft.ServerID) *FollowerStats {
	f := s.followers[id]
	if f == nil {
		f = &FollowerStats{Min: 1 << 63}
		s.followers[id] = f
	}
	return f
}

func (s *AppendStats) sentTo(req *raft.AppendEntriesRequest) {
	s.mu.Lock()
	s.sent++
	s.sendRate.add(time.Now(), appendSize(req))
	s.mu.Unlock()
}

func (s *AppendStats) result(id raft.ServerID, d time.Duration, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		s.follower(id).succ(d)
	} else {
		s.follower(id).Fail++
	}
}

func (s *AppendStats) received(req *raft.AppendEntriesRequest) {
	s.mu.Lock()
	s.recv++
	s.recvRate.add(time.Now(), appendSize(req))
	s.mu.Unlock()
}

// Self returns the counters and rates for /v2/stats/self.
func (s *AppendStats) Self() (sent, recv uint64, sendPkg, sendBW, recvPkg, recvBW float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	sendPkg, sendBW = s.sendRate.rates(now)
	recvPkg, recvBW = s.recvRate.rates(now)
	return s.sent, s.recv, sendPkg, sendBW, recvPkg, recvBW
}

// Followers returns a copy of the per-follower statistics, by member ID.
func (s *AppendStats) Followers() map[string]FollowerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]FollowerStats, len(s.followers))
	for id, f := range s.followers {
		out[string(id)] = *f
	}
	return out
}

// statsTransport wraps the network transport to feed AppendStats. Every
// other method (votes, snapshots, pre-vote, heartbeats) is the embedded
// transport's.
type statsTransport struct {
	*raft.NetworkTransport
	st       *AppendStats
	cn       *commitNotifier
	consumer chan raft.RPC
	done     chan struct{}
}

func newStatsTransport(t *raft.NetworkTransport, st *AppendStats, cn *commitNotifier, done chan struct{}) *statsTransport {
	s := &statsTransport{NetworkTransport: t, st: st, cn: cn, consumer: make(chan raft.RPC), done: done}
	go s.relay()
	return s
}

// relay passes incoming RPCs to raft (heartbeats included: see
// SetHeartbeatHandler), counting append requests with entries.
func (s *statsTransport) relay() {
	in := s.NetworkTransport.Consumer()
	for {
		select {
		case rpc := <-in:
			if req, ok := rpc.Command.(*raft.AppendEntriesRequest); ok && len(req.Entries) > 0 {
				s.st.received(req)
			}
			select {
			case s.consumer <- rpc:
			case <-s.done:
				return
			}
		case <-s.done:
			return
		}
	}
}

func (s *statsTransport) Consumer() <-chan raft.RPC { return s.consumer }

// SetHeartbeatHandler implements raft.Transport by declining raft's
// heartbeat fast path, so that every heartbeat reaches raft's main loop
// through Consumer like any other RPC.
//
// The fast path runs the heartbeat's appendEntries on the transport's
// goroutine. A leader that has just been deposed then takes the new term
// from a heartbeat while its own leader loop is dispatching client entries,
// and stamps those entries with the NEW term: two different entries with
// the same index and term, which raft's log matching cannot detect, and the
// members' logs diverge for good. Our torture run (seed 40008: a leader
// paused with SIGSTOP, resumed with client writes queued) found exactly
// that; it is hashicorp/raft issue #695 (open upstream, fix proposed in PR
// #701). Heartbeats through the main loop cost a little latency when it is
// busy, never safety.
func (s *statsTransport) SetHeartbeatHandler(func(raft.RPC)) {}

func (s *statsTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if isHeartbeat(args) {
		hb := s.cn.heartbeat(id, args)
		if hb == args {
			return s.NetworkTransport.AppendEntries(id, target, args, resp)
		}
		err := s.NetworkTransport.AppendEntries(id, target, hb, resp)
		if err == nil && !resp.Success && resp.Term <= hb.Term {
			// The follower accepted this leader (same term) but not the
			// log position: our match index is stale (e.g. it installed
			// a snapshot). As a heartbeat, this is a success; forget the
			// match until the next acknowledged append.
			s.cn.forget(id)
			resp.Success = true
		}
		return err
	}
	s.cn.sending(id, args)
	if len(args.Entries) == 0 {
		err := s.NetworkTransport.AppendEntries(id, target, args, resp)
		if err == nil {
			s.cn.acked(id, args, resp)
		}
		return err
	}
	s.st.sentTo(args)
	start := time.Now()
	err := s.NetworkTransport.AppendEntries(id, target, args, resp)
	s.st.result(id, time.Since(start), err == nil && resp.Success)
	if err == nil {
		s.cn.acked(id, args, resp)
	}
	return err
}

func (s *statsTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := s.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	sp := &statsPipeline{AppendPipeline: p, id: id, st: s.st, cn: s.cn, out: make(chan raft.AppendFuture, 128),
		closed: make(chan struct{}), done: s.done}
	go sp.relay()
	return sp, nil
}

type statsPipeline struct {
	raft.AppendPipeline
	id        raft.ServerID
	st        *AppendStats
	cn        *commitNotifier
	out       chan raft.AppendFuture
	closed    chan struct{}
	closeOnce sync.Once
	done      chan struct{}
}

func (p *statsPipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	if len(args.Entries) > 0 {
		p.st.sentTo(args)
	}
	p.cn.sending(p.id, args)
	return p.AppendPipeline.AppendEntries(args, resp)
}

func (p *statsPipeline) relay() {
	in := p.AppendPipeline.Consumer()
	for {
		select {
		case f := <-in:
			ok := f.Error() == nil && f.Response().Success
			if len(f.Request().Entries) > 0 {
				p.st.result(p.id, time.Since(f.Start()), ok)
			}
			if ok {
				p.cn.acked(p.id, f.Request(), f.Response())
			}
			select {
			case p.out <- f:
			case <-p.closed:
				return
			case <-p.done:
				p.drain(in)
				return
			}
		case <-p.closed:
			return
		case <-p.done:
			p.drain(in)
			return
		}
	}
}

// drain keeps consuming the transport's responses once the node is closing,
// until raft closes the pipeline. Returning instead would leave the
// transport's response queue full, its AppendEntries blocked, and
// raft.Shutdown waiting forever for the replication goroutine.
func (p *statsPipeline) drain(in <-chan raft.AppendFuture) {
	for {
		select {
		case <-in:
		case <-p.closed:
			return
		}
	}
}

func (p *statsPipeline) Consumer() <-chan raft.AppendFuture { return p.out }

func (p *statsPipeline) Close() error {
	p.closeOnce.Do(func() { close(p.closed) })
	return p.AppendPipeline.Close()
}
