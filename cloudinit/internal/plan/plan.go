// Package plan turns a parsed cloud-config into the ordered list of actions
// coreos-cloudinit performs: set the hostname, create users, authorize SSH
// keys, write files, write units and drop-ins, mask/unmask/enable units, one
// daemon-reload, then each unit command in order, then a user-data script.
//
// It is pure: Build reads only its Input and never touches the system, so the
// result can be printed (--dry-run), compared in golden tests, and handed to
// package apply. Read Build first, then the Action kinds. Paths in actions are
// absolute paths inside the target system; apply prefixes them with --root.
package plan

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/corekit/corekit/cloudinit/internal/config"
)

// Kind names what an Action does.
type Kind string

// Action kinds, in the order Build emits them.
const (
	SetHostname   Kind = "set-hostname"       // Name
	EnsureUser    Kind = "ensure-user"        // User: create it, or only set its password if it exists
	AuthorizeKeys Kind = "authorize-ssh-keys" // Name (user), KeyName, Keys
	WriteFile     Kind = "write-file"         // Path, Content, Mode, Owner
	EditEnvFile   Kind = "edit-env-file"      // Path (Fallback), Vars, Mode: KEY=value lines updated in place
	Mask          Kind = "mask"               // Path → /dev/null
	Unmask        Kind = "unmask"             // Path removed if it is empty or /dev/null
	Enable        Kind = "enable"             // Unit, Runtime: [Install] symlinks
	DaemonReload  Kind = "daemon-reload"      //
	UnitCommand   Kind = "unit-command"       // Unit, Command; waits for the job result
	RunScript     Kind = "run-script"         // Content, Path (workspace): persisted, started as a transient unit
)

// Action is one step. Only the fields listed for its Kind are set.
type Action struct {
	Kind     Kind
	Name     string
	Path     string
	Fallback string
	Content  string
	Mode     fs.FileMode
	Owner    string
	Vars     config.Env
	Unit     string
	Runtime  bool
	Command  string
	KeyName  string
	Keys     []string
	User     *config.User
	Line     int // user-data line the action comes from, 0 if none
}

// Plan is the ordered list of actions. Actions run strictly in order.
type Plan struct {
	Actions []Action
}

// Input is everything Build looks at.
type Input struct {
	Config *config.Config // nil means an empty config
	// Script is the substituted user-data script, if user-data was one.
	Script string
	// Environment holds the COREOS_PUBLIC_IPV4-style values known from
	// metadata or flags; they are written to /etc/environment unless
	// write_files writes that file itself.
	Environment map[string]string
	// SSHKeyName names the key set (update-ssh-keys -a NAME).
	SSHKeyName string
	// Workspace is where scripts are persisted (--workspace).
	Workspace string
	// CurrentHostname is used for manage_etc_hosts when the config sets no
	// hostname (the anchor used the machine's hostname at apply time).
	CurrentHostname string
}

// Fixed names and paths of coreos-cloudinit v1.14.
const (
	DropInName                  = "20-cloudinit.conf"
	OEMReleasePath              = "/etc/oem-release"
	UpdateConfPath              = "/etc/coreos/update.conf"
	UpdateConfUsr               = "/usr/share/coreos/update.conf"
	EtcHostsPath                = "/etc/hosts"
	FlannelEnvPath              = "/run/flannel/options.env"
	EnvironmentPath             = "/etc/environment"
	DefaultMode     fs.FileMode = 0o644
	ScriptMode      fs.FileMode = 0o744
)

// unitSpec is a unit as processUnits sees it: user units plus the generated
// ones.
type unitSpec struct {
	config.Unit
}

