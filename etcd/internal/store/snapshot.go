package store

import (
	"bytes"
	"container/heap"
	"encoding/json"
	"fmt"
	"path"
	"time"
	"unicode/utf8"

	"github.com/corekit/corekit/internal/v2api"
)

// snapshotVersion is the version of the JSON format, which Save wrote
// before the binary format (version 2, snapshot_bin.go). Recovery still
// reads it.
const snapshotVersion = 1

// snapshot is the JSON format: a flat list of nodes (no nesting, so any tree
// depth decodes), parents before children, siblings in byte order, and the
// retained event history, oldest first. Everything is deterministic: the
// same state always encodes to the same bytes.
type snapshot struct {
	Version int         `json:"version"`
	Index   uint64      `json:"index"`
	Nodes   []snapNode  `json:"nodes"`
	History []snapEvent `json:"history"`
}

type snapNode struct {
	Key           bstring    `json:"key"`
	Dir           bool       `json:"dir,omitempty"`
	Value         bstring    `json:"value,omitempty"`
	ExpireTime    *time.Time `json:"expireTime,omitempty"`
	CreatedIndex  uint64     `json:"createdIndex"`
	ModifiedIndex uint64     `json:"modifiedIndex"`
}

// snapEvent is a recorded event; its nodes are always bare (no ttl, no
// children).
type snapEvent struct {
	Refresh  bool       `json:"refresh,omitempty"`
	Action   string     `json:"action"`
	Node     *snapENode `json:"node"`
	PrevNode *snapENode `json:"prevNode,omitempty"`
}

type snapENode struct {
	Key           bstring    `json:"key,omitempty"`
	Value         *bstring   `json:"value,omitempty"`
	Dir           bool       `json:"dir,omitempty"`
	Expiration    *time.Time `json:"expiration,omitempty"`
	ModifiedIndex uint64     `json:"modifiedIndex,omitempty"`
	CreatedIndex  uint64     `json:"createdIndex,omitempty"`
}

func toSnapENode(n *v2api.Node) *snapENode {
	if n == nil {
		return nil
	}
	sn := &snapENode{Key: bstring(n.Key), Dir: n.Dir, Expiration: n.Expiration,
		ModifiedIndex: n.ModifiedIndex, CreatedIndex: n.CreatedIndex}
	if n.Value != nil {
		v := bstring(*n.Value)
		sn.Value = &v
	}
	return sn
}

func fromSnapENode(sn *snapENode) *v2api.Node {
	if sn == nil {
		return nil
	}
	n := &v2api.Node{Key: string(sn.Key), Dir: sn.Dir, ModifiedIndex: sn.ModifiedIndex, CreatedIndex: sn.CreatedIndex}
	if sn.Value != nil {
		v := string(*sn.Value)
		n.Value = &v
	}
	if sn.Expiration != nil {
		t := sn.Expiration.UTC()
		n.Expiration = &t
	}
	return n
}

// bstring is a string that survives JSON exactly: valid UTF-8 is a JSON
// string, anything else (keys and values are arbitrary bytes) is
// {"base64":"…"}. Plain encoding/json would turn invalid bytes into U+FFFD,
// so a member restored from a snapshot would hold different bytes than one
// that applied the log.
type bstring string

type b64 struct {
	Base64 []byte `json:"base64"`
}

func (b bstring) MarshalJSON() ([]byte, error) {
	if utf8.ValidString(string(b)) {
		return json.Marshal(string(b))
	}
	return json.Marshal(b64{Base64: []byte(b)})
}

func (b *bstring) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '{' {
		var v b64
		if err := json.Unmarshal(data, &v); err != nil {
			return err
		}
		*b = bstring(v.Base64)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	*b = bstring(s)
	return nil
}

// Save encodes the whole state (nodes with their indexes and expiry times,
// the index, the event history) deterministically in the binary format of
// snapshot_bin.go: two stores that applied the same operations produce
// identical bytes. Stats and watchers are not saved. Save holds the read
// lock while encoding; for a cheap snapshot under a lock, take a Clone and
// Save the clone later.
func (s *Store) Save() ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.saveBinary(), nil
}

// Recovery replaces the state with one produced by Save. Live watchers are
// closed (their channels close without an event); stats are kept. A state
// that does not decode or is inconsistent is rejected with an error and the
// store is left unchanged.
func (s *Store) Recovery(state []byte) error {
	root, ttl, hist, index, err := decodeSnapshot(state)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hub.closeAll()
	s.hub = newWatcherHub()
	s.root, s.ttl, s.history, s.index = root, ttl, hist, index
	return nil
}

