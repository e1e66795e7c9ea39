package torture

import (
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// row is one operation of a hand-written history; rt -1 means unknown
// outcome (placed after everything, as check does).
type row struct {
	in       Input
	out      Output
	call, rt int64
}

func checkRows(rows []row) porcupine.CheckResult {
	var ops []porcupine.Operation
	for i, r := range rows {
		rt := r.rt
		if rt < 0 {
			rt = 1 << 40
		}
		ops = append(ops, porcupine.Operation{ClientId: i, Input: r.in, Output: r.out, Call: r.call, Return: rt})
	}
	res, _ := porcupine.CheckOperationsVerbose(Model(), ops, 0)
	return res
}

func set(k, v string) Input           { return Input{Kind: OpSet, Key: k, Value: v} }
func get(k string) Input              { return Input{Kind: OpGet, Key: k} }
func ok(idx uint64) Output            { return Output{Index: idx} }
func val(v string, idx uint64) Output { return Output{Value: v, Index: idx, HasPrev: false} }

// TestModel proves the checker accepts legal histories and rejects the
// anomalies the torture run looks for.
func TestModel(t *testing.T) {
	setOK := func(v string, idx uint64, prev string) Output {
		o := Output{Index: idx}
		if prev != "" {
			o.HasPrev, o.PrevValue = true, prev
		}
		return o
	}
	cases := []struct {
		name string
		rows []row
		want porcupine.CheckResult
	}{
		{"sequential set/get", []row{
			{set("a", "1"), setOK("1", 5, ""), 0, 10},
			{get("a"), val("1", 5), 20, 30},
		}, porcupine.Ok},
		{"stale read", []row{
			{set("a", "1"), setOK("1", 5, ""), 0, 10},
			{set("a", "2"), setOK("2", 6, "1"), 20, 30},
			{get("a"), val("1", 5), 40, 50},
		}, porcupine.Illegal},
		{"concurrent read may see either", []row{
			{set("a", "1"), setOK("1", 5, ""), 0, 10},
			{set("a", "2"), setOK("2", 6, "1"), 20, 30},
			{get("a"), val("1", 5), 15, 25},
		}, porcupine.Ok},
		{"lost acknowledged write", []row{
			{set("a", "1"), setOK("1", 5, ""), 0, 10},
			{get("a"), Output{Code: 100}, 20, 30},
		}, porcupine.Illegal},
		{"index goes backwards", []row{
			{set("a", "1"), setOK("1", 9, ""), 0, 10},
			{set("a", "2"), setOK("2", 7, "1"), 20, 30},
		}, porcupine.Illegal},
		{"wrong prevNode", []row{
			{set("a", "1"), setOK("1", 5, ""), 0, 10},
			{set("a", "2"), setOK("2", 6, "x"), 20, 30},
		}, porcupine.Illegal},
		{"two CAS from the same value both succeed", []row{
			{set("a", "x"), setOK("x", 5, ""), 0, 10},
			{Input{Kind: OpCASVal, Key: "a", PrevValue: "x", Value: "y"}, setOK("y", 6, "x"), 20, 40},
			{Input{Kind: OpCASVal, Key: "a", PrevValue: "x", Value: "z"}, setOK("z", 7, "x"), 25, 45},
		}, porcupine.Illegal},
		{"CAS compare failure is legal", []row{
			{set("a", "x"), setOK("x", 5, ""), 0, 10},
			{Input{Kind: OpCASVal, Key: "a", PrevValue: "x", Value: "y"}, setOK("y", 6, "x"), 20, 40},
			{Input{Kind: OpCASVal, Key: "a", PrevValue: "x", Value: "z"}, Output{Code: 101}, 25, 45},
		}, porcupine.Ok},
		{"CAS by index", []row{
			{set("a", "x"), setOK("x", 5, ""), 0, 10},
			{Input{Kind: OpCASIdx, Key: "a", PrevIndex: 5, Value: "y"}, setOK("y", 6, "x"), 20, 30},
			{Input{Kind: OpCADIdx, Key: "a", PrevIndex: 5}, ok(7), 40, 50},
		}, porcupine.Illegal},
		{"create on existing key succeeds", []row{
			{set("a", "x"), setOK("x", 5, ""), 0, 10},
			{Input{Kind: OpCreate, Key: "a", Value: "y"}, ok(6), 20, 30},
		}, porcupine.Illegal},
		{"create, delete, create", []row{
			{Input{Kind: OpCreate, Key: "a", Value: "x"}, ok(5), 0, 10},
			{Input{Kind: OpCreate, Key: "a", Value: "y"}, Output{Code: 105}, 20, 30},
			{Input{Kind: OpDelete, Key: "a"}, setOK("", 6, "x"), 40, 50},
			{Input{Kind: OpCreate, Key: "a", Value: "z"}, ok(7), 60, 70},
			{Input{Kind: OpCADVal, Key: "a", PrevValue: "x"}, Output{Code: 101}, 80, 90},
		}, porcupine.Ok},
		{"unknown write may have happened", []row{
			{set("a", "1"), setOK("1", 5, ""), 0, 10},
			{set("a", "2"), Output{Unknown: true}, 20, -1},
			{get("a"), val("2", 8), 40, 50},
			{get("a"), val("2", 8), 60, 70},
		}, porcupine.Ok},
		{"unknown write may not have happened", []row{
			{set("a", "1"), setOK("1", 5, ""), 0, 10},
			{set("a", "2"), Output{Unknown: true}, 20, -1},
			{get("a"), val("1", 5), 40, 50},
		}, porcupine.Ok},
		{"unknown write cannot be undone", []row{
			{set("a", "1"), setOK("1", 5, ""), 0, 10},
			{set("a", "2"), Output{Unknown: true}, 20, -1},
			{get("a"), val("2", 8), 40, 50},
			{get("a"), val("1", 5), 60, 70},
		}, porcupine.Illegal},
		{"unknown write pinned by the watch stream to an index", []row{
			{set("a", "1"), setOK("1", 5, ""), 0, 10},
			{set("a", "2"), Output{Unknown: true, Index: 8}, 20, -1},
			{get("a"), val("2", 9), 40, 50},
		}, porcupine.Illegal},
		{"keys are independent", []row{
			{set("a", "1"), setOK("1", 5, ""), 0, 10},
			{set("b", "1"), setOK("1", 6, ""), 20, 30},
			{get("a"), val("1", 5), 40, 50},
			{get("b"), Output{Code: 100}, 60, 70},
		}, porcupine.Illegal},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			if got := checkRows(c.rows); got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}

// TestWatchCheck feeds hand-made watch streams to the watch checker.
func TestWatchCheck(t *testing.T) {
	mk := func(events []watchEvent, gaps [][2]uint64) *workload {
		w := &workload{cfg: &Config{Clients: 1}, startIndex: 10, finalIndex: 20}
		w.hist.ops = []op{
			{In: set("/torture/k0", "a"), Out: ok(11), Call: 1, Return: 2},
			{In: set("/torture/k0", "b"), Out: Output{Index: 12, HasPrev: true, PrevValue: "a"}, Call: 3, Return: 4},
			{In: set("/torture/k0", "c"), Out: Output{Unknown: true}, Call: 5, Return: -1},
		}
		w.watchers = []*watcher{{ID: 0, Start: 10, End: 20, Events: events, Gaps: gaps}}
		return w
	}
	ev := func(i uint64, v string) watchEvent {
		return watchEvent{Index: i, Action: "set", Key: "/torture/k0", Value: v}
	}
	cases := []struct {
		name   string
		events []watchEvent
		gaps   [][2]uint64
		want   string // anomaly kind expected, "" for none
	}{
		{"complete", []watchEvent{ev(11, "a"), ev(12, "b")}, nil, ""},
		{"unknown write seen", []watchEvent{ev(11, "a"), ev(12, "b"), ev(13, "c")}, nil, ""},
		{"missed event", []watchEvent{ev(11, "a")}, nil, "watch-missed"},
		{"missed inside a 401 gap is fine", []watchEvent{ev(12, "b")}, [][2]uint64{{10, 11}}, ""},
		{"duplicate", []watchEvent{ev(11, "a"), ev(11, "a"), ev(12, "b")}, nil, "watch-order"},
		{"out of order", []watchEvent{ev(12, "b"), ev(11, "a")}, nil, "watch-order"},
		{"wrong value", []watchEvent{ev(11, "a"), ev(12, "zzz")}, nil, "watch-wrong-event"},
		{"phantom", []watchEvent{ev(11, "a"), ev(12, "b"), ev(14, "never")}, nil, "watch-phantom"},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			w := mk(c.events, c.gaps)
			var res Result
			w.check(&res)
			joined := strings.Join(res.Anomalies, "\n")
			if c.want == "" && len(res.Anomalies) > 0 {
				t.Errorf("unexpected anomalies:\n%s", joined)
			}
			if c.want != "" && !strings.Contains(joined, c.want+":") {
				t.Errorf("want a %s anomaly, got:\n%s", c.want, joined)
			}
		})
	}
}

