package apply

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/corekit/corekit/cloudinit/internal/plan"
)

// account is one /etc/passwd entry.
type account struct {
	name     string
	uid, gid int
	home     string
}

// readColon reads a colon-separated database (passwd, group) under the root.
func (a *applier) readColon(p string) ([][]string, error) {
	f, err := os.Open(a.path(p))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, strings.Split(l, ":"))
	}
	return out, sc.Err()
}

// lookupUser finds name in <root>/etc/passwd.
func (a *applier) lookupUser(name string) (account, error) {
	rows, err := a.readColon("/etc/passwd")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return account{}, err
	}
	for _, r := range rows {
		if len(r) >= 6 && (r[0] == name || r[2] == name) {
			uid, err1 := strconv.Atoi(r[2])
			gid, err2 := strconv.Atoi(r[3])
			if err1 != nil || err2 != nil {
				return account{}, fmt.Errorf("malformed /etc/passwd entry for %q", name)
			}
			return account{name: r[0], uid: uid, gid: gid, home: r[5]}, nil
		}
	}
	return account{}, fmt.Errorf("user %q does not exist", name)
}

func (a *applier) lookupGroup(name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	rows, err := a.readColon("/etc/group")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	for _, r := range rows {
		if len(r) >= 3 && r[0] == name {
			return strconv.Atoi(r[2])
		}
	}
	return 0, fmt.Errorf("group %q does not exist", name)
}

// resolveOwner resolves chown-style "user", "user:group", "user:" (login
// group), ":group" or numeric ids against the root's passwd and group files.
func (a *applier) resolveOwner(owner string) (uid, gid int, err error) {
	user, group, hasGroup := strings.Cut(owner, ":")
	uid, gid = -1, -1
	if user != "" {
		if n, err := strconv.Atoi(user); err == nil {
			uid = n
		} else {
			acc, err := a.lookupUser(user)
			if err != nil {
				return 0, 0, fmt.Errorf("owner %q: %w", owner, err)
			}
			uid = acc.uid
			if hasGroup && group == "" {
				gid = acc.gid
			}
		}
	}
	if group != "" {
		if gid, err = a.lookupGroup(group); err != nil {
			return 0, 0, fmt.Errorf("owner %q: %w", owner, err)
		}
	}
	return uid, gid, nil
}

func (a *applier) rootArgs() []string {
	if a.root == "/" {
		return nil
	}
	return []string{"--root", a.root}
}

// ensureUser creates the user with useradd, or only sets the password of an
// existing one with chpasswd -e.
func (a *applier) ensureUser(ctx context.Context, act plan.Action) error {
	u := act.User
	if _, err := a.lookupUser(u.Name); err == nil {
		a.log.Info(fmt.Sprintf("User '%s' exists, ignoring creation-time fields", u.Name))
		if u.PasswordHash == "" {
			return nil
		}
		a.log.Info(fmt.Sprintf("Setting '%s' user's password", u.Name))
		args := append(a.rootArgs(), "-e")
		if out, err := a.o.Runner.Run(ctx, []byte(u.Name+":"+u.PasswordHash+"\n"), "chpasswd", args...); err != nil {
			return fmt.Errorf("Failed setting '%s' user's password: %w: %s", u.Name, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	a.log.Info(fmt.Sprintf("Creating user '%s'", u.Name))
	args := a.rootArgs()
	pw := u.PasswordHash
	if pw == "" {
		pw = "*"
	}
	args = append(args, "--password", pw)
	if u.GECOS != "" {
		args = append(args, "--comment", u.GECOS)
	}
	if u.Homedir != "" {
		args = append(args, "--home-dir", u.Homedir)
	}
	if u.NoCreateHome {
		args = append(args, "--no-create-home")
	} else {
		args = append(args, "--create-home")
	}
	if u.PrimaryGroup != "" {
		args = append(args, "--gid", u.PrimaryGroup)
	}
	if len(u.Groups) > 0 {
		args = append(args, "--groups", strings.Join(u.Groups, ","))
	}
	if u.NoUserGroup {
		args = append(args, "--no-user-group")
	}
	if u.System {
		args = append(args, "--system")
	}
	if u.NoLogInit {
		args = append(args, "--no-log-init")
	}
	if u.Shell != "" {
		args = append(args, "--shell", u.Shell)
	}
	args = append(args, u.Name)
	if out, err := a.o.Runner.Run(ctx, nil, "useradd", args...); err != nil {
		return fmt.Errorf("Failed creating user '%s': %w: %s", u.Name, err, strings.TrimSpace(string(out)))
	}
	if u.SSHImportGithubUser != "" || len(u.SSHImportGithubUsers) > 0 || u.SSHImportURL != "" {
		a.log.Warn(fmt.Sprintf("Ignoring deprecated remote SSH key import for user '%s'", u.Name))
	}
	return nil
}

// authorizeKeys does what CoreOS's `update-ssh-keys -u USER -a NAME` did:
// replace ~/.ssh/authorized_keys.d/NAME with the keys and regenerate
// ~/.ssh/authorized_keys from every file in authorized_keys.d, in name order.
func (a *applier) authorizeKeys(act plan.Action) error {
	acc, err := a.lookupUser(act.Name)
	if err != nil {
		return fmt.Errorf("authorize ssh keys: %w", err)
	}
	sshDir := path.Join(acc.home, ".ssh")
	dDir := path.Join(sshDir, "authorized_keys.d")
	for _, d := range []string{sshDir, dDir} {
		if err := os.MkdirAll(a.path(d), 0o700); err != nil {
			return fmt.Errorf("authorize ssh keys: %w", err)
		}
		if err := os.Lchown(a.path(d), acc.uid, acc.gid); err != nil {
			return fmt.Errorf("authorize ssh keys: %w", err)
		}
	}
	var b strings.Builder
	for _, k := range act.Keys {
		b.WriteString(strings.TrimSpace(k) + "\n")
	}
	owner := strconv.Itoa(acc.uid) + ":" + strconv.Itoa(acc.gid)
	if err := a.writeFile(path.Join(dDir, act.KeyName), []byte(b.String()), 0o600, owner); err != nil {
		return fmt.Errorf("authorize ssh keys: %w", err)
	}
	entries, err := os.ReadDir(a.path(dDir))
	if err != nil {
		return fmt.Errorf("authorize ssh keys: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), "cloudinit-temp") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var all strings.Builder
	all.WriteString("# auto-generated by coreos-cloudinit from ~/.ssh/authorized_keys.d; edit those files instead\n")
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(a.path(dDir), n))
		if err != nil {
			return fmt.Errorf("authorize ssh keys: %w", err)
		}
		fmt.Fprintf(&all, "# %s\n%s", n, data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			all.WriteByte('\n')
		}
	}
	if err := a.writeFile(path.Join(sshDir, "authorized_keys"), []byte(all.String()), 0o600, owner); err != nil {
		return fmt.Errorf("authorize ssh keys: %w", err)
	}
	if act.Name == "core" {
		a.log.Info("Authorized SSH keys for core user")
	} else {
		a.log.Info(fmt.Sprintf("Authorized %d SSH keys for user '%s'", len(act.Keys), act.Name))
	}
	return nil
}
