package discoverymain

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
)

// certs writes a CA, a server certificate for 127.0.0.1 and a client
// certificate into dir and returns their paths.
type certFiles struct{ ca, serverCert, serverKey, clientCert, clientKey string }

func writeCerts(t *testing.T, dir string) certFiles {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "discovery test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(serial int64, usage x509.ExtKeyUsage, name string) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kder)
	}
	f := certFiles{ca: write("ca.pem", "CERTIFICATE", caDER)}
	f.serverCert, f.serverKey = leaf(2, x509.ExtKeyUsageServerAuth, "server")
	f.clientCert, f.clientKey = leaf(3, x509.ExtKeyUsageClientAuth, "client")
	return f
}

// TestTLSStore: the service reaches a store that serves https and demands a
// client certificate, with --etcd https://… and the TLS file flags.
func TestTLSStore(t *testing.T) {
	if !etcdtest.HaveReference() {
		t.Skipf("SKIP: %s not installed (apt-get install etcd-server)", etcdtest.ReferenceBinary)
	}
	dir := t.TempDir()
	c := writeCerts(t, dir)
	clientURL := fmt.Sprintf("https://127.0.0.1:%d", etcdtest.FreePort(t))
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t))
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(etcdtest.ReferenceBinary, "--enable-v2", "--name", "tls", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL, "--initial-cluster", "tls="+peerURL,
		"--cert-file", c.serverCert, "--key-file", c.serverKey, "--client-cert-auth", "--trusted-ca-file", c.ca)
	cmd.Stdout, cmd.Stderr, cmd.Env = logf, logf, cleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("etcd log:\n%s", b)
		}
		logf.Close()
	})
	// Wait until the store answers a client with a certificate.
	o := Options{EtcdCAFile: c.ca, EtcdCertFile: c.clientCert, EtcdKeyFile: c.clientKey}
	hc, err := storeClient(o)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := hc.Get(clientURL + "/v2/keys/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("TLS store not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	base := startDiscovery(t, clientURL, "--etcd-cafile", c.ca, "--etcd-certfile", c.clientCert, "--etcd-keyfile", c.clientKey)
	tokURL := newToken(t, base, 3)
	r := doGet(t, tokURL+"/_config/size")
	if r.status != http.StatusOK || !strings.Contains(r.body, `"value":"3"`) {
		t.Fatalf("GET size through TLS: %d %q", r.status, r.body)
	}

	// Without the client certificate the store refuses, and the service says
	// it cannot generate a token.
	base2 := startDiscovery(t, clientURL, "--etcd-cafile", c.ca)
	resp, err := http.Get(base2 + "/new")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/new without a client certificate: %d, want 503", resp.StatusCode)
	}
}

func TestStoreClientErrors(t *testing.T) {
	dir := t.TempDir()
	c := writeCerts(t, dir)
	bogus := filepath.Join(dir, "bogus.pem")
	os.WriteFile(bogus, []byte("not pem"), 0o600)
	for _, tt := range []struct {
		o    Options
		want string
	}{
		{Options{EtcdCAFile: filepath.Join(dir, "missing.pem")}, "--etcd-cafile"},
		{Options{EtcdCAFile: bogus}, "no PEM certificates found"},
		{Options{EtcdCertFile: c.clientCert, EtcdKeyFile: c.serverKey}, "--etcd-certfile/--etcd-keyfile"},
	} {
		if _, err := storeClient(tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("storeClient(%+v) = %v, want error containing %q", tt.o, err, tt.want)
		}
	}
	hc, err := storeClient(Options{EtcdCAFile: c.ca, EtcdCertFile: c.clientCert, EtcdKeyFile: c.clientKey})
	if err != nil {
		t.Fatal(err)
	}
	tc := hc.Transport.(*http.Transport).TLSClientConfig
	if tc == nil || tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.MinVersion != tls.VersionTLS12 {
		t.Fatalf("TLS config not applied: %+v", tc)
	}
}

type getReply struct {
	status int
	body   string
}

func doGet(t *testing.T, u string) getReply {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return getReply{resp.StatusCode, string(b)}
}
