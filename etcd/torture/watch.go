package torture

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/corekit/corekit/internal/v2api"
)

// watchEvent is one event a watcher received.
type watchEvent struct {
	Index  uint64 `json:"index"`
	Action string `json:"action"`
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Member int    `json:"member"`
}

// watcher follows keyDir recursively with long-poll watches, always asking
// for waitIndex = last modifiedIndex + 1, switching members now and then.
type watcher struct {
	ID      int          `json:"id"`
	Start   uint64       `json:"start"` // first index covered
	End     uint64       `json:"end"`   // last index covered
	Events  []watchEvent `json:"events"`
	Gaps    [][2]uint64  `json:"gaps,omitempty"` // ranges lost to 401 history-cleared
	Errors  int          `json:"errors"`
	Reconns int          `json:"reconnects"`
	Slow    bool         `json:"slow,omitempty"` // sleeps now and then to fall out of the history window

	mu     sync.Mutex
	next   uint64
	target uint64 // stop once next > target (set by finish)
	stop   chan struct{}
	done   chan struct{}
}

func (w *workload) watch(wt *watcher, rnd *rand.Rand) {
	defer close(wt.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-wt.stop:
			cancel()
		case <-wt.done:
		}
	}()
	cl := newClient(3 * time.Second)
	defer cl.close()
	m := rnd.Intn(len(w.c.members))
	lastStall := time.Now()
	for {
		wt.mu.Lock()
		next, target := wt.next, wt.target
		wt.End = next - 1
		wt.mu.Unlock()
		if ctx.Err() != nil || (target > 0 && next > target) {
			return
		}
		q := url.Values{"wait": {"true"}, "recursive": {"true"}, "waitIndex": {strconv.FormatUint(next, 10)}}
		r, err := cl.do(ctx, http.MethodGet, w.c.members[m].clientURL(), keyDir, q, nil)
		switch {
		case err != nil:
			// Long polls end by client timeout when nothing happens; that
			// is a reconnect, not an error.
			wt.Reconns++
			if rnd.Intn(2) == 0 {
				m = rnd.Intn(len(w.c.members))
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				time.Sleep(50 * time.Millisecond) // refused: member down
			}
			continue
		case r.err != nil && r.err.ErrorCode == v2api.EcodeEventIndexCleared:
			w.recoverCleared(ctx, cl, wt, m, r.err)
			continue
		case r.err != nil:
			wt.Errors++
			m = rnd.Intn(len(w.c.members))
			time.Sleep(100 * time.Millisecond)
			continue
		case r.event == nil || r.event.Node == nil:
			wt.Reconns++
			continue
		}
		n := r.event.Node
		ev := watchEvent{Index: n.ModifiedIndex, Action: r.event.Action, Key: n.Key, Value: n.StringValue(), Member: m}
		wt.mu.Lock()
		wt.Events = append(wt.Events, ev)
		if ev.Index >= wt.next {
			wt.next = ev.Index + 1
		}
		wt.mu.Unlock()
		if rnd.Intn(10) == 0 {
			m = rnd.Intn(len(w.c.members))
			wt.Reconns++
		}
		if wt.Slow && target == 0 && time.Since(lastStall) > 10*time.Second {
			// A consumer that falls behind: it stops reading until more
			// than 1000 events have passed, so it must recover from 401.
			lastStall = time.Now()
			w.stall(ctx, wt, ev.Index+1100, 30*time.Second)
		}
	}
}

// stall waits until some acknowledged write has an index ≥ idx, the run
// ends (finish sets a target), ctx ends or max passes.
func (w *workload) stall(ctx context.Context, wt *watcher, idx uint64, max time.Duration) {
	deadline := time.Now().Add(max)
	ending := func() bool {
		wt.mu.Lock()
		defer wt.mu.Unlock()
		return wt.target > 0
	}
	for w.maxIndex.Load() < idx && time.Now().Before(deadline) && !ending() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// recoverCleared handles 401: the events from waitIndex up to the oldest
// retained one are gone. It re-reads the key space (as a client must), notes
// the gap and continues from the oldest retained index.
func (w *workload) recoverCleared(ctx context.Context, cl *client, wt *watcher, m int, e *v2api.Error) {
	var oldest, req uint64
	if i := strings.LastIndex(e.Cause, "["); i >= 0 {
		fmt.Sscanf(e.Cause[i:], "[%d/%d]", &oldest, &req)
	}
	if oldest == 0 {
		r, err := cl.do(ctx, http.MethodGet, w.c.members[m].clientURL(), keyDir,
			url.Values{"quorum": {"true"}, "recursive": {"true"}}, nil)
		if err != nil {
			return
		}
		oldest = r.etcdIndex + 1
	}
	wt.mu.Lock()
	defer wt.mu.Unlock()
	if oldest > wt.next {
		wt.Gaps = append(wt.Gaps, [2]uint64{wt.next, oldest - 1})
		wt.next = oldest
	}
}

func (wt *watcher) covers(idx uint64) bool {
	if idx < wt.Start || idx > wt.End {
		return false
	}
	for _, g := range wt.Gaps {
		if idx >= g[0] && idx <= g[1] {
			return false
		}
	}
	return true
}
