package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/v2api"
)

// membersReq sends a /v2/members request with a JSON body (or none) and
// returns the status and body.
func membersReq(t *testing.T, method, u string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := &http.Client{Timeout: 20 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// listMembers is GET <client>/v2/members, by peer URL.
func listMembers(t *testing.T, m *member) (map[string]v2api.Member, error) {
	t.Helper()
	resp, err := quick.Get(m.ClientURL + "/v2/members")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var l v2api.MemberList
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		return nil, err
	}
	out := map[string]v2api.Member{}
	for _, x := range l.Members {
		out[strings.Join(x.PeerURLs, ",")] = x
	}
	return out, nil
}

// TestFollowerServedMemberChanges: member add, update and remove sent to
// followers are forwarded to the leader and answered only once the raft
// configuration changed. The decisive step: right after a follower
// answered the removal of a fourth member, that member and the other
// follower are killed; the leader and the remaining follower are then two
// of three raft voters and must keep taking writes. (Were the removal only
// in the member list and not yet in raft's configuration, they would be two
// of four and stay leaderless for good.)
func TestFollowerServedMemberChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: multi-process cluster test (-short)")
	}
	c := startCluster(t, etcdtest.Ours, 3)
	leader := c.waitLeader(10 * time.Second)
	var followers []*member
	var parts []string
	for _, m := range c.Members {
		if m != leader {
			followers = append(followers, m)
		}
		parts = append(parts, m.Name+"="+m.PeerURL)
	}
	f1, f2 := followers[0], followers[1]

	// Add through a follower: 201 with the new member, which that same
	// follower lists at once.
	m4 := newMember(t, "m4")
	code, body := membersReq(t, http.MethodPost, f1.ClientURL+"/v2/members", map[string]any{"peerURLs": []string{m4.PeerURL}})
	if code != http.StatusCreated {
		t.Fatalf("POST /v2/members via follower %s: %d %s", f1.Name, code, body)
	}
	var added v2api.Member
	if err := json.Unmarshal(body, &added); err != nil || added.ID == "" || !slices.Equal(added.PeerURLs, []string{m4.PeerURL}) {
		t.Fatalf("POST /v2/members answer %s (%v)", body, err)
	}
	if l, err := listMembers(t, f1); err != nil || l[m4.PeerURL].ID != added.ID {
		t.Fatalf("follower %s does not list the member it just added: %v %v", f1.Name, l, err)
	}

	// m4 joins with the cluster state "existing" at once (asking the
	// other members for the list) and publishes its name.
	m4.bin = c.bin
	m4.args = m4.baseArgs(c.kind, strings.Join(append(parts, "m4="+m4.PeerURL), ","), "existing")
	c.Members = append(c.Members, m4)
	m4.start(t)
	waitMembers(t, c, leader, func(l map[string]v2api.Member) bool {
		x := l[m4.PeerURL]
		return len(l) == 4 && x.Name == "m4" && slices.Equal(x.ClientURLs, []string{m4.ClientURL})
	}, "m4 to join and publish its name")

	// Update m4's peer URL through the other follower: nothing else in
	// the member list changes (no member loses its name or client URLs).
	moved := fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t))
	if code, body := membersReq(t, http.MethodPut, f2.ClientURL+"/v2/members/"+added.ID, map[string]any{"peerURLs": []string{moved}}); code != http.StatusNoContent {
		t.Fatalf("PUT /v2/members/%s via follower %s: %d %s", added.ID, f2.Name, code, body)
	}
	for _, m := range []*member{f2, leader, f1} {
		l, err := listMembers(t, m)
		if err != nil {
			t.Fatal(err)
		}
		if len(l) != 4 || l[moved].ID != added.ID || l[moved].Name != "m4" {
			t.Errorf("%s lists after the update: %v", m.Name, l)
		}
		for _, o := range c.Members[:3] {
			if x := l[o.PeerURL]; x.Name != o.Name || !slices.Equal(x.ClientURLs, []string{o.ClientURL}) {
				t.Errorf("%s lists %s after the update as %+v", m.Name, o.Name, x)
			}
		}
	}

	// Remove m4 through a follower, then kill m4 and the other follower
	// at once.
	if code, body := membersReq(t, http.MethodDelete, f1.ClientURL+"/v2/members/"+added.ID, nil); code != http.StatusNoContent {
		t.Fatalf("DELETE /v2/members/%s via follower %s: %d %s", added.ID, f1.Name, code, body)
	}
	m4.kill()
	f2.kill()
	if l, err := listMembers(t, f1); err != nil || len(l) != 3 {
		t.Errorf("follower %s lists after the removal: %v %v", f1.Name, l, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		var ok bool
		for _, m := range []*member{leader, f1} {
			code, _, _, err := put(t.Context(), quick, m.ClientURL, "/after-remove", fmt.Sprint(i), nil)
			if err == nil && (code == http.StatusOK || code == http.StatusCreated) {
				ok = true
				break
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			c.dumpLogs()
			t.Fatalf("the leader and %s (2 of 3 members) never took a write again after m4's removal", f1.Name)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitMembers polls m's /v2/members until ok holds (20 s).
func waitMembers(t *testing.T, c *cluster, m *member, ok func(map[string]v2api.Member) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		l, err := listMembers(t, m)
		if err == nil && ok(l) {
			return
		}
		if time.Now().After(deadline) {
			c.dumpLogs()
			t.Fatalf("waiting for %s: last list %v (%v)", what, l, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
