package torture

import (
	"context"
	"hash/fnv"
	"strings"
	"testing"
	"time"
)

// startCluster brings up a cluster of n members of impl for a focused test.
func startCluster(t *testing.T, impl Impl, n int) *cluster {
	t.Helper()
	return startClusterWith(t, impl, n, nil)
}

// startClusterWith is startCluster with prep applied to the cluster before
// its members start.
func startClusterWith(t *testing.T, impl Impl, n int, prep func(c *cluster, dir string)) *cluster {
	t.Helper()
	requireRoot(t)
	bin := binaryFor(t, impl)
	ctx := context.Background()
	sweepStale(ctx)
	h := fnv.New32a()
	h.Write([]byte(t.Name()))
	nw, err := newNetwork(ctx, n, 300+int(h.Sum32()%900))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nw.close)
	dir := t.TempDir()
	c := newCluster(impl, bin, nw, dir, "torture-"+strings.ReplaceAll(t.Name(), "/", "-"))
	t.Cleanup(c.killAll)
	if prep != nil {
		prep(c, dir)
	}
	if err := c.startAll(); err != nil {
		t.Fatal(err)
	}
	if err := c.waitHealthy(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCheckerCatchesStaleReads is the negative control: against the
// reference, plain (non-quorum) reads from a member cut off from the others
// are stale, and the checker must reject the history. A checker that passes
// this history would pass anything.
func TestCheckerCatchesStaleReads(t *testing.T) {
	c := startCluster(t, Reference, 3)
	ctx := context.Background()
	w := newWorkload(&Config{Clients: 1, Keys: 1, OpTimeout: 2 * time.Second, CheckTimeout: time.Minute}, c, t.Logf)
	if err := w.prepare(ctx); err != nil {
		t.Fatal(err)
	}
	cl := newClient(2 * time.Second)
	defer cl.close()
	doOp := func(m int, in Input) Output {
		call := w.now()
		out := cl.exec(ctx, c.members[m].clientURL(), in)
		w.hist.add(op{Member: m, In: in, Out: out, Call: call, Return: w.now()})
		return out
	}
	key := w.keys[0]
	// Isolate a follower, so the majority keeps its leader.
	l := waitLeader(t, c, -1)
	iso := (l + 1) % 3
	if out := doOp(l, Input{Kind: OpSet, Key: key, Value: "before"}); out.Unknown {
		t.Fatalf("first set: %s", out.Err)
	}
	// Let iso apply it, then isolate it and write through the majority.
	deadline := time.Now().Add(10 * time.Second)
	// (Polled outside the history: reads before m2 applied it are stale too.)
	for cl.exec(ctx, c.members[iso].clientURL(), Input{Kind: OpGet, Key: key, Local: true}).Value != "before" {
		if time.Now().After(deadline) {
			t.Fatal("the follower never applied the first write")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for j := 0; j < 3; j++ {
		if j == iso {
			continue
		}
		if err := c.nw.cut(ctx, iso, j); err != nil {
			t.Fatal(err)
		}
	}
	if out := doOp(l, Input{Kind: OpSet, Key: key, Value: "after"}); out.Unknown || out.Code != 0 {
		t.Fatalf("majority write failed: %+v", out)
	}
	stale := doOp(iso, Input{Kind: OpGet, Key: key, Local: true})
	if stale.Value != "before" {
		t.Fatalf("the isolated member answered %+v; expected the stale value", stale)
	}
	var res Result
	w.check(&res)
	if res.Linearizable != "Illegal" {
		t.Fatalf("checker said %s for a history with a stale read; anomalies: %v", res.Linearizable, res.Anomalies)
	}
	// And the same history with the stale read removed is fine.
	w.hist.ops = w.hist.ops[:len(w.hist.ops)-1]
	res = Result{}
	w.check(&res)
	if res.Linearizable != "Ok" {
		t.Fatalf("without the stale read the checker said %s: %v", res.Linearizable, res.Anomalies)
	}
}
