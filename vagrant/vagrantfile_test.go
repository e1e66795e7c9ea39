// Package vagrant holds corekit's Vagrantfile; this test evaluates it with a
// stand-in for Vagrant's DSL (testdata/fake_vagrant.rb) to check what it
// configures.
package vagrant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

type record struct {
	Machines map[string]struct {
		Calls []struct {
			Call string `json:"call"`
			Args []any  `json:"args"`
		} `json:"calls"`
	} `json:"machines"`
	Triggers []string `json:"triggers"`
}

// layout copies the Vagrantfile, units and sample into a fake repository.
func layout(t *testing.T) string {
	t.Helper()
	repo := t.TempDir()
	for _, d := range []string{"vagrant/units", "bin", "cloudinit/units"} {
		if err := os.MkdirAll(filepath.Join(repo, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cp := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cp("Vagrantfile", "vagrant/Vagrantfile")
	cp("user-data.sample", "vagrant/user-data.sample")
	units, _ := filepath.Glob("units/*.service")
	for _, u := range units {
		cp(u, "vagrant/units/"+filepath.Base(u))
	}
	os.WriteFile(filepath.Join(repo, "bin", "etcd"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(repo, "cloudinit/units/coreos-cloudinit.service"),
		[]byte("[Service]\nExecStart=/usr/bin/coreos-cloudinit --from-file=/var/lib/coreos-vagrant/vagrantfile-user-data\n"), 0o644)
	os.WriteFile(filepath.Join(repo, "cloudinit/units/coreos-cloudinit.path"), []byte("[Path]\nPathExists=/x\n"), 0o644)
	return repo
}

func evalVagrantfile(t *testing.T, repo string, env []string, args ...string) (record, string) {
	t.Helper()
	ruby, err := exec.LookPath("ruby")
	if err != nil {
		t.Skip("SKIP: ruby not installed (apt-get install -y ruby); cannot evaluate the Vagrantfile")
	}
	fake, _ := filepath.Abs("testdata/fake_vagrant.rb")
	cmd := exec.Command(ruby, append([]string{"-r", fake, filepath.Join(repo, "vagrant", "Vagrantfile")}, args...)...)
	cmd.Dir = filepath.Join(repo, "vagrant")
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ruby Vagrantfile %v: %v\n%s", args, err, stderr.String())
	}
	var r record
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("decode record: %v\n%s", err, stdout.String())
	}
	return r, stderr.String()
}

func TestVagrantfileMachines(t *testing.T) {
	repo := layout(t)
	os.WriteFile(filepath.Join(repo, "vagrant", "config.rb"), []byte("$num_instances = 3\n"), 0o644)
	r, _ := evalVagrantfile(t, repo, nil, "up")
	if len(r.Machines) != 3 {
		t.Fatalf("machines: %v", r.Machines)
	}
	tokenFile := filepath.Join(repo, "vagrant", ".vagrant", "corekit", "discovery-url")
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatalf("token not kept under .vagrant: %v", err)
	}
	url := strings.TrimSpace(string(tok))
	if !strings.HasPrefix(url, "http://172.17.8.101:12379/v2/keys/_etcd/registry/") {
		t.Errorf("token URL %q", url)
	}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("core-%02d", i)
		m, ok := r.Machines[name]
		if !ok {
			t.Fatalf("no machine %s", name)
		}
		var calls []string
		for _, c := range m.Calls {
			calls = append(calls, fmt.Sprint(c.Call, c.Args))
		}
		all := strings.Join(calls, "\n")
		for _, want := range []string{
			"vm.hostname=[" + name + "]",
			fmt.Sprintf("vm.network[private_network map[ip:172.17.8.%d]]", 100+i),
			"destination:/tmp/corekit/bin",
			"destination:/var/lib/coreos-vagrant", // not direct: goes through /tmp first
		} {
			if want == "destination:/var/lib/coreos-vagrant" {
				if strings.Contains(all, want) {
					t.Errorf("%s: uploads straight into /var/lib/coreos-vagrant", name)
				}
				continue
			}
			if !strings.Contains(all, want) {
				t.Errorf("%s: missing %q in\n%s", name, want, all)
			}
		}
		if (i == 1) != strings.Contains(all, "seed discovery store") {
			t.Errorf("%s: seed store provisioner on the wrong machine", name)
		}
		rendered, err := os.ReadFile(filepath.Join(repo, "vagrant", ".vagrant", "corekit", "user-data-"+name))
		if err != nil || !strings.Contains(string(rendered), "discovery: "+url+"\n") {
			t.Errorf("%s: rendered user-data: %v\n%s", name, err, rendered)
		}
	}
	unit, err := os.ReadFile(filepath.Join(repo, "vagrant", ".vagrant", "corekit", "units", "coreos-cloudinit.service"))
	if err != nil || !strings.Contains(string(unit), "ExecStart=/opt/corekit/bin/coreos-cloudinit --from-file") {
		t.Errorf("cloudinit unit not pointed at /opt/corekit/bin: %v\n%s", err, unit)
	}
	sample, _ := os.ReadFile(filepath.Join(repo, "vagrant", "user-data.sample"))
	if !strings.Contains(string(sample), "<token>") {
		t.Error("user-data.sample was rewritten")
	}
	if len(r.Triggers) == 0 {
		t.Error("no destroy trigger to forget the token")
	}

	// A second `vagrant up` (e.g. after halt) keeps the cluster's token.
	evalVagrantfile(t, repo, nil, "up")
	tok2, _ := os.ReadFile(tokenFile)
	if string(tok2) != string(tok) {
		t.Errorf("token changed on the second up: %s → %s", tok, tok2)
	}
	// `vagrant status` makes no token and renders nothing.
	os.RemoveAll(filepath.Join(repo, "vagrant", ".vagrant"))
	evalVagrantfile(t, repo, nil, "status")
	if _, err := os.Stat(tokenFile); err == nil {
		t.Error("`vagrant status` made a token")
	}
}

func TestVagrantfileNumInstancesEnvWins(t *testing.T) {
	repo := layout(t)
	os.WriteFile(filepath.Join(repo, "vagrant", "config.rb"), []byte("$num_instances = 3\n"), 0o644)
	r, stderr := evalVagrantfile(t, repo, []string{"NUM_INSTANCES=2"}, "status")
	if len(r.Machines) != 2 || !strings.Contains(stderr, "NUM_INSTANCES=2 overrides $num_instances=3") {
		t.Errorf("machines %d, stderr %q", len(r.Machines), stderr)
	}
}
