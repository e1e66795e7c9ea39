// Package tlstest writes throw-away certificates for tests: a CA, a server
// certificate, a client certificate and a peer certificate (server and
// client auth) signed by it (all valid for 127.0.0.1, ::1 and localhost),
// and a client certificate from an unrelated CA. Files go to t.TempDir(). Test-only; keys are ECDSA P-256.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Files names the PEM files Generate wrote.
type Files struct {
	CAFile                  string // the CA certificate
	ServerCert, ServerKey   string // server auth, signed by the CA
	ClientCert, ClientKey   string // client auth, signed by the CA
	ForeignCert, ForeignKey string // client auth, signed by another CA
	// PeerCert/PeerKey: server and client auth, signed by the CA (what an
	// etcd member presents on its peer port and when it dials its peers).
	PeerCert, PeerKey string
}

type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// Generate creates the certificates in a fresh t.TempDir().
func Generate(t testing.TB) Files {
	t.Helper()
	dir := t.TempDir()
	ca := newCA(t, "corekit test CA")
	other := newCA(t, "unrelated CA")
	f := Files{CAFile: filepath.Join(dir, "ca.pem")}
	writePEM(t, f.CAFile, "CERTIFICATE", ca.cert.Raw)
	f.ServerCert, f.ServerKey = leaf(t, dir, "server", ca, x509.ExtKeyUsageServerAuth)
	f.ClientCert, f.ClientKey = leaf(t, dir, "client", ca, x509.ExtKeyUsageClientAuth)
	f.ForeignCert, f.ForeignKey = leaf(t, dir, "foreign", other, x509.ExtKeyUsageClientAuth)
	f.PeerCert, f.PeerKey = leaf(t, dir, "peer", ca, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	return f
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newCA(t testing.TB, cn string) issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return issuer{cert: cert, key: key}
}

func leaf(t testing.TB, dir, name string, ca issuer, usage ...x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	return certFile, keyFile
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
