package fleetctlmain

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corekit/corekit/fleetctl/internal/command"
	"github.com/corekit/corekit/internal/buildbin"
	"github.com/corekit/corekit/internal/etcdtest"
	"github.com/corekit/corekit/internal/fleetregistry"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from this run")

// Machines of the test cluster: IDs and IPs as in the seed walkthrough.
const (
	m1 = "0acdd9bf5e0c4c1cbd2b5f1a7e0f7a11"
	m2 = "113f16a7a9a34c5f8a0c5b6f4d3e2c22"
	m3 = "c3c1d8e09f0b4a6d9e8f7a6b5c4d3e33"
)

var testMachines = []fleetregistry.MachineState{
	{ID: m1, PublicIP: "10.0.2.15"},
	{ID: m2, PublicIP: "172.17.8.103", Metadata: map[string]string{"region": "us-west"}},
	{ID: m3, PublicIP: "172.17.8.102", Metadata: map[string]string{"role": "db", "region": "us-east"}},
}

// clearEnv keeps the host's FLEETCTL_* variables out of the test.
func clearEnv(t *testing.T) {
	for _, k := range os.Environ() {
		if name, _, _ := strings.Cut(k, "="); strings.HasPrefix(name, "FLEETCTL_") {
			t.Setenv(name, "")
		}
	}
	t.Setenv("SSH_AUTH_SOCK", "")
}

// result is one fleetctl run.
type result struct {
	stdout, stderr string
	code           int
}

// harness runs fleetctl invocations against one etcd and keeps a
// transcript for a golden file.
type harness struct {
	t      *testing.T
	etcd   *etcdtest.Server
	prefix string
	// global flags added to every run and hidden from the transcript
	globals []string
	env     map[string]string
	tty     bool
	// hooks for the factory
	localMachine string
	sshAgent     string
	transcript   bytes.Buffer
	// replace rewrites run-specific strings (ports, paths) in transcripts
	replace []string
	// attempt overrides the factory's wait attempt (200 ms)
	attempt time.Duration
}

func newHarness(t *testing.T, s *etcdtest.Server, prefix string) *harness {
	clearEnv(t)
	return &harness{t: t, etcd: s, prefix: prefix,
		globals: []string{"--driver=etcd", "--endpoint=" + s.ClientURL, "--etcd-key-prefix=" + prefix},
		env:     map[string]string{}}
}

func (h *harness) factory(stdin string, out, errb *bytes.Buffer) *command.Factory {
	f := NewFactory(strings.NewReader(stdin), out, errb, func(k string) string {
		if v, ok := h.env[k]; ok {
			return v
		}
		if k == "SSH_AUTH_SOCK" {
			return h.sshAgent
		}
		return os.Getenv(k)
	})
	f.IO.OutTTY = h.tty
	f.Now = func() time.Time { return time.Date(2015, 1, 10, 8, 58, 7, 0, time.UTC) }
	f.Poll = 20 * time.Millisecond
	f.Attempt = 200 * time.Millisecond
	if h.attempt > 0 {
		f.Attempt = h.attempt
	}
	f.LocalMachineID = func() string { return h.localMachine }
	return f
}

// run executes fleetctl with the harness's globals prepended.
func (h *harness) run(stdin string, args ...string) result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.t.Context(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := RunFactory(ctx, h.factory(stdin, &out, &errb), append(append([]string{}, h.globals...), args...))
	if ctx.Err() != nil {
		h.t.Fatalf("fleetctl %s did not finish within 60 s", strings.Join(args, " "))
	}
	return result{out.String(), errb.String(), code}
}

// step runs fleetctl and appends the run to the transcript.
func (h *harness) step(args ...string) result {
	h.t.Helper()
	return h.stepIn("", args...)
}

func (h *harness) stepIn(stdin string, args ...string) result {
	h.t.Helper()
	r := h.run(stdin, args...)
	h.record(strings.Join(args, " "), r)
	return r
}

func (h *harness) record(cmd string, r result) {
	if len(h.replace) > 0 {
		rp := strings.NewReplacer(h.replace...)
		cmd, r.stdout, r.stderr = rp.Replace(cmd), rp.Replace(r.stdout), rp.Replace(r.stderr)
	}
	fmt.Fprintf(&h.transcript, "$ fleetctl %s\n--- stdout\n%s", cmd, r.stdout)
	if r.stdout != "" && !strings.HasSuffix(r.stdout, "\n") {
		h.transcript.WriteString("\n--- (no newline at end of stdout)\n")
	}
	fmt.Fprintf(&h.transcript, "--- stderr\n%s--- exit %d\n\n", r.stderr, r.code)
}

