package apply

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/corekit/corekit/cloudinit/internal/config"
	"github.com/corekit/corekit/cloudinit/internal/plan"
)

// writeFile writes content to p (inside the root) atomically: a temporary
// file in the same directory, chmod, chown, rename.
func (a *applier) writeFile(p string, content []byte, mode fs.FileMode, owner string) error {
	full := a.path(p)
	dir := filepath.Dir(full)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	tmp, err := os.CreateTemp(dir, "cloudinit-temp")
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(name)
		}
	}()
	_, werr := tmp.Write(content)
	if err := errors.Join(werr, tmp.Close()); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := os.Chmod(name, mode); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if owner != "" {
		uid, gid, err := a.resolveOwner(owner)
		if err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := os.Lchown(name, uid, gid); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		// chown clears set-id bits; put them back.
		if err := os.Chmod(name, mode); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	if err := os.Rename(name, full); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	ok = true
	return nil
}

// editEnvFile updates KEY=value lines in place (the first line whose key is
// KEY; the anchor matched any line merely starting with KEY), keeps every
// other line, appends missing keys in sorted order, and writes only when
// something changed. Every line ends with "\n".
func (a *applier) editEnvFile(act plan.Action) error {
	old, err := os.ReadFile(a.path(act.Path))
	if errors.Is(err, fs.ErrNotExist) && act.Fallback != "" {
		old, err = os.ReadFile(a.path(act.Fallback))
	}
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", act.Path, err)
	}
	out := EditEnv(old, act.Vars)
	if exists && bytes.Equal(old, out) {
		if _, err := os.Stat(a.path(act.Path)); err == nil {
			return nil
		}
	}
	if err := a.writeFile(act.Path, out, act.Mode, ""); err != nil {
		return err
	}
	a.log.Info(fmt.Sprintf("Updated %s", act.Path))
	return nil
}

// EditEnv returns old with each variable set: an existing "KEY=" line is
// replaced, new keys are appended in sorted order.
func EditEnv(old []byte, vars config.Env) []byte {
	set := map[string]string{}
	for _, v := range vars {
		set[v.Name] = v.Value
	}
	var b bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(old))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if k, _, ok := strings.Cut(line, "="); ok {
			if v, want := set[strings.TrimSpace(k)]; want {
				line = strings.TrimSpace(k) + "=" + v
				delete(set, strings.TrimSpace(k))
			}
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(k + "=" + set[k] + "\n")
	}
	return b.Bytes()
}

func (a *applier) mask(act plan.Action) error {
	full := a.path(act.Path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return fmt.Errorf("mask %s: %w", act.Unit, err)
	}
	if err := os.Remove(full); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("mask %s: %w", act.Unit, err)
	}
	if err := os.Symlink("/dev/null", full); err != nil {
		return fmt.Errorf("mask %s: %w", act.Unit, err)
	}
	a.log.Info(fmt.Sprintf("Masking unit file %q", act.Unit))
	return nil
}

func (a *applier) unmask(act plan.Action) error {
	full := a.path(act.Path)
	a.log.Info(fmt.Sprintf("Ensuring runtime unit file %q is unmasked", act.Unit))
	fi, err := os.Lstat(full)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unmask %s: %w", act.Unit, err)
	}
	masked := false
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(full)
		masked = err == nil && t == "/dev/null"
	case fi.Mode()&fs.ModeCharDevice != 0:
		masked = true
	case fi.Mode().IsRegular() && fi.Size() == 0:
		masked = true
	}
	if !masked {
		if fi.Mode().IsRegular() {
			a.log.Info(fmt.Sprintf("%s is not null or empty, refusing to unmask", full))
		}
		return nil
	}
	if err := os.Remove(full); err != nil {
		return fmt.Errorf("unmask %s: %w", act.Unit, err)
	}
	return nil
}
