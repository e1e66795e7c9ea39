package etcdserver

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/corekit/corekit/internal/v2api"
)

// TestFetchMembersWaitsForAdd: a peer that has not applied "member add"
// yet answers without the joining member; fetchMembers asks again (bounded
// by joinRetry) instead of giving up on the first answer.
func TestFetchMembersWaitsForAdd(t *testing.T) {
	const self = "http://127.0.0.1:4"
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		list := []v2api.Member{{ID: "1", Name: "m1", PeerURLs: []string{"http://127.0.0.1:1"}}}
		if calls.Add(1) >= 3 {
			list = append(list, v2api.Member{ID: "4", PeerURLs: []string{self}})
		}
		w.Header().Set("X-Etcd-Cluster-ID", "abc")
		_ = json.NewEncoder(w).Encode(list)
	}))
	defer srv.Close()
	ms, cid, id, err := fetchMembers(t.Context(), srv.Client(), []string{srv.URL}, []string{self})
	if err != nil {
		t.Fatalf("fetchMembers: %v", err)
	}
	if id != 4 || cid != 0xabc || len(ms) != 2 || calls.Load() != 3 {
		t.Fatalf("fetchMembers = %v, cluster %x, self %x after %d calls", ms, cid, id, calls.Load())
	}
}

// TestFetchMembersGivesUp: a member never added is refused with etcd's
// hint once joinRetry has passed.
func TestFetchMembersGivesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: waits for joinRetry (-short)")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Etcd-Cluster-ID", "abc")
		_ = json.NewEncoder(w).Encode([]v2api.Member{{ID: "1", PeerURLs: []string{"http://127.0.0.1:1"}}})
	}))
	defer srv.Close()
	_, _, _, err := fetchMembers(t.Context(), srv.Client(), []string{srv.URL}, []string{"http://127.0.0.1:4"})
	if err == nil || !strings.Contains(err.Error(), "is not in the cluster's member list") {
		t.Fatalf("fetchMembers for a member never added: %v", err)
	}
}
