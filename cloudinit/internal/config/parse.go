package config

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"
)

// nodeBudget caps how many YAML nodes one parse visits, so that alias
// expansion ("billion laughs") cannot blow up.
const nodeBudget = 200_000

// value is a node checked against the schema.
type value struct {
	line int
	fd   field
	str  string // kString raw text; formatted scalar for kInt/kFloat/kBool
	zero bool   // scalar is the zero value of its kind (anchor: not emitted)
	bl   bool
	strs []string
	sln  []int // line of each strs item
	obj  map[string]*value
	objs []*value
}

type parser struct {
	rep    Report
	budget int
	over   bool
}

var yamlLineErr = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

// Parse parses cloud-config text (header included, variables already
// substituted) into a Config and a Report. When the report has errors the
// Config is the best effort and must not be applied. Parse never panics.
func Parse(data []byte) (*Config, Report) {
	p := &parser{budget: nodeBudget}
	if Classify(data) != CloudConfig {
		p.rep.add(Error, 1, `must be %q or begin with "#!"`, Header)
		return &Config{}, p.rep
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		p.yamlError(err)
		return &Config{}, p.rep
	}
	root := schema()
	var v *value
	if len(doc.Content) > 0 {
		v = p.walk(root, doc.Content[0], "")
	}
	cfg := p.build(v)
	return cfg, p.rep
}

func (p *parser) yamlError(err error) {
	msg := err.Error()
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if m := yamlLineErr.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			p.rep.add(Error, n, "%s", m[2])
			return
		}
	}
	p.rep.add(Error, 1, "%s", strings.TrimPrefix(msg, "yaml: "))
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 64; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func (p *parser) spend() bool {
	p.budget--
	if p.budget < 0 {
		if !p.over {
			p.over = true
			p.rep.add(Error, 0, "document too large or too deeply aliased")
		}
		return false
	}
	return true
}

func (p *parser) wrongType(n *yaml.Node, name string, k kind) {
	p.rep.add(Error, n.Line, "incorrect type for %q (want %s)", name, k.typeName())
}

// walk checks n against fd. name is the key (or "list[i]") used in messages.
func (p *parser) walk(fd field, n *yaml.Node, name string) *value {
	n = deref(n)
	if n == nil || n.Kind == yaml.AliasNode || !p.spend() {
		return nil
	}
	v := &value{line: n.Line, fd: fd}
	if isNull(n) && fd.kind != kString {
		v.zero = true
		return v
	}
	switch fd.kind {
	case kString:
		if n.Kind != yaml.ScalarNode {
			p.wrongType(n, name, fd.kind)
			return nil
		}
		switch n.Tag {
		case "!!null":
			v.str = ""
		case "!!binary":
			raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(n.Value), ""))
			if err != nil {
				p.rep.add(Error, n.Line, "invalid !!binary value for %q", name)
				return nil
			}
			v.str = string(raw)
		default:
			v.str = n.Value
		}
		v.zero = v.str == ""
		if fd.valid != "" && v.str != "" && !regexp.MustCompile(fd.valid).MatchString(v.str) {
			p.rep.add(Error, n.Line, "invalid value %s", v.str)
		}
	case kInt:
		var x int64
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&x) != nil {
			p.wrongType(n, name, fd.kind)
			return nil
		}
		v.str, v.zero = strconv.FormatInt(x, 10), x == 0
	case kFloat:
		var x float64
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&x) != nil {
			p.wrongType(n, name, fd.kind)
			return nil
		}
		v.str, v.zero = fmt.Sprint(x), x == 0
	case kBool:
		x, ok := scalarBool(n)
		if !ok {
			p.wrongType(n, name, fd.kind)
			return nil
		}
		v.bl, v.str, v.zero = x, strconv.FormatBool(x), !x
	case kStrings:
		if n.Kind != yaml.SequenceNode {
			p.wrongType(n, name, fd.kind)
			return nil
		}
		for i, item := range n.Content {
			item = deref(item)
			if item == nil || !p.spend() {
				continue
			}
			if item.Kind != yaml.ScalarNode {
				p.wrongType(item, fmt.Sprintf("%s[%d]", name, i), kString)
				continue
			}
			v.strs = append(v.strs, item.Value)
			v.sln = append(v.sln, item.Line)
		}
	case kStruct:
		if n.Kind != yaml.MappingNode {
			p.wrongType(n, name, fd.kind)
			return nil
		}
		v.obj = map[string]*value{}
		p.mapping(fd, n, v.obj, map[string]int{}, false)
	case kStructs:
		if n.Kind != yaml.SequenceNode {
			p.wrongType(n, name, fd.kind)
			return nil
		}
		for i, item := range n.Content {
			iv := p.walk(field{key: fd.key, kind: kStruct, fields: fd.fields}, item, fmt.Sprintf("%s[%d]", name, i))
			if iv != nil && iv.obj == nil {
				iv.obj = map[string]*value{}
			}
			if iv != nil {
				v.objs = append(v.objs, iv)
			}
		}
	}
	return v
}

