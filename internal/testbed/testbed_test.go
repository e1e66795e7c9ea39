package testbed_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/nspawn"
	"github.com/corekit/corekit/internal/testbed"
)

// TestClusterNetworkUnitsAndTeardown boots two machines and checks, in order:
// both run systemd, a bound unit runs, files go in and out, guests reach each
// other and the host over the bridge (TCP), and after teardown no bridge,
// veth or process is left.
func TestClusterNetworkUnitsAndTeardown(t *testing.T) {
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()

	bindDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(bindDir, "payload"), []byte("bound-in\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	var c *testbed.Cluster
	var bridge string
	var pids []int
	t.Run("boot", func(t *testing.T) {
		// A subtest owns the cluster so that its cleanup has run when we
		// check for leftovers below.
		c = testbed.NewCluster(t, testbed.Options{
			N:     2,
			Binds: []testbed.Bind{{Host: bindDir, Guest: "/opt/testbed", ReadOnly: true}},
			Units: []string{"testdata/hello-testbed.service"},
		})
		bridge = c.Bridge.Name
		for _, m := range c.Machines {
			pids = append(pids, m.NspawnPID(), m.PID1())
		}
		if !nspawn.LinkExists(bridge) {
			t.Fatalf("bridge %s does not exist while the cluster runs", bridge)
		}
		m1, m2 := c.Machines[0], c.Machines[1]
		if got := strings.TrimSpace(m1.MustRun(ctx, "hostname")); got != "core-01" {
			t.Errorf("hostname of first machine = %q, want core-01", got)
		}
		if m1.Addr() == m2.Addr() || !c.Subnet().Contains(m1.Addr()) || !c.Subnet().Contains(m2.Addr()) {
			t.Fatalf("addresses %s %s not distinct inside %s", m1.Addr(), m2.Addr(), c.Subnet())
		}
		if last := m2.Addr().As4()[3]; last != 102 {
			t.Errorf("core-02 address %s, want .102", m2.Addr())
		}

		// Preset: the host's installed services must not have been enabled.
		for _, m := range c.Machines {
			out := m.Run(ctx, "systemctl", "is-system-running").Stdout
			if s := strings.TrimSpace(out); s != "running" && s != "degraded" {
				t.Errorf("%s: is-system-running = %q", m.Hostname(), s)
			}
			if r := m.Run(ctx, "systemctl", "is-enabled", "etcd.service"); strings.TrimSpace(r.Stdout) == "enabled" {
				t.Errorf("%s: host's etcd.service got enabled in the guest", m.Hostname())
			}
		}

		// A bound unit runs.
		m2.MustRun(ctx, "systemctl", "start", "hello-testbed.service")
		if got := strings.TrimSpace(m2.MustRun(ctx, "systemctl", "is-active", "hello-testbed.service")); got != "active" {
			t.Errorf("hello-testbed.service is %q", got)
		}
		if got := string(m2.MustReadFile("/run/hello-testbed")); got != "hello from core-02\n" {
			t.Errorf("unit output %q", got)
		}
		if !strings.Contains(m2.JournalTail(ctx, "hello-testbed.service", 20), "testbed fixture") {
			t.Errorf("journal of hello-testbed.service lacks its description:\n%s", m2.JournalTail(ctx, "hello-testbed.service", 20))
		}

		// Bind mount and WriteFile/ReadFile round trip.
		if got := m1.MustRun(ctx, "cat", "/opt/testbed/payload"); got != "bound-in\n" {
			t.Errorf("bound file reads %q", got)
		}
		if r := m1.Run(ctx, "touch", "/opt/testbed/x"); r.OK() {
			t.Errorf("read-only bind is writable")
		}
		m1.MustWriteFile("/etc/corekit/note", []byte("from host"), 0o644)
		if got := m1.MustRun(ctx, "cat", "/etc/corekit/note"); got != "from host" {
			t.Errorf("WriteFile: guest reads %q", got)
		}
		if _, err := os.Stat("/etc/corekit/note"); err == nil {
			t.Errorf("guest write reached the host's /etc")
		}

		// TCP between guests, guest → host and host → guest over the bridge.
		listenTCP(ctx, t, m1, "7777")
		probe := fmt.Sprintf("exec 3<>/dev/tcp/%s/7777 && echo ping-from-core-02 >&3 && head -n1 <&3", m1.Addr())
		if got := strings.TrimSpace(m2.MustRun(ctx, "bash", "-c", probe)); got != "pong" {
			t.Errorf("TCP core-02 → core-01 answered %q, want pong", got)
		}
		hostLn, err := net.Listen("tcp", net.JoinHostPort(c.HostAddr().String(), "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer hostLn.Close()
		go func() {
			conn, err := hostLn.Accept()
			if err == nil {
				conn.Write([]byte("host-hello\n"))
				conn.Close()
			}
		}()
		port := hostLn.Addr().(*net.TCPAddr).Port
		got := m1.MustRun(ctx, "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d && cat <&3", c.HostAddr(), port))
		if strings.TrimSpace(got) != "host-hello" {
			t.Errorf("guest → host TCP read %q", got)
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(m1.Addr().String(), "7777"), 5*time.Second)
		if err != nil {
			t.Fatalf("host → guest: %v", err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		conn.Write([]byte("ping-from-host\n"))
		reply, _ := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if reply != "pong\n" {
			t.Errorf("host → guest TCP answered %q, want pong", reply)
		}
	})
	if c == nil {
		t.Fatal("cluster was not created")
	}

	// Teardown left nothing behind.
	if nspawn.LinkExists(bridge) {
		t.Errorf("bridge %s still exists after cleanup", bridge)
	}
	for _, m := range c.Machines {
		if nspawn.LinkExists("vb-" + m.Name()) {
			t.Errorf("veth vb-%s still exists after cleanup", m.Name())
		}
	}
	for _, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.Contains(string(b), "systemd") {
				t.Errorf("process %d (%s) still runs after cleanup", pid, strings.TrimSpace(string(b)))
			}
		}
	}
}

// listenTCP starts a one-shot TCP responder inside m on port: it reads one
// line and answers "pong". It waits until the port is listening.
func listenTCP(ctx context.Context, t *testing.T, m *testbed.Machine, port string) {
	t.Helper()
	// python3 is on the host's /usr, hence in every guest.
	script := fmt.Sprintf(`import socket
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0",%s)); s.listen(4)
while True:
    c,_=s.accept()
    f=c.makefile("rw")
    l=f.readline()
    if l: f.write("pong\n"); f.flush()
    f.close()
    c.close()
`, port)
	m.MustWriteFile("/run/responder.py", []byte(script), 0o644)
	m.MustRun(ctx, "systemd-run", "--unit=responder", "python3", "/run/responder.py")
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if r := m.Run(ctx, "bash", "-c", "ss -ltn | grep -q ':"+port+" '"); r.OK() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("responder on %s:%s never listened\n%s", m.Hostname(), port, m.JournalTail(ctx, "responder.service", 20))
}
