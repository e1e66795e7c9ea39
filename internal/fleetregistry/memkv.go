package fleetregistry

import (
	"context"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corekit/corekit/internal/v2api"
	"github.com/corekit/corekit/internal/v2client"
)

// MemKV is an in-memory KV with etcd v2's conditions, TTLs (checked against
// an injected clock) and indexes. It backs the in-memory registry used by
// pure tests and simulated clusters.
type MemKV struct {
	now      func() time.Time
	requests atomic.Int64

	mu      sync.Mutex
	index   uint64
	files   map[string]*memEntry // full key → file
	changed chan struct{}        // closed and replaced on every change
	history []memChange
	// nextExpiry is the earliest expiration of any file (zero = none), so
	// expire does not scan the store on every request.
	nextExpiry time.Time
}

type memEntry struct {
	value    string
	modified uint64
	created  uint64
	expires  time.Time // zero = never
}

type memChange = Event

// NewMemKV returns an empty store; now is the clock (nil = time.Now).
func NewMemKV(now func() time.Time) *MemKV {
	if now == nil {
		now = time.Now
	}
	// The index starts at 1, as a bootstrapped etcd never answers 0, so that
	// "watch after the index I read" is never mistaken for "from now".
	return &MemKV{now: now, index: 1, files: map[string]*memEntry{}, changed: make(chan struct{})}
}

// Requests returns how many requests were made so far.
func (m *MemKV) Requests() int64 { return m.requests.Load() }

func clean(key string) string {
	key = "/" + strings.Trim(key, "/")
	for strings.Contains(key, "//") {
		key = strings.ReplaceAll(key, "//", "/")
	}
	return key
}

// expire removes files whose TTL passed; caller holds mu.
func (m *MemKV) expire() {
	now := m.now()
	if m.nextExpiry.IsZero() || now.Before(m.nextExpiry) {
		return
	}
	var gone []string
	m.nextExpiry = time.Time{}
	for k, e := range m.files {
		if e.expires.IsZero() {
			continue
		}
		if !now.Before(e.expires) {
			gone = append(gone, k)
		} else if m.nextExpiry.IsZero() || e.expires.Before(m.nextExpiry) {
			m.nextExpiry = e.expires
		}
	}
	sort.Strings(gone)
	for _, k := range gone {
		prev := m.files[k].value
		delete(m.files, k)
		m.record(Event{Key: k, Action: "expire", PrevValue: prev})
	}
}

// bump records a change of key at a new index; caller holds mu.
func (m *MemKV) bump(key string) uint64 { return m.record(Event{Key: key, Action: "delete"}) }

// record appends a change at a new index; caller holds mu.
func (m *MemKV) record(ev Event) uint64 {
	m.index++
	ev.Index = m.index
	m.history = append(m.history, ev)
	if len(m.history) > 1000 {
		m.history = m.history[len(m.history)-1000:]
	}
	close(m.changed)
	m.changed = make(chan struct{})
	return m.index
}

