package store

import "container/heap"

// ttlHeap is a min-heap of the nodes that have an expiry time, ordered by
// expiry time and then by key, so that the order in which DeleteExpiredKeys
// removes nodes is a function of the state alone.
type ttlHeap struct{ nodes []*node }

func (h *ttlHeap) Len() int { return len(h.nodes) }

func (h *ttlHeap) Less(i, j int) bool {
	a, b := h.nodes[i], h.nodes[j]
	if !a.expire.Equal(*b.expire) {
		return a.expire.Before(*b.expire)
	}
	return a.path < b.path
}

func (h *ttlHeap) Swap(i, j int) {
	h.nodes[i], h.nodes[j] = h.nodes[j], h.nodes[i]
	h.nodes[i].heapIndex = int32(i)
	h.nodes[j].heapIndex = int32(j)
}

// Push and Pop implement heap.Interface; use add, remove and top instead.
func (h *ttlHeap) Push(x any) {
	n := x.(*node)
	n.heapIndex = int32(len(h.nodes))
	h.nodes = append(h.nodes, n)
}

func (h *ttlHeap) Pop() any {
	last := len(h.nodes) - 1
	n := h.nodes[last]
	h.nodes[last] = nil
	h.nodes = h.nodes[:last]
	n.heapIndex = -1
	return n
}

func (h *ttlHeap) top() *node {
	if len(h.nodes) == 0 {
		return nil
	}
	return h.nodes[0]
}

// set records n's current expiry: it adds, moves or removes n as needed.
func (h *ttlHeap) set(n *node) {
	switch {
	case n.permanent():
		h.remove(n)
	case n.heapIndex >= 0:
		heap.Fix(h, int(n.heapIndex))
	default:
		heap.Push(h, n)
	}
}

func (h *ttlHeap) remove(n *node) {
	if n.heapIndex >= 0 {
		heap.Remove(h, int(n.heapIndex))
	}
}
