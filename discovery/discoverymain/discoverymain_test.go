package discoverymain

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want func(o Options) bool
		err  string
	}{
		{name: "defaults", want: func(o Options) bool {
			return o.Etcd == "http://127.0.0.1:2379" && o.Host == "https://discovery.etcd.io" && o.Addr == ":8087" &&
				o.MaxSize == 99 && o.TokenTTL == 7*24*time.Hour && o.LongPoll == time.Minute
		}},
		{name: "env", env: map[string]string{"DISC_ETCD": "http://10.0.0.1:4001", "DISC_HOST": "http://disc.local/", "DISC_ADDR": "127.0.0.1:9000"},
			want: func(o Options) bool {
				return o.Etcd == "http://10.0.0.1:4001" && o.Host == "http://disc.local" && o.Addr == "127.0.0.1:9000"
			}},
		{name: "flag wins over env", args: []string{"--etcd", "https://a:1", "-h", "http://b:2", "-a", ":1"},
			env:  map[string]string{"DISC_ETCD": "http://x:1", "DISC_HOST": "http://y:2", "DISC_ADDR": ":2"},
			want: func(o Options) bool { return o.Etcd == "https://a:1" && o.Host == "http://b:2" && o.Addr == ":1" }},
		{name: "short etcd", args: []string{"-e", "http://c:3"}, want: func(o Options) bool { return o.Etcd == "http://c:3" }},
		{name: "tuning", args: []string{"--max-size", "7", "--token-ttl", "12h", "--long-poll", "5s", "--new-rate", "-1"},
			want: func(o Options) bool {
				return o.MaxSize == 7 && o.TokenTTL == 12*time.Hour && o.LongPoll == 5*time.Second && o.NewRate == -1
			}},
		{name: "env tuning", env: map[string]string{"DISC_TOKEN_TTL": "1h", "DISC_MAX_SIZE": "5"},
			want: func(o Options) bool { return o.TokenTTL == time.Hour && o.MaxSize == 5 }},
		{name: "etcd with path", args: []string{"--etcd", "http://a:1/v2"}, err: `--etcd "http://a:1/v2": want http(s)://host[:port]`},
		{name: "host with query", args: []string{"--host", "http://a?x=1"}, err: `--host "http://a?x=1"`},
		{name: "etcd no scheme", args: []string{"--etcd", "127.0.0.1:2379"}, err: "--etcd"},
		{name: "bad env", env: map[string]string{"DISC_MAX_SIZE": "many"}, err: `invalid DISC_MAX_SIZE="many"`},
		{name: "bad env url", env: map[string]string{"DISC_ETCD": "ftp://x"}, err: `--etcd "ftp://x"`},
		{name: "max size 0", args: []string{"--max-size", "0"}, err: "--max-size must be at least 1"},
		{name: "cert without key", args: []string{"--etcd-certfile", "c.pem"}, err: "must be given together"},
		{name: "stray arg", args: []string{"serve"}, err: `unexpected argument "serve"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := Parse(tt.args, env(tt.env), io.Discard)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !tt.want(o) {
				t.Fatalf("Parse = %+v, %v", o, err)
			}
		})
	}
}

func TestRunUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--etcd", "http://a:1/path"},
		{"--no-such-flag"},
		{"--etcd-cafile", "/nonexistent/ca.pem"},
	} {
		var stderr bytes.Buffer
		code := Run(context.Background(), args, env(nil), io.Discard, &stderr)
		if code != exitUsage || !strings.HasPrefix(stderr.String(), "") || stderr.Len() == 0 {
			t.Errorf("Run(%q) = %d, stderr %q; want exit 2 with a message", args, code, stderr.String())
		}
	}
	if code := Run(context.Background(), []string{"--help"}, env(nil), io.Discard, io.Discard); code != exitOK {
		t.Errorf("--help exit %d", code)
	}
}
