package etcdserver

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestClusterIDCheckBothSides: a peer request with another cluster's ID is
// refused with 412 "cluster ID mismatch" and logged by the receiver; the
// sender turns the answer into ErrClusterIDMismatch and logs both IDs.
func TestClusterIDCheckBothSides(t *testing.T) {
	var recvLog, sendLog syncBuffer
	recv := &EtcdServer{clusterID: 0xb, log: slog.New(slog.NewTextHandler(&recvLog, nil))}
	send := &EtcdServer{clusterID: 0xa, log: slog.New(slog.NewTextHandler(&sendLog, nil))}
	h := recv.withClusterID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if recv.checkClusterID(w, r) {
			w.WriteHeader(http.StatusOK)
		}
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodPost, srv.URL+proposePath, nil)
	req.Header.Set(clusterIDHeader, "a")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPreconditionFailed || resp.Header.Get(clusterIDHeader) != "b" {
		t.Fatalf("mismatch: %d, header %q", resp.StatusCode, resp.Header.Get(clusterIDHeader))
	}
	if !strings.Contains(recvLog.String(), "request cluster ID mismatch (got a want b)") {
		t.Errorf("receiver log: %s", recvLog.String())
	}
	err = send.refusedByCluster(resp, "127.0.0.1:7001")
	if !errors.Is(err, ErrClusterIDMismatch) {
		t.Fatalf("sender: %v, want ErrClusterIDMismatch", err)
	}
	if !strings.Contains(sendLog.String(), "request sent was ignored (cluster ID mismatch: remote[127.0.0.1:7001]=b, local=a)") {
		t.Errorf("sender log: %s", sendLog.String())
	}

	req.Header.Set(clusterIDHeader, "b")
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || send.refusedByCluster(resp, "x") != nil {
		t.Fatalf("matching ID: %d", resp.StatusCode)
	}
}
