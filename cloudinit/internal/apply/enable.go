package apply

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	sdunit "github.com/coreos/go-systemd/v22/unit"
)

// unitSearchPath is where systemd looks for system units, in order.
func unitSearchPath() []string {
	return []string{
		"/etc/systemd/system", "/run/systemd/system",
		"/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system",
	}
}

// enableNative does `systemctl enable` without systemd: it reads the unit's
// [Install] section under the root and creates the WantedBy=/RequiredBy=
// (and Alias=) symlinks in /etc/systemd/system, or /run/systemd/system when
// runtime. Also= units are enabled too.
func (a *applier) enableNative(name string, runtime bool) error {
	return a.enableOne(name, runtime, map[string]bool{})
}

func (a *applier) enableOne(name string, runtime bool, seen map[string]bool) error {
	if seen[name] {
		return nil
	}
	seen[name] = true
	var found string
	for _, d := range unitSearchPath() {
		p := path.Join(d, name)
		if fi, err := os.Stat(a.path(p)); err == nil && fi.Mode().IsRegular() {
			found = p
			break
		}
	}
	if found == "" {
		return fmt.Errorf("enable %s: unit file not found", name)
	}
	f, err := os.Open(a.path(found))
	if err != nil {
		return fmt.Errorf("enable %s: %w", name, err)
	}
	opts, err := sdunit.Deserialize(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("enable %s: %w", name, err)
	}
	dir := "/etc/systemd/system"
	if runtime {
		dir = "/run/systemd/system"
	}
	var links [][2]string // link path, target
	var also []string
	for _, o := range opts {
		if o.Section != "Install" {
			continue
		}
		for _, v := range strings.Fields(o.Value) {
			switch o.Name {
			case "WantedBy":
				links = append(links, [2]string{path.Join(dir, v+".wants", name), found})
			case "RequiredBy":
				links = append(links, [2]string{path.Join(dir, v+".requires", name), found})
			case "Alias":
				links = append(links, [2]string{path.Join(dir, v), found})
			case "Also":
				also = append(also, v)
			}
		}
	}
	if len(links) == 0 && len(also) == 0 {
		a.log.Info(fmt.Sprintf("Unit %q has no [Install] section; nothing to enable", name))
	}
	for _, l := range links {
		full := a.path(l[0])
		if err := os.MkdirAll(path.Dir(full), 0o755); err != nil {
			return fmt.Errorf("enable %s: %w", name, err)
		}
		if err := os.Remove(full); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("enable %s: %w", name, err)
		}
		if err := os.Symlink(l[1], full); err != nil {
			return fmt.Errorf("enable %s: %w", name, err)
		}
		a.log.Info(fmt.Sprintf("Created symlink %s → %s", l[0], l[1]))
	}
	for _, n := range also {
		if err := a.enableOne(n, runtime, seen); err != nil {
			return err
		}
	}
	return nil
}
