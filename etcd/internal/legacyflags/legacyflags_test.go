package legacyflags

import (
	"errors"
	"slices"
	"testing"
)

func TestTranslate(t *testing.T) {
	tests := []struct {
		name      string
		args, env []string
		opts      Options
		wantArgs  []string
		wantEnv   []string
		wantWarn  []string
		wantErr   string
		wantUsage bool
	}{
		{
			name:     "no legacy settings pass through",
			args:     []string{"--name", "a", "--debug", "--data-dir", "/d"},
			env:      []string{"PATH=/bin", "ETCD_NAME=b"},
			wantArgs: []string{"--name", "a", "--debug", "--data-dir", "/d"},
			wantEnv:  []string{"PATH=/bin", "ETCD_NAME=b"},
		},
		{
			name: "seed cloud-config via environment with discovery",
			env: []string{"ETCD_NAME=m1", "ETCD_ADDR=172.17.8.101:4001", "ETCD_PEER_ADDR=172.17.8.101:7001",
				"ETCD_DISCOVERY=http://172.17.8.1:4001/v2/keys/abc", "HOME=/root"},
			wantEnv: []string{"ETCD_NAME=m1", "ETCD_DISCOVERY=http://172.17.8.1:4001/v2/keys/abc", "HOME=/root",
				"ETCD_INITIAL_ADVERTISE_PEER_URLS=http://172.17.8.101:7001",
				"ETCD_LISTEN_PEER_URLS=http://[::]:7001",
				"ETCD_ADVERTISE_CLIENT_URLS=http://172.17.8.101:4001",
				"ETCD_LISTEN_CLIENT_URLS=http://[::]:4001"},
		},
		{
			name: "0.4 single node: -name and -peer-addr get an initial cluster",
			args: []string{"-name", "n1", "-peer-addr", "127.0.0.1:7001", "-addr=127.0.0.1:4001"},
			wantArgs: []string{
				"--initial-advertise-peer-urls=http://127.0.0.1:7001",
				"--listen-peer-urls=http://[::]:7001",
				"--advertise-client-urls=http://127.0.0.1:4001",
				"--listen-client-urls=http://[::]:4001",
				"--initial-cluster=n1=http://127.0.0.1:7001",
				"-name", "n1"},
		},
		{
			name: "hostname becomes the default name",
			args: []string{"--peer-addr", "10.0.0.2:7001"},
			opts: Options{Hostname: "core-02"},
			wantArgs: []string{"--name=core-02",
				"--initial-advertise-peer-urls=http://10.0.0.2:7001",
				"--listen-peer-urls=http://[::]:7001",
				"--initial-cluster=core-02=http://10.0.0.2:7001"},
		},
		{
			name:     "no initial cluster when joining an existing cluster",
			args:     []string{"-peer-addr", "10.0.0.2:7001", "--initial-cluster-state", "existing"},
			wantArgs: []string{"--initial-advertise-peer-urls=http://10.0.0.2:7001", "--listen-peer-urls=http://[::]:7001", "--initial-cluster-state", "existing"},
		},
		{
			name:     "no initial cluster in proxy mode",
			args:     []string{"-peer-addr", "10.0.0.2:7001"},
			env:      []string{"ETCD_PROXY=on"},
			wantArgs: []string{"--initial-advertise-peer-urls=http://10.0.0.2:7001", "--listen-peer-urls=http://[::]:7001"},
			wantEnv:  []string{"ETCD_PROXY=on"},
		},
		{
			name:     "explicit bind addresses win over the derived [::]",
			args:     []string{"-addr", "10.0.0.1:4001", "-bind-addr", "127.0.0.1:4001", "-peer-bind-addr", "0.0.0.0:7001", "-peer-addr", "10.0.0.1:7001", "--discovery", "http://d/x"},
			wantArgs: []string{"--listen-peer-urls=http://0.0.0.0:7001", "--initial-advertise-peer-urls=http://10.0.0.1:7001", "--listen-client-urls=http://127.0.0.1:4001", "--advertise-client-urls=http://10.0.0.1:4001", "--discovery", "http://d/x"},
		},
		{
			name:     "explicit --listen-client-urls suppresses the derived bind (difference 3)",
			args:     []string{"--listen-client-urls", "http://127.0.0.1:2379", "-addr", "127.0.0.1:2379"},
			wantArgs: []string{"--advertise-client-urls=http://127.0.0.1:2379", "--listen-client-urls", "http://127.0.0.1:2379"},
		},
		{
			name:     "TLS files make https URLs",
			args:     []string{"-addr", "10.0.0.1:4001", "--cert-file=/c", "--key-file", "/k"},
			env:      []string{"ETCD_PEER_CERT_FILE=/pc", "ETCD_PEER_ADDR=10.0.0.1:7001", "ETCD_DISCOVERY_SRV=example.com"},
			wantArgs: []string{"--advertise-client-urls=https://10.0.0.1:4001", "--listen-client-urls=https://[::]:4001", "--cert-file=/c", "--key-file", "/k"},
			wantEnv:  []string{"ETCD_PEER_CERT_FILE=/pc", "ETCD_DISCOVERY_SRV=example.com", "ETCD_INITIAL_ADVERTISE_PEER_URLS=https://10.0.0.1:7001", "ETCD_LISTEN_PEER_URLS=https://[::]:7001"},
		},
		{
			name:     "IPv6 literal",
			args:     []string{"-addr", "[::1]:4001", "-bind-addr", "[::1]:4001"},
			wantArgs: []string{"--listen-client-urls=http://[::1]:4001", "--advertise-client-urls=http://[::1]:4001"},
		},
		{
			name:     "the command line shadows the environment; empty env values are ignored",
			args:     []string{"-addr", "1.1.1.1:1", "--bind-addr=1.1.1.1:1"},
			env:      []string{"ETCD_ADDR=2.2.2.2:2", "ETCD_PEER_ADDR="},
			wantArgs: []string{"--listen-client-urls=http://1.1.1.1:1", "--advertise-client-urls=http://1.1.1.1:1"},
		},
		{
			name:     "ignored flags warn, on the command line and in the environment",
			args:     []string{"-snapshot=true", "-v", "--peer-election-timeout=500", "--data-dir", "/d"},
			env:      []string{"ETCD_MAX_RETRY_ATTEMPTS=3", "ETCD_VV="},
			wantArgs: []string{"--data-dir", "/d"},
			wantWarn: []string{
				`flag "-snapshot" is no longer supported - ignoring.`,
				`flag "-v" is no longer supported - ignoring.`,
				`flag "-peer-election-timeout" is no longer supported - ignoring.`,
				`flag "-max-retry-attempts" is no longer supported - ignoring.`},
		},
		{
			name:     "an ignored flag's separate value stays a positional argument",
			args:     []string{"-peer-election-timeout", "500"},
			wantArgs: []string{"500"},
			wantWarn: []string{`flag "-peer-election-timeout" is no longer supported - ignoring.`},
		},
		{
			name:     "bool flags do not consume the next argument; parsing stops at positionals",
			args:     []string{"--debug", "-addr", "1.2.3.4:5", "--bind-addr=1.2.3.4:5", "pos", "-peers", "x"},
			wantArgs: []string{"--listen-client-urls=http://1.2.3.4:5", "--advertise-client-urls=http://1.2.3.4:5", "--debug", "pos", "-peers", "x"},
		},
		{
			name:      "-peers is rejected",
			args:      []string{"-peers", "10.0.0.1:7001,10.0.0.2:7001"},
			wantErr:   `invalid value "10.0.0.1:7001,10.0.0.2:7001" for flag -peers: flag "-peers" is no longer supported.`,
			wantUsage: true,
		},
		{
			name:      "-peers-file is rejected",
			args:      []string{"--peers-file=/etc/peers"},
			wantErr:   `invalid value "/etc/peers" for flag -peers-file: flag "-peers-file" is no longer supported.`,
			wantUsage: true,
		},
		{
			name:    "ETCD_PEERS is rejected",
			env:     []string{"ETCD_PEERS=10.0.0.1:7001"},
			wantErr: `invalid value "10.0.0.1:7001" for ETCD_PEERS: flag "-peers" is no longer supported.`,
		},
		{
			name:      "a host name is not an IP",
			args:      []string{"-addr", "core-01:4001"},
			wantErr:   `invalid value "core-01:4001" for flag -addr: bad IP in address specification`,
			wantUsage: true,
		},
		{
			name:      "missing port",
			args:      []string{"-peer-addr=10.0.0.1"},
			wantErr:   `invalid value "10.0.0.1" for flag -peer-addr: address 10.0.0.1: missing port in address`,
			wantUsage: true,
		},
		{
			name:    "bad IP in the environment",
			env:     []string{"ETCD_BIND_ADDR=localhost:4001"},
			wantErr: `invalid value "localhost:4001" for ETCD_BIND_ADDR: bad IP in address specification`,
		},
		{
			name:      "missing value",
			args:      []string{"-addr"},
			wantErr:   `flag needs an argument: -addr`,
			wantUsage: true,
		},
		{
			name:    "-addr and --advertise-client-urls conflict",
			args:    []string{"-addr", "1.2.3.4:5", "--advertise-client-urls", "http://1.2.3.4:5"},
			wantErr: "Set only one of flags -advertise-client-urls and -addr",
		},
		{
			name:    "conflict across command line and environment",
			args:    []string{"--initial-advertise-peer-urls=http://1.2.3.4:5"},
			env:     []string{"ETCD_PEER_ADDR=1.2.3.4:5"},
			wantErr: "Set only one of flags -initial-advertise-peer-urls and -peer-addr",
		},
		{
			name:    "conflicts are reported in etcd's order (peer first)",
			args:    []string{"-bind-addr", "1.2.3.4:5", "--listen-client-urls=http://x:1", "-peer-bind-addr", "1.2.3.4:6", "--listen-peer-urls=http://x:2"},
			wantErr: "Set only one of flags -listen-peer-urls and -peer-bind-addr",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Translate(tt.args, tt.env, tt.opts)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("want error %q, got %+v", tt.wantErr, res)
				}
				if err.Error() != tt.wantErr {
					t.Errorf("error = %q\nwant    %q", err, tt.wantErr)
				}
				var ue *UsageError
				if errors.As(err, &ue) != tt.wantUsage {
					t.Errorf("usage error = %v, want %v", !tt.wantUsage, tt.wantUsage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Args, tt.wantArgs) {
				t.Errorf("args = %q\nwant   %q", res.Args, tt.wantArgs)
			}
			if !slices.Equal(res.Env, tt.wantEnv) {
				t.Errorf("env = %q\nwant  %q", res.Env, tt.wantEnv)
			}
			if !slices.Equal(res.Warnings, tt.wantWarn) {
				t.Errorf("warnings = %q\nwant       %q", res.Warnings, tt.wantWarn)
			}
		})
	}
}

func TestRejectedWrapsSentinel(t *testing.T) {
	_, err := Translate(nil, []string{"ETCD_PEERS_FILE=/x"}, Options{})
	if !errors.Is(err, ErrNoLongerSupported) {
		t.Fatalf("err = %v, want ErrNoLongerSupported", err)
	}
}

func TestCallerBoolFlags(t *testing.T) {
	// Without knowing --my-bool is boolean, "-addr" would be taken as its value.
	res, err := Translate([]string{"--my-bool", "-addr", "1.2.3.4:5", "-bind-addr=1.2.3.4:5"}, nil, Options{BoolFlags: []string{"my-bool"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--listen-client-urls=http://1.2.3.4:5", "--advertise-client-urls=http://1.2.3.4:5", "--my-bool"}
	if !slices.Equal(res.Args, want) {
		t.Fatalf("args = %q, want %q", res.Args, want)
	}
}
