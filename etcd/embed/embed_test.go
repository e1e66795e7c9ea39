package embed

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/v2api"
)

func put(t *testing.T, base, key, form string) (int, v2api.Event) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, base+"/v2/keys"+key, strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ev v2api.Event
	if resp.StatusCode < 300 {
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
	}
	return resp.StatusCode, ev
}

func TestStartWriteRestartRead(t *testing.T) {
	dir := t.TempDir()
	e, err := Start(t.Context(), Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	code, ev := put(t, e.ClientURL(), "/foo", url.Values{"value": {"bar"}}.Encode())
	if code != http.StatusCreated || ev.Node.StringValue() != "bar" {
		t.Fatalf("PUT: %d %+v", code, ev)
	}
	idx := ev.Node.ModifiedIndex
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e2, err := Start(t.Context(), Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	select {
	case <-e2.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not ready after restart")
	}
	resp, err := http.Get(e2.ClientURL() + "/v2/keys/foo")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got v2api.Event
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Node.StringValue() != "bar" || got.Node.ModifiedIndex != idx {
		t.Fatalf("after restart: %+v, want bar@%d", got.Node, idx)
	}
	if resp.Header.Get(v2api.HeaderRaftIndex) == "" || resp.Header.Get(v2api.HeaderEtcdIndex) == "" {
		t.Errorf("missing index headers: %v", resp.Header)
	}
}
