package torture

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/corekit/corekit/internal/v2api"
)

// ackedWrite is a write the cluster acknowledged, with the index it got.
type ackedWrite struct {
	Key    string
	Action string
	Value  string
	Index  uint64
	Delete bool
}

// maxAnomalies caps how many of one kind are listed.
const maxAnomalies = 20

type anomalies struct {
	list   []string
	counts map[string]int
}

func (a *anomalies) add(kind, format string, args ...any) {
	if a.counts == nil {
		a.counts = map[string]int{}
	}
	a.counts[kind]++
	if a.counts[kind] <= maxAnomalies {
		a.list = append(a.list, kind+": "+fmt.Sprintf(format, args...))
	}
}

func (a *anomalies) result() []string {
	out := a.list
	for k, n := range a.counts {
		if n > maxAnomalies {
			out = append(out, fmt.Sprintf("%s: … %d more", k, n-maxAnomalies))
		}
	}
	return out
}

// check runs every checker over what the workload saw and fills res. It
// returns porcupine's linearization info when the history is not
// linearizable (for the visualisation).
func (w *workload) check(res *Result) *porcupine.LinearizationInfo {
	var an anomalies
	ops := w.hist.ops
	var maxRet int64
	for _, o := range ops {
		if o.Return > maxRet {
			maxRet = o.Return
		}
	}
	var pops []porcupine.Operation
	acked := map[uint64]ackedWrite{}
	attempted := map[string]op{}       // write value → attempt
	unknownDelete := map[string]bool{} // key → an unknown-outcome delete exists
	byKey := map[string][]ackedWrite{} // key → acked writes
	finalRead := map[string]*op{}      // key → the final quorum read
	addAcked := func(a ackedWrite, what string) {
		if prev, dup := acked[a.Index]; dup {
			an.add("duplicate-index", "index %d given to %s and to %s %s=%q", a.Index,
				describeAcked(prev), what, a.Key, a.Value)
			return
		}
		acked[a.Index] = a
		byKey[a.Key] = append(byKey[a.Key], a)
	}
	for i := range ops {
		o := &ops[i]
		res.Ops++
		switch {
		case o.Out.NotSent:
			res.NotSent++
			continue
		case o.Out.Unknown && !o.In.Kind.IsWrite():
			res.FailedRead++
			continue
		case o.Out.Unknown:
			res.Unknown++
			if isDelete(o.In.Kind) {
				unknownDelete[o.In.Key] = true
			}
		default:
			res.OK++
		}
		if o.In.Kind.IsWrite() && o.In.Value != "" {
			attempted[o.In.Value] = *o
		}
		if o.Client == w.cfg.Clients {
			finalRead[o.In.Key] = o
		}
		if !o.Out.Unknown && o.Out.Err != "" {
			an.add("protocol", "%s: %s", describeOp(o.In, o.Out), o.Out.Err)
		}
		if !o.Out.Unknown && o.Out.Code == 0 && o.In.Kind.IsWrite() {
			addAcked(ackedWrite{Key: o.In.Key, Action: actionOf(o.In.Kind), Value: o.In.Value,
				Index: o.Out.Index, Delete: isDelete(o.In.Kind)}, describeOp(o.In, o.Out))
		}
		ret := o.Return
		if o.Out.Unknown {
			ret = maxRet + 1
		}
		pops = append(pops, porcupine.Operation{ClientId: o.Client, Input: o.In, Output: o.Out, Call: o.Call, Return: ret})
	}
	for _, k := range w.ttls {
		if k.Acked {
			addAcked(ackedWrite{Key: k.Key, Action: v2api.ActionSet, Value: k.Value, Index: k.Index}, "ttl set")
		} else {
			attempted[k.Value] = op{In: Input{Kind: OpSet, Key: k.Key, Value: k.Value}, Out: Output{Unknown: true}}
		}
	}
	pops = w.resolveUnknown(pops, acked)

	res.Resolved = w.resolved
	// 1. Linearizability.
	verdict, info := porcupine.CheckOperationsVerbose(Model(), pops, w.cfg.CheckTimeout)
	res.Linearizable = verdict
	var infoPtr *porcupine.LinearizationInfo
	if verdict == porcupine.Illegal {
		infoPtr = &info
		an.add("linearizability", "history of %d ops is not linearizable (see linearizability.html)", len(pops))
	}

	// 2. Lost writes: the final quorum read must reflect the newest
	// acknowledged write of every key.
	for _, key := range w.keys {
		writes := byKey[key]
		sort.Slice(writes, func(i, j int) bool { return writes[i].Index < writes[j].Index })
		fr := finalRead[key]
		if fr == nil || len(writes) == 0 {
			continue
		}
		for _, a := range writes {
			if w.finalIndex > 0 && a.Index > w.finalIndex {
				res.LostWrites++
				an.add("lost-write", "%s got index %d beyond the final etcd index %d", describeAcked(a), a.Index, w.finalIndex)
			}
		}
		last := writes[len(writes)-1]
		switch {
		case fr.Out.Code == 0:
			for _, a := range writes {
				if a.Index > fr.Out.Index {
					res.LostWrites++
					an.add("lost-write", "%s (index %d) but the final read shows %q @%d", describeAcked(a), a.Index, fr.Out.Value, fr.Out.Index)
				}
				if a.Index == fr.Out.Index && (a.Delete || a.Value != fr.Out.Value) {
					an.add("final-read", "final read %q @%d, but index %d was %s", fr.Out.Value, fr.Out.Index, a.Index, describeAcked(a))
				}
			}
		case fr.Out.Code == v2api.EcodeKeyNotFound:
			if !last.Delete && !unknownDelete[key] {
				res.LostWrites++
				an.add("lost-write", "%s (index %d) but the key is gone and no delete may have followed", describeAcked(last), last.Index)
			}
		}
	}

	// 3. Watches.
	w.checkWatches(res, &an, acked, attempted, unknownDelete)

	// 4. TTLs.
	for _, k := range w.ttls {
		if !k.Acked {
			continue
		}
		res.TTLKeys++
		if k.GoneAt == 0 {
			continue
		}
		early, byClock := w.clocks.ttlVerdict(k.Member, k.Call, k.Ret, k.GoneAt, k.TTL)
		if byClock {
			res.TTLClockEarly++
			continue // lateness is measured on unshifted clocks only
		}
		if early {
			an.add("ttl-early", "%s (ttl %s, set on m%d) was gone %s after the set was sent%s", k.Key, k.TTL, k.Member,
				time.Duration(k.GoneAt-k.Call).Round(time.Millisecond), w.clocks.describe(k.Call, k.GoneAt))
		}
		if w.clocks.jumped() {
			if lo, hi := w.clocks.anyOffset(k.Call, k.GoneAt); lo != 0 || hi != 0 {
				continue
			}
		}
		if late := time.Duration(k.GoneAt - k.Call - int64(k.TTL)); late > res.TTLMaxLate {
			res.TTLMaxLate = late
		}
	}
	res.Anomalies = append(res.Anomalies, an.result()...)
	return infoPtr
}

