package cloudinitmain

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSeed000DropIn checks the drop-in seed 000 §5 shows on core-01
// (cat /run/systemd/system/etcd.service.d/20-cloudinit.conf) byte for byte,
// produced from seed 000 §2's user-data with that section's token and the
// machine's address.
func TestSeed000DropIn(t *testing.T) {
	root := t.TempDir()
	res := runCLI(t, []string{
		"--from-file", "../testdata/seeds/000-s5-user-data",
		"--public-ipv4", "172.17.8.101", "--root", root,
	}, Env{})
	if res.code != 0 {
		t.Fatalf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	got, err := os.ReadFile(filepath.Join(root, "run/systemd/system/etcd.service.d/20-cloudinit.conf"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../testdata/seeds/000-s5-20-cloudinit.conf")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("drop-in:\n%s\nseed shows:\n%s", got, want)
	}
	fi, err := os.Stat(filepath.Join(root, "run/systemd/system/etcd.service.d/20-cloudinit.conf"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode: %v %v", fi.Mode(), err)
	}
}
