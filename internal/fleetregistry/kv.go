package fleetregistry

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/corekit/corekit/internal/v2api"
	"github.com/corekit/corekit/internal/v2client"
)

// KV is the slice of the etcd v2 key space the registry needs. Failures of
// the store come back as *v2api.Error (100 key not found, 101 compare
// failed, 105 node exists, 401 event index cleared), so both
// implementations behave identically for the registry.
type KV interface {
	// Get returns the node at key (with its subtree if recursive, children
	// sorted by key) and the store index of the answer.
	Get(ctx context.Context, key string, recursive bool) (*v2api.Node, uint64, error)
	// Set writes a file according to opts and returns the new node.
	Set(ctx context.Context, key, value string, opts SetOptions) (*v2api.Node, error)
	// Delete removes a key (or a directory, with Recursive).
	Delete(ctx context.Context, key string, opts DeleteOptions) error
	// Watch blocks until a change below prefix with an index greater than
	// after and returns it (etcd's waitIndex = after+1).
	Watch(ctx context.Context, prefix string, after uint64) (Event, error)
}

// Event is one change seen by a watch.
type Event struct {
	Index     uint64 // modifiedIndex of the change
	Action    string // set, create, update, compareAndSwap, delete, compareAndDelete, expire
	Key       string
	Value     string // new value ("" for deletions)
	PrevValue string // value before the change ("" when none or a directory)
}

// SetOptions are the conditions of a KV Set.
type SetOptions struct {
	PrevExist v2client.PrevExist
	PrevValue string
	PrevIndex uint64
	TTL       time.Duration // 0 = permanent
}

// DeleteOptions are the conditions of a KV Delete.
type DeleteOptions struct {
	PrevValue string
	PrevIndex uint64
	Recursive bool
}

// EtcdKV adapts a v2client.Client to KV and counts its requests.
type EtcdKV struct {
	c        *v2client.Client
	requests atomic.Int64
}

// NewEtcdKV returns a KV over c.
func NewEtcdKV(c *v2client.Client) *EtcdKV { return &EtcdKV{c: c} }

// Requests returns how many store requests were made so far.
func (e *EtcdKV) Requests() int64 { return e.requests.Load() }

// Get implements KV.
func (e *EtcdKV) Get(ctx context.Context, key string, recursive bool) (*v2api.Node, uint64, error) {
	e.requests.Add(1)
	r, err := e.c.Get(ctx, key, &v2client.GetOptions{Recursive: recursive, Sort: true})
	if err != nil {
		return nil, 0, err
	}
	return r.Node, r.Index, nil
}

// Set implements KV.
func (e *EtcdKV) Set(ctx context.Context, key, value string, o SetOptions) (*v2api.Node, error) {
	e.requests.Add(1)
	r, err := e.c.Set(ctx, key, value, &v2client.SetOptions{PrevExist: o.PrevExist, PrevValue: o.PrevValue, PrevIndex: o.PrevIndex, TTL: o.TTL})
	if err != nil {
		return nil, err
	}
	return r.Node, nil
}

// Delete implements KV.
func (e *EtcdKV) Delete(ctx context.Context, key string, o DeleteOptions) error {
	e.requests.Add(1)
	_, err := e.c.Delete(ctx, key, &v2client.DeleteOptions{PrevValue: o.PrevValue, PrevIndex: o.PrevIndex, Recursive: o.Recursive})
	return err
}

// Watch implements KV.
func (e *EtcdKV) Watch(ctx context.Context, prefix string, after uint64) (Event, error) {
	e.requests.Add(1)
	r, err := e.c.Watch(ctx, prefix, after, true)
	if err != nil {
		return Event{}, err
	}
	ev := Event{Index: after + 1, Action: r.Action}
	if r.Node != nil {
		ev.Key, ev.Value = r.Node.Key, r.Node.StringValue()
		if r.Node.ModifiedIndex > after {
			ev.Index = r.Node.ModifiedIndex
		}
	}
	if r.PrevNode != nil {
		ev.PrevValue = r.PrevNode.StringValue()
	}
	return ev, nil
}

// errCode returns the v2 error code of err, or 0.
func errCode(err error) int {
	var ve *v2api.Error
	if errors.As(err, &ve) {
		return ve.ErrorCode
	}
	return 0
}

// IsNotFound reports whether err is the store's 100 "Key not found".
func IsNotFound(err error) bool { return errCode(err) == v2api.EcodeKeyNotFound }
