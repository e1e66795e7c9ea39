package etcdmain

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/etcd/embed"
	"github.com/corekit/corekit/internal/etcdtest"
)

func TestParseDefaults(t *testing.T) {
	cfg, err := parseConfig(nil, nil, "", &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Name: "default", DataDir: "default.etcd", SnapshotCount: 10000, HeartbeatMs: 100, ElectionMs: 1000,
		ListenPeerURLs:           []string{"http://localhost:2380", "http://localhost:7001"},
		ListenClientURLs:         []string{"http://localhost:2379", "http://localhost:4001"},
		InitialAdvertisePeerURLs: []string{"http://localhost:2380", "http://localhost:7001"},
		AdvertiseClientURLs:      []string{"http://localhost:2379", "http://localhost:4001"},
		InitialCluster:           "default=http://localhost:2380,default=http://localhost:7001",
		InitialClusterState:      "new", InitialClusterToken: "etcd-cluster",
		MaxSnapshots: 5, MaxWals: 5, DiscoveryFallback: "proxy", DiscoveryDefaultSize: 3, Proxy: "off",
		ProxyFailureWaitMs: 5000, ProxyRefreshIntervalMs: 30000, ProxyDialTimeoutMs: 1000, ProxyWriteTimeoutMs: 5000,
		Warnings: []string{"no data-dir provided, using default data-dir ./default.etcd"},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestFlagEnvPrecedence(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   []string
		check func(t *testing.T, c *Config)
	}{
		{"env used", nil, []string{"ETCD_NAME=infra1", "ETCD_SNAPSHOT_COUNT=42"}, func(t *testing.T, c *Config) {
			if c.Name != "infra1" || c.SnapshotCount != 42 {
				t.Errorf("got name %q count %d", c.Name, c.SnapshotCount)
			}
			if c.DataDir != "infra1.etcd" || c.InitialCluster != "infra1=http://localhost:2380,infra1=http://localhost:7001" {
				t.Errorf("name-derived defaults: %q %q", c.DataDir, c.InitialCluster)
			}
		}},
		{"discovery default size from env", nil, []string{"ETCD_DISCOVERY_DEFAULT_SIZE=5"}, func(t *testing.T, c *Config) {
			if c.DiscoveryDefaultSize != 5 || c.discoveryDefaultSize() != 5 {
				t.Errorf("discovery default size = %d", c.DiscoveryDefaultSize)
			}
		}},
		{"discovery default size 0 disables", []string{"--discovery-default-size", "0"}, nil, func(t *testing.T, c *Config) {
			if c.discoveryDefaultSize() >= 0 {
				t.Errorf("--discovery-default-size 0 maps to %d, want negative (disabled)", c.discoveryDefaultSize())
			}
		}},
		{"flag wins", []string{"--name", "fromflag"}, []string{"ETCD_NAME=fromenv"}, func(t *testing.T, c *Config) {
			if c.Name != "fromflag" {
				t.Errorf("name = %q", c.Name)
			}
		}},
		{"single dash", []string{"-name=one", "-data-dir", "/tmp/x"}, nil, func(t *testing.T, c *Config) {
			if c.Name != "one" || c.DataDir != "/tmp/x" {
				t.Errorf("got %q %q", c.Name, c.DataDir)
			}
		}},
		{"empty env ignored", nil, []string{"ETCD_NAME=", "ETCD_ELECTION_TIMEOUT="}, func(t *testing.T, c *Config) {
			if c.Name != "default" || c.ElectionMs != 1000 {
				t.Errorf("got %q %d", c.Name, c.ElectionMs)
			}
		}},
		{"unknown env warns", nil, []string{"ETCD_BOGUS=1"}, func(t *testing.T, c *Config) {
			if !strings.Contains(strings.Join(c.Warnings, "\n"), "unrecognized environment variable ETCD_BOGUS") {
				t.Errorf("warnings: %q", c.Warnings)
			}
		}},
		{"env urls", nil, []string{"ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:5000", "ETCD_ADVERTISE_CLIENT_URLS=http://127.0.0.1:5000"}, func(t *testing.T, c *Config) {
			if !reflect.DeepEqual(c.ListenClientURLs, []string{"http://127.0.0.1:5000"}) {
				t.Errorf("got %v", c.ListenClientURLs)
			}
		}},
		{"legacy addr", []string{"-addr", "127.0.0.1:4001", "-bind-addr", "127.0.0.1:4001",
			"-peer-addr", "127.0.0.1:7001", "-peer-bind-addr", "127.0.0.1:7001", "-initial-cluster", "default=http://127.0.0.1:7001"}, nil,
			func(t *testing.T, c *Config) {
				if !reflect.DeepEqual(c.AdvertiseClientURLs, []string{"http://127.0.0.1:4001"}) ||
					!reflect.DeepEqual(c.ListenClientURLs, []string{"http://127.0.0.1:4001"}) ||
					!reflect.DeepEqual(c.InitialAdvertisePeerURLs, []string{"http://127.0.0.1:7001"}) ||
					!reflect.DeepEqual(c.ListenPeerURLs, []string{"http://127.0.0.1:7001"}) {
					t.Errorf("got %+v", c)
				}
			}},
		{"legacy addr env", nil, []string{"ETCD_ADDR=10.0.0.1:4001", "ETCD_PEER_ADDR=10.0.0.1:7001", "ETCD_INITIAL_CLUSTER=default=http://10.0.0.1:7001"},
			func(t *testing.T, c *Config) {
				if !reflect.DeepEqual(c.ListenClientURLs, []string{"http://[::]:4001"}) ||
					!reflect.DeepEqual(c.AdvertiseClientURLs, []string{"http://10.0.0.1:4001"}) {
					t.Errorf("got %+v", c)
				}
			}},
		{"ignored legacy flag", []string{"-snapshot=true"}, nil, func(t *testing.T, c *Config) {
			if !strings.Contains(strings.Join(c.Warnings, "\n"), `flag "-snapshot" is no longer supported - ignoring.`) {
				t.Errorf("warnings: %q", c.Warnings)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.args, tt.env, "", &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg)
		})
	}
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		code int
		want string
	}{
		{"positional", []string{"foo"}, nil, 1, "error verifying flags, 'foo' is not a valid flag. See 'etcd --help'."},
		{"bad flag", []string{"--nope"}, nil, 2, "flag provided but not defined: -nope"},
		{"peers", []string{"-peers", "a,b"}, nil, 2, `invalid value "a,b" for flag -peers: flag "-peers" is no longer supported.`},
		{"peers-file", []string{"-peers-file=x"}, nil, 2, `invalid value "x" for flag -peers-file: flag "-peers-file" is no longer supported.`},
		{"advertise required", []string{"--listen-client-urls", "http://127.0.0.1:1"}, nil, 1,
			"-advertise-client-urls is required when -listen-client-urls is set explicitly"},
		{"election vs heartbeat", []string{"--election-timeout", "400"}, nil, 1,
			"-election-timeout[400ms] should be at least as 5 times as -heartbeat-interval[100ms]"},
		{"election too long", []string{"--election-timeout", "60000"}, nil, 1,
			"-election-timeout[60000ms] is too long, and should be set less than 50000ms"},
		{"env election", nil, []string{"ETCD_ELECTION_TIMEOUT=300"}, 1,
			"-election-timeout[300ms] should be at least as 5 times as -heartbeat-interval[100ms]"},
		{"bad env value", nil, []string{"ETCD_SNAPSHOT_COUNT=many"}, 1, `invalid value "many" for ETCD_SNAPSHOT_COUNT`},
		{"missing self", []string{"--initial-cluster", "other=http://localhost:2380"}, nil, 1,
			`couldn't find local name "default" in the initial cluster configuration`},
		{"advertise not in cluster", []string{"-name", "n1", "--initial-advertise-peer-urls", "http://127.0.0.1:7001",
			"--initial-cluster", "n1=http://127.0.0.1:7002"}, nil, 1,
			"--initial-cluster must include n1=http://127.0.0.1:7001 given --initial-advertise-peer-urls=http://127.0.0.1:7001"},
		{"addr and advertise", []string{"-addr", "127.0.0.1:4001", "--advertise-client-urls", "http://127.0.0.1:4001"}, nil, 1,
			"Set only one of flags -advertise-client-urls and -addr"},
		{"addr not IP", []string{"-addr", "localhost:4001"}, nil, 2, "bad IP in address specification"},
		{"bootstrap conflict", []string{"--initial-cluster", "default=http://localhost:2380", "--discovery", "http://d/x"}, nil, 1,
			`multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery" or "discovery-srv"`},
		{"bad url", []string{"--listen-peer-urls", "ftp://x:1"}, nil, 2, "URL scheme must be http or https"},
		{"bad state", []string{"--initial-cluster-state", "maybe"}, nil, 1, "initial-cluster-state"},
	}
	t.Chdir(t.TempDir()) // a case that wrongly starts must not write here
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithCancel(t.Context())
			cancel() // never serve
			code := RunEnv(ctx, tt.args, tt.env, &out, &errOut)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, errOut.String())
			}
		})
	}
}

func TestVersionAndHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := RunEnv(t.Context(), []string{"--version"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("--version exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || lines[0] != "etcd Version: 2.3.8" || !strings.HasPrefix(lines[1], "Git SHA: ") ||
		!strings.HasPrefix(lines[2], "Go Version: ") || !strings.HasPrefix(lines[3], "Go OS/Arch: ") {
		t.Errorf("--version output:\n%s", out.String())
	}
	out.Reset()
	errOut.Reset()
	if code := RunEnv(t.Context(), []string{"-h"}, nil, &out, &errOut); code != 0 {
		t.Fatalf("-h exit %d", code)
	}
	if !strings.Contains(errOut.String(), "-initial-cluster-token") {
		t.Errorf("help lacks flags:\n%s", errOut.String())
	}
}

func TestRunServesUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int)
	var errOut bytes.Buffer
	go func() {
		done <- RunEnv(ctx, []string{"--data-dir", dir,
			"--listen-client-urls", "http://127.0.0.1:0", "--advertise-client-urls", "http://127.0.0.1:0",
			"--listen-peer-urls", "http://127.0.0.1:0", "--initial-advertise-peer-urls", "http://127.0.0.1:0",
			"--initial-cluster", "default=http://127.0.0.1:0"}, nil, &bytes.Buffer{}, &syncWriter{w: &errOut})
	}()
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d after cancel:\n%s", code, errOut.String())
	}
}

