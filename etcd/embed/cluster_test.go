package embed

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/v2api"
)

// startCluster boots n members from one static --initial-cluster.
func startCluster(t *testing.T, n int) []*Etcd {
	t.Helper()
	var peers, clients, parts []string
	for i := 0; i < n; i++ {
		peers = append(peers, fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t)))
		clients = append(clients, fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t)))
		parts = append(parts, fmt.Sprintf("m%d=%s", i, peers[i]))
	}
	members := make([]*Etcd, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			members[i], errs[i] = Start(t.Context(), Config{
				Name: fmt.Sprintf("m%d", i), DataDir: t.TempDir(),
				ListenClientURLs: clients[i : i+1], ListenPeerURLs: peers[i : i+1],
				InitialCluster:      strings.Join(parts, ","),
				InitialClusterToken: "test-cluster",
				HeartbeatInterval:   20 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		t.Cleanup(func() { members[i].Close() })
	}
	return members
}

func getKey(t *testing.T, base, key string) (*v2api.Event, int) {
	t.Helper()
	resp, err := http.Get(base + "/v2/keys" + key)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ev v2api.Event
	_ = json.NewDecoder(resp.Body).Decode(&ev)
	return &ev, resp.StatusCode
}

func TestThreeMemberStaticCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: multi-member cluster test (-short)")
	}
	ms := startCluster(t, 3)
	// Every member agrees on the cluster ID and, eventually, the leader.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var leader uint64
	for {
		ids := map[uint64]bool{}
		for _, m := range ms {
			if l, ok := m.Server.Leader(); ok {
				ids[l] = true
				leader = l
			}
		}
		if len(ids) == 1 && leader != 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("members do not agree on a leader: %v", ids)
		case <-time.After(20 * time.Millisecond):
		}
	}
	for _, m := range ms[1:] {
		if m.Server.ClusterID() != ms[0].Server.ClusterID() {
			t.Fatal("cluster IDs differ")
		}
	}

	// Writes on every member (followers forward to the leader) are readable
	// on that member at once and on all members eventually.
	for i, m := range ms {
		form := url.Values{"value": {fmt.Sprint("v", i)}}
		req, _ := http.NewRequest(http.MethodPut, m.ClientURL()+fmt.Sprintf("/v2/keys/k%d", i), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT on member %d (leader=%v): %d", i, m.Server.ID() == leader, resp.StatusCode)
		}
		if ev, code := getKey(t, m.ClientURL(), fmt.Sprintf("/k%d", i)); code != 200 || ev.Node.StringValue() != fmt.Sprint("v", i) {
			t.Errorf("read-your-write on member %d: %d %+v", i, code, ev.Node)
		}
	}
	for _, m := range ms {
		for i := range ms {
			deadline := time.Now().Add(10 * time.Second)
			for {
				ev, code := getKey(t, m.ClientURL(), fmt.Sprintf("/k%d", i))
				if code == 200 && ev.Node.StringValue() == fmt.Sprint("v", i) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("k%d not replicated to %s", i, m.ClientURL())
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}

	// Every member lists every member with its published name and client URL.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok := true
		for _, m := range ms {
			list := m.Server.Members()
			if len(list) != 3 {
				t.Fatalf("members: %+v", list)
			}
			for _, x := range list {
				if x.Name == "" || len(x.ClientURLs) != 1 {
					ok = false
				}
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("members not published: %+v", ms[0].Server.Members())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAddJoinRemoveMember(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: multi-member cluster test (-short)")
	}
	ms := startCluster(t, 1)
	first := ms[0]
	peer := fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t))
	client := fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t))
	put(t, first.ClientURL(), "/before", url.Values{"value": {"1"}}.Encode())

	added, err := first.Server.AddMember(t.Context(), []string{peer})
	if err != nil {
		t.Fatal(err)
	}
	if added.Name != "" || len(added.ClientURLs) != 0 {
		t.Errorf("added member %+v: want no name and no client URLs yet", added)
	}
	if _, err := first.Server.AddMember(t.Context(), []string{peer}); err == nil {
		t.Error("adding the same peer URL twice succeeded")
	}

	second, err := Start(t.Context(), Config{
		Name: "m1", DataDir: t.TempDir(),
		ListenClientURLs: []string{client}, ListenPeerURLs: []string{peer},
		InitialCluster:      "m0=" + first.PeerURLs()[0] + ",m1=" + peer,
		InitialClusterState: "existing", InitialClusterToken: "test-cluster",
		HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	if second.Server.ClusterID() != first.Server.ClusterID() || fmt.Sprintf("%x", second.Server.ID()) != added.ID {
		t.Fatalf("joined member: cluster %x id %x, want %x %s", second.Server.ClusterID(), second.Server.ID(), first.Server.ClusterID(), added.ID)
	}
	// The joined member catches up and accepts writes (forwarded).
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, code := getKey(t, second.ClientURL(), "/before"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("joined member never caught up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := put(t, second.ClientURL(), "/after", url.Values{"value": {"2"}}.Encode()); code != http.StatusCreated {
		t.Fatalf("write on joined member: %d", code)
	}
	if n := len(first.Server.Members()); n != 2 {
		t.Fatalf("members after join: %d", n)
	}

	if err := first.Server.RemoveMember(t.Context(), second.Server.ID()); err != nil {
		t.Fatal(err)
	}
	if n := len(first.Server.Members()); n != 1 {
		t.Errorf("members after remove: %d", n)
	}
	if err := first.Server.RemoveMember(t.Context(), second.Server.ID()); err == nil {
		t.Error("removing a removed member succeeded")
	}
	// The remaining member alone is a quorum again.
	if code, _ := put(t, first.ClientURL(), "/alone", url.Values{"value": {"3"}}.Encode()); code != http.StatusCreated {
		t.Fatalf("write after remove: %d", code)
	}
}
