package store

import (
	"sort"
	"sync/atomic"

	"github.com/corekit/corekit/internal/v2api"
)

// watcherBuffer is the capacity of a watcher's channel (etcd's 100). A stream
// watcher whose consumer lets it fill up is dropped.
const watcherBuffer = 100

// Watcher delivers the events of one watch. EventChan is closed when the
// watcher is removed: by Remove, after the single event of a non-stream watch
// was delivered, because a stream consumer fell behind (its buffer of 100
// events filled up), or by Recovery. Events received are shared with other
// watchers and must not be modified.
type Watcher struct {
	EventChan  <-chan *v2api.Event
	StartIndex uint64 // store index when the watch was registered (X-Etcd-Index)

	ch         chan *v2api.Event
	store      *Store
	hub        *watcherHub // hub it is registered in; nil when never registered
	key        string
	recursive  bool
	stream     bool
	sinceIndex uint64
	removed    bool        // guarded by the store's lock
	closed     atomic.Bool // set with removed; lets Remove skip the lock
}

// Remove unregisters the watcher and closes EventChan; safe to call more
// than once and from any goroutine.
func (w *Watcher) Remove() {
	if w == nil || w.store == nil || w.closed.Load() {
		return // a fired long-poll watcher is already gone: no lock needed
	}
	w.store.mu.Lock()
	defer w.store.mu.Unlock()
	w.close()
}

// close removes w from its hub and closes its channel; the store's write lock
// is held.
func (w *Watcher) close() {
	if w.removed {
		return
	}
	if w.hub != nil {
		w.hub.unregister(w)
	}
	w.detach()
}

// detach marks w removed and closes its channel, leaving its hub's lists to
// the caller; the store's write lock is held.
func (w *Watcher) detach() {
	w.removed = true
	w.closed.Store(true)
	close(w.ch)
}

// watcherHub holds the live watchers by watched key.
type watcherHub struct {
	watchers map[string][]*Watcher
	count    int
}

func newWatcherHub() *watcherHub { return &watcherHub{watchers: map[string][]*Watcher{}} }

func (h *watcherHub) register(w *Watcher) {
	w.hub = h
	h.watchers[w.key] = append(h.watchers[w.key], w)
	h.count++
}

func (h *watcherHub) unregister(w *Watcher) {
	l := h.watchers[w.key]
	for i, x := range l {
		if x == w {
			l = append(l[:i:i], l[i+1:]...)
			h.count--
			break
		}
	}
	if len(l) == 0 {
		delete(h.watchers, w.key)
	} else {
		h.watchers[w.key] = l
	}
}

// closeAll removes every watcher (Recovery).
func (h *watcherHub) closeAll() {
	for _, k := range sortedKeys(h.watchers) {
		for _, w := range append([]*Watcher(nil), h.watchers[k]...) {
			w.close()
		}
	}
}

func sortedKeys(m map[string][]*Watcher) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// notify offers a live event (rendered, shared by all watchers) to the
// watchers. removed lists the paths of the
// nodes strictly below the event's key that the operation removed (dir
// delete or expiry): watchers registered exactly there get the dir's event
// whatever their recursive flag. Then the watchers on every ancestor of the
// key and on the key itself are offered the event by etcd's rules. Each
// watcher sees the event at most once (etcd sent it twice to a stream watcher
// on a deleted key). Never blocks.
func (h *watcherHub) notify(e *v2api.Event, removed []string) {
	if h.count == 0 {
		return
	}
	idx := e.Node.ModifiedIndex
	for _, p := range removed {
		h.offer(p, e, idx, func(*Watcher) bool { return true })
	}
	key := e.Node.Key
	h.offer("/", e, idx, func(w *Watcher) bool { return w.recursive && !hiddenBelow("/", key) })
	for i := 1; i < len(key); i++ {
		if key[i] == '/' {
			p := key[:i]
			h.offer(p, e, idx, func(w *Watcher) bool { return w.recursive && !hiddenBelow(p, key) })
		}
	}
	if key != "/" {
		h.offer(key, e, idx, func(*Watcher) bool { return true })
	}
}

func (h *watcherHub) offer(p string, e *v2api.Event, idx uint64, wants func(*Watcher) bool) {
	l, ok := h.watchers[p]
	if !ok {
		return
	}
	// One pass that rebuilds the list: removing fired watchers one by one
	// would copy the list once per watcher (quadratic for 1,000 long polls
	// on one key).
	keep := make([]*Watcher, 0, len(l))
	for _, w := range l {
		if idx < w.sinceIndex || !wants(w) {
			keep = append(keep, w)
			continue
		}
		select {
		case w.ch <- e:
			if w.stream {
				keep = append(keep, w)
				continue
			}
		default: // consumer fell behind: drop it, never block apply
		}
		h.count--
		w.detach()
	}
	if len(keep) == 0 {
		delete(h.watchers, p)
	} else {
		h.watchers[p] = keep
	}
}

// removedPaths lists the watched paths strictly below top that name nodes of
// top's subtree, in byte order; called before the subtree is removed. It
// costs O(watched paths), not O(subtree), so big deletes stay cheap.
func (h *watcherHub) removedPaths(top *node) []string {
	if h.count == 0 || !top.dir {
		return nil
	}
	var out []string
	for _, k := range sortedKeys(h.watchers) {
		if !isAncestor(top.path, k) {
			continue
		}
		if top.lookup(k[len(top.path):]) != nil {
			out = append(out, k)
		}
	}
	return out
}
