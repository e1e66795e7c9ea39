package fleetctlmain

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWaiting covers how verbs wait: --no-block, --block-attempts, a unit
// no machine can run (reported with the reason instead of hanging), a unit
// systemd reports failed, a cluster without an engine, global units.
func TestWaiting(t *testing.T) {
	s := startEtcd(t)
	t.Chdir(t.TempDir())
	fc := newFakeCluster(t, s, "/wait/", testMachines)
	h := newHarness(t, s, "/wait/")
	writeUnit(t, "a.service", "[Service]\nExecStart=/bin/sleep 1000\n")
	writeUnit(t, "db.service", "[Service]\nExecStart=/bin/sleep 1000\n\n[X-Fleet]\nMachineMetadata=role=db\n")
	writeUnit(t, "nowhere.service", "[Service]\nExecStart=/bin/sleep 1000\n\n[X-Fleet]\nMachineMetadata=role=gpu\n")
	writeUnit(t, "pinned.service", "[Service]\nExecStart=/bin/sleep 1000\n\n[X-Fleet]\nMachineID=deadbeef\n")
	writeUnit(t, "broken.service", "[Service]\nExecStart=/bin/false\n")
	writeUnit(t, "slow.service", "[Service]\nExecStartPre=/bin/sleep 600\nExecStart=/bin/true\n")
	writeUnit(t, "global.service", "[Service]\nExecStart=/bin/sleep 1000\n\n[X-Fleet]\nGlobal=true\n")
	writeUnit(t, "bad.service", "[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nMachineID=abc\nGlobal=true\n")

	h.step("start", "--no-block", "a.service")
	h.waitState("a.service", "launched")
	h.step("load", "db.service")
	h.step("start", "db.service")
	h.step("start", "nowhere.service")
	h.step("list-unit-files", "--fields=unit,dstate,state,target")
	h.step("load", "pinned.service")
	writeUnit(t, "follower.service", "[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nMachineOf=ghost.service\n")
	h.step("start", "--block-attempts=10", "follower.service")

	fc.setSystemd("broken.service", "failed", "failed")
	h.step("start", "broken.service")
	fc.setSystemd("slow.service", "activating", "start-pre")
	h.step("start", "--block-attempts=2", "slow.service")
	h.step("list-units", "--fields=unit,active,sub")

	h.step("unload", "a.service")
	fc.setEngine(false)
	h.note("the engine is switched off: nothing gets scheduled, though some machine could run a.service")
	h.step("start", "--block-attempts=1", "a.service")
	fc.setEngine(true)
	h.note("the engine is back; a.service's desired state is already launched, so start does not wait")
	h.step("start", "a.service")
	h.waitState("a.service", "launched")

	h.step("start", "global.service")
	h.step("list-unit-files", "--fields=unit,dstate,state,target,global")
	h.step("stop", "global.service")
	h.step("unload", "global.service")
	h.step("submit", "bad.service")
	h.step("submit", "missing.service")
	h.step("submit")
	h.step("stop", "--no-block", "a.service")
	h.step("destroy", "--block-attempts=2", "a.service", "db.service", "nowhere.service", "pinned.service", "broken.service", "slow.service", "global.service")
	h.compareGolden("waiting")
}

// TestReplaceAndTemplates covers --replace, the differing-file warning and
// template instances.
func TestReplaceAndTemplates(t *testing.T) {
	s := startEtcd(t)
	t.Chdir(t.TempDir())
	newFakeCluster(t, s, "/repl/", testMachines)
	h := newHarness(t, s, "/repl/")
	writeUnit(t, "web.service", "[Service]\nExecStart=/bin/sleep 1\n")
	h.step("start", "web.service")
	writeUnit(t, "web.service", "[Service]\nExecStart=/bin/sleep 2\n")
	h.step("submit", "web.service")
	h.step("submit", "--replace", "web.service")
	h.step("load", "--replace", "web.service")
	h.step("start", "--replace", "web.service")
	h.step("cat", "web")
	h.step("start", "--replace", "web.service")

	writeUnit(t, "app@.service", "[Unit]\nDescription=App %i\n\n[Service]\nExecStart=/bin/echo %i\n\n[X-Fleet]\nConflicts=app@*.service\n")
	h.step("submit", "app@.service")
	h.step("start", "app@1.service", "app@2")
	h.step("list-unit-files", "--fields=unit,hash,dstate,state,target")
	h.step("start", "other@1.service")
	h.step("start", "app@3.service")
	h.step("list-unit-files", "--fields=unit,dstate,state,target")
	h.step("cat", "app@3.service")
	h.step("cat")
	h.step("cat", "a", "b")
	h.step("cat", "nothing.service")
	h.compareGolden("replace")
}

