package embed

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/corekit/corekit/etcd/internal/discovery"
	"github.com/corekit/corekit/internal/etcdtest"
)

// TestDiscoveryBootstrap boots three members through a discovery token
// hosted on a fourth, self-hosted member (the 2.x "self-hosted discovery"
// setup), and checks that a fourth registrant is turned away as full.
func TestDiscoveryBootstrap(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: multi-member cluster test (-short)")
	}
	svc, err := Start(t.Context(), Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	token := svc.ClientURL() + "/v2/keys/_etcd/registry/test-token"
	if code, _ := put(t, svc.ClientURL(), "/_etcd/registry/test-token/_config/size", url.Values{"value": {"3"}}.Encode()); code != http.StatusCreated {
		t.Fatalf("size key: %d", code)
	}
	ms := make([]*Etcd, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			peer := fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t))
			ms[i], errs[i] = Start(t.Context(), Config{
				Name: fmt.Sprintf("d%d", i), DataDir: t.TempDir(), Discovery: token,
				ListenPeerURLs:    []string{peer},
				HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		defer ms[i].Close()
	}
	for _, m := range ms[1:] {
		if m.Server.ClusterID() != ms[0].Server.ClusterID() {
			t.Fatal("discovered members disagree on the cluster ID")
		}
	}
	if n := len(ms[0].Server.Members()); n != 3 {
		t.Fatalf("members: %d", n)
	}
	if code, _ := put(t, ms[2].ClientURL(), "/via-discovery", url.Values{"value": {"ok"}}.Encode()); code != http.StatusCreated {
		t.Fatalf("write: %d", code)
	}
	_, err = Start(t.Context(), Config{Name: "late", DataDir: t.TempDir(), Discovery: token})
	if !errors.Is(err, discovery.ErrFull) {
		t.Fatalf("fourth member: %v, want ErrFull", err)
	}
}
