// Package e2e_test runs fleetctl against a real cluster: three
// systemd-nspawn machines (internal/testbed) running our fleetd under
// systemd, with etcd on the host's bridge address. It replays seed 000's
// walkthrough through the API driver, then reads hello.service's journal
// and status with fleetctl on the unit's machine (local journalctl) and,
// when Debian's openssh-server is installed, from the host over SSH.
// Without root/nspawn it skips loudly.
package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/corekit/corekit/fleetctl/fleetctlmain"
	"github.com/corekit/corekit/fleetctl/internal/sshx/sshtest"
	"github.com/corekit/corekit/internal/buildbin"
	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/testbed"
)

// startEtcd runs etcd with its client URL on addr only (the bridge's host
// address): ours once etcd/main.go exists, else Debian's reference.
func startEtcd(t *testing.T, addr string) string {
	t.Helper()
	bin := etcdtest.ReferenceBinary
	extra := []string{"--enable-v2", "--logger", "zap", "--log-outputs", "stderr"}
	root, _ := buildbin.ModuleRoot()
	if _, err := os.Stat(filepath.Join(root, "etcd", "main.go")); err == nil {
		bin, extra = etcdtest.OurBinary(t), nil
	} else if !etcdtest.HaveReference() {
		t.Skipf("SKIP: %s not installed (apt-get install etcd-server)", bin)
	}
	url := fmt.Sprintf("http://%s:%d", addr, etcdtest.FreePort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", etcdtest.FreePort(t))
	dir := t.TempDir()
	cmd := exec.Command(bin, "--name", "e2e", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", url, "--advertise-client-urls", url,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "e2e="+peer)
	cmd.Args = append(cmd.Args, extra...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := etcdtest.WaitReady(context.Background(), url, 20*time.Second); err != nil {
		t.Fatalf("etcd on %s: %v", url, err)
	}
	return url
}

const fleetService = `[Unit]
Description=fleet daemon
[Service]
ExecStart=/opt/corekit/bin/fleetd
Restart=no
`

// The seed's hello.service without docker.
const helloUnit = `[Unit]
Description=Hello World

[Service]
ExecStart=/bin/sh -c "while true; do echo Hello World; sleep 1; done"

[X-Fleet]
X-Conflicts=hello.service
`

type res struct {
	out, err string
	code     int
}

func fleetctl(ctx context.Context, env map[string]string, stdin string, args ...string) res {
	var out, errb bytes.Buffer
	f := fleetctlmain.NewFactory(strings.NewReader(stdin), &out, &errb, func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return ""
	})
	code := fleetctlmain.RunFactory(ctx, f, args)
	return res{out.String(), errb.String(), code}
}

func TestWalkthroughOnRealCluster(t *testing.T) {
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bins := testbed.Binaries(t, "fleet:fleetd", "fleetctl")
	binds := []testbed.Bind{bins}
	sshd, sshdEnv := "/usr/sbin/sshd", ""
	if r := os.Getenv("FLEETCTL_E2E_SSHD_ROOT"); r != "" {
		// openssh-server (and libwrap0) unpacked with dpkg -x, for hosts
		// where the package is not installed.
		binds = append(binds, testbed.Bind{Host: r, Guest: "/opt/sshd", ReadOnly: true})
		sshd, sshdEnv = "/opt/sshd/usr/sbin/sshd", "LD_LIBRARY_PATH=/opt/sshd/usr/lib/x86_64-linux-gnu"
	}
	c := testbed.NewCluster(t, testbed.Options{N: 3, Binds: binds})
	etcdURL := startEtcd(t, c.HostAddr().String())
	for _, m := range c.Machines {
		conf := fmt.Sprintf("etcd_servers=%s\netcd_request_timeout=3\nagent_ttl=10s\nengine_reconcile_interval=0.5\npublic_ip=%s\n", etcdURL, m.Addr())
		m.MustWriteFile("/etc/fleet/fleet.conf", []byte(conf), 0o644)
		m.MustWriteFile("/etc/systemd/system/fleet.service", []byte(fleetService), 0o644)
		m.MustRun(ctx, "systemctl", "daemon-reload")
		m.MustRun(ctx, "systemctl", "start", "fleet.service")
	}
	dir := t.TempDir()
	unitPath := filepath.Join(dir, "hello.service")
	if err := os.WriteFile(unitPath, []byte(helloUnit), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"FLEETCTL_ENDPOINT": "unix://" + c.Machines[0].GuestPath("/var/run/fleet.sock")}
	run := func(args ...string) res {
		t.Helper()
		r := fleetctl(ctx, env, "", args...)
		t.Logf("$ fleetctl %s\n%s%s(exit %d)", strings.Join(args, " "), r.out, r.err, r.code)
		return r
	}
	must := func(re string, args ...string) res {
		t.Helper()
		r := run(args...)
		if r.code != 0 || !regexp.MustCompile(re).MatchString(r.out) {
			t.Fatalf("fleetctl %s: want exit 0 and stdout matching %q", strings.Join(args, " "), re)
		}
		return r
	}
	legend := `[0-9a-f]{8}\.\.\./10\.[0-9.]+`
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := run("list-machines", "--no-legend")
		if r.code == 0 && strings.Count(r.out, "\n") == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("3 machines did not register")
		}
		time.Sleep(time.Second)
	}
	must(`^MACHINE\t+IP\t+METADATA\n`, "list-machines")
	must(`^Unit hello.service inactive\n$`, "submit", unitPath)
	must(`^UNIT\t+HASH\t+DSTATE\t+STATE\t+TARGET\nhello.service\t+[0-9a-f]{7}\t+inactive\t+inactive\t+-\n$`, "list-unit-files")
	must(`^UNIT\t+MACHINE\t+ACTIVE\t+SUB\n$`, "list-units")
	must(`(?s)^\[Unit\]\nDescription=Hello World\n.*X-Conflicts=hello.service\n$`, "cat", "hello.service")
	must(`^Unit hello.service loaded on `+legend+`\n$`, "load", "--block-attempts=30", "hello.service")
	r := must(`^Unit hello.service launched on `+legend+`\n$`, "start", "--block-attempts=30", "hello.service")
	must(`hello.service\t+`+legend+`\t+active\t+running\n`, "list-units")
	short := strings.TrimPrefix(r.out, "Unit hello.service launched on ")[:8]

	// fleetctl on the unit's own machine runs journalctl/systemctl locally.
	var host *testbed.Machine
	for _, m := range c.Machines {
		if strings.HasPrefix(strings.TrimSpace(string(m.MustReadFile("/etc/machine-id"))), short) {
			host = m
		}
	}
	if host == nil {
		t.Fatalf("no machine with ID %s...", short)
	}
	time.Sleep(2 * time.Second) // let the unit print a few lines
	jr := host.Run(ctx, "/opt/corekit/bin/fleetctl", "journal", "--lines", "5", "hello.service")
	if !jr.OK() || !strings.Contains(jr.Stdout, "Hello World") {
		t.Fatalf("fleetctl journal on %s: %v\n%s%s", host.Hostname(), jr.Err, jr.Stdout, jr.Stderr)
	}
	sr := host.Run(ctx, "/opt/corekit/bin/fleetctl", "status", "hello.service")
	if !sr.OK() || !strings.Contains(sr.Stdout, "active (running)") {
		t.Fatalf("fleetctl status on %s: %v\n%s%s", host.Hostname(), sr.Err, sr.Stdout, sr.Stderr)
	}

	t.Run("journal over SSH", func(t *testing.T) {
		if _, err := os.Stat(sshd); err != nil && !strings.HasPrefix(sshd, "/opt/") {
			t.Skip("SKIP: /usr/sbin/sshd missing (apt-get install openssh-server; .ci/run installs it, or set FLEETCTL_E2E_SSHD_ROOT to a dpkg -x of openssh-server and libwrap0)")
		}
		agentSock, key := sshtest.StartAgent(t)
		host.MustRun(ctx, "mkdir", "-p", "/run/sshd")
		host.MustWriteFile("/run/sshd/authorized_keys", ssh.MarshalAuthorizedKey(key), 0o600)
		host.MustRun(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "/run/sshd/host_key")
		// sshd without PAM refuses accounts whose password field is locked ("!")
		host.MustRun(ctx, "usermod", "-p", "*", "root")
		if !host.Run(ctx, "getent", "passwd", "sshd").OK() { // privilege separation user
			host.MustRun(ctx, "useradd", "--system", "--no-create-home", "--home-dir", "/run/sshd", "--shell", "/usr/sbin/nologin", "sshd")
		}
		args := []string{"systemd-run", "--unit=e2e-sshd"}
		if sshdEnv != "" {
			args = append(args, "--setenv="+sshdEnv)
		}
		host.MustRun(ctx, append(args, sshd, "-D", "-e", "-o", "PermitRootLogin=prohibit-password", "-o", "UsePAM=no", "-o", "HostKey=/run/sshd/host_key",
			"-o", "AuthorizedKeysFile=/run/sshd/authorized_keys", "-o", "StrictModes=no", "-f", "/dev/null")...)
		addr := net.JoinHostPort(host.Addr().String(), "22")
		for end := time.Now().Add(20 * time.Second); ; {
			if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				conn.Close()
				break
			}
			if time.Now().After(end) {
				t.Fatalf("sshd on %s did not come up:\n%s", addr, host.Run(ctx, "journalctl", "--no-pager", "-u", "e2e-sshd").Stdout)
			}
			time.Sleep(200 * time.Millisecond)
		}
		senv := map[string]string{"FLEETCTL_ENDPOINT": env["FLEETCTL_ENDPOINT"], "SSH_AUTH_SOCK": agentSock,
			"FLEETCTL_SSH_USERNAME": "root", "FLEETCTL_KNOWN_HOSTS_FILE": filepath.Join(t.TempDir(), "known_hosts")}
		r := fleetctl(ctx, senv, "yes\n", "journal", "hello.service")
		if r.code != 0 || !strings.Contains(r.out, "Hello World") || !strings.Contains(r.err, "Permanently added") {
			t.Fatalf("journal over SSH: exit %d\n%s%s\nsshd log:\n%s", r.code, r.out, r.err, host.Run(ctx, "journalctl", "--no-pager", "-u", "e2e-sshd").Stdout)
		}
		// --tunnel with the default unix endpoint: fleetd's socket on the
		// tunnel host, reached through sshd's streamlocal forwarding.
		tenv := map[string]string{"SSH_AUTH_SOCK": agentSock, "FLEETCTL_SSH_USERNAME": "root",
			"FLEETCTL_KNOWN_HOSTS_FILE": senv["FLEETCTL_KNOWN_HOSTS_FILE"], "FLEETCTL_TUNNEL": host.Addr().String()}
		r = fleetctl(ctx, tenv, "", "list-machines", "--no-legend")
		if r.code != 0 || strings.Count(r.out, "\n") != 3 {
			t.Fatalf("list-machines through --tunnel: exit %d\n%s%s", r.code, r.out, r.err)
		}
		r = fleetctl(ctx, senv, "", "ssh", "hello.service", "--", "hostname")
		if r.code != 0 || strings.TrimSpace(r.out) != host.Hostname() {
			t.Fatalf("ssh: exit %d\n%s%s", r.code, r.out, r.err)
		}
	})

	must(`^Unit hello.service loaded on `+legend+`\n$`, "stop", "hello.service")
	must(`^Unit hello.service inactive\n$`, "unload", "hello.service")
	must(`^Destroyed hello.service\n$`, "destroy", "hello.service")
	must(`^UNIT\t+HASH\t+DSTATE\t+STATE\t+TARGET\n$`, "list-unit-files")
}