func (m *MemKV) isDir(key string) bool {
	p := key + "/"
	if key == "/" {
		p = "/"
	}
	for k := range m.files {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// Get implements KV.
func (m *MemKV) Get(ctx context.Context, key string, recursive bool) (*v2api.Node, uint64, error) {
	m.requests.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire()
	key = clean(key)
	if e, ok := m.files[key]; ok {
		return m.fileNode(key, e), m.index, nil
	}
	if !m.isDir(key) {
		return nil, 0, v2api.NewError(v2api.EcodeKeyNotFound, key, m.index)
	}
	return m.dirNode(key, recursive, true), m.index, nil
}

func (m *MemKV) fileNode(key string, e *memEntry) *v2api.Node {
	v := e.value
	n := &v2api.Node{Key: key, Value: &v, ModifiedIndex: e.modified, CreatedIndex: e.created}
	if !e.expires.IsZero() {
		exp := e.expires
		n.Expiration = &exp
		n.TTL = int64(e.expires.Sub(m.now()).Round(time.Second) / time.Second)
	}
	return n
}

func (m *MemKV) dirNode(key string, recursive, top bool) *v2api.Node {
	root := &v2api.Node{Key: key, Dir: true}
	p := key + "/"
	if key == "/" {
		p = "/"
	}
	var keys []string
	for k := range m.files {
		if strings.HasPrefix(k, p) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	dirs := map[string]*v2api.Node{key: root}
	// ensure returns the directory node for d, creating its ancestors.
	var ensure func(d string) *v2api.Node
	ensure = func(d string) *v2api.Node {
		if n, ok := dirs[d]; ok {
			return n
		}
		parentNode := ensure(parent(d))
		n := &v2api.Node{Key: d, Dir: true}
		dirs[d] = n
		if parentNode != nil {
			parentNode.Nodes = append(parentNode.Nodes, n)
		}
		return n
	}
	for _, k := range keys {
		rest := strings.TrimPrefix(k, p)
		if !recursive && strings.Contains(rest, "/") {
			// Only direct children: a deeper file makes its first component a directory.
			first, _, _ := strings.Cut(rest, "/")
			ensureShallow(root, dirs, p+first)
			continue
		}
		parentNode := ensure(parent(k))
		parentNode.Nodes = append(parentNode.Nodes, m.fileNode(k, m.files[k]))
	}
	return root
}

func ensureShallow(root *v2api.Node, dirs map[string]*v2api.Node, d string) {
	if _, ok := dirs[d]; ok {
		return
	}
	n := &v2api.Node{Key: d, Dir: true}
	dirs[d] = n
	root.Nodes = append(root.Nodes, n)
}

// Set implements KV.
func (m *MemKV) Set(ctx context.Context, key, value string, o SetOptions) (*v2api.Node, error) {
	m.requests.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire()
	key = clean(key)
	cur, exists := m.files[key]
	if !exists && m.isDir(key) {
		return nil, v2api.NewError(v2api.EcodeNotFile, key, m.index)
	}
	switch {
	case o.PrevExist == v2client.PrevNoExist && exists:
		return nil, v2api.NewError(v2api.EcodeNodeExist, key, m.index)
	case (o.PrevExist == v2client.PrevExists || o.PrevValue != "" || o.PrevIndex != 0) && !exists:
		return nil, v2api.NewError(v2api.EcodeKeyNotFound, key, m.index)
	case exists && o.PrevValue != "" && cur.value != o.PrevValue,
		exists && o.PrevIndex != 0 && cur.modified != o.PrevIndex:
		return nil, v2api.NewError(v2api.EcodeTestFailed, key, m.index)
	}
	// A file below an existing file is not allowed.
	for p := parent(key); p != "/"; p = parent(p) {
		if _, ok := m.files[p]; ok {
			return nil, v2api.NewError(v2api.EcodeNotDir, p, m.index)
		}
	}
	ev := Event{Key: key, Value: value, Action: "set"}
	if exists {
		ev.PrevValue = cur.value
	}
	idx := m.record(ev)
	e := &memEntry{value: value, modified: idx, created: idx}
	if exists && o.PrevExist != v2client.PrevNoExist {
		e.created = cur.created
	}
	if o.TTL > 0 {
		e.expires = m.now().Add(o.TTL)
		if m.nextExpiry.IsZero() || e.expires.Before(m.nextExpiry) {
			m.nextExpiry = e.expires
		}
	}
	m.files[key] = e
	return m.fileNode(key, e), nil
}

func parent(key string) string {
	i := strings.LastIndex(key, "/")
	if i <= 0 {
		return "/"
	}
	return key[:i]
}

// Delete implements KV.
func (m *MemKV) Delete(ctx context.Context, key string, o DeleteOptions) error {
	m.requests.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire()
	key = clean(key)
	cur, exists := m.files[key]
	if !exists {
		if o.Recursive && m.isDir(key) {
			p := key + "/"
			for k := range m.files {
				if strings.HasPrefix(k, p) {
					delete(m.files, k)
				}
			}
			m.bump(key)
			return nil
		}
		return v2api.NewError(v2api.EcodeKeyNotFound, key, m.index)
	}
	if (o.PrevValue != "" && cur.value != o.PrevValue) || (o.PrevIndex != 0 && cur.modified != o.PrevIndex) {
		return v2api.NewError(v2api.EcodeTestFailed, key, m.index)
	}
	delete(m.files, key)
	m.record(Event{Key: key, Action: "delete", PrevValue: cur.value})
	return nil
}

// Watch implements KV.
func (m *MemKV) Watch(ctx context.Context, prefix string, after uint64) (Event, error) {
	m.requests.Add(1)
	prefix = clean(prefix)
	first := true
	for {
		m.mu.Lock()
		m.expire()
		if after == 0 && first {
			after = m.index
		}
		first = false
		if len(m.history) > 0 && after+1 < m.history[0].Index {
			m.mu.Unlock()
			return Event{}, v2api.NewError(v2api.EcodeEventIndexCleared, "", m.index)
		}
		// history is ordered by index: skip what the watcher has seen.
		first := sort.Search(len(m.history), func(i int) bool { return m.history[i].Index > after })
		for _, c := range m.history[first:] {
			if c.Index > after && (c.Key == prefix || strings.HasPrefix(c.Key, prefix+"/") || prefix == "/") {
				m.mu.Unlock()
				return c, nil
			}
		}
		// Nothing up to now matched: like a watcher registered in etcd, wait
		// for what comes next (so a long wait never finds its history gone
		// and each change is scanned once).
		after = m.index
		ch := m.changed
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case <-ch:
		case <-time.After(time.Second): // TTL expiry is lazy: look again
		}
	}
}
