// Package durability holds process-level tests of the etcd binary: real
// processes, kill -9, restart, and checks that every acknowledged write
// survived.
package durability

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/v2api"
)

type ack struct {
	value      string
	index      uint64
	expiration time.Time // zero = permanent
}

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func putKey(ctx context.Context, base, key string, form url.Values) (*v2api.Event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/v2/keys"+key, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("PUT %s: %d %s", key, resp.StatusCode, b)
	}
	var ev v2api.Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("PUT %s: %w: %s", key, err, b)
	}
	return &ev, nil
}

// list returns every node under dir by key.
func list(t *testing.T, base, dir string) map[string]*v2api.Node {
	t.Helper()
	resp, err := client.Get(base + "/v2/keys" + dir + "?recursive=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]*v2api.Node{}
	if resp.StatusCode == http.StatusNotFound {
		return out
	}
	var ev v2api.Event
	if err := json.NewDecoder(resp.Body).Decode(&ev); err != nil {
		t.Fatal(err)
	}
	for _, n := range ev.Node.Nodes {
		out[n.Key] = n
	}
	return out
}

func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: process-level durability test (-short)")
	}
	const (
		total   = 10000
		workers = 48
	)
	srv := etcdtest.Start(t, etcdtest.Ours, "--snapshot-count", "1000")
	base := srv.ClientURL

	var (
		mu      sync.Mutex
		acked   = map[string]ack{}
		killing atomic.Bool
	)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// write stores keys [from, to) with `workers` concurrent clients; once
	// killAfter writes are acknowledged in total it kills the server (kill -9)
	// with writes still in flight.
	write := func(from, to int64, killAfter int) {
		var next atomic.Int64
		next.Store(from)
		var killOnce sync.Once
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= to {
						return
					}
					key := fmt.Sprintf("/dur/k%05d", i)
					form := url.Values{"value": {fmt.Sprintf("v%d-%s", i, strings.Repeat("x", int(i%97)))}}
					if i%5 == 0 {
						form.Set("ttl", fmt.Sprint(4+i%4)) // 4–7 s
					}
					ev, err := putKey(ctx, base, key, form)
					if err != nil {
						if killing.Load() {
							return // the server is gone: unacknowledged, fine
						}
						t.Errorf("before kill: %v", err)
						return
					}
					a := ack{value: form.Get("value"), index: ev.Node.ModifiedIndex}
					if ev.Node.Expiration != nil {
						a.expiration = *ev.Node.Expiration
					}
					mu.Lock()
					acked[key] = a
					n := len(acked)
					mu.Unlock()
					if killAfter > 0 && n >= killAfter {
						killOnce.Do(func() {
							killing.Store(true)
							srv.Kill()
						})
					}
				}
			}()
		}
		wg.Wait()
	}

	// Phase 1: half the keys, then wait for a snapshot so that the restart
	// restores a snapshot and replays the log after it.
	write(0, total/2, 0)
	if t.Failed() {
		return
	}
	snapDeadline := time.Now().Add(15 * time.Second)
	for {
		snaps, _ := filepath.Glob(filepath.Join(srv.DataDir, "member", "snap", "snapshots", "*", "state.bin"))
		if len(snaps) > 0 {
			break
		}
		if time.Now().After(snapDeadline) {
			t.Fatalf("no snapshot in %s after %d writes with --snapshot-count 1000", srv.DataDir, len(acked))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Phase 2: the other half, killed at 90% of all keys.
	write(total/2, total, total*9/10)
	if t.Failed() {
		return
	}
	var maxIndex uint64
	for _, a := range acked {
		maxIndex = max(maxIndex, a.index)
	}
	t.Logf("%d writes acknowledged before kill -9 (max index %d)", len(acked), maxIndex)

	srv.Restart()

	// Every acknowledged key is back, with its value and index; TTL keys
	// whose expiration is still ahead must not have expired.
	checkedAt := time.Now()
	got := list(t, base, "/dur")
	missing := 0
	for key, a := range acked {
		n, ok := got[key]
		if !ok {
			if a.expiration.IsZero() || a.expiration.After(checkedAt) {
				missing++
				if missing <= 5 {
					t.Errorf("%s acknowledged (index %d, expiration %v) but missing after restart", key, a.index, a.expiration)
				}
			}
			continue
		}
		if n.StringValue() != a.value || n.ModifiedIndex != a.index {
			t.Errorf("%s = %q@%d, want %q@%d", key, n.StringValue(), n.ModifiedIndex, a.value, a.index)
		}
		if !a.expiration.IsZero() && (n.Expiration == nil || !n.Expiration.Equal(a.expiration)) {
			t.Errorf("%s expiration %v, want %v", key, n.Expiration, a.expiration)
		}
	}
	if missing > 0 {
		t.Fatalf("%d acknowledged keys lost", missing)
	}

	// The index continues after the acknowledged writes.
	ev, err := putKey(t.Context(), base, "/after", url.Values{"value": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Node.ModifiedIndex <= maxIndex {
		t.Errorf("first write after restart has index %d, not above the last acknowledged %d", ev.Node.ModifiedIndex, maxIndex)
	}

	// TTL keys expire on time after the restart: poll until the last
	// expiration has passed and the sweep ran, then none may remain.
	var last time.Time
	for _, a := range acked {
		if a.expiration.After(last) {
			last = a.expiration
		}
	}
	deadline := last.Add(5 * time.Second)
	for {
		got = list(t, base, "/dur")
		left := 0
		for key, a := range acked {
			if _, ok := got[key]; ok && !a.expiration.IsZero() {
				left++
			}
		}
		if left == 0 && time.Now().After(last) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d TTL keys still present %v after the last expiration", left, time.Since(last))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for key, a := range acked {
		if _, ok := got[key]; a.expiration.IsZero() && !ok {
			t.Errorf("permanent key %s vanished", key)
		}
	}
}
