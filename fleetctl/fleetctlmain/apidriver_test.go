package fleetctlmain

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corekit/corekit/internal/buildbin"
	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/fleetapi"
	"github.com/corekit/corekit/internal/fleetregistry"
)

// startFleetds builds the real fleetd and runs one process per machine
// against etcd below prefix, with its hidden simulated unit manager
// (unit_manager=memory) instead of systemd: real engine, agents, registry
// and HTTP API. It returns the API socket of the first machine once every
// machine is registered.
func startFleetds(t *testing.T, s *etcdtest.Server, prefix string, machines []fleetregistry.MachineState) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	b, err := buildbin.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Cleanup)
	bin, err := b.Build(ctx, "fleet", "fleetd")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "fleetd") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf := filepath.Join(dir, "fleet.conf")
	if err := os.WriteFile(conf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var socks []string
	for i, m := range machines {
		idFile := filepath.Join(dir, fmt.Sprintf("machine-id-%d", i))
		if err := os.WriteFile(idFile, []byte(m.ID+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		var md []string
		for k, v := range m.Metadata {
			md = append(md, k+"="+v)
		}
		sort.Strings(md)
		sock := filepath.Join(dir, fmt.Sprintf("%d.sock", i))
		socks = append(socks, sock)
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("fleetd-%d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "--config", conf)
		cmd.Env = []string{
			"FLEET_ETCD_SERVERS=" + s.ClientURL, "FLEET_ETCD_KEY_PREFIX=" + prefix, "FLEET_ETCD_REQUEST_TIMEOUT=5",
			"FLEET_MACHINE_ID_FILE=" + idFile, "FLEET_PUBLIC_IP=" + m.PublicIP, "FLEET_METADATA=" + strings.Join(md, ","),
			"FLEET_UNIT_MANAGER=memory", "FLEET_API_SOCKET=" + sock, "FLEET_UNITS_DIRECTORY=" + filepath.Join(dir, "units"),
			"FLEET_ENGINE_RECONCILE_INTERVAL=0.2", "FLEET_AGENT_TTL=20s",
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			logf.Close()
			if t.Failed() {
				b, _ := os.ReadFile(logf.Name())
				t.Logf("fleetd %s log:\n%s", m.ID, b)
			}
		})
	}
	c, err := fleetapi.NewClient("unix://"+socks[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ms, err := c.Machines(ctx)
		if err == nil && len(ms) == len(machines) {
			return socks[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("fleetds did not register: %d machines, %v", len(ms), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitActive polls (deadline 20 s) until list-units shows unit with ACTIVE
// want, or without any row when want is "".
func (h *harness) waitActive(unit, want string) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := h.run("", "list-units", "--no-legend", "--fields=unit,active")
		got := ""
		for _, line := range strings.Split(r.stdout, "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == unit {
				got = f[1]
			}
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s did not become %q in list-units: %s%s", unit, want, r.stdout, r.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWalkthroughAPI replays the seed walkthrough through the API driver
// against real fleetd processes (simulated systemd), and an unschedulable
// unit whose reason comes from fleetd's engine.
func TestWalkthroughAPI(t *testing.T) {
	s := startEtcd(t)
	t.Chdir(t.TempDir())
	sock := startFleetds(t, s, "/api-walk/", testMachines)
	h := newHarness(t, s, "/api-walk/")
	h.globals = []string{"--endpoint=unix://" + sock}
	h.replace = []string{sock, "/var/run/fleet.sock"}
	h.attempt = time.Second
	writeUnit(t, "hello.service", helloUnit)
	writeUnit(t, "nowhere.service", "[Service]\nExecStart=/bin/sleep 1000\n\n[X-Fleet]\nMachineMetadata=role=gpu\n")

	h.step("list-machines")
	h.step("list-machines", "--full", "--fields=machine,ip")
	h.step("submit", "hello.service")
	h.step("list-unit-files")
	h.step("list-units")
	h.step("cat", "hello.service")
	h.step("load", "hello.service")
	h.step("list-unit-files")
	h.waitActive("hello.service", "inactive")
	h.step("list-units")
	h.step("start", "hello.service")
	h.step("list-unit-files")
	h.step("list-units")
	h.step("list-units", "-l", "--fields=unit,hash,load,active,sub,machine")
	h.step("stop", "hello.service")
	h.step("list-unit-files")
	h.waitActive("hello.service", "inactive")
	h.step("list-units")
	h.step("unload", "hello.service")
	h.step("list-unit-files")
	h.waitActive("hello.service", "")
	h.step("list-units")
	h.step("destroy", "hello.service")
	h.step("list-unit-files")

	h.note("start a unit file by path: submitted, then launched")
	h.step("start", "./hello.service")
	h.step("start", "hello")
	h.step("stop", "hello")
	h.step("destroy", "hello.service", "missing.service")

	h.note("no machine has role=gpu: fleetctl reports fleetd's engine's reason")
	h.step("start", "nowhere.service")
	h.step("list-unit-files", "--fields=unit,dstate,state,target")
	h.step("destroy", "nowhere.service")
	h.compareGolden("walkthrough_api")
}