// Build computes the plan. It fails only on values the config parser lets
// through but no plan can honour (an unparsable permissions string).
func Build(in Input) (*Plan, error) {
	cfg := in.Config
	if cfg == nil {
		cfg = &config.Config{}
	}
	p := &Plan{}
	add := func(a Action) { p.Actions = append(p.Actions, a) }

	if cfg.Hostname != "" {
		add(Action{Kind: SetHostname, Name: cfg.Hostname})
	}
	for i := range cfg.Users {
		u := cfg.Users[i]
		if u.Name == "" {
			continue
		}
		add(Action{Kind: EnsureUser, Name: u.Name, User: &u, Line: u.Line})
		if len(u.SSHAuthorizedKeys) > 0 {
			add(Action{Kind: AuthorizeKeys, Name: u.Name, KeyName: in.SSHKeyName, Keys: u.SSHAuthorizedKeys, Line: u.Line})
		}
	}
	if len(cfg.SSHAuthorizedKeys) > 0 {
		add(Action{Kind: AuthorizeKeys, Name: "core", KeyName: in.SSHKeyName, Keys: cfg.SSHAuthorizedKeys})
	}

	wroteEnvironment := false
	for _, f := range cfg.WriteFiles {
		mode, err := ParseMode(f.Permissions)
		if err != nil {
			return nil, fmt.Errorf("line %d: write_files %q: %w", f.Line, f.Path, err)
		}
		p := path.Clean("/" + f.Path)
		if p == EnvironmentPath {
			wroteEnvironment = true
		}
		add(Action{Kind: WriteFile, Path: p, Content: f.Content, Mode: mode, Owner: f.Owner, Line: f.Line})
	}
	if o := cfg.CoreOS.OEM; o.ID != "" {
		add(Action{Kind: WriteFile, Path: OEMReleasePath, Mode: DefaultMode, Content: fmt.Sprintf(
			"ID=%s\nVERSION_ID=%s\nNAME=%q\nHOME_URL=%q\nBUG_REPORT_URL=%q\n",
			o.ID, o.VersionID, o.Name, o.HomeURL, o.BugReportURL)})
	}
	if up := cfg.CoreOS.Update; len(up) > 0 {
		add(Action{Kind: EditEnvFile, Path: UpdateConfPath, Fallback: UpdateConfUsr, Vars: up, Mode: DefaultMode})
	}
	if cfg.ManageEtcHosts == "localhost" {
		h := cfg.Hostname
		if h == "" {
			h = in.CurrentHostname
		}
		add(Action{Kind: WriteFile, Path: EtcHostsPath, Mode: DefaultMode, Content: fmt.Sprintf("127.0.0.1 %s\n", h)})
	}
	if fl := cfg.CoreOS.Flannel; len(fl) > 0 {
		lines := make([]string, len(fl))
		for i, v := range fl {
			lines[i] = v.Name + "=" + v.Value
		}
		add(Action{Kind: WriteFile, Path: FlannelEnvPath, Mode: DefaultMode, Content: strings.Join(lines, "\n")})
	}
	if !wroteEnvironment && len(in.Environment) > 0 {
		var vars config.Env
		keys := make([]string, 0, len(in.Environment))
		for k := range in.Environment {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if in.Environment[k] != "" {
				vars = append(vars, config.EnvVar{Name: k, Value: in.Environment[k]})
			}
		}
		if len(vars) > 0 {
			add(Action{Kind: EditEnvFile, Path: EnvironmentPath, Vars: vars, Mode: DefaultMode})
		}
	}

	units := unitList(cfg)
	reload, networkd := false, false
	var commands []Action
	for _, u := range units {
		dir := unitDir(u.Name, u.Runtime)
		unitPath := path.Join(dir, u.Name)
		if u.Content != "" {
			add(Action{Kind: WriteFile, Path: unitPath, Content: u.Content, Mode: DefaultMode, Unit: u.Name, Line: u.Line})
			reload = true
		}
		for _, d := range u.DropIns {
			if d.Name == "" || d.Content == "" {
				continue
			}
			add(Action{Kind: WriteFile, Path: path.Join(unitPath+".d", d.Name), Content: d.Content, Mode: DefaultMode, Unit: u.Name, Line: u.Line})
			reload = true
		}
		if u.Mask {
			add(Action{Kind: Mask, Path: unitPath, Unit: u.Name, Line: u.Line})
			reload = true
		} else if u.Runtime {
			add(Action{Kind: Unmask, Path: unitPath, Unit: u.Name, Line: u.Line})
		}
		network := isNetwork(u.Name)
		if u.Enable && !network {
			add(Action{Kind: Enable, Unit: u.Name, Runtime: u.Runtime, Line: u.Line})
			reload = true
		}
		if network {
			networkd = true
		} else if u.Command != "" {
			commands = append(commands, Action{Kind: UnitCommand, Unit: u.Name, Command: u.Command, Line: u.Line})
		}
	}
	if reload {
		add(Action{Kind: DaemonReload})
	}
	if networkd {
		add(Action{Kind: UnitCommand, Unit: "systemd-networkd.service", Command: "restart"})
	}
	p.Actions = append(p.Actions, commands...)

	if in.Script != "" {
		add(Action{Kind: RunScript, Path: path.Join(in.Workspace, "scripts"), Content: in.Script, Mode: ScriptMode})
	}
	return p, nil
}

