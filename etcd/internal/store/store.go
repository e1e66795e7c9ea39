package store

import (
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/corekit/corekit/internal/v2api"
)

// Expiry is how a write sets a node's time to live. ExpireTime is absolute and
// was computed by the member that received the request before the command
// entered raft; the zero time (or any time before 2000-01-01) means
// permanent. Refresh keeps the node's value and changes only its expiry
// (etcd's refresh=true); Create ignores it.
type Expiry struct {
	ExpireTime time.Time
	Refresh    bool
}

// Store is the deterministic v2 key space. Writes depend only on their
// arguments and the current state; the clock passed to New is read only to
// report remaining TTLs in returned nodes. Safe for concurrent use.
//
// Every successful mutation increments the index by one, stamps it on the
// node it changed and records one event in the history; failed operations
// change nothing. Returned events are fresh copies owned by the caller.
type Store struct {
	mu      sync.RWMutex
	now     func() time.Time
	root    *node
	index   uint64
	ttl     *ttlHeap
	history *eventHistory
	hub     *watcherHub
	stats   counters
}

// New returns an empty store whose reads report TTLs relative to now()
// (time.Now when nil).
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{
		now:     now,
		root:    newDir("/", 0, nil, time.Time{}),
		ttl:     &ttlHeap{},
		history: newEventHistory(),
		hub:     newWatcherHub(),
	}
}

// Index is the current store index (X-Etcd-Index).
func (s *Store) Index() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.index
}

// clean turns a request path into a store key: absolute, no trailing slash,
// no empty, "." or ".." components; "" and "/" are the root.
func clean(key string) string {
	if key != "" && key[0] == '/' {
		return path.Clean(key) // no copy when already clean
	}
	return path.Clean("/" + key)
}

func (s *Store) errorf(code int, cause string) error {
	return v2api.NewError(code, cause, s.index)
}

// lookup walks to key. Errors: 100 with the first missing path as cause, 104
// with the key of a file met on the way.
func (s *Store) lookup(key string) (*node, error) {
	cur := s.root
	if key == "/" {
		return cur, nil
	}
	for rest := key[1:]; ; {
		name := rest
		i := strings.IndexByte(rest, '/')
		if i >= 0 {
			name, rest = rest[:i], rest[i+1:]
		}
		if !cur.dir {
			return nil, s.errorf(v2api.EcodeNotDir, cur.path)
		}
		next, ok := cur.children[name]
		if !ok {
			return nil, s.errorf(v2api.EcodeKeyNotFound, path.Join(cur.path, name))
		}
		cur = next
		if i < 0 {
			return cur, nil
		}
	}
}

// Get reads key: a file with its value, or a directory with its visible
// children (all levels with recursive). Listings are always in byte order of
// the keys, whatever sorted says. Errors (*v2api.Error): 100, 104.
func (s *Store) Get(key string, recursive, sorted bool) (*v2api.Event, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	key = clean(key)
	n, err := s.lookup(key)
	count(err, &s.stats.getSuccess, &s.stats.getFail)
	if err != nil {
		return nil, err
	}
	return &v2api.Event{Action: v2api.ActionGet, Node: n.repr(true, recursive, s.now())}, nil
}

