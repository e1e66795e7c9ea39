package store

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/corekit/corekit/internal/v2api"
)

// The binary snapshot format (version 2), written by Save:
//
//	magic    "\xffCKS" (never the start of JSON, so version 1 is told apart)
//	version  byte 2
//	index    uvarint
//	nodes    uvarint count, then per node, parents before children and
//	         siblings in byte order:
//	           parent  uvarint ordinal (0 = the root, i = the i-th node)
//	           name    string (the last path component)
//	           flags   byte: 1 dir, 2 has expiry
//	           created uvarint, modified uvarint
//	           expiry  time (flag 2)
//	           value   string (files only)
//	history  uvarint count, then per event, oldest first:
//	           flags   byte: 1 refresh, 2 has prevNode
//	           action  string
//	           node, prevNode (flag 2) as enodes
//	enode    flags byte: 1 dir, 2 has value, 4 has expiration; key string,
//	         value string (2), expiration time (4), modified uvarint,
//	         created uvarint
//	string   uvarint length, then the bytes as they are
//	time     varint Unix seconds, uvarint nanoseconds (< 1e9), UTC
//
// Nothing follows the last event. The encoding is deterministic: the same
// state always gives the same bytes.
const binMagic = "\xffCKS"

const binVersion = 2

// Node and event flag bits.
const (
	binDir      = 1
	binExpiry   = 2
	binRefresh  = 1
	binHasPrev  = 2
	binEDir     = 1
	binEValue   = 2
	binEExpires = 4
)

// binWriter appends to b; with out set, it hands b to out whenever it
// holds at least flushAt bytes (streaming), keeping the first error.
type binWriter struct {
	b       []byte
	out     io.Writer
	n       int64
	err     error
	flushAt int
}

func (w *binWriter) maybeFlush(force bool) {
	if w.out == nil || w.err != nil || (!force && len(w.b) < w.flushAt) {
		return
	}
	n, err := w.out.Write(w.b)
	w.n += int64(n)
	w.err = err
	w.b = w.b[:0]
}

func (w *binWriter) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }

func (w *binWriter) str(s string) {
	w.uvarint(uint64(len(s)))
	w.b = append(w.b, s...)
}

func (w *binWriter) time(t time.Time) {
	w.b = binary.AppendVarint(w.b, t.Unix())
	w.uvarint(uint64(t.Nanosecond()))
}

func (w *binWriter) enode(n *v2api.Node) {
	var f byte
	if n.Dir {
		f |= binEDir
	}
	if n.Value != nil {
		f |= binEValue
	}
	if n.Expiration != nil {
		f |= binEExpires
	}
	w.b = append(w.b, f)
	w.str(n.Key)
	if n.Value != nil {
		w.str(*n.Value)
	}
	if n.Expiration != nil {
		w.time(*n.Expiration)
	}
	w.uvarint(n.ModifiedIndex)
	w.uvarint(n.CreatedIndex)
}

// saveBinary encodes the state; the read lock is held.
func (s *Store) saveBinary() []byte {
	// Size the buffer once: about the bytes of every path and value plus a
	// few bytes of numbers per node.
	var all []*node
	size := 64
	s.root.walkSubtree(func(n *node) {
		size += len(n.path) + len(n.value) + 16
		all = append(all, n)
	})
	w := &binWriter{b: make([]byte, 0, size+s.history.size*128)}
	s.encode(w, all)
	return w.b
}

// WriteTo streams what Save returns to out in chunks of about 64 KiB,
// without building the whole snapshot in memory. It holds the read lock
// throughout, so out should be fast, or the store a Clone: the way to
// persist a raft snapshot is Clone under the FSM's apply, then WriteTo of
// the clone from Persist.
func (s *Store) WriteTo(out io.Writer) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var all []*node
	s.root.walkSubtree(func(n *node) { all = append(all, n) })
	w := &binWriter{b: make([]byte, 0, 80<<10), out: out, flushAt: 64 << 10}
	s.encode(w, all)
	w.maybeFlush(true)
	if w.err != nil {
		return w.n, fmt.Errorf("store: writing snapshot: %w", w.err)
	}
	return w.n, nil
}