// mapping walks the pairs of a mapping node into out. seen maps normalized
// keys to the line they were first seen on. Pairs coming from a YAML merge
// key ("<<") never override explicit keys and are not duplicates.
func (p *parser) mapping(fd field, n *yaml.Node, out map[string]*value, seen map[string]int, merged bool) {
	var merges []*yaml.Node
	for j := 0; j+1 < len(n.Content); j += 2 {
		kn, vn := deref(n.Content[j]), n.Content[j+1]
		if kn == nil || !p.spend() {
			continue
		}
		if kn.Tag == "!!merge" {
			merges = append(merges, vn)
			continue
		}
		if kn.Kind != yaml.ScalarNode {
			p.rep.add(Error, kn.Line, "mapping keys must be scalars")
			continue
		}
		raw := kn.Value
		key := strings.ReplaceAll(raw, "-", "_")
		if first, dup := seen[key]; dup {
			if !merged {
				p.rep.add(Error, kn.Line, "duplicate key %q (also at line %d)", raw, first)
			}
			continue
		}
		seen[key] = kn.Line
		child, ok := fd.child(key)
		if !ok {
			p.rep.add(Warning, kn.Line, "unrecognized key %q", raw)
			if fd.key == "coreos" && key == "write_files" {
				p.rep.add(Info, kn.Line, "write_files doesn't belong under coreos")
			}
			continue
		}
		if child.deprecated != "" {
			p.rep.add(Warning, kn.Line, "deprecated key %q (%s)", key, child.deprecated)
		}
		if cv := p.walk(child, vn, key); cv != nil {
			out[key] = cv
		}
	}
	// Merged mappings ("<<: *anchor") come last: explicit keys win.
	for _, vn := range merges {
		src := deref(vn)
		srcs := []*yaml.Node{src}
		if src != nil && src.Kind == yaml.SequenceNode {
			srcs = src.Content
		}
		for _, m := range srcs {
			if m = deref(m); m != nil && m.Kind == yaml.MappingNode {
				p.mapping(fd, m, out, seen, true)
			}
		}
	}
}

// scalarBool accepts YAML booleans, including the YAML 1.1 words the
// anchor's parser accepted (yes/no/on/off/y/n).
func scalarBool(n *yaml.Node) (bool, bool) {
	if n.Kind != yaml.ScalarNode {
		return false, false
	}
	switch n.Tag {
	case "!!bool":
		var x bool
		if n.Decode(&x) == nil {
			return x, true
		}
	case "!!str":
		if n.Style != 0 {
			return false, false // quoted: a string, not a bool
		}
		switch strings.ToLower(n.Value) {
		case "yes", "on", "y":
			return true, true
		case "no", "off", "n":
			return false, true
		}
	}
	return false, false
}

