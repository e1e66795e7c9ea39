package store

// CONTRACT STUB written by the lead so that other packages compile against the
// store's API while it is being implemented. The store helper replaces the
// bodies (and may split this file), keeping these exported names and
// signatures; changing them needs a word with the lead.

import (
	"time"

	"github.com/corekit/corekit/internal/v2api"
)

// Expiry is how a write sets a node's time to live. ExpireTime is absolute and
// was computed by the member that received the request before the command
// entered raft; the zero time means permanent. Refresh keeps the node's value
// and changes only its expiry (etcd's refresh=true).
type Expiry struct {
	ExpireTime time.Time
	Refresh    bool
}

// Store is the deterministic v2 key space. Writes depend only on their
// arguments and the current state; the clock passed to New is read only to
// report remaining TTLs in returned nodes. Safe for concurrent use.
type Store struct{}

// New returns an empty store whose reads report TTLs relative to now().
func New(now func() time.Time) *Store { panic("store: not implemented") }

// Index is the current store index (X-Etcd-Index).
func (s *Store) Index() uint64 { panic("store: not implemented") }

// Get reads key. Errors are *v2api.Error.
func (s *Store) Get(key string, recursive, sorted bool) (*v2api.Event, error) {
	panic("store: not implemented")
}

// Set creates or replaces key (action "set").
func (s *Store) Set(key string, dir bool, value string, exp Expiry) (*v2api.Event, error) {
	panic("store: not implemented")
}

// Create creates key, failing with 105 if it exists (action "create"). With
// unique, key is a directory and the new node is named by the new index,
// zero-padded to 20 digits (POST).
func (s *Store) Create(key string, dir bool, value string, unique bool, exp Expiry) (*v2api.Event, error) {
	panic("store: not implemented")
}

// Update changes an existing node's value and/or TTL (action "update").
func (s *Store) Update(key string, value string, exp Expiry) (*v2api.Event, error) {
	panic("store: not implemented")
}

// CompareAndSwap sets key if prevValue (when non-empty) and prevIndex (when
// non-zero) match (action "compareAndSwap").
func (s *Store) CompareAndSwap(key, prevValue string, prevIndex uint64, value string, exp Expiry) (*v2api.Event, error) {
	panic("store: not implemented")
}

// Delete removes key (action "delete"); recursive implies dir.
func (s *Store) Delete(key string, dir, recursive bool) (*v2api.Event, error) {
	panic("store: not implemented")
}

// CompareAndDelete removes a file if the comparison holds (action
// "compareAndDelete").
func (s *Store) CompareAndDelete(key, prevValue string, prevIndex uint64) (*v2api.Event, error) {
	panic("store: not implemented")
}

// DeleteExpiredKeys removes every node whose expiry is at or before cutoff,
// in expiry order, one index and one "expire" event per removed node.
// cutoff is the leader's clock reading carried in the replicated command.
func (s *Store) DeleteExpiredKeys(cutoff time.Time) { panic("store: not implemented") }

// NextExpiry reports the earliest expiry time of any node, if any node has a
// TTL, so the leader proposes expire commands only when something is due.
func (s *Store) NextExpiry() (time.Time, bool) { panic("store: not implemented") }

// Watcher delivers the events of one watch. EventChan is closed when the
// watcher is removed (by Remove, or because a stream consumer fell behind).
type Watcher struct {
	EventChan  <-chan *v2api.Event
	StartIndex uint64 // store index when the watch was registered (X-Etcd-Index)
}

// Remove unregisters the watcher; safe to call more than once.
func (w *Watcher) Remove() { panic("store: not implemented") }

// Watch registers a watch on key. sinceIndex 0 means "from the next index".
// If sinceIndex is already in the history the matching event is delivered at
// once. Errors: 401 when sinceIndex fell out of the 1000-event history.
func (s *Store) Watch(key string, recursive, stream bool, sinceIndex uint64) (*Watcher, error) {
	panic("store: not implemented")
}

// Save encodes the whole state (nodes, index, history) deterministically.
func (s *Store) Save() ([]byte, error) { panic("store: not implemented") }

// Recovery replaces the state with one produced by Save. Live watchers are
// closed.
func (s *Store) Recovery(state []byte) error { panic("store: not implemented") }

// JSONStats returns the /v2/stats/store body (no trailing newline).
func (s *Store) JSONStats() []byte { panic("store: not implemented") }
