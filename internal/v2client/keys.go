package v2client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/corekit/corekit/internal/v2api"
)

// Response is a successful /v2/keys answer: the event and the v2 headers.
type Response struct {
	Action   string
	Node     *v2api.Node
	PrevNode *v2api.Node

	// Index is X-Etcd-Index: the store index after the operation (for a
	// watch, the index when the watch was registered).
	Index uint64
	// RaftIndex and RaftTerm are X-Raft-Index and X-Raft-Term.
	RaftIndex uint64
	RaftTerm  uint64
	// ClusterID is X-Etcd-Cluster-Id (lowercase hex).
	ClusterID string
}

// Event returns the response's event body.
func (r *Response) Event() v2api.Event {
	return v2api.Event{Action: r.Action, Node: r.Node, PrevNode: r.PrevNode}
}

// PrevExist is the tri-state prevExist condition of Set.
type PrevExist string

// Values of PrevExist.
const (
	PrevIgnore  PrevExist = ""      // no condition
	PrevExists  PrevExist = "true"  // the key must exist (update)
	PrevNoExist PrevExist = "false" // the key must not exist (create)
)

// GetOptions modify Get. The zero value reads one key from the local member.
type GetOptions struct {
	Recursive bool // include the whole subtree of a directory
	Sort      bool // sort directory children by key
	Quorum    bool // linearizable read through raft
}

// SetOptions modify Set. The zero value sets a file unconditionally with no TTL.
type SetOptions struct {
	PrevValue string    // compare: current value must equal it ("" = no check)
	PrevIndex uint64    // compare: current modifiedIndex must equal it (0 = no check)
	PrevExist PrevExist // existence condition
	// TTL in whole seconds; zero means none (a set without TTL makes the
	// key permanent). Use TTLZero to send ttl=0 (expire immediately).
	TTL time.Duration
	// TTLZero sends ttl=0 explicitly; ignored when TTL > 0.
	TTLZero bool
	Dir     bool // create or update a directory (value ignored)
	Refresh bool // only refresh the TTL; value must be empty
	// NoValueOnSuccess asks etcd 3.4 to answer only {"action":…}.
	NoValueOnSuccess bool
}

// DeleteOptions modify Delete. The zero value deletes a file unconditionally.
type DeleteOptions struct {
	PrevValue string // compare-and-delete on value
	PrevIndex uint64 // compare-and-delete on modifiedIndex
	Dir       bool   // allow deleting an empty directory
	Recursive bool   // delete a directory and everything below it
}

// CreateInOrderOptions modify CreateInOrder.
type CreateInOrderOptions struct {
	TTL time.Duration
}

func keyPath(key string) string {
	if !strings.HasPrefix(key, "/") {
		key = "/" + key
	}
	return "/v2/keys" + key
}

func (c *Client) keys(ctx context.Context, req request) (*Response, error) {
	r, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	return decodeKeysResponse(r)
}