// encode writes the format to w; all is the tree in walkSubtree order.
func (s *Store) encode(w *binWriter, all []*node) {
	w.b = append(w.b, binMagic...)
	w.b = append(w.b, binVersion)
	w.uvarint(s.index)
	w.uvarint(uint64(len(all)))
	ord := map[*node]uint64{s.root: 0}
	for i, n := range all {
		if n.dir {
			ord[n] = uint64(i + 1)
		}
		w.uvarint(ord[n.parent])
		w.str(n.path[len(n.parent.path)+boolInt(n.parent != s.root):])
		var f byte
		if n.dir {
			f |= binDir
		}
		if !n.permanent() {
			f |= binExpiry
		}
		w.b = append(w.b, f)
		w.uvarint(n.createdIndex)
		w.uvarint(n.modifiedIndex)
		if !n.permanent() {
			w.time(*n.expire)
		}
		if !n.dir {
			w.str(n.value)
		}
		w.maybeFlush(false)
	}
	w.uvarint(uint64(s.history.size))
	for i := 0; i < s.history.size; i++ {
		e := s.history.at(i)
		var f byte
		if e.refresh {
			f |= binRefresh
		}
		if e.ev.PrevNode != nil {
			f |= binHasPrev
		}
		w.b = append(w.b, f)
		w.str(e.ev.Action)
		w.enode(e.ev.Node)
		if e.ev.PrevNode != nil {
			w.enode(e.ev.PrevNode)
		}
		w.maybeFlush(false)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

var errTruncated = errors.New("truncated")

type binReader struct {
	b   []byte
	err error
}

func (r *binReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *binReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errTruncated)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *binReader) byte() byte {
	if len(r.b) == 0 {
		r.fail(errTruncated)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *binReader) bytes() []byte {
	l := r.uvarint()
	if l > uint64(len(r.b)) {
		r.fail(errTruncated)
		return nil
	}
	s := r.b[:l:l]
	r.b = r.b[l:]
	return s
}

func (r *binReader) str() string { return string(r.bytes()) }

func (r *binReader) time() time.Time {
	sec, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errTruncated)
		return time.Time{}
	}
	r.b = r.b[n:]
	ns := r.uvarint()
	if ns >= 1e9 {
		r.fail(fmt.Errorf("nanoseconds %d out of range", ns))
		return time.Time{}
	}
	return time.Unix(sec, int64(ns)).UTC()
}

// action returns the event action, sharing the constant strings.
func (r *binReader) action() string {
	b := r.bytes()
	for _, a := range []string{v2api.ActionSet, v2api.ActionCreate, v2api.ActionUpdate, v2api.ActionDelete,
		v2api.ActionExpire, v2api.ActionCompareAndSwap, v2api.ActionCompareAndDelete, v2api.ActionGet} {
		if string(b) == a {
			return a
		}
	}
	return string(b)
}

func (r *binReader) enode() *v2api.Node {
	f := r.byte()
	if f&^(binEDir|binEValue|binEExpires) != 0 {
		r.fail(fmt.Errorf("unknown event node flags %#x", f))
		return nil
	}
	n := &v2api.Node{Dir: f&binEDir != 0, Key: r.str()}
	if f&binEValue != 0 {
		v := r.str()
		n.Value = &v
	}
	if f&binEExpires != 0 {
		t := r.time()
		n.Expiration = &t
	}
	n.ModifiedIndex = r.uvarint()
	n.CreatedIndex = r.uvarint()
	return n
}

// validName reports whether name can be a path component of a clean key.
func validName(name []byte) bool {
	if len(name) == 0 || string(name) == "." || string(name) == ".." {
		return false
	}
	for _, c := range name {
		if c == '/' {
			return false
		}
	}
	return true
}

