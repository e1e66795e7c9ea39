package cloudinitmain

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/cloudinit/units"
	"github.com/corekit/corekit/internal/buildbin"
	"github.com/corekit/corekit/internal/testbed"
)

const guestBin = "/opt/corekit/bin/coreos-cloudinit"

// goodUserData is applied by the machine's own coreos-cloudinit.path →
// coreos-cloudinit.service, Vagrant style: the address comes from
// /etc/environment.
const goodUserData = `#cloud-config
coreos:
  units:
    - name: hello.service
      content: |
        [Service]
        ExecStart=/bin/sh -c 'echo "greeting=$GREETING"; exec sleep infinity'
        [Install]
        WantedBy=multi-user.target
      drop-ins:
        - name: 50-greeting.conf
          content: |
            [Service]
            Environment=GREETING=hi-from-$public_ipv4
      enable: true
      command: start
write_files:
  - path: /etc/corekit-test/written
    permissions: "0600"
    content: private=$private_ipv4
`

// badUserData has a unit whose start job fails, followed by one that works.
const badUserData = `#cloud-config
coreos:
  units:
    - name: failing.service
      runtime: true
      content: |
        [Service]
        Type=oneshot
        ExecStart=/bin/false
      command: start
    - name: after-failure.service
      runtime: true
      content: |
        [Service]
        ExecStart=/bin/sleep infinity
      command: start
`

// hostUserData is applied from the host against the guest's systemd.
const hostUserData = `#cloud-config
coreos:
  units:
    - name: from-host.service
      runtime: true
      content: |
        [Service]
        ExecStart=/bin/sleep infinity
      drop-ins:
        - name: 20-cloudinit.conf
          content: |
            [Service]
            Environment="WHERE=host"
      command: start
`