func describeAcked(a ackedWrite) string {
	if a.Delete {
		return fmt.Sprintf("acknowledged %s of %s", a.Action, a.Key)
	}
	return fmt.Sprintf("acknowledged %s %s=%q", a.Action, a.Key, a.Value)
}

// checkWatches verifies every watcher's stream: strictly increasing
// indexes (no duplicates, no reordering), every acknowledged write inside
// the watcher's covered range delivered with the right key, action and value,
// no event that no client could have caused, and all watchers agreeing.
func (w *workload) checkWatches(res *Result, an *anomalies, acked map[uint64]ackedWrite, attempted map[string]op, unknownDelete map[string]bool) {
	seen := map[uint64]watchEvent{}
	for _, wt := range w.watchers {
		res.WatchGaps += len(wt.Gaps)
		res.WatchEvents += len(wt.Events)
		got := map[uint64]bool{}
		var last uint64
		for _, ev := range wt.Events {
			if ev.Key == keyDir+"/end" {
				continue
			}
			if ev.Index <= last {
				an.add("watch-order", "watcher %d got index %d after %d (%s %s)", wt.ID, ev.Index, last, ev.Action, ev.Key)
			}
			if ev.Index > last {
				last = ev.Index
			}
			got[ev.Index] = true
			if o, ok := seen[ev.Index]; ok && (o.Key != ev.Key || o.Action != ev.Action || o.Value != ev.Value) {
				an.add("watch-disagree", "index %d: one watcher saw %s %s=%q, watcher %d saw %s %s=%q",
					ev.Index, o.Action, o.Key, o.Value, wt.ID, ev.Action, ev.Key, ev.Value)
			}
			seen[ev.Index] = ev
			if a, ok := acked[ev.Index]; ok {
				if a.Key != ev.Key || a.Action != ev.Action || (!a.Delete && a.Value != ev.Value) {
					an.add("watch-wrong-event", "watcher %d index %d: %s %s=%q, but it was the %s", wt.ID, ev.Index, ev.Action, ev.Key, ev.Value, describeAcked(a))
				}
				continue
			}
			// Not acknowledged: it must be an unknown-outcome write or an expiry.
			switch ev.Action {
			case v2api.ActionExpire:
				if !strings.HasPrefix(ev.Key, keyDir+"/ttl/") {
					an.add("watch-phantom", "watcher %d index %d: expire of %s, which never had a TTL", wt.ID, ev.Index, ev.Key)
				}
			case v2api.ActionDelete, v2api.ActionCompareAndDelete:
				if !unknownDelete[ev.Key] {
					an.add("watch-phantom", "watcher %d index %d: %s of %s that no pending delete explains", wt.ID, ev.Index, ev.Action, ev.Key)
				}
			default:
				o, ok := attempted[ev.Value]
				switch {
				case !ok:
					an.add("watch-phantom", "watcher %d index %d: %s %s=%q was never written", wt.ID, ev.Index, ev.Action, ev.Key, ev.Value)
				case !o.Out.Unknown:
					an.add("watch-phantom", "watcher %d index %d: %s %s=%q, but that write answered %s",
						wt.ID, ev.Index, ev.Action, ev.Key, ev.Value, describeOp(o.In, o.Out))
				case o.In.Key != ev.Key:
					an.add("watch-phantom", "watcher %d index %d: value %q on %s, written to %s", wt.ID, ev.Index, ev.Value, ev.Key, o.In.Key)
				}
			}
		}
		for idx, a := range acked {
			if wt.covers(idx) && !got[idx] {
				an.add("watch-missed", "watcher %d (covering %d..%d) never got index %d, the %s", wt.ID, wt.Start, wt.End, idx, describeAcked(a))
			}
		}
		if w.finalIndex > 0 && wt.End < w.finalIndex {
			an.add("watch-stalled", "watcher %d stopped at index %d, never saw the final sentinel write at %d", wt.ID, wt.End, w.finalIndex)
		}
	}
}