// Set creates or replaces key (action "set"). Replacing resets createdIndex;
// without an expiry the new node is permanent. prevNode is the replaced file.
// With exp.Refresh the key must exist and keeps its value; the event is
// recorded for history but not sent to watchers. Errors: 102 (key is a
// directory), 104, 107, and 100 for a refresh of a missing key.
func (s *Store) Set(key string, dir bool, value string, exp Expiry) (*v2api.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.set(clean(key), dir, value, exp)
	count(err, &s.stats.setSuccess, &s.stats.setFail)
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (s *Store) set(key string, dir bool, value string, exp Expiry) (*v2api.Event, error) {
	prev, err := s.lookup(key)
	if err != nil && !isCode(err, v2api.EcodeKeyNotFound) {
		return nil, err
	}
	if exp.Refresh {
		if err != nil {
			return nil, err
		}
		value = prev.value
	}
	return s.create(key, dir, value, true, exp.ExpireTime, v2api.ActionSet, exp.Refresh)
}

func isCode(err error, code int) bool {
	e, ok := err.(*v2api.Error)
	return ok && e.ErrorCode == code
}

// Create creates key, failing with 105 if it exists (action "create"). With
// unique, key is a directory (created when missing) and the new node is named
// by the new index, zero-padded to 20 digits (POST). Errors: 104, 105, 107.
func (s *Store) Create(key string, dir bool, value string, unique bool, exp Expiry) (*v2api.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key = clean(key)
	if unique {
		key = clean(key + "/" + fmt.Sprintf("%020d", s.index+1))
	}
	e, err := s.create(key, dir, value, false, exp.ExpireTime, v2api.ActionCreate, false)
	count(err, &s.stats.createSuccess, &s.stats.createFail)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// create is etcd's internalCreate: walk (creating missing parent dirs stamped
// with the new index, without events), then add the leaf.
func (s *Store) create(key string, dir bool, value string, replace bool, expire time.Time, action string, refresh bool) (*v2api.Event, error) {
	if key == "/" {
		return nil, s.errorf(v2api.EcodeRootROnly, "/")
	}
	expire = normExpire(expire)
	next := s.index + 1
	parentKey, name := path.Split(key)
	parent, err := s.walkCreate(path.Clean(parentKey), next)
	if err != nil {
		s.stats.setFail.Add(1) // etcd counts a failed walk as a failed set too
		return nil, err
	}
	e := &v2api.Event{Action: action}
	if old, ok := parent.children[name]; ok {
		if !replace {
			return nil, s.errorf(v2api.EcodeNodeExist, key)
		}
		if old.dir {
			return nil, s.errorf(v2api.EcodeNotFile, key)
		}
		e.PrevNode = old.bare()
		s.ttl.remove(old)
		delete(parent.children, name)
	}
	var n *node
	if dir {
		n = newDir(key, next, parent, expire)
	} else {
		n = newFile(key, value, next, parent, expire)
	}
	parent.children[name] = n
	s.ttl.set(n)
	s.index = next
	e.Node = n.bare()
	return s.record(e, refresh, nil), nil
}

// walkCreate walks to the directory dirKey, creating missing directories
// with index idx. A file on the way is 104 with its key as cause.
func (s *Store) walkCreate(dirKey string, idx uint64) (*node, error) {
	cur := s.root
	if dirKey == "/" {
		return cur, nil
	}
	// Check the whole path before creating anything, so that a failed write
	// leaves no directories behind.
	probe := cur
	for _, name := range strings.Split(dirKey[1:], "/") {
		next, ok := probe.children[name]
		if !ok {
			break
		}
		if !next.dir {
			return nil, s.errorf(v2api.EcodeNotDir, next.path)
		}
		probe = next
	}
	for _, name := range strings.Split(dirKey[1:], "/") {
		next, ok := cur.children[name]
		if !ok {
			next = newDir(path.Join(cur.path, name), idx, cur, time.Time{})
			cur.children[name] = next
		}
		cur = next
	}
	return cur, nil
}

// Update changes an existing node's value and/or TTL (action "update"),
// keeping createdIndex; without an expiry the node becomes permanent. A
// directory accepts only an empty value (a TTL change); its stored
// modifiedIndex stays unchanged although the event carries the new index, as
// in etcd. With exp.Refresh the value is kept and watchers are not told.
// Errors: 100, 102 (dir with a value), 104, 107.
func (s *Store) Update(key string, value string, exp Expiry) (*v2api.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.update(clean(key), value, exp)
	count(err, &s.stats.updateSuccess, &s.stats.updateFail)
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (s *Store) update(key, value string, exp Expiry) (*v2api.Event, error) {
	if key == "/" {
		return nil, s.errorf(v2api.EcodeRootROnly, "/")
	}
	n, err := s.lookup(key)
	if err != nil {
		return nil, err
	}
	if n.dir && value != "" {
		return nil, s.errorf(v2api.EcodeNotFile, key)
	}
	if exp.Refresh {
		value = n.value
	}
	next := s.index + 1
	e := &v2api.Event{Action: v2api.ActionUpdate, PrevNode: n.bare()}
	if !n.dir {
		n.value = value
		n.modifiedIndex = next
	}
	n.setExpiry(normExpire(exp.ExpireTime))
	s.ttl.set(n)
	s.index = next
	e.Node = n.bare()
	e.Node.ModifiedIndex = next
	return s.record(e, exp.Refresh, nil), nil
}

// CompareAndSwap sets key if prevValue (when non-empty) and prevIndex (when
// non-zero) match (action "compareAndSwap"), keeping createdIndex; without
// an expiry the node becomes permanent. Errors: 100, 101 (cause
// "[prevValue != value]", "[prevIndex != modifiedIndex]" or both), 102, 104,
// 107.
func (s *Store) CompareAndSwap(key, prevValue string, prevIndex uint64, value string, exp Expiry) (*v2api.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.compareAndSwap(clean(key), prevValue, prevIndex, value, exp)
	count(err, &s.stats.compareAndSwapSuccess, &s.stats.compareAndSwapFail)
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (s *Store) compareAndSwap(key, prevValue string, prevIndex uint64, value string, exp Expiry) (*v2api.Event, error) {
	if key == "/" {
		return nil, s.errorf(v2api.EcodeRootROnly, "/")
	}
	n, err := s.lookup(key)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return nil, s.errorf(v2api.EcodeNotFile, key)
	}
	if cause, ok := compare(n, prevValue, prevIndex); !ok {
		return nil, s.errorf(v2api.EcodeTestFailed, cause)
	}
	if exp.Refresh {
		value = n.value
	}
	next := s.index + 1
	e := &v2api.Event{Action: v2api.ActionCompareAndSwap, PrevNode: n.bare()}
	n.value = value
	n.modifiedIndex = next
	n.setExpiry(normExpire(exp.ExpireTime))
	s.ttl.set(n)
	s.index = next
	e.Node = n.bare()
	return s.record(e, exp.Refresh, nil), nil
}

// compare is etcd's node.Compare with its failure causes.
func compare(n *node, prevValue string, prevIndex uint64) (string, bool) {
	valueOK := prevValue == "" || n.value == prevValue
	indexOK := prevIndex == 0 || n.modifiedIndex == prevIndex
	switch {
	case valueOK && indexOK:
		return "", true
	case indexOK:
		return fmt.Sprintf("[%s != %s]", prevValue, n.value), false
	case valueOK:
		return fmt.Sprintf("[%d != %d]", prevIndex, n.modifiedIndex), false
	default:
		return fmt.Sprintf("[%s != %s] [%d != %d]", prevValue, n.value, prevIndex, n.modifiedIndex), false
	}
}

// Delete removes key (action "delete"); recursive implies dir. The event's
// node has the new modifiedIndex, the old createdIndex and no value; watchers
// of every removed descendant get this same event. Errors: 100, 102 (dir
// without dir/recursive), 104, 107, 108 (non-empty dir without recursive).
func (s *Store) Delete(key string, dir, recursive bool) (*v2api.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.delete(clean(key), dir, recursive)
	count(err, &s.stats.deleteSuccess, &s.stats.deleteFail)
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (s *Store) delete(key string, dir, recursive bool) (*v2api.Event, error) {
	if key == "/" {
		return nil, s.errorf(v2api.EcodeRootROnly, "/")
	}
	if recursive {
		dir = true
	}
	n, err := s.lookup(key)
	if err != nil {
		return nil, err
	}
	if n.dir {
		if !dir {
			return nil, s.errorf(v2api.EcodeNotFile, key)
		}
		if len(n.children) > 0 && !recursive {
			return nil, s.errorf(v2api.EcodeDirNotEmpty, key)
		}
	}
	return s.remove(n, v2api.ActionDelete), nil
}

// remove takes n and its subtree out of the tree and the TTL heap and records
// the event of action for it with the next index.
func (s *Store) remove(n *node, action string) *v2api.Event {
	next := s.index + 1
	e := &v2api.Event{
		Action:   action,
		Node:     &v2api.Node{Key: n.path, Dir: n.dir, ModifiedIndex: next, CreatedIndex: n.createdIndex},
		PrevNode: n.bare(),
	}
	removed := s.hub.removedPaths(n)
	n.walkSubtree(func(c *node) { s.ttl.remove(c) })
	s.ttl.remove(n)
	delete(n.parent.children, n.name())
	s.index = next
	return s.record(e, false, removed)
}

// CompareAndDelete removes a file if the comparison holds (action
// "compareAndDelete"). Errors: 100, 101, 102 (directory; the root gives 102
// without cause, as etcd's trimmed "/1"), 104.
func (s *Store) CompareAndDelete(key, prevValue string, prevIndex uint64) (*v2api.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.compareAndDelete(clean(key), prevValue, prevIndex)
	count(err, &s.stats.compareAndDeleteSuccess, &s.stats.compareAndDeleteFail)
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (s *Store) compareAndDelete(key, prevValue string, prevIndex uint64) (*v2api.Event, error) {
	n, err := s.lookup(key)
	if err != nil {
		return nil, err
	}
	if n.dir {
		return nil, s.errorf(v2api.EcodeNotFile, externKey(key))
	}
	if cause, ok := compare(n, prevValue, prevIndex); !ok {
		return nil, s.errorf(v2api.EcodeTestFailed, cause)
	}
	return s.remove(n, v2api.ActionCompareAndDelete), nil
}

// DeleteExpiredKeys removes every node whose expiry is at or before cutoff,
// in expiry order (ties by key), one index and one "expire" event per removed
// node; nodes inside an expiring directory go with it without events of
// their own. cutoff is the leader's clock reading carried in the replicated
// command.
func (s *Store) DeleteExpiredKeys(cutoff time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		n := s.ttl.top()
		if n == nil || n.expiry().After(cutoff) {
			return
		}
		s.remove(n, v2api.ActionExpire)
		s.stats.expireCount.Add(1)
	}
}

// NextExpiry reports the earliest expiry time of any node, if any node has a
// TTL, so the leader proposes expire commands only when something is due.
func (s *Store) NextExpiry() (time.Time, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if n := s.ttl.top(); n != nil {
		return n.expiry(), true
	}
	return time.Time{}, false
}

// record appends the bare event e (index already advanced) to the history,
// offers it to the live watchers unless it is a refresh, and returns the
// caller's rendered copy.
func (s *Store) record(e *v2api.Event, refresh bool, removed []string) *v2api.Event {
	now := s.now()
	shown := render(e, now)
	s.history.add(histEvent{ev: e, shown: shown, refresh: refresh})
	if !refresh {
		s.hub.notify(shown, removed)
	}
	return render(shown, now)
}

// Watch registers a watch on key. sinceIndex 0 means "from the next index".
// If events with index ≥ sinceIndex matching the watch are already in the
// history, a non-stream watch gets the first of them at once (and its
// channel is then closed); a stream watch gets all of them (its buffer is
// 100 plus their number) and stays registered for later events. A live
// non-stream watcher fires once and is removed; a live stream watcher keeps
// delivering until removed or dropped for falling 100 events behind.
// Errors: 401 when sinceIndex fell out of the 1000-event history (cause "the
// requested history has been cleared [oldest/sinceIndex]").
func (s *Store) Watch(key string, recursive, stream bool, sinceIndex uint64) (*Watcher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key = clean(key)
	if sinceIndex == 0 {
		sinceIndex = s.index + 1
	}
	limit := 1
	if stream {
		limit = 0
	}
	past, herr := s.history.scan(key, recursive, sinceIndex, limit, s.now())
	if herr != nil {
		herr.Index = s.index
		return nil, herr
	}
	size := watcherBuffer + len(past)
	if !stream {
		size = 1 // a long poll takes one event, then the watcher is gone
	}
	ch := make(chan *v2api.Event, size)
	w := &Watcher{EventChan: ch, StartIndex: s.index, ch: ch, store: s,
		key: key, recursive: recursive, stream: stream, sinceIndex: sinceIndex}
	for _, e := range past {
		ch <- e
	}
	if len(past) > 0 && !stream {
		w.detach()
		return w, nil
	}
	s.hub.register(w)
	return w, nil
}
