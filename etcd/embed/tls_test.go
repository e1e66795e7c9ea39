package embed

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/tlsutil"
	"github.com/corekit/corekit/internal/tlsutil/tlstest"
)

// httpsClient trusts the test CA and presents cert/key when given.
func httpsClient(t *testing.T, ca, cert, key string) *http.Client {
	t.Helper()
	tc, err := tlsutil.Info{TrustedCAFile: ca, CertFile: cert, KeyFile: key}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
}

func putWith(c *http.Client, base, key, value string) (int, error) {
	req, _ := http.NewRequest(http.MethodPut, base+"/v2/keys"+key, strings.NewReader(url.Values{"value": {value}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// TestClientTLS: an https client URL serves TLS only; with client-cert
// auth, a client without a certificate or with one from another CA is
// refused during the handshake.
func TestClientTLS(t *testing.T) {
	f := tlstest.Generate(t)
	for _, tc := range []struct {
		name     string
		info     tlsutil.Info
		needCert bool
	}{
		{"server-only", tlsutil.Info{CertFile: f.ServerCert, KeyFile: f.ServerKey}, false},
		{"client-cert-auth", tlsutil.Info{CertFile: f.ServerCert, KeyFile: f.ServerKey, TrustedCAFile: f.CAFile, ClientCertAuth: true}, true},
		{"ca-file (0.4)", tlsutil.Info{CertFile: f.ServerCert, KeyFile: f.ServerKey, CAFile: f.CAFile}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := fmt.Sprintf("https://127.0.0.1:%d", etcdtest.FreePort(t))
			e, err := Start(t.Context(), Config{DataDir: t.TempDir(), ListenClientURLs: []string{u}, ClientTLS: tc.info})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.Close() })
			if !strings.HasPrefix(e.ClientURL(), "https://") {
				t.Fatalf("advertised client URL %s is not https", e.ClientURL())
			}
			<-e.Ready()
			good := httpsClient(t, f.CAFile, f.ClientCert, f.ClientKey)
			code, err := putWith(good, e.ClientURL(), "/tls", "yes")
			if err != nil || code != http.StatusCreated {
				t.Fatalf("PUT over TLS with a client certificate: %d %v", code, err)
			}
			// Plain HTTP to the TLS port is refused (Go answers 400
			// "Client sent an HTTP request to an HTTPS server").
			plainURL := "http://" + strings.TrimPrefix(e.ClientURL(), "https://")
			code, err = putWith(&http.Client{Timeout: 5 * time.Second}, plainURL, "/plain", "no")
			if err == nil && code < 400 {
				t.Errorf("plain HTTP to an https listener: %d, want refusal", code)
			}
			noCert := httpsClient(t, f.CAFile, "", "")
			foreign := httpsClient(t, f.CAFile, f.ForeignCert, f.ForeignKey)
			for name, c := range map[string]*http.Client{"no certificate": noCert, "foreign certificate": foreign} {
				code, err := putWith(c, e.ClientURL(), "/anon", "x")
				switch {
				case tc.needCert && err == nil:
					t.Errorf("%s: PUT answered %d, want a TLS handshake failure", name, code)
				case !tc.needCert && (err != nil || code >= 300):
					t.Errorf("%s without client-cert auth: %d %v", name, code, err)
				}
			}
			// The server's certificate must verify: a client trusting
			// nothing is refused.
			if _, err := putWith(&http.Client{Timeout: 5 * time.Second}, e.ClientURL(), "/x", "y"); err == nil {
				t.Error("a client without the test CA accepted the server certificate")
			}
		})
	}
}

// TestHTTPSWithoutKeyPair: an https URL without the key pair is a start-up
// error naming the flags, as etcd's.
func TestHTTPSWithoutKeyPair(t *testing.T) {
	_, err := Start(t.Context(), Config{DataDir: t.TempDir(), ListenClientURLs: []string{"https://127.0.0.1:0"}})
	if err == nil || !strings.Contains(err.Error(), "--cert-file") {
		t.Fatalf("err = %v, want a --cert-file/--key-file error", err)
	}
	_, err = Start(t.Context(), Config{DataDir: t.TempDir(), ListenPeerURLs: []string{"https://127.0.0.1:0"}})
	if err == nil || !strings.Contains(err.Error(), "--peer-cert-file") {
		t.Fatalf("err = %v, want a --peer-cert-file/--peer-key-file error", err)
	}
}

// TestPeerTLSCluster: three members on https peer URLs with peer
// client-cert auth elect a leader, replicate, and forward follower writes
// (raft and peer HTTP both inside TLS); the peer port refuses plain HTTP
// and TLS clients without a peer certificate.
func TestPeerTLSCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: multi-member cluster test (-short)")
	}
	f := tlstest.Generate(t)
	peerInfo := tlsutil.Info{CertFile: f.PeerCert, KeyFile: f.PeerKey, TrustedCAFile: f.CAFile, ClientCertAuth: true}
	const n = 3
	var peers, clients, parts []string
	for i := 0; i < n; i++ {
		peers = append(peers, fmt.Sprintf("https://127.0.0.1:%d", etcdtest.FreePort(t)))
		clients = append(clients, fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t)))
		parts = append(parts, fmt.Sprintf("m%d=%s", i, peers[i]))
	}
	ms := make([]*Etcd, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ms[i], errs[i] = Start(t.Context(), Config{
				Name: fmt.Sprintf("m%d", i), DataDir: t.TempDir(),
				ListenClientURLs: clients[i : i+1], ListenPeerURLs: peers[i : i+1],
				InitialCluster: strings.Join(parts, ","), PeerTLS: peerInfo,
				HeartbeatInterval: 20 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
			})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		t.Cleanup(func() { ms[i].Close() })
	}
	// A write on every member (two of them forward to the leader over
	// https) is read back on that member.
	deadline := time.Now().Add(20 * time.Second)
	for i, m := range ms {
		for {
			code, err := putWith(http.DefaultClient, m.ClientURL(), fmt.Sprintf("/k%d", i), "v")
			if err == nil && code == http.StatusCreated {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("PUT on member %d: %d %v", i, code, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if ev, code := getKey(t, m.ClientURL(), fmt.Sprintf("/k%d", i)); code != 200 || ev.Node.StringValue() != "v" {
			t.Errorf("read-your-write on member %d: %d", i, code)
		}
	}
	for _, m := range ms {
		if l, ok := m.Server.Leader(); !ok || l == 0 {
			t.Errorf("member %s knows no leader", m.Server.Members()[0].Name)
		}
	}
	// The peer port speaks TLS only and wants a peer certificate.
	peer := ms[0].PeerURLs()[0]
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + strings.TrimPrefix(peer, "https://") + "/members"); err == nil {
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("plain HTTP /members on the TLS peer port: %d", resp.StatusCode)
		}
	}
	if _, err := httpsClient(t, f.CAFile, "", "").Get(peer + "/members"); err == nil {
		t.Error("peer port accepted a client without a certificate")
	}
	resp, err := httpsClient(t, f.CAFile, f.PeerCert, f.PeerKey).Get(peer + "/members")
	if err != nil {
		t.Fatalf("GET /members with the peer certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /members with the peer certificate: %d", resp.StatusCode)
	}
}
