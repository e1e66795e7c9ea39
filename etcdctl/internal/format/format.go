// Package format renders etcd v2 responses exactly as etcdctl v2 prints them,
// in its three output modes (simple, extended, json), plus the ls listing and
// the member lines. Every function is pure: a response in, bytes out.
//
// The golden tests in format_test.go pin the bytes; they were checked
// against Debian's etcdctl 3.4 in v2 mode (see etcdctl/testdata).
package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/corekit/corekit/internal/v2api"
	"github.com/corekit/corekit/internal/v2client"
)

// Output modes accepted by --output.
const (
	Simple   = "simple"
	Extended = "extended"
	JSON     = "json"
)

// Valid reports whether mode is a known output mode.
func Valid(mode string) bool {
	return mode == Simple || mode == Extended || mode == JSON
}

// Response renders resp in mode. An unknown mode renders nothing; callers
// validate the mode first (Valid).
func Response(mode string, resp *v2client.Response) []byte {
	var b bytes.Buffer
	switch mode {
	case Simple:
		if resp.Action != v2api.ActionDelete {
			fmt.Fprintln(&b, resp.Node.StringValue())
		} else {
			fmt.Fprintln(&b, "PrevNode.Value:", resp.PrevNode.StringValue())
		}
	case Extended:
		n := resp.Node
		fmt.Fprintln(&b, "Key:", n.Key)
		fmt.Fprintln(&b, "Created-Index:", n.CreatedIndex)
		fmt.Fprintln(&b, "Modified-Index:", n.ModifiedIndex)
		if resp.PrevNode != nil {
			fmt.Fprintln(&b, "PrevNode.Value:", resp.PrevNode.StringValue())
		}
		fmt.Fprintln(&b, "TTL:", n.TTL)
		fmt.Fprintln(&b, "Index:", resp.Index)
		if resp.Action != v2api.ActionDelete {
			fmt.Fprintln(&b)
			fmt.Fprintln(&b, n.StringValue())
		}
	case JSON:
		out, _ := json.Marshal(jsonResponse{Action: resp.Action, Node: toJSONNode(resp.Node), PrevNode: toJSONNode(resp.PrevNode)})
		b.Write(out)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// jsonResponse and jsonNode have the shape etcdctl v2's -o json prints (the
// official client's structs re-marshalled), which differs from the server's:
// value always present, nodes null when empty, createdIndex before
// modifiedIndex, prevNode null when absent.
type jsonResponse struct {
	Action   string    `json:"action"`
	Node     *jsonNode `json:"node"`
	PrevNode *jsonNode `json:"prevNode"`
}

type jsonNode struct {
	Key           string      `json:"key"`
	Dir           bool        `json:"dir,omitempty"`
	Value         string      `json:"value"`
	Nodes         []*jsonNode `json:"nodes"`
	CreatedIndex  uint64      `json:"createdIndex"`
	ModifiedIndex uint64      `json:"modifiedIndex"`
	Expiration    *time.Time  `json:"expiration,omitempty"`
	TTL           int64       `json:"ttl,omitempty"`
}

func toJSONNode(n *v2api.Node) *jsonNode {
	if n == nil {
		return nil
	}
	j := &jsonNode{
		Key: n.Key, Dir: n.Dir, Value: n.StringValue(),
		CreatedIndex: n.CreatedIndex, ModifiedIndex: n.ModifiedIndex,
		Expiration: n.Expiration, TTL: n.TTL,
	}
	for _, c := range n.Nodes {
		j.Nodes = append(j.Nodes, toJSONNode(c))
	}
	return j
}

// Ls renders the simple-mode listing of ls: a file prints its own key; a
// directory prints its children depth first, with a trailing "/" on
// directories when slash is set.
func Ls(n *v2api.Node, slash bool) []byte {
	var b bytes.Buffer
	if !n.Dir {
		fmt.Fprintln(&b, n.Key)
	}
	for _, c := range n.Nodes {
		lsNode(&b, c, slash)
	}
	return b.Bytes()
}

func lsNode(b *bytes.Buffer, n *v2api.Node, slash bool) {
	if n.Dir && slash {
		fmt.Fprintf(b, "%s/\n", n.Key)
	} else {
		fmt.Fprintln(b, n.Key)
	}
	for _, c := range n.Nodes {
		lsNode(b, c, slash)
	}
}

// WatchHeader is the "[action] key" line watch --recursive prints before
// each event.
func WatchHeader(resp *v2client.Response) []byte {
	return fmt.Appendf(nil, "[%s] %s\n", resp.Action, resp.Node.Key)
}

// MemberList renders member list: one line per member in the given order,
// unstarted members (no name) in their short form.
func MemberList(ms []v2api.Member, leaderID string) []byte {
	var b bytes.Buffer
	for _, m := range ms {
		if m.Name == "" {
			fmt.Fprintf(&b, "%s[unstarted]: peerURLs=%s\n", m.ID, strings.Join(m.PeerURLs, ","))
			continue
		}
		fmt.Fprintf(&b, "%s: name=%s peerURLs=%s clientURLs=%s isLeader=%v\n",
			m.ID, m.Name, strings.Join(m.PeerURLs, ","), strings.Join(m.ClientURLs, ","), m.ID == leaderID)
	}
	return b.Bytes()
}

// MemberAdded is the first line member add prints, as soon as the member
// is added.
func MemberAdded(name, id string) []byte {
	return fmt.Appendf(nil, "Added member named %s with ID %s to cluster\n", name, id)
}

// MemberAddedEnv renders the environment a new member needs, printed after
// MemberAdded. ms is the member list after the add; the new member (id) is
// named name, other unstarted members keep their empty name.
func MemberAddedEnv(name, id string, ms []v2api.Member) []byte {
	var b bytes.Buffer
	var conf []string
	for _, m := range ms {
		n := m.Name
		if m.ID == id {
			n = name
		}
		for _, u := range m.PeerURLs {
			conf = append(conf, fmt.Sprintf("%s=%s", n, u))
		}
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "ETCD_NAME=%q\n", name)
	fmt.Fprintf(&b, "ETCD_INITIAL_CLUSTER=%q\n", strings.Join(conf, ","))
	b.WriteString("ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n")
	return b.Bytes()
}

// StoreError renders a store or cluster error as etcdctl does on stderr:
// "Error:  <err>", followed for a cluster error by its per-endpoint detail
// and a blank line.
func StoreError(err error) []byte {
	var b bytes.Buffer
	fmt.Fprintln(&b, "Error: ", err)
	if ce, ok := err.(*v2client.ClusterError); ok {
		fmt.Fprintln(&b, ce.Detail())
	}
	return b.Bytes()
}