// decodeBinary decodes a version 2 snapshot (magic already checked).
func decodeBinary(state []byte) (*node, *ttlHeap, *eventHistory, uint64, error) {
	bad := func(format string, args ...any) (*node, *ttlHeap, *eventHistory, uint64, error) {
		return nil, nil, nil, 0, fmt.Errorf("store: invalid snapshot: "+format, args...)
	}
	r := &binReader{b: state[len(binMagic):]}
	if v := r.byte(); r.err == nil && v != binVersion {
		return nil, nil, nil, 0, fmt.Errorf("store: snapshot version %d, want %d", v, binVersion)
	}
	index := r.uvarint()
	count := r.uvarint()
	if count > uint64(len(r.b)) { // every node takes at least 5 bytes
		return bad("%d nodes in %d bytes", count, len(r.b))
	}
	root := newDir("/", 0, nil, time.Time{})
	ttl := &ttlHeap{}
	dirs := []*node{root} // ordinal → node; files keep their slot as nil
	for i := uint64(0); i < count && r.err == nil; i++ {
		po := r.uvarint()
		name := r.bytes()
		f := r.byte()
		created, modified := r.uvarint(), r.uvarint()
		var exp time.Time
		if f&binExpiry != 0 {
			exp = normExpire(r.time())
		}
		if r.err != nil {
			break
		}
		if f&^(binDir|binExpiry) != 0 {
			return bad("unknown node flags %#x", f)
		}
		if po >= uint64(len(dirs)) || dirs[po] == nil {
			return bad("node %d has no parent directory before it", i+1)
		}
		parent := dirs[po]
		if !validName(name) {
			return bad("bad name %q below %q", name, parent.path)
		}
		var key string
		if parent == root {
			key = "/" + string(name)
		} else {
			key = parent.path + "/" + string(name)
		}
		base := key[len(key)-len(name):]
		if _, dup := parent.children[base]; dup {
			return bad("duplicate key %q", key)
		}
		if created > index || modified > index {
			return bad("key %q has an index beyond %d", key, index)
		}
		var n *node
		if f&binDir != 0 {
			n = newDir(key, created, parent, exp)
			dirs = append(dirs, n)
		} else {
			n = newFile(key, r.str(), created, parent, exp)
			dirs = append(dirs, nil)
		}
		n.modifiedIndex = modified
		parent.children[base] = n
		if !n.permanent() {
			ttl.nodes = append(ttl.nodes, n)
			n.heapIndex = int32(len(ttl.nodes) - 1)
		}
	}
	hcount := r.uvarint()
	if r.err == nil && hcount > historySize {
		return bad("%d history events, at most %d", hcount, historySize)
	}
	var evs []histEvent
	for i := uint64(0); i < hcount && r.err == nil; i++ {
		f := r.byte()
		if f&^(binRefresh|binHasPrev) != 0 {
			return bad("unknown event flags %#x", f)
		}
		ev := &v2api.Event{Action: r.action(), Node: r.enode()}
		if f&binHasPrev != 0 {
			ev.PrevNode = r.enode()
		}
		evs = append(evs, histEvent{ev: ev, refresh: f&binRefresh != 0})
	}
	if r.err != nil {
		return bad("%v", r.err)
	}
	if len(r.b) > 0 {
		return bad("%d bytes after the history", len(r.b))
	}
	heap.Init(ttl)
	hist, err := buildHistory(evs, index)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	return root, ttl, hist, index, nil
}

// buildHistory checks that the recorded events carry the contiguous indexes
// ending at index and returns them as a history.
func buildHistory(evs []histEvent, index uint64) (*eventHistory, error) {
	if len(evs) > historySize {
		return nil, fmt.Errorf("store: invalid snapshot: %d history events, at most %d", len(evs), historySize)
	}
	hist := newEventHistory()
	for i, e := range evs {
		if e.ev.Node == nil {
			return nil, fmt.Errorf("store: invalid snapshot: history event %d has no node", i)
		}
		want := index - uint64(len(evs)-1-i)
		if index < uint64(len(evs)) || e.ev.Node.ModifiedIndex != want {
			return nil, fmt.Errorf("store: invalid snapshot: history event %d has index %d, want %d", i, e.ev.Node.ModifiedIndex, want)
		}
		hist.add(e)
	}
	return hist, nil
}
