package store

import (
	"path"
	"slices"
	"strings"
	"time"

	"github.com/corekit/corekit/internal/v2api"
)

// minExpireTime is etcd's floor for expiry times: anything earlier (including
// the zero time) means "permanent". Times this old only appear when a zero
// time was serialized by a client or an old peer.
var minExpireTime = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

// normExpire turns a caller's expiry time into the stored form: the zero time
// for permanent, otherwise the same instant in UTC without a monotonic
// reading (so it encodes and compares identically on every member).
func normExpire(t time.Time) time.Time {
	if t.Before(minExpireTime) {
		return time.Time{}
	}
	return t.UTC()
}

// node is one key or directory of the tree. A node's path never changes, so
// it doubles as the tie breaker of the TTL heap. The layout is 80 bytes (a
// Go size class): most keys are permanent, so the expiry is a pointer that
// only TTL nodes pay for, and the heap position is an int32 next to dir.
type node struct {
	path          string
	value         string
	createdIndex  uint64
	modifiedIndex uint64
	parent        *node
	children      map[string]*node // dirs only
	expire        *time.Time       // nil: permanent; never modified in place
	heapIndex     int32            // position in the TTL heap, -1 when absent
	dir           bool
}

func newFile(p, value string, index uint64, parent *node, exp time.Time) *node {
	n := &node{path: p, createdIndex: index, modifiedIndex: index, parent: parent,
		value: value, heapIndex: -1}
	n.setExpiry(exp)
	return n
}

func newDir(p string, index uint64, parent *node, exp time.Time) *node {
	n := &node{path: p, createdIndex: index, modifiedIndex: index, parent: parent,
		dir: true, children: map[string]*node{}, heapIndex: -1}
	n.setExpiry(exp)
	return n
}

func (n *node) permanent() bool { return n.expire == nil }

// expiry is the node's expiry time, the zero time when permanent.
func (n *node) expiry() time.Time {
	if n.expire == nil {
		return time.Time{}
	}
	return *n.expire
}

// setExpiry stores a normalized expiry (the zero time: permanent).
func (n *node) setExpiry(t time.Time) {
	if t.IsZero() {
		n.expire = nil
		return
	}
	e := t // allocated only here, not for permanent nodes
	n.expire = &e
}

func (n *node) name() string { return path.Base(n.path) }

// hidden reports whether the node's own name starts with '_'; hidden nodes are
// left out of directory listings but stay reachable by their exact path.
func (n *node) hidden() bool { return isHiddenName(n.name()) }

func isHiddenName(name string) bool { return len(name) > 0 && name[0] == '_' }

// sortedChildren returns the children of a directory in byte order of their
// names (which is also byte order of their keys).
func (n *node) sortedChildren() []*node {
	type named struct {
		name string
		n    *node
	}
	tmp := make([]named, 0, len(n.children))
	for name, c := range n.children {
		tmp = append(tmp, named{name, c})
	}
	slices.SortFunc(tmp, func(a, b named) int { return strings.Compare(a.name, b.name) })
	out := make([]*node, len(tmp))
	for i, t := range tmp {
		out[i] = t.n
	}
	return out
}

// ttlOf is the remaining time to live reported to clients: the ceiling of the
// remaining seconds (a fresh 5 s key reports 5, 3.2 s remaining reports 4),
// truncated towards zero when overdue, as etcd computes it.
func ttlOf(exp, now time.Time) int64 {
	d := exp.Sub(now)
	ttl := d / time.Second
	if d%time.Second > 0 {
		ttl++
	}
	return int64(ttl)
}

// externKey is the key as clients see it: the root has no key.
func externKey(p string) string {
	if p == "/" {
		return ""
	}
	return p
}

// bare renders n without TTL and without children, in the form stored in the
// event history (etcd's Repr(false, false)). TTLs are filled in at delivery.
func (n *node) bare() *v2api.Node {
	en := &v2api.Node{
		Key:           externKey(n.path),
		Dir:           n.dir,
		ModifiedIndex: n.modifiedIndex,
		CreatedIndex:  n.createdIndex,
	}
	if !n.dir {
		v := n.value
		en.Value = &v
	}
	if !n.permanent() {
		t := *n.expire
		en.Expiration = &t
	}
	return en
}

// repr renders n for a read at time now. Directories list their visible
// children (one level, or the whole subtree with recursive); listings are
// always in byte order of the keys, a valid instance of etcd's unspecified
// order that keeps reads reproducible (so sorted only documents intent).
func (n *node) repr(withChildren, recursive bool, now time.Time) *v2api.Node {
	en := n.bare()
	if en.Expiration != nil {
		en.TTL = ttlOf(*en.Expiration, now)
	}
	if n.dir && withChildren && len(n.children) > 0 {
		for _, c := range n.sortedChildren() {
			if c.hidden() {
				continue
			}
			en.Nodes = append(en.Nodes, c.repr(recursive, recursive, now))
		}
	}
	return en
}

// walkSubtree calls f for every node below n (not n itself), parents before
// children, siblings in byte order.
func (n *node) walkSubtree(f func(*node)) {
	if !n.dir {
		return
	}
	for _, c := range n.sortedChildren() {
		f(c)
		c.walkSubtree(f)
	}
}

// lookup finds the node at the relative path rel ("/a/b" or "a/b") below n,
// or nil.
func (n *node) lookup(rel string) *node {
	cur := n
	for _, name := range strings.Split(strings.Trim(rel, "/"), "/") {
		if name == "" {
			continue
		}
		if !cur.dir {
			return nil
		}
		next, ok := cur.children[name]
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}
