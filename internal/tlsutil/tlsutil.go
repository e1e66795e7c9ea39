package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Info is one TLS flag set, as etcd 2.x's transport.TLSInfo:
//
//	--cert-file        CertFile        --peer-cert-file
//	--key-file         KeyFile         --peer-key-file
//	--trusted-ca-file  TrustedCAFile   --peer-trusted-ca-file
//	--client-cert-auth ClientCertAuth  --peer-client-cert-auth
//	--ca-file          CAFile          --peer-ca-file (deprecated)
//
// CAFile is the deprecated form: it means TrustedCAFile plus
// ClientCertAuth. Both CA files may be given; their certificates are pooled.
type Info struct {
	CertFile       string
	KeyFile        string
	TrustedCAFile  string
	ClientCertAuth bool
	CAFile         string
}

// ErrKeyPairIncomplete is returned when only one of CertFile and KeyFile is set.
var ErrKeyPairIncomplete = errors.New("KeyFile and CertFile must both be present")

// Empty reports whether no key pair is configured; etcd then serves and
// dials plain HTTP and legacy -addr URLs stay http.
func (i Info) Empty() bool { return i.CertFile == "" && i.KeyFile == "" }

// ClientCertRequired reports whether a server built from i demands a client
// certificate signed by one of the CAs (--client-cert-auth or --ca-file).
func (i Info) ClientCertRequired() bool { return i.ClientCertAuth || i.CAFile != "" }

// String renders the settings as etcd logs them at start-up.
func (i Info) String() string {
	return fmt.Sprintf("cert = %s, key = %s, ca = %s, trusted-ca = %s, client-cert-auth = %v",
		i.CertFile, i.KeyFile, i.CAFile, i.TrustedCAFile, i.ClientCertAuth)
}

func (i Info) caFiles() []string {
	var out []string
	for _, f := range []string{i.CAFile, i.TrustedCAFile} {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (i Info) baseConfig() (*tls.Config, error) {
	if i.CertFile == "" || i.KeyFile == "" {
		return nil, fmt.Errorf("%w [key: %q, cert: %q]", ErrKeyPairIncomplete, i.KeyFile, i.CertFile)
	}
	cert, err := tls.LoadX509KeyPair(i.CertFile, i.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: load key pair: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// CertPool reads PEM certificates from files into a new pool. A file without
// any certificate is an error.
func CertPool(files ...string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	for _, f := range files {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("tlsutil: read CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tlsutil: no certificates found in %s", f)
		}
	}
	return pool, nil
}

// ServerConfig returns the configuration for a listener. A key pair is
// required. With ClientCertAuth or CAFile, clients must present a
// certificate signed by one of the CA files (tls.RequireAndVerifyClientCert);
// otherwise no client certificate is asked for.
func (i Info) ServerConfig() (*tls.Config, error) {
	cfg, err := i.baseConfig()
	if err != nil {
		return nil, err
	}
	cfg.ClientAuth = tls.NoClientCert
	if i.ClientCertRequired() {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if cas := i.caFiles(); len(cas) > 0 {
		if cfg.ClientCAs, err = CertPool(cas...); err != nil {
			return nil, err
		}
	} else if i.ClientCertRequired() {
		return nil, errors.New("tlsutil: client-cert-auth needs a trusted CA file")
	}
	return cfg, nil
}

// ClientConfig returns the configuration for dialing servers: the key pair,
// if any, is presented as the client certificate; the CA files, if any,
// replace the system roots for verifying servers.
func (i Info) ClientConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if !i.Empty() {
		var err error
		if cfg, err = i.baseConfig(); err != nil {
			return nil, err
		}
	}
	if cas := i.caFiles(); len(cas) > 0 {
		pool, err := CertPool(cas...)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
