package format

import (
	"testing"
	"time"

	"github.com/corekit/corekit/internal/v2api"
	"github.com/corekit/corekit/internal/v2client"
)

func str(s string) *string { return &s }

// TestResponse pins each mode's bytes for the response shapes etcdctl
// prints (checked against Debian's etcdctl by the etcdctlmain tests).
func TestResponse(t *testing.T) {
	exp := time.Date(2026, 11, 21, 22, 9, 22, 897512924, time.UTC)
	set := &v2client.Response{Action: "set", Index: 7,
		Node:     &v2api.Node{Key: "/a", Value: str("new"), CreatedIndex: 7, ModifiedIndex: 7, TTL: 5, Expiration: &exp},
		PrevNode: &v2api.Node{Key: "/a", Value: str("old"), CreatedIndex: 3, ModifiedIndex: 3}}
	del := &v2client.Response{Action: "delete", Index: 9,
		Node:     &v2api.Node{Key: "/a", CreatedIndex: 7, ModifiedIndex: 9},
		PrevNode: &v2api.Node{Key: "/a", Value: str("new"), CreatedIndex: 7, ModifiedIndex: 7}}
	dir := &v2client.Response{Action: "get", Index: 12,
		Node: &v2api.Node{Key: "/d", Dir: true, CreatedIndex: 10, ModifiedIndex: 10,
			Nodes: []*v2api.Node{{Key: "/d/x", Value: str("1"), CreatedIndex: 11, ModifiedIndex: 11}}}}
	cad := &v2client.Response{Action: "compareAndDelete", Index: 9, Node: &v2api.Node{Key: "/a"}, PrevNode: &v2api.Node{Key: "/a", Value: str("v")}}
	cases := []struct {
		name, mode string
		resp       *v2client.Response
		want       string
	}{
		{"set simple", Simple, set, "new\n"},
		{"set extended", Extended, set, "Key: /a\nCreated-Index: 7\nModified-Index: 7\nPrevNode.Value: old\nTTL: 5\nIndex: 7\n\nnew\n"},
		{"set json", JSON, set, `{"action":"set","node":{"key":"/a","value":"new","nodes":null,"createdIndex":7,"modifiedIndex":7,"expiration":"2026-11-21T22:09:22.897512924Z","ttl":5},"prevNode":{"key":"/a","value":"old","nodes":null,"createdIndex":3,"modifiedIndex":3}}` + "\n"},
		{"delete simple", Simple, del, "PrevNode.Value: new\n"},
		{"delete extended", Extended, del, "Key: /a\nCreated-Index: 7\nModified-Index: 9\nPrevNode.Value: new\nTTL: 0\nIndex: 9\n"},
		{"compareAndDelete simple prints an empty line", Simple, cad, "\n"},
		{"dir json", JSON, dir, `{"action":"get","node":{"key":"/d","dir":true,"value":"","nodes":[{"key":"/d/x","value":"1","nodes":null,"createdIndex":11,"modifiedIndex":11}],"createdIndex":10,"modifiedIndex":10},"prevNode":null}` + "\n"},
		{"unknown mode prints nothing", "yaml", set, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := string(Response(c.mode, c.resp)); got != c.want {
				t.Fatalf("got\n%q\nwant\n%q", got, c.want)
			}
		})
	}
}

func TestLs(t *testing.T) {
	tree := &v2api.Node{Dir: true, Nodes: []*v2api.Node{
		{Key: "/a", Value: str("1")},
		{Key: "/d", Dir: true, Nodes: []*v2api.Node{{Key: "/d/e", Dir: true}, {Key: "/d/f", Value: str("2")}}},
	}}
	if got, want := string(Ls(tree, false)), "/a\n/d\n/d/e\n/d/f\n"; got != want {
		t.Fatalf("ls: %q want %q", got, want)
	}
	if got, want := string(Ls(tree, true)), "/a\n/d/\n/d/e/\n/d/f\n"; got != want {
		t.Fatalf("ls -p: %q want %q", got, want)
	}
	if got, want := string(Ls(&v2api.Node{Key: "/file", Value: str("v")}, true)), "/file\n"; got != want {
		t.Fatalf("ls file: %q want %q", got, want)
	}
}

func TestMembers(t *testing.T) {
	ms := []v2api.Member{
		{ID: "135f", PeerURLs: []string{"http://n1:2380"}},
		{ID: "255c", Name: "default", PeerURLs: []string{"http://d:2380"}, ClientURLs: []string{"http://d:2379", "http://d:4001"}},
	}
	want := "135f[unstarted]: peerURLs=http://n1:2380\n255c: name=default peerURLs=http://d:2380 clientURLs=http://d:2379,http://d:4001 isLeader=true\n"
	if got := string(MemberList(ms, "255c")); got != want {
		t.Fatalf("list: %q", got)
	}
	want = "Added member named n1 with ID 135f to cluster\n\nETCD_NAME=\"n1\"\nETCD_INITIAL_CLUSTER=\"n1=http://n1:2380,default=http://d:2380\"\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n"
	if got := string(MemberAdded("n1", "135f")) + string(MemberAddedEnv("n1", "135f", ms)); got != want {
		t.Fatalf("add: %q", got)
	}
}