// decodeSnapshot decodes either format: the binary one Save writes, or the
// JSON of version 1 (written before the binary format existed; snapshots of
// that age may still be on disk).
func decodeSnapshot(state []byte) (*node, *ttlHeap, *eventHistory, uint64, error) {
	if bytes.HasPrefix(state, []byte(binMagic)) {
		return decodeBinary(state)
	}
	return decodeJSON(state)
}

func decodeJSON(state []byte) (*node, *ttlHeap, *eventHistory, uint64, error) {
	var snap snapshot
	dec := json.NewDecoder(bytes.NewReader(state))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&snap); err != nil {
		return nil, nil, nil, 0, fmt.Errorf("store: decoding snapshot: %w", err)
	}
	if snap.Version != snapshotVersion {
		return nil, nil, nil, 0, fmt.Errorf("store: snapshot version %d, want %d", snap.Version, snapshotVersion)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("store: invalid snapshot: "+format, args...)
	}
	root := newDir("/", 0, nil, time.Time{})
	ttl := &ttlHeap{}
	byKey := map[string]*node{"/": root}
	for _, sn := range snap.Nodes {
		key := string(sn.Key)
		if key == "/" || clean(key) != key {
			return nil, nil, nil, 0, bad("bad key %q", sn.Key)
		}
		if _, dup := byKey[key]; dup {
			return nil, nil, nil, 0, bad("duplicate key %q", key)
		}
		parent := byKey[path.Dir(key)]
		if parent == nil || !parent.dir {
			return nil, nil, nil, 0, bad("key %q has no parent directory before it", key)
		}
		if sn.CreatedIndex > snap.Index || sn.ModifiedIndex > snap.Index {
			return nil, nil, nil, 0, bad("key %q has an index beyond %d", key, snap.Index)
		}
		var exp time.Time
		if sn.ExpireTime != nil {
			exp = normExpire(*sn.ExpireTime)
		}
		var n *node
		if sn.Dir {
			if sn.Value != "" {
				return nil, nil, nil, 0, bad("directory %q has a value", key)
			}
			n = newDir(key, sn.CreatedIndex, parent, exp)
		} else {
			n = newFile(key, string(sn.Value), sn.CreatedIndex, parent, exp)
		}
		n.modifiedIndex = sn.ModifiedIndex
		parent.children[path.Base(key)] = n
		byKey[key] = n
		if !n.permanent() {
			ttl.nodes = append(ttl.nodes, n)
			n.heapIndex = int32(len(ttl.nodes) - 1)
		}
	}
	heap.Init(ttl)
	evs := make([]histEvent, 0, len(snap.History))
	for i, se := range snap.History {
		if se.Node == nil {
			return nil, nil, nil, 0, bad("history event %d has no node", i)
		}
		ev := &v2api.Event{Action: se.Action, Node: fromSnapENode(se.Node), PrevNode: fromSnapENode(se.PrevNode)}
		evs = append(evs, histEvent{ev: ev, refresh: se.Refresh})
	}
	hist, err := buildHistory(evs, snap.Index)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	return root, ttl, hist, snap.Index, nil
}

// Clone returns an independent copy of the store's state (tree, index,
// history, TTLs, stats) with no watchers, reading TTLs with the same clock.
// It is the cheap way to snapshot under the lock: the copy can be saved
// later without blocking applies. Recorded events are immutable and shared.
func (s *Store) Clone() *Store {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := New(s.now)
	c.index = s.index
	c.history = s.history.clone()
	c.root = cloneNode(s.root, nil, c.ttl)
	heap.Init(c.ttl)
	c.stats.copyFrom(&s.stats)
	return c
}

// cloneNode deep-copies n's subtree, appending nodes with an expiry to ttl's
// slice (the caller restores heap order).
func cloneNode(n, parent *node, ttl *ttlHeap) *node {
	c := *n
	c.parent = parent
	c.heapIndex = -1
	if n.dir {
		c.children = make(map[string]*node, len(n.children))
		for name, child := range n.children {
			c.children[name] = cloneNode(child, &c, ttl)
		}
	}
	if !c.permanent() {
		ttl.nodes = append(ttl.nodes, &c)
		c.heapIndex = int32(len(ttl.nodes) - 1)
	}
	return &c
}
