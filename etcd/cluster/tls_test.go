package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/tlsutil/tlstest"
)

// TestTLSClusterWithEtcdctl: three members started with the TLS flags
// (https client and peer URLs, client-cert auth on both) form a cluster;
// Debian's etcdctl with a client certificate writes, reads and checks
// health; without one it is refused.
func TestTLSClusterWithEtcdctl(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: multi-process cluster test (-short)")
	}
	f := tlstest.Generate(t)
	c := &cluster{t: t, kind: etcdtest.Ours, bin: binary(t, etcdtest.Ours)}
	var parts []string
	for _, name := range []string{"m1", "m2", "m3"} {
		m := newMember(t, name)
		m.PeerURL = strings.Replace(m.PeerURL, "http://", "https://", 1)
		m.ClientURL = strings.Replace(m.ClientURL, "http://", "https://", 1)
		c.Members = append(c.Members, m)
		parts = append(parts, m.Name+"="+m.PeerURL)
	}
	for _, m := range c.Members {
		m.bin = c.bin
		m.args = append(m.baseArgs(c.kind, strings.Join(parts, ","), "new"),
			"--cert-file", f.ServerCert, "--key-file", f.ServerKey,
			"--trusted-ca-file", f.CAFile, "--client-cert-auth",
			"--peer-cert-file", f.PeerCert, "--peer-key-file", f.PeerKey,
			"--peer-ca-file", f.CAFile) // 0.4's form: trusted CA + client-cert auth
		m.start(t)
	}
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.ClientURL)
	}
	certArgs := []string{"--ca-file", f.CAFile, "--cert-file", f.ClientCert, "--key-file", f.ClientKey}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := etcdctl(t, eps, append(certArgs, "cluster-health")...)
		if err == nil && strings.HasSuffix(strings.TrimSpace(out), "cluster is healthy") {
			if n := strings.Count(out, "is healthy: got healthy result from https://"); n != 3 {
				t.Errorf("cluster-health over TLS lists %d healthy members:\n%s", n, out)
			}
			break
		}
		if time.Now().After(deadline) {
			c.dumpLogs()
			t.Fatalf("etcdctl cluster-health over TLS: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A write through each member (followers forward over peer TLS).
	for _, m := range c.Members {
		if out, err := etcdctl(t, []string{m.ClientURL}, append(certArgs, "set", "/tls/"+m.Name, "v-"+m.Name)...); err != nil {
			t.Fatalf("etcdctl set via %s: %v\n%s", m.Name, err, out)
		}
	}
	for _, m := range c.Members {
		out, err := etcdctl(t, []string{c.Members[0].ClientURL}, append(certArgs, "get", "/tls/"+m.Name)...)
		if err != nil || strings.TrimSpace(out) != "v-"+m.Name {
			t.Errorf("etcdctl get /tls/%s: %v %q", m.Name, err, out)
		}
	}
	// A proxy (--proxy on) with the same flags reaches the members over TLS
	// and serves https itself.
	px := newMember(t, "proxy")
	px.ClientURL = strings.Replace(px.ClientURL, "http://", "https://", 1)
	px.bin = c.bin
	px.args = []string{"--proxy", "on", "--name", "proxy", "--data-dir", px.DataDir,
		"--listen-client-urls", px.ClientURL, "--advertise-client-urls", px.ClientURL,
		"--initial-cluster", strings.Join(parts, ","),
		"--cert-file", f.ServerCert, "--key-file", f.ServerKey, "--trusted-ca-file", f.CAFile, "--client-cert-auth",
		"--peer-cert-file", f.PeerCert, "--peer-key-file", f.PeerKey, "--peer-trusted-ca-file", f.CAFile}
	px.start(t)
	deadline = time.Now().Add(20 * time.Second)
	for {
		out, err := etcdctl(t, []string{px.ClientURL}, append(certArgs, "--no-sync", "get", "/tls/m2")...)
		if err == nil && strings.TrimSpace(out) == "v-m2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcdctl get through the TLS proxy: %v %q\n%s", err, out, px.logTail())
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Without a client certificate: refused.
	if out, err := etcdctl(t, eps[:1], "--ca-file", f.CAFile, "get", "/tls/m1"); err == nil {
		t.Errorf("etcdctl without a client certificate succeeded: %q", out)
	}
	// Plain http to the https port: refused.
	if out, err := etcdctl(t, []string{strings.Replace(eps[0], "https://", "http://", 1)}, "get", "/tls/m1"); err == nil {
		t.Errorf("etcdctl over plain http succeeded: %q", out)
	}
}
