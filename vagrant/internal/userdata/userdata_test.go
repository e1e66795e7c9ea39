package userdata

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const token = "http://172.17.8.1:8087/6fa1c55b64f9d1a3a7b6a1f4e5d6c7b8"

func TestSetDiscoveryEditsOnlyThatLine(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{
			name: "placeholder replaced, comments and octal kept",
			in:   "#cloud-config\n\ncoreos:\n  etcd:\n    # a comment\n    discovery: https://discovery.etcd.io/<token>\n    addr: $public_ipv4:4001\nwrite_files:\n  - path: /x\n    permissions: 0644\n",
			want: "#cloud-config\n\ncoreos:\n  etcd:\n    # a comment\n    discovery: " + token + "\n    addr: $public_ipv4:4001\nwrite_files:\n  - path: /x\n    permissions: 0644\n",
		},
		{
			name: "commented-out line is uncommented at the children's indentation",
			in:   "#cloud-config\ncoreos:\n  etcd2:\n    #discovery: https://discovery.etcd.io/<token>\n    name: x\n",
			want: "#cloud-config\ncoreos:\n  etcd2:\n    discovery: " + token + "\n    name: x\n",
		},
		{
			name: "real line wins over a commented one",
			in:   "#cloud-config\ncoreos:\n  etcd:\n    # discovery: old\n    discovery: https://x/y\n",
			want: "#cloud-config\ncoreos:\n  etcd:\n    # discovery: old\n    discovery: " + token + "\n",
		},
		{
			name: "missing line inserted first",
			in:   "#cloud-config\ncoreos:\n   etcd:\n      addr: $public_ipv4:4001\n   fleet:\n      public-ip: $public_ipv4\n",
			want: "#cloud-config\ncoreos:\n   etcd:\n      discovery: " + token + "\n      addr: $public_ipv4:4001\n   fleet:\n      public-ip: $public_ipv4\n",
		},
		{
			name: "discovery of another section untouched",
			in:   "#cloud-config\ncoreos:\n  fleet:\n    discovery: keep\n  etcd:\n    addr: a:1\n",
			want: "#cloud-config\ncoreos:\n  fleet:\n    discovery: keep\n  etcd:\n    discovery: " + token + "\n    addr: a:1\n",
		},
		{
			name: "CRLF kept",
			in:   "#cloud-config\r\ncoreos:\r\n  etcd:\r\n    discovery: x\r\n",
			want: "#cloud-config\r\ncoreos:\r\n  etcd:\r\n    discovery: " + token + "\r\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SetDiscovery([]byte(tc.in), token)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
			if _, err := Inspect(got); err != nil {
				t.Errorf("result does not parse: %v", err)
			}
		})
	}
}

func TestSetDiscoveryErrors(t *testing.T) {
	if _, err := SetDiscovery([]byte("#cloud-config\ncoreos:\n  fleet:\n    public-ip: x\n"), token); !errors.Is(err, ErrNoEtcd) {
		t.Errorf("no etcd section: err = %v", err)
	}
	if _, err := SetDiscovery([]byte("#cloud-config\ncoreos:\n  etcd:\n    addr: x\n"), "http://a\nb"); err == nil {
		t.Error("newline in URL accepted")
	}
}

