// Package units holds the machine units that run coreos-cloudinit on a
// corekit machine the way a CoreOS Vagrant box did: coreos-cloudinit.path
// waits for /var/lib/coreos-vagrant/vagrantfile-user-data and starts
// coreos-cloudinit.service, a oneshot that applies it with /etc/environment
// loaded.
//
// The unit files in this directory name the binary /usr/bin/coreos-cloudinit;
// Render substitutes another path (e.g. where `make up` binds the freshly
// built binary), so callers never edit the files by hand.
package units

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

//go:embed coreos-cloudinit.service coreos-cloudinit.path
var files embed.FS

// DefaultBinary is the binary path written in the unit files.
const DefaultBinary = "/usr/bin/coreos-cloudinit"

// UserDataPath is the file the units apply.
const UserDataPath = "/var/lib/coreos-vagrant/vagrantfile-user-data"

// Names are the unit file names, path unit first (it is the one to enable).
func Names() []string { return []string{"coreos-cloudinit.path", "coreos-cloudinit.service"} }

// Render returns the unit files (name → content) with ExecStart pointing at
// binary (an absolute path inside the machine).
func Render(binary string) (map[string]string, error) {
	if !filepath.IsAbs(binary) || strings.ContainsAny(binary, " \t\n") {
		return nil, fmt.Errorf("units: binary path %q must be absolute and contain no whitespace", binary)
	}
	out := map[string]string{}
	for _, n := range Names() {
		b, err := files.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("units: %w", err)
		}
		out[n] = strings.ReplaceAll(string(b), "ExecStart="+DefaultBinary+" ", "ExecStart="+binary+" ")
	}
	return out, nil
}

// WriteDir writes Render(binary) into dir (mode 0644) and returns the paths.
func WriteDir(dir, binary string) ([]string, error) {
	m, err := Render(binary)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, n := range Names() {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte(m[n]), 0o644); err != nil {
			return nil, fmt.Errorf("units: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}
