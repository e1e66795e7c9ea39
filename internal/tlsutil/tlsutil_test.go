package tlsutil_test

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/corekit/corekit/internal/tlsutil"
	"github.com/corekit/corekit/internal/tlsutil/tlstest"
)

// serve starts an HTTPS server on a loopback port with the server config of
// info; it answers "ok" on every path.
func serve(t *testing.T, info tlsutil.Info) string {
	t.Helper()
	cfg, err := info.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:  http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }),
		ErrorLog: log.New(io.Discard, "", 0), // refused handshakes are expected
	}
	go srv.Serve(tls.NewListener(l, cfg))
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

func client(t *testing.T, info tlsutil.Info) *http.Client {
	t.Helper()
	cfg, err := info.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.Status + " " + string(b), err
}

// A TLS listener speaks only TLS: Go's server answers a plain HTTP request
// with "400 Bad Request" and closes the connection, it never serves it.
func TestServerRefusesPlainHTTP(t *testing.T) {
	f := tlstest.Generate(t)
	addr := serve(t, tlsutil.Info{CertFile: f.ServerCert, KeyFile: f.ServerKey})
	got, err := get(http.DefaultClient, "http://"+addr+"/")
	if err != nil {
		t.Fatalf("plain GET: %v", err)
	}
	if !strings.HasPrefix(got, "400") || !strings.Contains(got, "HTTP request to an HTTPS server") || strings.HasSuffix(got, " ok") {
		t.Fatalf("plain GET answered %q, want a 400 refusal", got)
	}
	// The same server works over TLS for a client trusting the CA.
	got, err = get(client(t, tlsutil.Info{TrustedCAFile: f.CAFile}), "https://"+addr+"/")
	if err != nil || got != "200 OK ok" {
		t.Fatalf("TLS GET = %q, %v", got, err)
	}
	// localhost is a SAN as well.
	_, port, _ := net.SplitHostPort(addr)
	if got, err = get(client(t, tlsutil.Info{TrustedCAFile: f.CAFile}), "https://localhost:"+port+"/"); err != nil || got != "200 OK ok" {
		t.Fatalf("TLS GET via localhost = %q, %v", got, err)
	}
	// A client without the CA does not trust the server.
	if _, err := get(client(t, tlsutil.Info{}), "https://"+addr+"/"); err == nil {
		t.Fatal("client without the CA accepted the test server's certificate")
	}
}

func TestClientCertAuth(t *testing.T) {
	f := tlstest.Generate(t)
	for _, tc := range []struct {
		name     string
		server   tlsutil.Info
		requires bool
	}{
		{"client-cert-auth", tlsutil.Info{CertFile: f.ServerCert, KeyFile: f.ServerKey, TrustedCAFile: f.CAFile, ClientCertAuth: true}, true},
		{"deprecated ca-file", tlsutil.Info{CertFile: f.ServerCert, KeyFile: f.ServerKey, CAFile: f.CAFile}, true},
		{"trusted-ca-file only", tlsutil.Info{CertFile: f.ServerCert, KeyFile: f.ServerKey, TrustedCAFile: f.CAFile}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := "https://" + serve(t, tc.server) + "/"
			valid := client(t, tlsutil.Info{CertFile: f.ClientCert, KeyFile: f.ClientKey, TrustedCAFile: f.CAFile})
			if got, err := get(valid, url); err != nil || got != "200 OK ok" {
				t.Fatalf("valid client cert: %q, %v", got, err)
			}
			none := client(t, tlsutil.Info{TrustedCAFile: f.CAFile})
			foreign := client(t, tlsutil.Info{CertFile: f.ForeignCert, KeyFile: f.ForeignKey, TrustedCAFile: f.CAFile})
			for name, c := range map[string]*http.Client{"no cert": none, "foreign cert": foreign} {
				got, err := get(c, url)
				if tc.requires && err == nil {
					t.Errorf("%s: accepted (%q), want refused", name, got)
				}
				if !tc.requires && (err != nil || got != "200 OK ok") {
					t.Errorf("%s: %q, %v; want accepted without client-cert-auth", name, got, err)
				}
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	f := tlstest.Generate(t)
	empty := filepath.Join(t.TempDir(), "empty.pem")
	if err := os.WriteFile(empty, []byte("not pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (tlsutil.Info{CertFile: f.ServerCert}).ServerConfig(); !errors.Is(err, tlsutil.ErrKeyPairIncomplete) {
		t.Errorf("cert without key: %v", err)
	}
	if _, err := (tlsutil.Info{KeyFile: f.ClientKey}).ClientConfig(); !errors.Is(err, tlsutil.ErrKeyPairIncomplete) {
		t.Errorf("client key without cert: %v", err)
	}
	if _, err := (tlsutil.Info{CertFile: f.ServerCert, KeyFile: f.ClientKey}).ServerConfig(); err == nil {
		t.Error("mismatched key pair accepted")
	}
	if _, err := (tlsutil.Info{CertFile: f.ServerCert, KeyFile: f.ServerKey, TrustedCAFile: empty}).ServerConfig(); err == nil || !strings.Contains(err.Error(), "no certificates found") {
		t.Errorf("CA file without certificates: %v", err)
	}
	if _, err := (tlsutil.Info{TrustedCAFile: filepath.Join(t.TempDir(), "missing.pem")}).ClientConfig(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing CA file: %v", err)
	}
	if _, err := (tlsutil.Info{CertFile: f.ServerCert, KeyFile: f.ServerKey, ClientCertAuth: true}).ServerConfig(); err == nil {
		t.Error("client-cert-auth without any CA accepted")
	}
	if !(tlsutil.Info{}).Empty() || (tlsutil.Info{KeyFile: "k"}).Empty() {
		t.Error("Empty is wrong")
	}
}
