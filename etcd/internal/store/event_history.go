package store

import (
	"fmt"
	"strings"
	"time"

	"github.com/corekit/corekit/internal/v2api"
)

// historySize is how many events the store keeps for watches with a
// waitIndex (etcd's newWatchHub(1000)).
const historySize = 1000

// histEvent is one recorded mutation. ev is the bare event (expiration but
// no ttl): it is what Save writes, so snapshots do not depend on any clock.
// shown is the event as delivered when it was applied, ttl computed with the
// applying member's clock (as etcd stores it); history scans hand out shown,
// or a fresh rendering of ev when shown was lost in a snapshot. Neither is
// modified after recording. refresh marks TTL refreshes, which scans skip.
type histEvent struct {
	ev      *v2api.Event
	shown   *v2api.Event
	refresh bool
}

// delivered is the event a history scan returns.
func (h histEvent) delivered(now time.Time) *v2api.Event {
	if h.shown != nil {
		return h.shown
	}
	return render(h.ev, now)
}

// index is the store index of the event (every event's node carries it).
func (h histEvent) index() uint64 { return h.ev.Node.ModifiedIndex }

// eventHistory is a ring of the last historySize events. Store indexes are
// contiguous (every increment records exactly one event), so the event with
// index i sits at offset i-first.
type eventHistory struct {
	buf   []histEvent // ring storage, len historySize once full
	front int         // position of the oldest event
	size  int
}

func newEventHistory() *eventHistory { return &eventHistory{} }

func (h *eventHistory) add(e histEvent) {
	if len(h.buf) < historySize {
		h.buf = append(h.buf, e)
		h.size++
		return
	}
	back := (h.front + h.size) % historySize
	h.buf[back] = e
	if h.size == historySize {
		h.front = (h.front + 1) % historySize
	} else {
		h.size++
	}
}

func (h *eventHistory) at(i int) histEvent { return h.buf[(h.front+i)%len(h.buf)] }

// first is the oldest retained index, 0 when the history is empty.
func (h *eventHistory) first() uint64 {
	if h.size == 0 {
		return 0
	}
	return h.at(0).index()
}

// last is the newest retained index, 0 when the history is empty.
func (h *eventHistory) last() uint64 {
	if h.size == 0 {
		return 0
	}
	return h.at(h.size - 1).index()
}

// entries returns the retained events, oldest first.
func (h *eventHistory) entries() []histEvent {
	out := make([]histEvent, h.size)
	for i := range out {
		out[i] = h.at(i)
	}
	return out
}

func (h *eventHistory) clone() *eventHistory {
	c := &eventHistory{}
	for _, e := range h.entries() {
		c.add(e)
	}
	return c
}

// scan returns the events with index ≥ since that match a watch on key, in
// index order, at most limit of them (limit ≤ 0: no limit). Refresh events
// are skipped. The error is 401 when since fell out of the history; its
// index is filled in by the caller.
func (h *eventHistory) scan(key string, recursive bool, since uint64, limit int, now time.Time) ([]*v2api.Event, *v2api.Error) {
	first := h.first()
	if since < first {
		return nil, v2api.NewError(v2api.EcodeEventIndexCleared,
			fmt.Sprintf("the requested history has been cleared [%d/%d]", first, since), 0)
	}
	if h.size == 0 || since > h.last() {
		return nil, nil
	}
	var out []*v2api.Event
	for i := int(since - first); i < h.size; i++ {
		e := h.at(i)
		if e.refresh || !historyMatch(e.ev, key, recursive) {
			continue
		}
		out = append(out, e.delivered(now))
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

// historyMatch is the watch matching rule applied to recorded events. It is
// etcd 3.4's scan with two deliberate fixes, so that a watch with a waitIndex
// sees exactly what a live watch would have seen: hidden keys below the
// watched path are filtered as for live watches (etcd issue 1677), and a
// deleted or expired directory matches only keys at or below it on a '/'
// boundary (etcd matches any string prefix).
func historyMatch(e *v2api.Event, key string, recursive bool) bool {
	ekey := e.Node.Key
	if ekey == key {
		return true
	}
	if recursive && isAncestor(key, ekey) && !hiddenBelow(key, ekey) {
		return true
	}
	if (e.Action == v2api.ActionDelete || e.Action == v2api.ActionExpire) &&
		e.PrevNode != nil && e.PrevNode.Dir && isAncestor(e.PrevNode.Key, key) {
		return true
	}
	return false
}

// isAncestor reports whether key b lies strictly below key a.
func isAncestor(a, b string) bool {
	if a == "/" {
		return b != "/" && strings.HasPrefix(b, "/")
	}
	return len(b) > len(a) && strings.HasPrefix(b, a) && b[len(a)] == '/'
}

// hiddenBelow reports whether some path component of key below the watched
// path starts with '_' (etcd's isHidden): recursive watches do not see such
// keys, while a watch on the hidden key itself, or under a hidden dir, does.
func hiddenBelow(watched, key string) bool {
	if len(watched) >= len(key) {
		return false
	}
	rest := key[len(watched):]
	if watched == "/" {
		rest = key
	}
	return strings.Contains(rest, "/_")
}

// render returns a copy of e for delivery at time now: each node that has an
// expiration gets its remaining ttl. The copy shares nothing mutable with e.
func render(e *v2api.Event, now time.Time) *v2api.Event {
	out := &v2api.Event{Action: e.Action, Node: renderNode(e.Node, now), PrevNode: renderNode(e.PrevNode, now)}
	return out
}

func renderNode(n *v2api.Node, now time.Time) *v2api.Node {
	if n == nil {
		return nil
	}
	c := *n
	if n.Value != nil {
		v := *n.Value
		c.Value = &v
	}
	if n.Expiration != nil {
		t := *n.Expiration
		c.Expiration = &t
		c.TTL = ttlOf(t, now)
	}
	if n.Nodes != nil {
		c.Nodes = make([]*v2api.Node, len(n.Nodes))
		for i, child := range n.Nodes {
			c.Nodes[i] = renderNode(child, now)
		}
	}
	return &c
}
