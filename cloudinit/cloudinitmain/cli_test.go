package cloudinitmain

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corekit/corekit/cloudinit/internal/datasource"
)

func fastClient() *datasource.Client {
	return &datasource.Client{HTTP: &http.Client{Timeout: 5 * time.Second}, MaxRetries: 4, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
}

func TestCLIExitCodes(t *testing.T) {
	dir := t.TempDir()
	ud := filepath.Join(dir, "ud")
	os.WriteFile(ud, []byte("#cloud-config\nhostname: a\n"), 0o644)
	for _, tc := range []struct {
		name      string
		args      []string
		code      int
		stdout    string // exact, when non-empty
		stderrHas string
		stdoutHas string
	}{
		{"version", []string{"--version"}, 0, "coreos-cloudinit " + Version + "\n", "", ""},
		{"version wins over missing source", []string{"-version", "--validate"}, 0, "coreos-cloudinit " + Version + "\n", "", ""},
		{"no datasource", nil, 2, noSource + "\n", "", ""},
		{"validate alone still needs a datasource", []string{"--validate"}, 2, noSource + "\n", "", ""},
		{"unknown flag", []string{"--from-ec2-metadata=http://x/"}, 2, "", "flag provided but not defined: -from-ec2-metadata", ""},
		{"stray argument", []string{"--from-file", ud, "extra"}, 2, "", `unexpected argument "extra"`, ""},
		{"bad ip flag", []string{"--from-file", ud, "--public-ipv4=nope"}, 2, "", "", `Invalid option to -public-ipv4: "nope" is not an IP address`},
		{"missing file times out", []string{"--from-file", filepath.Join(dir, "absent")}, 1, "", "No datasources available in time", ""},
		{"validate ok", []string{"--from-file", ud, "--validate"}, 0, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, tc.args, Env{SelectTimeout: 300 * time.Millisecond, HTTP: fastClient()})
			if res.code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", res.code, tc.code, res.stdout, res.stderr)
			}
			if tc.stdout != "" && res.stdout != tc.stdout {
				t.Errorf("stdout %q, want %q", res.stdout, tc.stdout)
			}
			if !strings.Contains(res.stderr, tc.stderrHas) || !strings.Contains(res.stdout, tc.stdoutHas) {
				t.Errorf("stdout %q / stderr %q lack %q / %q", res.stdout, res.stderr, tc.stdoutHas, tc.stderrHas)
			}
		})
	}
}

func TestFromURL(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("#cloud-config\nwrite_files:\n  - path: /etc/from-url\n    content: $private_ipv4\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	root := t.TempDir()
	res := runCLI(t, []string{"--from-url", srv.URL + "/ok", "--root", root, "--private-ipv4", "10.9.8.7"}, Env{HTTP: fastClient()})
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc/from-url")); err != nil || string(b) != "10.9.8.7" {
		t.Errorf("/etc/from-url = %q, %v", b, err)
	}
	if !strings.Contains(res.stderr, `Fetching user-data from datasource of type "url"`) {
		t.Errorf("stderr: %s", res.stderr)
	}

	// A 404 is "not available": the prober keeps trying until the timeout.
	res = runCLI(t, []string{"--from-url", srv.URL + "/missing", "--root", root}, Env{HTTP: fastClient(), SelectTimeout: 400 * time.Millisecond})
	if res.code != 1 || !strings.Contains(res.stderr, "No datasources available in time") {
		t.Errorf("404: exit %d, stderr %s", res.code, res.stderr)
	}

	// Not http(s): never available.
	res = runCLI(t, []string{"--from-url", "ftp://example/ud", "--root", root}, Env{HTTP: fastClient(), SelectTimeout: 300 * time.Millisecond})
	if res.code != 1 {
		t.Errorf("ftp: exit %d", res.code)
	}
}

func TestFromProcCmdline(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("#cloud-config\nhostname: from-cmdline\n"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	cmdline := filepath.Join(dir, "cmdline")
	os.WriteFile(cmdline, []byte("ro quiet cloud-config-url=http://127.0.0.1:1/ignored cloud_config_url="+srv.URL+"/ud console=ttyS0\n"), 0o644)
	root := filepath.Join(dir, "root")
	res := runCLI(t, []string{"--from-proc-cmdline", "--root", root}, Env{HTTP: fastClient(), ProcCmdline: cmdline})
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/hostname")); string(b) != "from-cmdline\n" {
		t.Errorf("hostname file %q", b)
	}
	// Without the parameter the source is unavailable at once (checked once).
	os.WriteFile(cmdline, []byte("ro quiet\n"), 0o644)
	res = runCLI(t, []string{"--from-proc-cmdline", "--root", root}, Env{HTTP: fastClient(), ProcCmdline: cmdline, SelectTimeout: time.Minute})
	if res.code != 1 || !strings.Contains(res.stderr, "No datasources available in time") {
		t.Errorf("exit %d: %s", res.code, res.stderr)
	}
}

// TestRootSlashNeedsSystemd: applying to "/" with unit work and no systemd
// reachable fails before anything is written.
func TestRootSlashNeedsSystemd(t *testing.T) {
	if _, err := os.Stat("/run/systemd/private"); err == nil {
		t.Skip("SKIP: this host runs systemd; the test needs a host without it")
	}
	if _, err := os.Stat("/run/dbus/system_bus_socket"); err == nil {
		t.Skip("SKIP: this host has a system bus")
	}
	dir := t.TempDir()
	ud := filepath.Join(dir, "ud")
	marker := filepath.Join(dir, "must-not-exist")
	os.WriteFile(ud, []byte("#cloud-config\nwrite_files:\n  - path: "+marker+"\n    content: x\ncoreos:\n  units:\n    - name: x.service\n      command: start\n"), 0o644)
	res := runCLI(t, []string{"--from-file", ud}, Env{})
	if res.code != 1 || !strings.Contains(res.stderr, "Failed to apply cloud-config: no systemd socket") {
		t.Errorf("exit %d: %s", res.code, res.stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("%s was written", marker)
	}
}