// TestRestartStatusJournal covers restart, and status/journal when the
// unit is on this machine (local systemctl/journalctl, here stubs on PATH
// that print their arguments and exit like systemctl for the unit).
func TestRestartStatusJournal(t *testing.T) {
	s := startEtcd(t)
	dir := t.TempDir()
	t.Chdir(dir)
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	stub := "#!/bin/sh\necho \"$(basename \"$0\") $*\"\ncase \"$*\" in *stopped*) exit 3;; esac\nexit 0\n"
	for _, n := range []string{"systemctl", "journalctl", "sudo"} {
		if err := os.WriteFile(filepath.Join(bin, n), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	newFakeCluster(t, s, "/rsj/", testMachines)
	h := newHarness(t, s, "/rsj/")
	h.localMachine = m1
	writeUnit(t, "hello.service", helloUnit)
	writeUnit(t, "stopped.service", "[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nMachineID=0acdd9bf\n")
	writeUnit(t, "remote.service", "[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nMachineMetadata=role=db\n")
	writeUnit(t, "idle.service", "[Service]\nExecStart=/bin/true\n")
	writeUnit(t, "g.service", "[Service]\nExecStart=/bin/true\n\n[X-Fleet]\nGlobal=true\nMachineID=\n")

	h.step("start", "hello.service")
	h.step("restart", "hello.service")
	h.step("load", "stopped.service")
	h.step("restart", "stopped.service")
	h.step("submit", "idle.service")
	h.step("restart", "idle.service")
	h.step("restart")

	h.step("status", "hello.service")
	h.step("status", "hello.service", "idle.service")
	h.step("status", "hello.service", "stopped.service", "hello")
	h.step("status", "missing.service")
	h.step("start", "remote.service")
	h.note("remote.service runs on another machine: SSH, which needs ssh-agent")
	h.step("status", "remote.service")
	h.step("journal", "remote.service")
	h.step("journal", "hello.service")
	h.step("journal", "--lines", "20", "-f", "--output=cat", "--sudo", "hello.service")
	h.step("journal", "-n", "5", "--f", "hello")
	h.step("journal", "idle.service")
	h.step("journal", "missing.service")
	h.step("journal")
	h.step("start", "g.service")
	h.step("journal", "g.service")
	h.compareGolden("restart_status_journal")
}

// TestUsage covers the root command: help, version, usage errors,
// FLEETCTL_* environment, drivers and endpoints.
func TestUsage(t *testing.T) {
	s := startEtcd(t)
	t.Chdir(t.TempDir())
	newFakeCluster(t, s, "/usage/", testMachines)
	h := newHarness(t, s, "/usage/")
	h.step("version")
	h.step("--version")
	h.step("-v")
	h.step("verify", "hello.service")
	h.step("bogus")
	h.step("list-units", "--bogus")
	h.step("list-units", "extra")
	h.step("start", "--block-attempts=x", "a.service")
	h.step("--driver=ETCD", "list-machines", "--fields=machine")
	h.step("--driver=bogus", "list-machines")
	h.step("--driver=API", "--endpoint=unix://var/run/x", "list-machines")
	h.step("--driver=API", "--endpoint=nothing", "list-machines")
	h.step("--driver=api", "--endpoint=unix:///nonexistent/fleet.sock", "list-machines")

	h.note("environment: FLEETCTL_FIELDS is not a global flag and is ignored")
	h.env["FLEETCTL_DRIVER"] = "API"
	h.env["FLEETCTL_ENDPOINT"] = "unix:///nonexistent/env.sock"
	h.globals = nil
	h.step("list-machines")
	h.env["FLEETCTL_DRIVER"] = "etcd"
	h.env["FLEETCTL_ENDPOINT"] = s.ClientURL
	h.env["FLEETCTL_ETCD_KEY_PREFIX"] = "/usage/"
	h.env["FLEETCTL_FIELDS"] = "ip"
	h.step("list-machines", "--no-legend")
	h.step("--etcd-key-prefix=/elsewhere/", "list-machines")
	h.env["FLEETCTL_STRICT_HOST_KEY_CHECKING"] = "maybe"
	h.step("list-machines")
	delete(h.env, "FLEETCTL_STRICT_HOST_KEY_CHECKING")
	h.tty = true
	h.note("stdout is a terminal: the same columns, padded with spaces")
	h.step("list-machines")
	got := h.transcript.String()
	h.compareGolden("usage")

	r := h.run("", "completion", "bash")
	if r.code != 0 || !strings.Contains(r.stdout, "__start_fleetctl") {
		t.Errorf("completion bash: exit %d, %d bytes", r.code, len(r.stdout))
	}
	r = h.run("", "--debug", "list-machines")
	if r.code != 0 || !strings.Contains(r.stderr, "level=DEBUG") || !strings.Contains(r.stderr, "/usage/machines") {
		t.Errorf("--debug logs no requests: %q", r.stderr)
	}

	// the help texts are long and cobra-formatted: one golden of their own
	h.transcript.Reset()
	h.globals = nil
	h.step()
	h.step("help", "start")
	h.step("list-units", "--help")
	h.compareGolden("help")
	if !strings.Contains(got, "fleetctl version 1.0.0") {
		t.Error("version line missing")
	}
}
