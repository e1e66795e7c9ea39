package vagrant

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRubySyntax checks the Vagrantfile with `ruby -c`.
func TestRubySyntax(t *testing.T) {
	ruby, err := exec.LookPath("ruby")
	if err != nil {
		t.Skip("SKIP: ruby not installed (apt-get install -y ruby); .ci/run installs it")
	}
	out, err := exec.Command(ruby, "-c", "Vagrantfile").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Syntax OK") {
		t.Fatalf("ruby -c Vagrantfile: %v\n%s", err, out)
	}
}

// TestVagrantValidate runs Debian's real `vagrant validate` on a copy of the
// Vagrantfile and its files (so no .vagrant/ state lands in the repository).
// VirtualBox is not needed: --ignore-provider checks the configuration only.
func TestVagrantValidate(t *testing.T) {
	vagrant, err := exec.LookPath("vagrant")
	if err != nil {
		t.Skip("SKIP: vagrant not installed (apt-get install -y vagrant); .ci/run installs it")
	}
	if testing.Short() {
		t.Skip("SKIP: -short: vagrant validate takes a few seconds")
	}
	repo := layout(t)
	for _, extra := range []string{"config.rb.sample"} {
		b, err := os.ReadFile(extra)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, "vagrant", extra), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	home := t.TempDir()
	for _, n := range []string{"3", "1"} {
		cmd := exec.CommandContext(t.Context(), vagrant, "validate", "--ignore-provider")
		cmd.Dir = filepath.Join(repo, "vagrant")
		cmd.Env = append(os.Environ(), "HOME="+home, "VAGRANT_HOME="+filepath.Join(home, ".vagrant.d"),
			"VAGRANT_CHECKPOINT_DISABLE=1", "NUM_INSTANCES="+n)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Vagrantfile validated successfully.") {
			t.Fatalf("NUM_INSTANCES=%s vagrant validate: %v\n%s", n, err, out)
		}
	}
}