func decodeKeysResponse(r *rawResponse) (*Response, error) {
	if r.status != http.StatusOK && r.status != http.StatusCreated {
		return nil, decodeError(r)
	}
	var ev v2api.Event
	if err := jsonUnmarshal(r.body, &ev); err != nil {
		return nil, fmt.Errorf("client: response is invalid json from %s: %w", r.endpoint, err)
	}
	return &Response{
		Action:    ev.Action,
		Node:      ev.Node,
		PrevNode:  ev.PrevNode,
		Index:     parseUint(r.header.Get(v2api.HeaderEtcdIndex)),
		RaftIndex: parseUint(r.header.Get(v2api.HeaderRaftIndex)),
		RaftTerm:  parseUint(r.header.Get(v2api.HeaderRaftTerm)),
		ClusterID: r.header.Get(v2api.HeaderClusterID),
	}, nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// Get reads key (a file or a directory listing). opts may be nil.
func (c *Client) Get(ctx context.Context, key string, opts *GetOptions) (*Response, error) {
	if opts == nil {
		opts = &GetOptions{}
	}
	q := url.Values{}
	q.Set("recursive", strconv.FormatBool(opts.Recursive))
	q.Set("sorted", strconv.FormatBool(opts.Sort))
	q.Set("quorum", strconv.FormatBool(opts.Quorum))
	return c.keys(ctx, request{method: http.MethodGet, path: keyPath(key), query: q})
}

// Set writes key. With opts nil it is an unconditional set of a file.
func (c *Client) Set(ctx context.Context, key, value string, opts *SetOptions) (*Response, error) {
	if opts == nil {
		opts = &SetOptions{}
	}
	q, form := url.Values{}, url.Values{}
	if opts.Dir {
		q.Set("dir", "true")
	} else {
		if opts.PrevValue != "" {
			q.Set("prevValue", opts.PrevValue)
		}
		form.Set("value", value)
	}
	if opts.PrevIndex != 0 {
		q.Set("prevIndex", strconv.FormatUint(opts.PrevIndex, 10))
	}
	if opts.PrevExist != PrevIgnore {
		q.Set("prevExist", string(opts.PrevExist))
	}
	if opts.TTL > 0 {
		form.Set("ttl", strconv.FormatUint(uint64(opts.TTL/time.Second), 10))
	} else if opts.TTLZero {
		form.Set("ttl", "0")
	}
	if opts.Refresh {
		form.Set("refresh", "true")
	}
	if opts.NoValueOnSuccess {
		q.Set("noValueOnSuccess", "true")
	}
	return c.keys(ctx, request{
		method: http.MethodPut, path: keyPath(key), query: q,
		body: []byte(form.Encode()), contentType: "application/x-www-form-urlencoded",
	})
}

// Create sets key only if it does not exist (105 Key already exists otherwise).
func (c *Client) Create(ctx context.Context, key, value string, ttl time.Duration) (*Response, error) {
	return c.Set(ctx, key, value, &SetOptions{PrevExist: PrevNoExist, TTL: ttl})
}

// Update sets key only if it exists (100 Key not found otherwise). Without a
// TTL the key becomes permanent, as in etcd.
func (c *Client) Update(ctx context.Context, key, value string, ttl time.Duration) (*Response, error) {
	return c.Set(ctx, key, value, &SetOptions{PrevExist: PrevExists, TTL: ttl})
}

// CompareAndSwap sets key only if its current value equals prevValue (when
// not "") and its modifiedIndex equals prevIndex (when not 0).
func (c *Client) CompareAndSwap(ctx context.Context, key, value, prevValue string, prevIndex uint64, ttl time.Duration) (*Response, error) {
	if prevValue == "" && prevIndex == 0 {
		return nil, errors.New("client: CompareAndSwap needs a previous value or index")
	}
	return c.Set(ctx, key, value, &SetOptions{PrevValue: prevValue, PrevIndex: prevIndex, TTL: ttl})
}

// CreateInOrder POSTs value into directory dir, creating a key named after
// the new index (e.g. /queue/00000000000000000032).
func (c *Client) CreateInOrder(ctx context.Context, dir, value string, opts *CreateInOrderOptions) (*Response, error) {
	form := url.Values{}
	form.Set("value", value)
	if opts != nil && opts.TTL > 0 {
		form.Set("ttl", strconv.FormatUint(uint64(opts.TTL/time.Second), 10))
	}
	return c.keys(ctx, request{
		method: http.MethodPost, path: keyPath(dir), query: url.Values{},
		body: []byte(form.Encode()), contentType: "application/x-www-form-urlencoded",
	})
}

// Delete removes key. opts may be nil.
func (c *Client) Delete(ctx context.Context, key string, opts *DeleteOptions) (*Response, error) {
	if opts == nil {
		opts = &DeleteOptions{}
	}
	q := url.Values{}
	if opts.PrevValue != "" {
		q.Set("prevValue", opts.PrevValue)
	}
	if opts.PrevIndex != 0 {
		q.Set("prevIndex", strconv.FormatUint(opts.PrevIndex, 10))
	}
	if opts.Dir {
		q.Set("dir", "true")
	}
	if opts.Recursive {
		q.Set("recursive", "true")
	}
	return c.keys(ctx, request{method: http.MethodDelete, path: keyPath(key), query: q})
}

// CompareAndDelete deletes key only if its value equals prevValue (when not
// "") and its modifiedIndex equals prevIndex (when not 0).
func (c *Client) CompareAndDelete(ctx context.Context, key, prevValue string, prevIndex uint64) (*Response, error) {
	if prevValue == "" && prevIndex == 0 {
		return nil, errors.New("client: CompareAndDelete needs a previous value or index")
	}
	return c.Delete(ctx, key, &DeleteOptions{PrevValue: prevValue, PrevIndex: prevIndex})
}

// Watch blocks until the first change of key (or, with recursive, of anything
// below it) with a modifiedIndex greater than afterIndex and returns it. With
// afterIndex 0 it waits for the next change from now. The wait ends with ctx;
// it is not subject to Config.HeaderTimeout. A watch whose history is gone
// returns *v2api.Error 401.
func (c *Client) Watch(ctx context.Context, key string, afterIndex uint64, recursive bool) (*Response, error) {
	q := url.Values{}
	q.Set("wait", "true")
	if afterIndex > 0 {
		q.Set("waitIndex", strconv.FormatUint(afterIndex+1, 10))
	}
	if recursive {
		q.Set("recursive", "true")
	}
	for {
		r, err := c.do(ctx, request{method: http.MethodGet, path: keyPath(key), query: q, noTimeout: true})
		if err != nil {
			return nil, err
		}
		// A proxy or server may end a long poll with an empty 200: ask again.
		if r.status == http.StatusOK && len(strings.TrimSpace(string(r.body))) == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			continue
		}
		return decodeKeysResponse(r)
	}
}

// WatcherOptions modify Watcher.
type WatcherOptions struct {
	AfterIndex uint64 // start after this index; 0 = from now
	Recursive  bool
}

// Watcher follows a key across events: each Next returns the next event
// after the previous one, so no change is missed while the caller works
// (within etcd's 1000-event history window).
type Watcher struct {
	c         *Client
	key       string
	recursive bool
	after     uint64
}

// Watcher returns a Watcher for key. opts may be nil.
func (c *Client) Watcher(key string, opts *WatcherOptions) *Watcher {
	w := &Watcher{c: c, key: key}
	if opts != nil {
		w.after, w.recursive = opts.AfterIndex, opts.Recursive
	}
	return w
}

// Next blocks for the next event and advances the watcher past it.
func (w *Watcher) Next(ctx context.Context) (*Response, error) {
	r, err := w.c.Watch(ctx, w.key, w.after, w.recursive)
	if err != nil {
		return nil, err
	}
	if r.Node != nil {
		w.after = r.Node.ModifiedIndex
	}
	return r, nil
}

// AfterIndex is the index the next Next waits after.
func (w *Watcher) AfterIndex() uint64 { return w.after }
