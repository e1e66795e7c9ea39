package fleetctlmain

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/corekit/corekit/fleetctl/internal/sshx/sshtest"
	"github.com/corekit/corekit/internal/fleetregistry"
)

// TestSSHCommands runs ssh, status and journal against an in-process SSH
// server on loopback (the machine's IP is 127.0.0.1, --ssh-port picks the
// server), with an in-process ssh-agent, trust on first use, and --tunnel
// to reach etcd through SSH.
func TestSSHCommands(t *testing.T) {
	s := startEtcd(t)
	dir := t.TempDir()
	t.Chdir(dir)
	const (
		ma = "abc00000000000000000000000000001"
		mb = "abd00000000000000000000000000002"
	)
	newFakeCluster(t, s, "/ssh/", []fleetregistry.MachineState{
		{ID: ma, PublicIP: "127.0.0.1"},
		{ID: mb},
	})
	agentSock, key := sshtest.StartAgent(t)
	srv := sshtest.Start(t, key, nil)
	port := fmt.Sprint(srv.Port)
	hosts := filepath.Join(dir, "known_hosts")
	h := newHarness(t, s, "/ssh/")
	h.sshAgent = agentSock
	h.globals = append(h.globals, "--known-hosts-file="+hosts)
	h.replace = []string{port, "<port>", ssh.FingerprintLegacyMD5(srv.HostKey), "<fingerprint>", dir, "<dir>", s.ClientURL, "<etcd>"}

	writeUnit(t, "abc.service", "[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nMachineID="+ma+"\n")
	writeUnit(t, "noip.service", "[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nMachineID=abd00000\n")
	h.step("start", "abc.service", "noip.service")

	h.stepIn("yes\n", "ssh", "--ssh-port", port, "abc00", "--", "echo", "hello")
	h.step("ssh", "--ssh-port="+port, "--unit", "abc.service", "uptime")
	h.step("ssh", "--ssh-port="+port, "abc0", "exit 4")
	h.step("ssh", "-A", "--ssh-port="+port, "abc00", "agent-keys")
	h.step("ssh", "--forward-agent", "--ssh-port="+port, "abc00", "agent-keys")
	h.step("ssh", "--ssh-port="+port, "-m", "abc", "--", "ls", "-l")
	h.step("ssh", "abc")
	h.step("ssh", "ab")
	h.step("ssh", "--machine", "ab")
	h.step("ssh", "--machine", "zz")
	h.step("ssh", "--unit", "nothing")
	h.step("ssh", "-m", "abc", "-u", "abc")
	h.step("ssh", "--machine", "abd")
	h.step("ssh", "--unit", "noip")
	h.step("ssh")

	h.step("status", "--ssh-port", port, "abc.service")
	h.step("journal", "--ssh-port", port, "-n", "3", "-f", "abc")
	h.step("--ssh-username=alice", "status", "--ssh-port", port, "abc.service")
	if u := srv.User(); u != "alice" {
		t.Errorf("ssh user = %q, want alice", u)
	}
	h.step("status", "noip.service")

	h.note("a different key for 127.0.0.1:<port> in known_hosts")
	other := sshtest.NewKey(t).PublicKey()
	if err := os.WriteFile(hosts, []byte("[127.0.0.1]:"+port+" "+string(ssh.MarshalAuthorizedKey(other))), 0o600); err != nil {
		t.Fatal(err)
	}
	h.step("ssh", "--ssh-port", port, "abc00", "true")
	h.step("--strict-host-key-checking=false", "ssh", "--ssh-port", port, "abc00", "true")

	h.note("etcd reached through an SSH tunnel (direct-tcpip from the tunnel host)")
	if err := os.Remove(hosts); err != nil {
		t.Fatal(err)
	}
	h.stepIn("y\n", "--tunnel", "127.0.0.1:"+port, "list-machines")
	h.env["SSH_AUTH_SOCK"] = ""
	h.step("--tunnel", "127.0.0.1:"+port, "list-machines")

	cmds := strings.Join(srv.Commands(), "\n")
	for _, want := range []string{`echo hello`, `systemctl "status" "-l" "abc.service"`, `journalctl "--unit" "abc.service" "--no-pager" "-n" "3" "--output" "short" "-f"`, `ls -l`} {
		if !strings.Contains(cmds, want) {
			t.Errorf("server did not receive %q; got:\n%s", want, cmds)
		}
	}
	h.compareGolden("ssh")
}