func TestInspect(t *testing.T) {
	sample, err := os.ReadFile("../../user-data.sample")
	if err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(sample)
	if err != nil {
		t.Fatal(err)
	}
	if info.EtcdSection != "etcd" || info.ClientPort != 4001 || !info.StartsEtcd || !info.StartsFleet || !info.NeedsToken() {
		t.Errorf("sample: %+v", info)
	}
	rendered, err := SetDiscovery(sample, token)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rendered), "discovery: "+token+"\n") {
		t.Errorf("sample not rendered:\n%s", rendered)
	}

	info, err = Inspect([]byte("#cloud-config\ncoreos:\n  etcd2:\n    advertise-client-urls: http://$public_ipv4:2379,http://$public_ipv4:4001\n"))
	if err != nil || info.EtcdSection != "etcd2" || info.ClientPort != 2379 || info.StartsEtcd || !info.NeedsToken() {
		t.Errorf("etcd2: %+v %v", info, err)
	}
	info, err = Inspect([]byte("#cloud-config\ncoreos:\n  etcd:\n    discovery: http://10.0.0.1:8087/abc\n"))
	if err != nil || info.Discovery != "http://10.0.0.1:8087/abc" || info.NeedsToken() {
		t.Errorf("own discovery URL: %+v %v", info, err)
	}
	for _, bad := range []string{"coreos:\n  etcd: {}\n", "#cloud-config\ncoreos: [\n", "#!/bin/sh\necho hi\n"} {
		if _, err := Inspect([]byte(bad)); err == nil {
			t.Errorf("Inspect(%q) accepted", bad)
		}
	}
}

// TestVagrantfileRendersLikeGo runs the Vagrantfile's render_user_data (Ruby)
// on the same inputs as SetDiscovery and expects identical bytes, so `vagrant
// up` and `make up` give machines the same user-data.
func TestVagrantfileRendersLikeGo(t *testing.T) {
	ruby, err := exec.LookPath("ruby")
	if err != nil {
		t.Skip("SKIP: ruby not installed (apt-get install -y ruby); cannot check the Vagrantfile's renderer")
	}
	vf, err := os.ReadFile("../../Vagrantfile")
	if err != nil {
		t.Fatal(err)
	}
	src := string(vf)
	start := strings.Index(src, "def render_user_data")
	end := strings.Index(src[start:], "\nend\n")
	if start < 0 || end < 0 {
		t.Fatal("render_user_data not found in the Vagrantfile")
	}
	fn := src[start : start+end+5]
	sample, err := os.ReadFile("../../user-data.sample")
	if err != nil {
		t.Fatal(err)
	}
	inputs := []string{
		string(sample),
		"#cloud-config\ncoreos:\n  etcd2:\n    #discovery: https://discovery.etcd.io/<token>\n    name: x\n",
		"#cloud-config\ncoreos:\n   etcd:\n      addr: $public_ipv4:4001\n   fleet:\n      public-ip: $public_ipv4\n",
		"#cloud-config\ncoreos:\n  fleet:\n    discovery: keep\n  etcd:\n    addr: a:1\n",
		"#cloud-config\r\ncoreos:\r\n  etcd:\r\n    discovery: <token>\r\n",
	}
	dir := t.TempDir()
	for i, in := range inputs {
		want, err := SetDiscovery([]byte(in), token)
		if err != nil {
			t.Fatal(err)
		}
		inPath := filepath.Join(dir, fmt.Sprintf("in%d", i))
		if err := os.WriteFile(inPath, []byte(in), 0o644); err != nil {
			t.Fatal(err)
		}
		script := fn + fmt.Sprintf("\n$stdout.write(render_user_data(File.binread(%q), %q))\n", inPath, token)
		cmd := exec.Command(ruby, "-e", script)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		got, err := cmd.Output()
		if err != nil {
			t.Fatalf("ruby: %v\n%s", err, stderr.String())
		}
		if string(got) != string(want) {
			t.Errorf("input %d: Ruby and Go differ\nruby:\n%s\ngo:\n%s", i, got, want)
		}
	}
	// A URL the user wrote is kept by the Vagrantfile (the provider does the
	// same: it only renders when Info.NeedsToken).
	own := "#cloud-config\ncoreos:\n  etcd:\n    discovery: http://10.0.0.1:8087/abc\n"
	p := filepath.Join(dir, "own")
	os.WriteFile(p, []byte(own), 0o644)
	out, err := exec.Command(ruby, "-e", fn+fmt.Sprintf("\n$stdout.write(render_user_data(File.binread(%q), %q))\n", p, token)).Output()
	if err != nil || string(out) != own {
		t.Errorf("user's own discovery URL changed: %q %v", out, err)
	}
}
