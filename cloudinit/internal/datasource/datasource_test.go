package datasource

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func testClient(retries int) *Client {
	return &Client{HTTP: &http.Client{Timeout: 5 * time.Second}, MaxRetries: retries, InitialBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond}
}

func TestGetRetry(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := n.Add(1)
		switch r.URL.Path {
		case "/eventually":
			if c < 3 {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			w.Write([]byte("body"))
		case "/gone":
			w.WriteHeader(http.StatusGone)
		default:
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	ctx := t.Context()

	n.Store(0)
	b, err := testClient(5).GetRetry(ctx, srv.URL+"/eventually")
	if err != nil || string(b) != "body" || n.Load() != 3 {
		t.Errorf("eventually: %q %v after %d requests", b, err, n.Load())
	}
	n.Store(0)
	_, err = testClient(5).GetRetry(ctx, srv.URL+"/gone")
	if !errors.Is(err, ErrNotFound) || n.Load() != 1 {
		t.Errorf("4xx: %v after %d requests (want 1, not retried)", err, n.Load())
	}
	n.Store(0)
	_, err = testClient(4).GetRetry(ctx, srv.URL+"/broken")
	if err == nil || !strings.Contains(err.Error(), "Unable to fetch data. Maximum retries reached: 4") || n.Load() != 4 {
		t.Errorf("5xx: %v after %d requests", err, n.Load())
	}
	if _, err := testClient(4).GetRetry(ctx, "file:///etc/passwd"); !errors.Is(err, ErrInvalidURL) {
		t.Errorf("file URL: %v", err)
	}
}

type fakeSource struct {
	name    string
	availAt time.Time
	changes bool
	checks  atomic.Int32
}

func (f *fakeSource) Type() string { return f.name }
func (f *fakeSource) IsAvailable(context.Context) bool {
	f.checks.Add(1)
	return !time.Now().Before(f.availAt)
}
func (f *fakeSource) AvailabilityChanges() bool                       { return f.changes }
func (f *fakeSource) FetchUserdata(context.Context) ([]byte, error)   { return nil, nil }
func (f *fakeSource) FetchMetadata(context.Context) (Metadata, error) { return Metadata{}, nil }

func TestSelect(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	never := &fakeSource{name: "never", availAt: time.Now().Add(time.Hour), changes: true}
	later := &fakeSource{name: "later", availAt: time.Now().Add(250 * time.Millisecond), changes: true}
	ds, err := Select(t.Context(), []Datasource{never, later}, 10*time.Second, log)
	if err != nil || ds != later {
		t.Fatalf("Select = %v, %v", ds, err)
	}
	if later.checks.Load() < 2 {
		t.Errorf("later was checked %d times; want polling", later.checks.Load())
	}
	once := &fakeSource{name: "once", availAt: time.Now().Add(time.Hour)}
	start := time.Now()
	if _, err := Select(t.Context(), []Datasource{once}, time.Minute, log); !errors.Is(err, ErrNoneAvailable) {
		t.Errorf("Select(once) err = %v", err)
	}
	if once.checks.Load() != 1 || time.Since(start) > 30*time.Second {
		t.Errorf("a source whose availability never changes is checked once; got %d", once.checks.Load())
	}
	if _, err := Select(t.Context(), []Datasource{never}, 200*time.Millisecond, log); !errors.Is(err, ErrNoneAvailable) {
		t.Errorf("timeout: %v", err)
	}
}

func TestConfigDrive(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "openstack/latest"), 0o755)
	cd := ConfigDrive{Root: dir}
	ud, err := cd.FetchUserdata(t.Context())
	if err != nil || ud != nil {
		t.Errorf("missing user_data: %q %v", ud, err)
	}
	os.WriteFile(filepath.Join(dir, "openstack/latest/meta_data.json"), []byte(`{"hostname":"h","public_keys":{"k":"ssh-rsa AAA"}}`), 0o644)
	md, err := cd.FetchMetadata(t.Context())
	if err != nil || md.Hostname != "h" || md.SSHPublicKeys["k"] != "ssh-rsa AAA" || md.PublicIPv4 != nil {
		t.Errorf("metadata %+v %v", md, err)
	}
	os.WriteFile(filepath.Join(dir, "openstack/latest/meta_data.json"), []byte(`{`), 0o644)
	if _, err := cd.FetchMetadata(t.Context()); err == nil {
		t.Error("broken meta_data.json accepted")
	}
}
