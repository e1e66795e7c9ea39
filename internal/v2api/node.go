package v2api

import "time"

// Actions carried in an event's "action" field.
const (
	ActionGet              = "get"
	ActionSet              = "set"
	ActionCreate           = "create"
	ActionUpdate           = "update"
	ActionDelete           = "delete"
	ActionCompareAndSwap   = "compareAndSwap"
	ActionCompareAndDelete = "compareAndDelete"
	ActionExpire           = "expire"
)

// Node is the JSON form of a key or directory, with etcd's field order and
// omission rules: key is omitted only for the user root, value is present for
// every file (even when empty) and absent for directories and delete results.
type Node struct {
	Key           string     `json:"key,omitempty"`
	Value         *string    `json:"value,omitempty"`
	Dir           bool       `json:"dir,omitempty"`
	Expiration    *time.Time `json:"expiration,omitempty"`
	TTL           int64      `json:"ttl,omitempty"`
	Nodes         []*Node    `json:"nodes,omitempty"`
	ModifiedIndex uint64     `json:"modifiedIndex,omitempty"`
	CreatedIndex  uint64     `json:"createdIndex,omitempty"`
}

// StringValue returns the node's value, or "" when it has none.
func (n *Node) StringValue() string {
	if n == nil || n.Value == nil {
		return ""
	}
	return *n.Value
}

// Event is the body of every successful /v2/keys response:
// {"action":…,"node":{…},"prevNode":{…}}.
type Event struct {
	Action   string `json:"action"`
	Node     *Node  `json:"node,omitempty"`
	PrevNode *Node  `json:"prevNode,omitempty"`
}

// Member is one entry of /v2/members, with etcd's field order. Name is "" and
// ClientURLs is empty (never null) for a member added but not yet started.
type Member struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

// MemberList is the body of GET /v2/members.
type MemberList struct {
	Members []Member `json:"members"`
}

// Header names of the v2 API, as etcd sets them.
const (
	HeaderEtcdIndex = "X-Etcd-Index"
	HeaderRaftIndex = "X-Raft-Index"
	HeaderRaftTerm  = "X-Raft-Term"
	HeaderClusterID = "X-Etcd-Cluster-Id"
)
