package etcdtest

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestReferenceStartsAndServesV2(t *testing.T) {
	s := Start(t, Reference)
	req, _ := http.NewRequest(http.MethodPut, s.ClientURL+"/v2/keys/hello", strings.NewReader("value=world"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"value":"world"`) {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
}
