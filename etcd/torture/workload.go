package torture

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corekit/corekit/internal/v2api"
)

// keyDir holds every key the run touches.
const keyDir = "/torture"

// workload drives the clients, the watchers and the TTL probe, and keeps
// what they saw.
type workload struct {
	cfg   *Config
	c     *cluster
	logf  func(string, ...any)
	start time.Time
	keys  []string
	hist  history

	// recent values/indexes per key feed CAS/CAD so they succeed often.
	mu     sync.Mutex
	recent map[string][]string
	lastIx map[string]uint64

	resolved   int // unknown writes settled by the watch streams
	maxIndex   atomic.Uint64
	startIndex uint64 // first index the watchers cover
	finalIndex uint64 // etcd index after the final reads

	watchers []*watcher
	// clocks is the nemesis' record of clock offsets (nil: no clock faults).
	clocks *clockTimeline
	ttlMu  sync.Mutex
	ttls   []*ttlKey
}

func newWorkload(cfg *Config, c *cluster, logf func(string, ...any)) *workload {
	w := &workload{cfg: cfg, c: c, logf: logf, recent: map[string][]string{}, lastIx: map[string]uint64{}}
	for i := 0; i < cfg.Keys; i++ {
		w.keys = append(w.keys, fmt.Sprintf("%s/k%d", keyDir, i))
	}
	return w
}

func (w *workload) now() int64 { return int64(time.Since(w.start)) }

// prepare learns the current index so watchers start right after it.
func (w *workload) prepare(ctx context.Context) error {
	cl := newClient(5 * time.Second)
	defer cl.close()
	var last error
	for _, m := range w.c.members {
		r, err := cl.do(ctx, http.MethodGet, m.clientURL(), "/", url.Values{"quorum": {"true"}}, nil)
		if err == nil && r.status == http.StatusOK {
			w.startIndex = r.etcdIndex + 1
			break
		}
		last = fmt.Errorf("%s", describe(r, err))
	}
	if w.startIndex == 0 {
		return fmt.Errorf("torture: initial quorum read: %w", last)
	}
	w.start = time.Now()
	return nil
}

func (w *workload) remember(key, value string, idx uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := append(w.recent[key], value)
	if len(r) > 4 {
		r = r[len(r)-4:]
	}
	w.recent[key] = r
	if idx > 0 {
		w.lastIx[key] = idx
	}
	for {
		cur := w.maxIndex.Load()
		if idx <= cur || w.maxIndex.CompareAndSwap(cur, idx) {
			break
		}
	}
}

func (w *workload) guess(rnd *rand.Rand, key string) (string, uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := "none"
	if r := w.recent[key]; len(r) > 0 {
		v = r[rnd.Intn(len(r))]
	}
	return v, w.lastIx[key]
}

// run starts every actor and returns when ctx is done and the register
// clients and the TTL probe have stopped. Watchers keep running until finish.
func (w *workload) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := 0; i < w.cfg.Clients; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); w.client(ctx, i) }()
	}
	for i := 0; i < w.cfg.Watchers; i++ {
		wt := &watcher{ID: i, Start: w.startIndex, next: w.startIndex, Slow: i > 0 && i == w.cfg.Watchers-1}
		w.watchers = append(w.watchers, wt)
		wt.stop = make(chan struct{})
		wt.done = make(chan struct{})
		go w.watch(wt, rand.New(rand.NewSource(w.cfg.Seed*1000+int64(500+i))))
	}
	wg.Add(1)
	go func() { defer wg.Done(); w.ttlProbe(ctx) }()
	wg.Wait()
}

// client is one register client with its own connections.
func (w *workload) client(ctx context.Context, id int) {
	rnd := rand.New(rand.NewSource(w.cfg.Seed*1000 + int64(id)))
	cl := newClient(w.cfg.OpTimeout)
	defer cl.close()
	seq := 0
	for ctx.Err() == nil {
		key := w.keys[rnd.Intn(len(w.keys))]
		m := rnd.Intn(len(w.c.members))
		seq++
		val := fmt.Sprintf("c%d.%d", id, seq)
		in := Input{Key: key}
		pv, pi := w.guess(rnd, key)
		switch x := rnd.Intn(100); {
		case x < 30:
			in.Kind = OpGet
		case x < 45:
			in.Kind, in.Value = OpSet, val
		case x < 53:
			in.Kind, in.Value = OpCreate, val
		case x < 68:
			in.Kind, in.Value, in.PrevValue = OpCASVal, val, pv
		case x < 78 && pi > 0:
			in.Kind, in.Value, in.PrevIndex = OpCASIdx, val, pi
		case x < 85:
			in.Kind = OpDelete
		case x < 93:
			in.Kind, in.PrevValue = OpCADVal, pv
		case pi > 0:
			in.Kind, in.PrevIndex = OpCADIdx, pi
		default:
			in.Kind = OpGet
		}
		call := w.now()
		// The request gets its own deadline, not ctx: an op in flight when
		// the run ends completes normally.
		octx, cancel := context.WithTimeout(context.Background(), w.cfg.OpTimeout)
		out := cl.exec(octx, w.c.members[m].clientURL(), in)
		cancel()
		ret := w.now()
		if out.Unknown || out.NotSent {
			ret = -1
		} else if out.Code == 0 {
			w.remember(key, out.Value, out.Index)
		}
		w.hist.add(op{Client: id, Member: m, In: in, Out: out, Call: call, Return: ret})
		if out.Unknown || out.NotSent {
			// Back off so a dead or cut-off member does not fill the
			// history with unknown outcomes (they make checking expensive).
			time.Sleep(time.Duration(100+rnd.Intn(200)) * time.Millisecond)
		}
	}
}