// waitState polls (deadline 20 s) until unit reports current state want.
func (h *harness) waitState(unit, want string) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := h.run("", "list-unit-files", "--no-legend", "--fields=unit,state")
		for _, line := range strings.Split(r.stdout, "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == unit && f[1] == want {
				return
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s did not reach %s: %s%s", unit, want, r.stdout, r.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// note adds a comment line to the transcript (what the test changed).
func (h *harness) note(s string) { fmt.Fprintf(&h.transcript, "# %s\n\n", s) }

// compareGolden compares the transcript with testdata/<name>.golden.
func (h *harness) compareGolden(name string) {
	h.t.Helper()
	compareGolden(h.t, name, h.transcript.String())
}

func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	root, err := buildbin.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "fleetctl", "testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from this run (rerun with -update after checking):\n%s", path, diff(string(want), got))
	}
}

// diff shows the first differing lines.
func diff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			lo := max(0, i-3)
			return fmt.Sprintf("line %d:\n  want: %q\n  got:  %q\ncontext (got):\n%s", i+1, w, g, strings.Join(gl[lo:min(len(gl), i+4)], "\n"))
		}
	}
	return ""
}

// writeUnit writes a unit file into the current directory.
func writeUnit(t *testing.T, name, text string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// helloUnit is the seed walkthrough's hello.service.
const helloUnit = `[Unit]
Description=Hello World
After=docker.service
Requires=docker.service

[Service]
TimeoutStartSec=0
ExecStartPre=-/usr/bin/docker kill busybox1
ExecStartPre=-/usr/bin/docker rm busybox1
ExecStartPre=/usr/bin/docker pull busybox
ExecStart=/usr/bin/docker run --name busybox1 busybox /bin/sh -c "while true; do echo Hello World; sleep 1; done"
ExecStop=/usr/bin/docker kill busybox1

[X-Fleet]
X-Conflicts=hello.service
`

// TestWalkthrough replays seed 000's fleet walkthrough (submit → load →
// start → stop → unload → destroy with the list tables, cat, and start of a
// file path) and the list flags, against etcd with the fake engine/agent.
func TestWalkthrough(t *testing.T) {
	s := startEtcd(t)
	t.Chdir(t.TempDir())
	fc := newFakeCluster(t, s, "/walk/", testMachines)
	_ = fc
	h := newHarness(t, s, "/walk/")
	writeUnit(t, "hello.service", helloUnit)

	h.step("list-machines")
	h.step("list-machines", "--full")
	h.step("list-machines", "-l", "--no-legend")
	h.step("list-machines", "--l", "--fields=machine,ip")
	h.step("list-machines", "--fields=ip,metadata,machine")
	h.step("list-machines", "--fields=")
	h.step("list-machines", "--fields=bogus")

	h.step("submit", "hello.service")
	h.step("list-unit-files")
	h.step("list-units")
	h.step("cat", "hello.service")
	h.step("load", "hello.service")
	h.step("list-unit-files")
	h.step("list-units")
	h.step("start", "hello.service")
	h.step("list-unit-files")
	h.step("list-units")
	h.step("list-units", "--full")
	h.step("list-units", "-l", "--fields=unit,hash,load,active,sub,machine")
	h.step("list-units", "--no-legend", "--fields=unit,hash")
	h.step("list-unit-files", "--fields=unit,desc,global,tmachine")
	h.step("list-unit-files", "--full", "--no-legend")
	h.step("stop", "hello.service")
	h.step("list-unit-files")
	h.step("unload", "hello.service")
	h.step("list-unit-files")
	h.step("list-units")
	h.step("destroy", "hello.service")
	h.step("list-unit-files")
	h.step("list-units")

	h.note("start a unit file by path: submitted, then launched")
	h.step("start", "./hello.service")
	h.step("start", "hello")
	h.step("stop", "hello")
	h.step("stop", "hello.service")
	h.step("destroy", "hello.service", "missing.service")
	h.step("destroy", "missing.service")
	h.compareGolden("walkthrough")
}