// TestResolveUnknown checks how the watch stream settles unknown writes:
// unseen ones are dropped, seen ones pinned (and then checked), and a gap
// in the stream disables all of it.
func TestResolveUnknown(t *testing.T) {
	mk := func(gaps [][2]uint64, read Output) *workload {
		w := &workload{cfg: &Config{Clients: 9, CheckTimeout: 10 * time.Second}, startIndex: 10, finalIndex: 20}
		w.hist.ops = []op{
			{In: set("/torture/k0", "a"), Out: Output{Index: 11}, Call: 1, Return: 2},
			{In: set("/torture/k0", "lost"), Out: Output{Unknown: true}, Call: 3, Return: -1},
			{In: set("/torture/k0", "seen"), Out: Output{Unknown: true}, Call: 4, Return: -1},
			{In: Input{Kind: OpDelete, Key: "/torture/k0"}, Out: Output{Unknown: true}, Call: 5, Return: -1},
			{Client: 9, In: get("/torture/k0"), Out: read, Call: 10, Return: 11},
		}
		w.watchers = []*watcher{{ID: 0, Start: 10, End: 20, Gaps: gaps, Events: []watchEvent{
			{Index: 11, Action: "set", Key: "/torture/k0", Value: "a"},
			{Index: 12, Action: "set", Key: "/torture/k0", Value: "seen"},
		}}}
		return w
	}
	var res Result
	w := mk(nil, Output{Value: "seen", Index: 12, HasPrev: false})
	w.check(&res)
	if res.Linearizable != porcupine.Ok || res.Resolved != 3 {
		t.Errorf("seen write read back: verdict %s, resolved %d (want Ok, 3): %v", res.Linearizable, res.Resolved, res.Anomalies)
	}
	// "seen" happened at 12; a final read showing it at another index is illegal.
	res = Result{}
	w = mk(nil, Output{Value: "seen", Index: 13})
	w.check(&res)
	if res.Linearizable != porcupine.Illegal {
		t.Errorf("pinned index contradicted: verdict %s, want Illegal", res.Linearizable)
	}
	// "lost" never happened: reading it back is illegal once resolved …
	res = Result{}
	w = mk(nil, Output{Value: "lost", Index: 14})
	w.check(&res)
	if res.Linearizable != porcupine.Illegal {
		t.Errorf("unseen write read back: verdict %s, want Illegal", res.Linearizable)
	}
	// … but with a gap in the only watcher nothing is resolved, so it may have.
	res = Result{}
	w = mk([][2]uint64{{13, 13}}, Output{Value: "lost", Index: 14})
	w.check(&res)
	if res.Linearizable != porcupine.Ok || res.Resolved != 0 {
		t.Errorf("with a gap: verdict %s, resolved %d (want Ok, 0)", res.Linearizable, res.Resolved)
	}
}