// resolveUnknown uses the watch streams to settle unknown-outcome writes,
// which are what makes checking expensive. When one watcher covered the
// whole run without a gap:
//   - an unknown write whose (unique) value it never saw did not happen and
//     is dropped; one it saw happened at that event's index: its output is
//     pinned to the index and its return time bounded by the earliest return
//     of any operation that observed a larger index (the write was applied
//     before that one);
//   - an unknown delete that no unexplained delete event of its key and
//     action could be (by the same time bound) is dropped; a delete event
//     with a single candidate pins that candidate.
//
// This only adds constraints or removes writes that did not happen, so it
// cannot hide an anomaly; a lying watch stream shows up as a violation or as
// a watch anomaly.
func (w *workload) resolveUnknown(pops []porcupine.Operation, acked map[uint64]ackedWrite) []porcupine.Operation {
	var full *watcher
	for _, wt := range w.watchers {
		if len(wt.Gaps) == 0 && wt.Start <= w.startIndex && w.finalIndex > 0 && wt.End >= w.finalIndex {
			full = wt
			break
		}
	}
	if full == nil {
		return pops
	}
	// bound(x): earliest return of a known operation that saw an index > x.
	type seenAt struct {
		idx uint64
		ret int64
	}
	var seen []seenAt
	for _, p := range pops {
		if o := p.Output.(Output); !o.Unknown && o.Code == 0 && o.Index > 0 {
			seen = append(seen, seenAt{o.Index, p.Return})
		}
	}
	sort.Slice(seen, func(i, j int) bool { return seen[i].idx < seen[j].idx })
	for i := len(seen) - 2; i >= 0; i-- {
		if seen[i+1].ret < seen[i].ret {
			seen[i].ret = seen[i+1].ret
		}
	}
	bound := func(x uint64) (int64, bool) {
		i := sort.Search(len(seen), func(i int) bool { return seen[i].idx > x })
		if i == len(seen) {
			return 0, false
		}
		return seen[i].ret, true
	}
	pin := func(p *porcupine.Operation, idx uint64) {
		o := p.Output.(Output)
		o.Index = idx
		p.Output = o
		if b, ok := bound(idx); ok && b >= p.Call {
			p.Return = b
		}
	}

	byValue := map[string]uint64{}
	type delEvent struct {
		idx         uint64
		key, action string
	}
	var dels []delEvent
	for _, ev := range full.Events {
		if _, ok := acked[ev.Index]; ok {
			continue
		}
		switch ev.Action {
		case v2api.ActionDelete, v2api.ActionCompareAndDelete:
			dels = append(dels, delEvent{ev.Index, ev.Key, ev.Action})
		case v2api.ActionExpire:
		default:
			byValue[ev.Value] = ev.Index
		}
	}
	candidate := func(p porcupine.Operation, e delEvent) bool {
		in := p.Input.(Input)
		if in.Key != e.key || actionOf(in.Kind) != e.action {
			return false
		}
		b, ok := bound(e.idx)
		return !ok || p.Call < b
	}
	isUnknownDelete := func(p porcupine.Operation) bool {
		return p.Output.(Output).Unknown && isDelete(p.Input.(Input).Kind)
	}
	// Pin deletes whose event has exactly one unassigned candidate.
	assigned := map[int]bool{}
	for _, e := range dels {
		only := -1
		for i, p := range pops {
			if isUnknownDelete(p) && !assigned[i] && candidate(p, e) {
				if only >= 0 {
					only = -2
					break
				}
				only = i
			}
		}
		if only >= 0 {
			assigned[only] = true
			pin(&pops[only], e.idx)
		}
	}

	out := pops[:0]
	for i, p := range pops {
		o := p.Output.(Output)
		in := p.Input.(Input)
		if !o.Unknown || !in.Kind.IsWrite() {
			out = append(out, p)
			continue
		}
		if isDelete(in.Kind) {
			if assigned[i] {
				w.resolved++
				out = append(out, p)
				continue
			}
			possible := false
			for _, e := range dels {
				if candidate(p, e) {
					possible = true
					break
				}
			}
			if possible {
				out = append(out, p)
			} else {
				w.resolved++
			}
			continue
		}
		w.resolved++
		if idx, ok := byValue[in.Value]; ok {
			pin(&p, idx)
			out = append(out, p)
		}
	}
	return out
}
