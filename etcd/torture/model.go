package torture

import (
	"fmt"
	"sort"

	"github.com/anishathalye/porcupine"
)

// OpKind names one kind of client operation on a single key.
type OpKind string

// The operations the clients issue. Every one maps to exactly one v2 request.
const (
	OpGet    OpKind = "get"    // GET ?quorum=true
	OpSet    OpKind = "set"    // PUT value
	OpCreate OpKind = "create" // PUT value&prevExist=false
	OpCASVal OpKind = "cas-v"  // PUT value&prevValue=P
	OpCASIdx OpKind = "cas-i"  // PUT value&prevIndex=I
	OpDelete OpKind = "delete" // DELETE
	OpCADVal OpKind = "cad-v"  // DELETE ?prevValue=P
	OpCADIdx OpKind = "cad-i"  // DELETE ?prevIndex=I
)

// IsWrite reports whether the operation may change the store.
func (k OpKind) IsWrite() bool { return k != OpGet }

// Input is what a client asked for.
type Input struct {
	Kind      OpKind `json:"kind"`
	Key       string `json:"key"`
	Value     string `json:"value,omitempty"`
	PrevValue string `json:"prevValue,omitempty"`
	PrevIndex uint64 `json:"prevIndex,omitempty"`
	// Local sends a get without quorum=true (a possibly stale local read).
	// Only the checker's negative-control test uses it: the model still
	// demands linearizability, so stale answers must be caught.
	Local bool `json:"local,omitempty"`
}

// Output is what the cluster answered. Unknown marks an operation whose
// outcome is not known (timeout, connection error, 5xx, raft error): it may
// or may not have taken effect, and Code/Value/Index carry nothing.
type Output struct {
	Unknown bool `json:"unknown,omitempty"`
	// NotSent marks a request that never reached a server (dial failed):
	// a definite failure with no effect, left out of the check.
	NotSent bool   `json:"notSent,omitempty"`
	Code    int    `json:"code,omitempty"` // 0 = success, else the etcd errorCode (100, 101, 105)
	Value   string `json:"value,omitempty"`
	Index   uint64 `json:"index,omitempty"` // modifiedIndex of the resulting node (0 if none)
	// HasPrev and PrevValue describe the response's prevNode on success.
	HasPrev   bool   `json:"hasPrev,omitempty"`
	PrevValue string `json:"prevValue,omitempty"`
	Err       string `json:"err,omitempty"` // transport or server error text, for reports
}

// keyState is the model's view of one key. Index is the modifiedIndex of
// the last mutation (including a delete), 0 when it is not known because the
// mutation's outcome was unknown.
type keyState struct {
	Exists bool
	Value  string
	Index  uint64
}

// stepKey is the sequential specification of one v2 key. It returns whether
// out is a legal answer to in when the key is in state s, and the new state.
//
// Unknown outcomes are modelled as "the write happened" (when its condition
// can hold); the checker may also linearize the operation after everything
// else, which covers "it never happened" because its return time is placed at
// the end of the history.
func stepKey(s keyState, in Input, out Output) (bool, keyState) {
	if out.Unknown {
		if !in.Kind.IsWrite() {
			return true, s
		}
		if out.Index != 0 {
			// The watch stream showed this write applied at out.Index.
			if !condCanHold(s, in) || (s.Index != 0 && out.Index <= s.Index) {
				return false, s
			}
			if isDelete(in.Kind) {
				return true, keyState{Exists: false, Index: out.Index}
			}
			return true, keyState{Exists: true, Value: in.Value, Index: out.Index}
		}
		if !condCanHold(s, in) {
			return true, s
		}
		if isDelete(in.Kind) {
			return true, keyState{Exists: false, Index: 0}
		}
		return true, keyState{Exists: true, Value: in.Value, Index: 0}
	}
	// A successful write must get a fresh, larger modifiedIndex.
	newer := func() bool { return out.Index != 0 && (s.Index == 0 || out.Index > s.Index) }
	prevOK := func() bool {
		if out.HasPrev != s.Exists {
			return false
		}
		return !s.Exists || out.PrevValue == s.Value
	}
	switch in.Kind {
	case OpGet:
		switch out.Code {
		case 0:
			if !s.Exists || out.Value != s.Value || (s.Index != 0 && out.Index != s.Index) {
				return false, s
			}
			return true, keyState{Exists: true, Value: s.Value, Index: out.Index}
		case 100:
			return !s.Exists, s
		}
		return false, s
	case OpSet:
		if out.Code != 0 || !newer() || !prevOK() {
			return false, s
		}
		return true, keyState{Exists: true, Value: in.Value, Index: out.Index}
	case OpCreate:
		switch out.Code {
		case 0:
			if s.Exists || !newer() {
				return false, s
			}
			return true, keyState{Exists: true, Value: in.Value, Index: out.Index}
		case 105:
			return s.Exists, s
		}
		return false, s
	case OpCASVal, OpCASIdx, OpCADVal, OpCADIdx, OpDelete:
		switch out.Code {
		case 0:
			if !s.Exists || !condMatches(s, in) || !newer() || !prevOK() {
				return false, s
			}
			if isDelete(in.Kind) {
				return true, keyState{Exists: false, Index: out.Index}
			}
			return true, keyState{Exists: true, Value: in.Value, Index: out.Index}
		case 100:
			return !s.Exists, s
		case 101:
			if in.Kind == OpDelete || !s.Exists {
				return false, s
			}
			// With an unknown index a prevIndex compare may have failed.
			if (in.Kind == OpCASIdx || in.Kind == OpCADIdx) && s.Index == 0 {
				return true, s
			}
			return !condMatches(s, in), s
		}
		return false, s
	}
	return false, s
}

