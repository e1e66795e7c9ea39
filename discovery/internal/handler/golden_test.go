package handler

import (
	"bytes"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got:\n%s\n--- want:\n%s", p, got, want)
	}
}

func TestPageGolden(t *testing.T) {
	for _, tt := range []struct {
		name string
		d    pageData
	}{
		{"page-empty.html", pageData{Token: tok0, Size: 3, Created: "2026-03-01T12:00:00Z", Expires: "2026-03-08T12:00:00Z"}},
		{"page-sealed.html", pageData{Token: tok0, Size: 2, Sealed: true, Created: "2026-03-01T12:00:00Z", Expires: "2026-03-08T12:00:00Z",
			Members: []pageMember{
				{ID: "1e41d48ff5022577", Value: "infra0=http://10.0.1.10:2380", Index: 7},
				{ID: "8e9e05c52164694d", Value: `infra1=http://10.0.1.11:2380"><script>alert(1)</script>`, Index: 9},
			}}},
		{"page-nosize.html", pageData{Token: tok0}},
	} {
		var b bytes.Buffer
		if err := renderPage(&b, tt.d); err != nil {
			t.Fatal(err)
		}
		golden(t, tt.name, b.Bytes())
	}
}

func TestMetricsGolden(t *testing.T) {
	m := newMetrics()
	m.inc("new", 200, http.MethodGet)
	m.inc("new", 200, http.MethodGet)
	m.inc("new", 400, http.MethodPost)
	m.inc("new", 429, http.MethodGet)
	m.inc("token", 201, http.MethodPut)
	m.inc("token", 404, "BREW") // unknown methods share one label value
	m.inc("health", 200, http.MethodGet)
	m.inc("robots", 200, http.MethodGet) // not counted
	m.event(evTokensCreated)
	m.event(evTokensCreated)
	m.event(evSealed)
	var b bytes.Buffer
	m.write(&b)
	golden(t, "metrics.txt", b.Bytes())
}