// TestRealSystemd boots one nspawn machine with the freshly built binary
// bound read-only at /opt/corekit/bin and the repository's units (with that
// binary path), and checks against real systemd 252:
//   - the path unit applies vagrantfile-user-data as on Vagrant: the unit and
//     drop-in are written, daemon-reload happens, the unit is enabled and
//     started, and `systemctl show` proves it runs with the drop-in's
//     Environment (with $public_ipv4 from /etc/environment);
//   - run inside the machine, a unit whose start job fails makes the exit
//     code 1, and the next unit's command still runs;
//   - run on the host with --root=/proc/PID1/root, the guest's systemd is
//     reached through its private socket.
func TestRealSystemd(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: -short: real systemd machine test")
	}
	testbed.Require(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	b, err := buildbin.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Cleanup)
	bin, err := b.Build(ctx, "cloudinit", "coreos-cloudinit")
	if err != nil {
		t.Fatal(err)
	}
	unitDir := t.TempDir()
	unitPaths, err := units.WriteDir(unitDir, guestBin)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dataDir, "bad.yaml"), []byte(badUserData), 0o644); err != nil {
		t.Fatal(err)
	}
	c := testbed.NewCluster(t, testbed.Options{
		N:      1,
		Prefix: "cinit",
		Binds: []testbed.Bind{
			{Host: filepath.Dir(bin), Guest: filepath.Dir(guestBin), ReadOnly: true},
			{Host: dataDir, Guest: "/var/lib/corekit-test", ReadOnly: true},
		},
		Units: unitPaths,
	})
	m := c.Machines[0]
	addr := m.Addr().String()

	// The Vagrant way: the box writes the addresses, then the user-data.
	m.MustWriteFile("/etc/environment", []byte(fmt.Sprintf("COREOS_PUBLIC_IPV4=%s\nCOREOS_PRIVATE_IPV4=%s\n", addr, addr)), 0o644)
	m.MustRun(ctx, "systemctl", "enable", "--now", "coreos-cloudinit.path")
	m.MustRun(ctx, "mkdir", "-p", filepath.Dir(units.UserDataPath))
	m.MustWriteFile(units.UserDataPath, []byte(goodUserData), 0o644)

	props := waitProps(ctx, t, m, "coreos-cloudinit.service", func(p map[string]string) bool {
		return p["ActiveState"] == "active" || p["ActiveState"] == "failed"
	}, "ActiveState", "Result", "ExecMainStatus")
	if props["ActiveState"] != "active" || props["ExecMainStatus"] != "0" {
		t.Fatalf("coreos-cloudinit.service: %v\n%s", props, m.Run(ctx, "journalctl", "-u", "coreos-cloudinit.service", "--no-pager").Stdout)
	}
	hello := waitProps(ctx, t, m, "hello.service", func(p map[string]string) bool {
		return p["ActiveState"] == "active"
	}, "ActiveState", "Environment", "DropInPaths", "FragmentPath", "UnitFileState")
	if want := "GREETING=hi-from-" + addr; !strings.Contains(hello["Environment"], want) {
		t.Errorf("hello.service Environment=%q, want %q", hello["Environment"], want)
	}
	if !strings.Contains(hello["DropInPaths"], "/etc/systemd/system/hello.service.d/50-greeting.conf") {
		t.Errorf("DropInPaths=%q", hello["DropInPaths"])
	}
	if hello["FragmentPath"] != "/etc/systemd/system/hello.service" || hello["UnitFileState"] != "enabled" {
		t.Errorf("FragmentPath=%q UnitFileState=%q", hello["FragmentPath"], hello["UnitFileState"])
	}
	if got := string(m.MustReadFile("/etc/corekit-test/written")); got != "private="+addr {
		t.Errorf("written file = %q", got)
	}
	if !strings.Contains(m.Run(ctx, "journalctl", "-u", "hello.service", "--no-pager").Stdout+"\n", "greeting=hi-from-"+addr) {
		t.Logf("hello.service output not (yet) in the journal")
	}

	// A failed job makes the exit code non-zero; later commands still run.
	r := m.Run(ctx, guestBin, "--from-file=/var/lib/corekit-test/bad.yaml")
	if r.ExitCode != 1 {
		t.Errorf("bad user-data: exit %d, want 1\nstderr:\n%s", r.ExitCode, r.Stderr)
	}
	if !strings.Contains(r.Stderr, `Result of "start" on "failing.service": failed`) ||
		!strings.Contains(r.Stderr, "Failed to apply cloud-config: unit jobs did not succeed: start on failing.service: failed") {
		t.Errorf("bad user-data stderr:\n%s", r.Stderr)
	}
	if p := props1(ctx, t, m, "after-failure.service", "ActiveState"); p["ActiveState"] != "active" {
		t.Errorf("after-failure.service: %v", p)
	}

	// A user-data script is persisted in the workspace and run as a
	// transient unit, with variables substituted.
	script := filepath.Join(dataDir, "script.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"addr=$private_ipv4\" > /run/script-out\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = m.Run(ctx, guestBin, "--from-file=/var/lib/corekit-test/script.sh", "--private-ipv4=192.0.2.55")
	if r.ExitCode != 0 {
		t.Fatalf("script: exit %d\n%s", r.ExitCode, r.Stderr)
	}
	unitName := strings.TrimSpace(string(m.MustReadFile("/var/lib/coreos-cloudinit/scripts/unit-name")))
	if !strings.HasPrefix(unitName, "coreos-cloudinit-") || !strings.HasSuffix(unitName, ".service") {
		t.Errorf("unit-name = %q", unitName)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := m.ReadFile("/run/script-out")
		if err == nil && string(b) == "addr=192.0.2.55\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("script output %q, %v\n%s", b, err, r.Stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// From the host, against the guest's D-Bus at /proc/PID1/root/run/systemd/private.
	hostData := filepath.Join(t.TempDir(), "host.yaml")
	if err := os.WriteFile(hostData, []byte(hostUserData), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, bin, "--from-file="+hostData, "--root="+m.Root()).CombinedOutput()
	if err != nil {
		t.Fatalf("host-side apply: %v\n%s", err, out)
	}
	fh := props1(ctx, t, m, "from-host.service", "ActiveState", "Environment")
	if fh["ActiveState"] != "active" || fh["Environment"] != "WHERE=host" {
		t.Errorf("from-host.service: %v\n%s", fh, out)
	}
}

func props1(ctx context.Context, t *testing.T, m *testbed.Machine, unit string, names ...string) map[string]string {
	t.Helper()
	out := m.MustRun(ctx, "systemctl", "show", "-p", strings.Join(names, ","), unit)
	p := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			p[k] = v
		}
	}
	return p
}

// waitProps polls `systemctl show` until done(props) or the deadline.
func waitProps(ctx context.Context, t *testing.T, m *testbed.Machine, unit string, done func(map[string]string) bool, names ...string) map[string]string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		p := props1(ctx, t, m, unit, names...)
		if done(p) || time.Now().After(deadline) || ctx.Err() != nil {
			return p
		}
		time.Sleep(200 * time.Millisecond)
	}
}