func isDelete(k OpKind) bool { return k == OpDelete || k == OpCADVal || k == OpCADIdx }

// condMatches reports whether the compare of a conditional op holds in s
// (s.Exists assumed). An unknown index matches any prevIndex.
func condMatches(s keyState, in Input) bool {
	switch in.Kind {
	case OpCASVal, OpCADVal:
		return s.Value == in.PrevValue
	case OpCASIdx, OpCADIdx:
		return s.Index == 0 || s.Index == in.PrevIndex
	}
	return true
}

// condCanHold reports whether a write could succeed in state s.
func condCanHold(s keyState, in Input) bool {
	switch in.Kind {
	case OpSet:
		return true
	case OpCreate:
		return !s.Exists
	default:
		return s.Exists && condMatches(s, in)
	}
}

// Model returns the porcupine model of the v2 key space used by the
// checker: one independent register per key, with set, quorum get,
// compare-and-swap, compare-and-delete, create and delete.
func Model() porcupine.Model {
	return porcupine.Model{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[string][]porcupine.Operation{}
			for _, op := range h {
				k := op.Input.(Input).Key
				byKey[k] = append(byKey[k], op)
			}
			keys := make([]string, 0, len(byKey))
			for k := range byKey {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			out := make([][]porcupine.Operation, 0, len(keys))
			for _, k := range keys {
				out = append(out, byKey[k])
			}
			return out
		},
		Init: func() interface{} { return keyState{} },
		Step: func(state, input, output interface{}) (bool, interface{}) {
			return stepKey(state.(keyState), input.(Input), output.(Output))
		},
		Equal: func(a, b interface{}) bool { return a.(keyState) == b.(keyState) },
		DescribeOperation: func(input, output interface{}) string {
			return describeOp(input.(Input), output.(Output))
		},
		DescribeState: func(state interface{}) string {
			s := state.(keyState)
			if !s.Exists {
				return fmt.Sprintf("absent @%d", s.Index)
			}
			return fmt.Sprintf("%q @%d", s.Value, s.Index)
		},
	}
}

func describeOp(in Input, out Output) string {
	var call string
	switch in.Kind {
	case OpGet:
		call = fmt.Sprintf("get(%s)", in.Key)
	case OpSet, OpCreate:
		call = fmt.Sprintf("%s(%s, %q)", in.Kind, in.Key, in.Value)
	case OpCASVal:
		call = fmt.Sprintf("cas(%s, %q→%q)", in.Key, in.PrevValue, in.Value)
	case OpCASIdx:
		call = fmt.Sprintf("cas(%s, @%d→%q)", in.Key, in.PrevIndex, in.Value)
	case OpDelete:
		call = fmt.Sprintf("delete(%s)", in.Key)
	case OpCADVal:
		call = fmt.Sprintf("cad(%s, %q)", in.Key, in.PrevValue)
	case OpCADIdx:
		call = fmt.Sprintf("cad(%s, @%d)", in.Key, in.PrevIndex)
	}
	switch {
	case out.Unknown && out.Index != 0:
		return fmt.Sprintf("%s → ? (watch: applied @%d)", call, out.Index)
	case out.Unknown:
		return call + " → ?"
	case out.Code != 0:
		return fmt.Sprintf("%s → err %d", call, out.Code)
	case in.Kind == OpGet:
		return fmt.Sprintf("%s → %q @%d", call, out.Value, out.Index)
	}
	return fmt.Sprintf("%s → ok @%d", call, out.Index)
}