// TestProxyMode runs etcdmain as a read-write proxy in front of a member
// and checks that requests pass through.
func TestProxyMode(t *testing.T) {
	dir := t.TempDir()
	member, err := embed.Start(t.Context(), embed.Config{DataDir: filepath.Join(dir, "member.etcd")})
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	port := etcdtest.FreePort(t)
	proxyURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	var errOut bytes.Buffer
	go func() {
		done <- RunEnv(ctx, []string{"--proxy", "on", "--data-dir", filepath.Join(dir, "proxy.etcd"),
			"--listen-client-urls", proxyURL,
			"--initial-cluster", "default=" + member.PeerURLs()[0]}, nil, &bytes.Buffer{}, &syncWriter{w: &errOut})
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(proxyURL + "/v2/keys/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy never served: %v\n%s", err, errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	req, _ := http.NewRequest(http.MethodPut, proxyURL+"/v2/keys/p", strings.NewReader("value=via-proxy"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT through proxy: %d", resp.StatusCode)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("proxy exit %d:\n%s", code, errOut.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "proxy.etcd", "proxy", "cluster")); err != nil {
		t.Errorf("proxy cluster file not written: %v", err)
	}
}

func TestTLSFlags(t *testing.T) {
	cfg, err := parseConfig([]string{
		"--cert-file", "c.pem", "--key-file", "k.pem", "--trusted-ca-file", "ca.pem", "--client-cert-auth",
		"--peer-cert-file", "pc.pem", "--peer-key-file", "pk.pem", "--peer-ca-file", "pca.pem",
	}, []string{"ETCD_CA_FILE=old-ca.pem"}, "", &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	c, p := cfg.ClientTLS, cfg.PeerTLS
	if c.CertFile != "c.pem" || c.KeyFile != "k.pem" || c.TrustedCAFile != "ca.pem" || !c.ClientCertAuth || c.CAFile != "old-ca.pem" {
		t.Errorf("client TLS = %+v", c)
	}
	if p.CertFile != "pc.pem" || p.KeyFile != "pk.pem" || p.CAFile != "pca.pem" || p.ClientCertAuth || !p.ClientCertRequired() {
		t.Errorf("peer TLS = %+v", p)
	}
}