// decimalModes are permissions that are common modes written in decimal, as
// Vagrant's YAML round trip produced them (0644 → 420); they also match the
// octal pattern, so the anchor silently applied mode 0420.
func decimalMode(s string) (octal string, ok bool) {
	if strings.HasPrefix(s, "0") {
		return "", false
	}
	d, err := strconv.Atoi(s)
	if err != nil {
		return "", false
	}
	switch d {
	case 0o400, 0o440, 0o444, 0o600, 0o640, 0o644, 0o660, 0o664, 0o700, 0o750, 0o755, 0o775, 0o777:
		return fmt.Sprintf("%04o", d), true
	}
	return "", false
}

// validUnitName rejects names that would escape the unit directory.
func validUnitName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

// build turns the checked tree into a Config and runs the cross-field rules.
func (p *parser) build(root *value) *Config {
	cfg := &Config{}
	if root == nil || root.obj == nil {
		return cfg
	}
	top := root.obj
	cfg.SSHAuthorizedKeys = p.keys(top["ssh_authorized_keys"])
	cfg.Hostname = strOf(top["hostname"])
	if m := top["manage_etc_hosts"]; m != nil && m.str != "" && m.str != "localhost" {
		p.rep.add(Error, m.line, "invalid value %s (only \"localhost\" is supported)", m.str)
	}
	cfg.ManageEtcHosts = strOf(top["manage_etc_hosts"])
	if c := top["coreos"]; c != nil && c.obj != nil {
		co := c.obj
		cfg.CoreOS.Etcd = envOf(co["etcd"])
		cfg.CoreOS.Etcd2 = envOf(co["etcd2"])
		cfg.CoreOS.Fleet = envOf(co["fleet"])
		cfg.CoreOS.Locksmith = envOf(co["locksmith"])
		cfg.CoreOS.Flannel = envOf(co["flannel"])
		cfg.CoreOS.Update = envOf(co["update"])
		if e := co["etcd"]; e != nil && e.obj != nil {
			if d := e.obj["discovery"]; d != nil && d.str != "" {
				if _, err := url.ParseRequestURI(d.str); err != nil {
					p.rep.add(Warning, d.line, "discovery URL is not valid")
				}
			}
		}
		if o := co["oem"]; o != nil && o.obj != nil {
			cfg.CoreOS.OEM = OEM{
				ID: strOf(o.obj["id"]), Name: strOf(o.obj["name"]), VersionID: strOf(o.obj["version_id"]),
				HomeURL: strOf(o.obj["home_url"]), BugReportURL: strOf(o.obj["bug_report_url"]),
			}
		}
		if us := co["units"]; us != nil {
			for _, u := range us.objs {
				cfg.CoreOS.Units = append(cfg.CoreOS.Units, p.unit(u))
			}
		}
	}
	if us := top["users"]; us != nil {
		for _, u := range us.objs {
			cfg.Users = append(cfg.Users, p.user(u))
		}
	}
	if fs := top["write_files"]; fs != nil {
		for _, f := range fs.objs {
			cfg.WriteFiles = append(cfg.WriteFiles, p.file(f))
		}
	}
	return cfg
}

func (p *parser) unit(v *value) Unit {
	o := v.obj
	u := Unit{
		Name: strOf(o["name"]), Mask: boolOf(o["mask"]), Enable: boolOf(o["enable"]),
		Runtime: boolOf(o["runtime"]), Content: strOf(o["content"]), Command: strOf(o["command"]),
		Line: v.line,
	}
	switch {
	case o["name"] == nil || u.Name == "":
		p.rep.add(Error, v.line, `unit has no "name"`)
	case !validUnitName(u.Name):
		p.rep.add(Error, o["name"].line, "invalid unit name %q", u.Name)
	}
	if isNetworkUnit(u.Name) && u.Command != "" {
		p.rep.add(Warning, o["command"].line, "command is ignored for network unit %q", u.Name)
	}
	if d := o["drop_ins"]; d != nil {
		for _, dv := range d.objs {
			di := DropIn{Name: strOf(dv.obj["name"]), Content: strOf(dv.obj["content"])}
			switch {
			case di.Name == "":
				p.rep.add(Error, dv.line, `drop-in has no "name"`)
			case !validUnitName(di.Name):
				p.rep.add(Error, dv.obj["name"].line, "invalid drop-in name %q", di.Name)
			case di.Content == "":
				p.rep.add(Error, dv.line, "drop-in %q has no \"content\"", di.Name)
			}
			u.DropIns = append(u.DropIns, di)
		}
	}
	return u
}