// ttlKey is one key written with a TTL by the probe.
type ttlKey struct {
	Key      string        `json:"key"`
	Value    string        `json:"value"`
	TTL      time.Duration `json:"ttl"`
	Member   int           `json:"member"` // the member the set was sent to: it stamps the expiry
	Call     int64         `json:"call"`
	Ret      int64         `json:"ret,omitempty"` // return time of an acknowledged set
	Acked    bool          `json:"acked"`
	Index    uint64        `json:"index,omitempty"`
	GoneAt   int64         `json:"goneAt,omitempty"` // return time of the read that saw it gone
	LastSeen int64         `json:"lastSeen,omitempty"`
	Early    bool          `json:"early,omitempty"`
}

// ttlProbe sets short-TTL keys and polls them with quorum reads: a key may
// not be gone before call time + TTL (the receiving member stamps the expiry
// after our call, with the same host clock) — unless clock offsets explain
// it (clockTimeline.ttlVerdict).
func (w *workload) ttlProbe(ctx context.Context) {
	rnd := rand.New(rand.NewSource(w.cfg.Seed*1000 + 999))
	cl := newClient(w.cfg.OpTimeout)
	defer cl.close()
	n := 0
	nextSet := time.Now()
	for ctx.Err() == nil {
		if time.Now().After(nextSet) {
			n++
			k := &ttlKey{Key: fmt.Sprintf("%s/ttl/t%d", keyDir, n), Value: fmt.Sprintf("ttl.%d", n),
				TTL: time.Duration(2+rnd.Intn(3)) * time.Second}
			m := w.c.members[rnd.Intn(len(w.c.members))]
			k.Member = m.idx
			k.Call = w.now()
			octx, cancel := context.WithTimeout(context.Background(), w.cfg.OpTimeout)
			r, err := cl.do(octx, http.MethodPut, m.clientURL(), k.Key,
				url.Values{"ttl": {strconv.Itoa(int(k.TTL / time.Second))}}, url.Values{"value": {k.Value}})
			cancel()
			if err == nil && r.event != nil && r.event.Node != nil {
				k.Acked, k.Index, k.Ret = true, r.event.Node.ModifiedIndex, w.now()
			}
			w.ttlMu.Lock()
			w.ttls = append(w.ttls, k)
			w.ttlMu.Unlock()
			nextSet = time.Now().Add(700 * time.Millisecond)
		}
		w.pollTTL(ctx, cl, rnd)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (w *workload) pollTTL(ctx context.Context, cl *client, rnd *rand.Rand) {
	w.ttlMu.Lock()
	var live []*ttlKey
	for _, k := range w.ttls {
		if k.Acked && k.GoneAt == 0 {
			live = append(live, k)
		}
	}
	w.ttlMu.Unlock()
	for _, k := range live {
		m := w.c.members[rnd.Intn(len(w.c.members))]
		octx, cancel := context.WithTimeout(context.Background(), w.cfg.OpTimeout)
		call := w.now()
		r, err := cl.do(octx, http.MethodGet, m.clientURL(), k.Key, url.Values{"quorum": {"true"}}, nil)
		cancel()
		ret := w.now()
		if err != nil {
			continue
		}
		w.ttlMu.Lock()
		switch {
		case r.err != nil && r.err.ErrorCode == v2api.EcodeKeyNotFound:
			k.GoneAt = ret
			k.Early, _ = w.clocks.ttlVerdict(k.Member, k.Call, k.Ret, ret, k.TTL)
		case r.event != nil:
			k.LastSeen = call
		}
		w.ttlMu.Unlock()
		if ctx.Err() != nil {
			return
		}
	}
}

// finish reads every key with a quorum read (recorded in the history),
// learns the final index and lets the watchers catch up to it.
func (w *workload) finish(ctx context.Context, res *Result) {
	cl := newClient(3 * time.Second)
	defer cl.close()
	final := w.cfg.Clients // client id of the final reader
	for _, key := range w.keys {
		for attempt := 0; attempt < 20; attempt++ {
			m := attempt % len(w.c.members)
			call := w.now()
			out := cl.exec(ctx, w.c.members[m].clientURL(), Input{Kind: OpGet, Key: key})
			if !out.Unknown && !out.NotSent {
				w.hist.add(op{Client: final, Member: m, In: Input{Kind: OpGet, Key: key}, Out: out, Call: call, Return: w.now()})
				break
			}
			if attempt == 19 {
				res.Anomalies = append(res.Anomalies, fmt.Sprintf("final read of %s failed: %s", key, out.Err))
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	// A sentinel write after everything: its index is where every watcher
	// must arrive.
	for attempt := 0; attempt < 20 && w.finalIndex == 0; attempt++ {
		r, err := cl.do(ctx, http.MethodPut, w.c.members[attempt%len(w.c.members)].clientURL(), keyDir+"/end", nil, url.Values{"value": {"end"}})
		if err == nil && r.event != nil && r.event.Node != nil {
			w.finalIndex = r.event.Node.ModifiedIndex
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if w.finalIndex == 0 {
		res.Anomalies = append(res.Anomalies, "the sentinel write after the run never succeeded")
	}
	// One more TTL sweep so keys that expired during the heal are seen.
	w.pollTTL(ctx, cl, rand.New(rand.NewSource(1)))
	target := w.finalIndex
	deadline := time.Now().Add(30 * time.Second)
	for _, wt := range w.watchers {
		wt.mu.Lock()
		wt.target = target
		wt.mu.Unlock()
	}
	for _, wt := range w.watchers {
		select {
		case <-wt.done:
		case <-time.After(time.Until(deadline)):
		}
		close(wt.stop)
		<-wt.done
	}
}
