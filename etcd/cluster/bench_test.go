package cluster

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
)

// BenchmarkCluster compares a three-member cluster of ours with Debian's
// etcd 3.4 (--enable-v2) on loopback: PUT throughput with 1 and 64
// connections to the leader and with 64 spread over all members, quorum GET
// with 64 connections, and the time from SIGKILL of the leader to the first
// successful write. Run with:
//
//	go test -run X -bench Cluster -benchtime 2000x ./etcd/cluster
func BenchmarkCluster(b *testing.B) {
	for _, kind := range []etcdtest.Kind{etcdtest.Ours, etcdtest.Reference} {
		b.Run(string(kind), func(b *testing.B) {
			c := startCluster(b, kind, 3)
			hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128, MaxConnsPerHost: 128}}
			b.Run("put-1conn-leader", func(b *testing.B) { load(b, c, hc, 1, false, false) })
			b.Run("put-64conn-leader", func(b *testing.B) { load(b, c, hc, 64, false, false) })
			b.Run("put-64conn-spread", func(b *testing.B) { load(b, c, hc, 64, true, false) })
			b.Run("qget-64conn-leader", func(b *testing.B) { load(b, c, hc, 64, false, true) })
			b.Run("failover", func(b *testing.B) { failover(b, c, hc) })
		})
	}
}

// load runs b.N requests over conns goroutines: PUTs, or quorum GETs of
// one key; to the leader or round-robin over the members.
func load(b *testing.B, c *cluster, hc *http.Client, conns int, spread, qget bool) {
	leader := c.waitLeader(20 * time.Second)
	ctx := context.Background()
	if qget {
		if code, _, _, err := put(ctx, hc, leader.ClientURL, "/bench/q", "v", nil); err != nil || code >= 300 {
			b.Fatalf("PUT: %d %v", code, err)
		}
	}
	var next, fails atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				m := leader
				if spread {
					m = c.Members[int(i)%len(c.Members)]
				}
				var code int
				var err error
				if qget {
					code, _, _, err = get(ctx, hc, m.ClientURL, "/bench/q", true)
				} else {
					code, _, _, err = put(ctx, hc, m.ClientURL, fmt.Sprintf("/bench/k%d", i%1000), "value", nil)
				}
				if err != nil || code >= 300 {
					fails.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	if f := fails.Load(); f > 0 {
		b.Fatalf("%d of %d requests failed", f, b.N)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
}

// failoverRounds caps the kills per benchmark run, whatever -benchtime
// asks of the throughput benchmarks.
const failoverRounds = 5

// failover kills the leader min(b.N, failoverRounds) times; each time it
// measures until a PUT (tried on every surviving member in turn) succeeds,
// then restarts the killed member and waits for a stable leader.
func failover(b *testing.B, c *cluster, hc *http.Client) {
	ctx := context.Background()
	quickPut := &http.Client{Timeout: 200 * time.Millisecond}
	var total time.Duration
	rounds := min(b.N, failoverRounds)
	for i := 0; i < rounds; i++ {
		b.StopTimer()
		leader := c.waitLeader(30 * time.Second)
		// All members healthy and caught up before the kill.
		for _, m := range c.Members {
			if code, _, _, err := put(ctx, hc, m.ClientURL, "/bench/pre", "x", nil); err != nil || code >= 300 {
				b.Fatalf("PUT before kill on %s: %d %v", m.Name, code, err)
			}
		}
		b.StartTimer()
		killed := time.Now()
		leader.kill()
		for j := 0; ; j++ {
			live := c.running()
			m := live[j%len(live)]
			if code, _, _, err := put(ctx, quickPut, m.ClientURL, "/bench/failover", "x", nil); err == nil && code < 300 {
				break
			}
			if time.Since(killed) > 30*time.Second {
				b.Fatal("no successful write 30 s after the leader was killed")
			}
		}
		total += time.Since(killed)
		b.StopTimer()
		leader.start(c.t) // c.t: b's cleanups run after every b.N round
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(rounds), "ms-to-write")
}