// isNetworkUnit reports whether name is a systemd-networkd file.
func isNetworkUnit(name string) bool {
	switch path.Ext(name) {
	case ".network", ".netdev", ".link":
		return true
	}
	return false
}

func (p *parser) user(v *value) User {
	o := v.obj
	u := User{
		Name: strOf(o["name"]), PasswordHash: strOf(o["passwd"]), GECOS: strOf(o["gecos"]),
		Homedir: strOf(o["homedir"]), NoCreateHome: boolOf(o["no_create_home"]),
		PrimaryGroup: strOf(o["primary_group"]), Groups: strsOf(o["groups"]),
		NoUserGroup: boolOf(o["no_user_group"]), SSHAuthorizedKeys: p.keys(o["ssh_authorized_keys"]),
		SSHImportGithubUser: strOf(o["coreos_ssh_import_github"]), SSHImportGithubUsers: strsOf(o["coreos_ssh_import_github_users"]),
		SSHImportURL: strOf(o["coreos_ssh_import_url"]), System: boolOf(o["system"]),
		NoLogInit: boolOf(o["no_log_init"]), Shell: strOf(o["shell"]), Line: v.line,
	}
	if u.Name == "" {
		p.rep.add(Error, v.line, `user has no "name"`)
	}
	return u
}

func (p *parser) file(v *value) File {
	o := v.obj
	f := File{
		Path: strOf(o["path"]), Owner: strOf(o["owner"]), Permissions: strOf(o["permissions"]),
		Encoding: strOf(o["encoding"]), Line: v.line,
	}
	if f.Path == "" {
		p.rep.add(Error, v.line, `file has no "path"`)
	} else if d := path.Dir(path.Clean("/" + f.Path)); strings.HasPrefix(d, "/usr") {
		p.rep.add(Error, o["path"].line, "file cannot be written to a read-only filesystem")
	}
	if pm := o["permissions"]; pm != nil && regexp.MustCompile(pm.fd.valid).MatchString(f.Permissions) {
		if oct, ok := decimalMode(f.Permissions); ok {
			p.rep.add(Error, pm.line, "permissions %s look like decimal for %s; write the octal string %q", f.Permissions, oct, oct)
		}
	}
	content := strOf(o["content"])
	dec, err := DecodeContent(content, f.Encoding)
	if err != nil {
		line := v.line
		if c := o["content"]; c != nil {
			line = c.line
		}
		if e := o["encoding"]; e != nil && !regexp.MustCompile(e.fd.valid).MatchString(f.Encoding) {
			// The encoding itself is invalid; that entry is already there.
		} else {
			p.rep.add(Error, line, "content cannot be decoded as %q", f.Encoding)
		}
	}
	f.Content = dec
	return f
}

// keys returns a list of SSH public keys, reporting each one that does not
// parse (CoreOS's update-ssh-keys rejected the whole set for one bad key,
// after earlier steps had already run).
func (p *parser) keys(v *value) []string {
	if v == nil {
		return nil
	}
	for i, k := range v.strs {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k)); err != nil {
			p.rep.add(Error, v.sln[i], "ssh_authorized_keys[%d] is not a valid SSH public key", i)
		}
	}
	return v.strs
}

func strOf(v *value) string {
	if v == nil {
		return ""
	}
	return v.str
}

func boolOf(v *value) bool { return v != nil && v.bl }

func strsOf(v *value) []string {
	if v == nil {
		return nil
	}
	return v.strs
}

// envOf renders an env section in schema order, skipping unset and zero
// values as the anchor did.
func envOf(v *value) Env {
	if v == nil || v.obj == nil {
		return nil
	}
	var out Env
	for _, fd := range v.fd.fields {
		c := v.obj[fd.key]
		if c == nil || c.zero || fd.env == "" {
			continue
		}
		out = append(out, EnvVar{Name: fd.env, Value: c.str})
	}
	return out
}