// unitList is processUnits' list: user units in file order, then the four
// always-present runtime units with their 20-cloudinit.conf drop-in, then the
// units coreos.update implies.
func unitList(cfg *config.Config) []unitSpec {
	var out []unitSpec
	for _, u := range cfg.CoreOS.Units {
		if u.Name == "" {
			continue
		}
		out = append(out, unitSpec{u})
	}
	for _, s := range []struct {
		name string
		env  config.Env
	}{
		{"etcd.service", cfg.CoreOS.Etcd},
		{"etcd2.service", cfg.CoreOS.Etcd2},
		{"fleet.service", cfg.CoreOS.Fleet},
		{"locksmithd.service", cfg.CoreOS.Locksmith},
	} {
		u := config.Unit{Name: s.name, Runtime: true}
		if c := ServiceDropIn(s.env); c != "" {
			u.DropIns = []config.DropIn{{Name: DropInName, Content: c}}
		}
		out = append(out, unitSpec{u})
	}
	up := cfg.CoreOS.Update
	if rs := up.Get("REBOOT_STRATEGY"); rs != "" {
		u := config.Unit{Name: "locksmithd.service", Command: "restart", Runtime: true}
		if rs == "off" {
			u.Command, u.Mask = "stop", true
		}
		out = append(out, unitSpec{u})
	}
	if up.Get("GROUP") != "" || up.Get("SERVER") != "" {
		out = append(out, unitSpec{config.Unit{Name: "update-engine.service", Command: "restart"}})
	}
	return out
}

// ServiceDropIn renders a [Service] drop-in with one Environment= line per
// variable, or "" when env is empty. Values are quoted for systemd: a '"' or
// '\' in a value is escaped (the anchor wrote them raw and broke the line);
// '%' specifiers are left for systemd to expand, as users rely on %H and %m.
func ServiceDropIn(env config.Env) string {
	if len(env) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("[Service]\n")
	for _, v := range env {
		val := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v.Name + "=" + v.Value)
		fmt.Fprintf(&b, "Environment=\"%s\"\n", val)
	}
	return b.String()
}

// unitDir is where a unit file lives: /etc or /run (runtime), systemd/system
// or systemd/network (networkd files).
func unitDir(name string, runtime bool) string {
	base := "/etc"
	if runtime {
		base = "/run"
	}
	group := "system"
	if isNetwork(name) {
		group = "network"
	}
	return path.Join(base, "systemd", group)
}

func isNetwork(name string) bool {
	switch path.Ext(name) {
	case ".network", ".netdev", ".link":
		return true
	}
	return false
}

// ParseMode parses write_files permissions as octal; "" means 0644.
func ParseMode(s string) (fs.FileMode, error) {
	if s == "" {
		return DefaultMode, nil
	}
	var m uint32
	for _, c := range s {
		if c < '0' || c > '7' {
			return 0, fmt.Errorf("Unable to parse file permissions %q as integer", s)
		}
		m = m*8 + uint32(c-'0')
		if m > 0o7777 {
			return 0, fmt.Errorf("Unable to parse file permissions %q as integer", s)
		}
	}
	return fs.FileMode(m&0o777) | specialBits(m), nil
}

func specialBits(m uint32) fs.FileMode {
	var out fs.FileMode
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	return out
}
