package config

// Config is a parsed cloud-config. Strings hold the YAML scalar text as
// written (after variable substitution); write_files content is already
// decoded. The zero value is an empty config that changes nothing.
type Config struct {
	SSHAuthorizedKeys []string
	Hostname          string
	Users             []User
	WriteFiles        []File
	ManageEtcHosts    string
	CoreOS            CoreOS
}

// CoreOS is the "coreos" mapping.
type CoreOS struct {
	Etcd      Env // → etcd.service drop-in
	Etcd2     Env // → etcd2.service drop-in
	Fleet     Env // → fleet.service drop-in
	Locksmith Env // → locksmithd.service drop-in
	Flannel   Env // → /run/flannel/options.env
	Update    Env // REBOOT_STRATEGY, GROUP, SERVER → /etc/coreos/update.conf
	OEM       OEM
	Units     []Unit
}

// Env is a section rendered as environment variables: the keys that were set
// to a non-zero value, in schema order (the anchor's struct order), with the
// value formatted as the anchor's %v did (1e+21, 0.5, true).
type Env []EnvVar

// EnvVar is one environment variable of an [Env] section.
type EnvVar struct {
	Name  string
	Value string
}

// Get returns the value of the variable called name, or "".
func (e Env) Get(name string) string {
	for _, v := range e {
		if v.Name == name {
			return v.Value
		}
	}
	return ""
}

// OEM is coreos.oem (→ /etc/oem-release when ID is set).
type OEM struct {
	ID, Name, VersionID, HomeURL, BugReportURL string
}

// Unit is one entry of coreos.units.
type Unit struct {
	Name    string
	Mask    bool
	Enable  bool
	Runtime bool
	Content string
	Command string
	DropIns []DropIn
	Line    int // line of the list item
}

// DropIn is one entry of a unit's drop_ins.
type DropIn struct {
	Name    string
	Content string
}

// User is one entry of users.
type User struct {
	Name                 string
	PasswordHash         string
	GECOS                string
	Homedir              string
	NoCreateHome         bool
	PrimaryGroup         string
	Groups               []string
	NoUserGroup          bool
	SSHAuthorizedKeys    []string
	SSHImportGithubUser  string
	SSHImportGithubUsers []string
	SSHImportURL         string
	System               bool
	NoLogInit            bool
	Shell                string
	Line                 int
}

// File is one entry of write_files, with Content already decoded.
type File struct {
	Path        string
	Content     string
	Owner       string
	Permissions string
	Encoding    string
	Line        int
}
