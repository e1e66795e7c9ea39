package plan

import (
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"unicode/utf8"
)

// OctalMode formats m as a four-digit octal permission string, special bits
// included ("0644", "4755").
func OctalMode(m fs.FileMode) string {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return fmt.Sprintf("%04o", v)
}

// String describes the action on one line.
func (a Action) String() string {
	var s string
	switch a.Kind {
	case SetHostname:
		s = fmt.Sprintf("set hostname %s", a.Name)
	case EnsureUser:
		s = fmt.Sprintf("ensure user %s", a.Name)
		if u := a.User; u != nil {
			var opts []string
			add := func(k, v string) {
				if v != "" {
					opts = append(opts, k+"="+v)
				}
			}
			if u.PasswordHash != "" {
				add("passwd", "(set)")
			}
			add("gecos", u.GECOS)
			add("homedir", u.Homedir)
			add("primary-group", u.PrimaryGroup)
			add("groups", strings.Join(u.Groups, ","))
			add("shell", u.Shell)
			for k, v := range map[string]bool{"no-create-home": u.NoCreateHome, "no-user-group": u.NoUserGroup, "system": u.System, "no-log-init": u.NoLogInit} {
				if v {
					opts = append(opts, k)
				}
			}
			sort.Strings(opts)
			if len(opts) > 0 {
				s += " " + strings.Join(opts, " ")
			}
		}
	case AuthorizeKeys:
		s = fmt.Sprintf("authorize %d ssh key(s) for user %s as %q", len(a.Keys), a.Name, a.KeyName)
	case WriteFile:
		s = fmt.Sprintf("write %s mode=%s", a.Path, OctalMode(a.Mode))
		if a.Owner != "" {
			s += " owner=" + a.Owner
		}
		s += fmt.Sprintf(" (%d bytes)", len(a.Content))
	case EditEnvFile:
		s = fmt.Sprintf("update %s mode=%s", a.Path, OctalMode(a.Mode))
		if a.Fallback != "" {
			s += fmt.Sprintf(" (starting from %s if missing)", a.Fallback)
		}
	case Mask:
		s = fmt.Sprintf("mask %s (link %s to /dev/null)", a.Unit, a.Path)
	case Unmask:
		s = fmt.Sprintf("unmask %s (remove %s if empty or /dev/null)", a.Unit, a.Path)
	case Enable:
		s = fmt.Sprintf("enable %s", a.Unit)
		if a.Runtime {
			s += " (runtime)"
		}
	case DaemonReload:
		s = "systemd daemon-reload"
	case UnitCommand:
		s = fmt.Sprintf("systemd %s %s (wait for job result)", a.Command, a.Unit)
	case RunScript:
		s = fmt.Sprintf("run script (%d bytes) saved in %s as a transient unit", len(a.Content), a.Path)
	default:
		s = string(a.Kind)
	}
	if a.Line > 0 {
		s += fmt.Sprintf("  [line %d]", a.Line)
	}
	return s
}

// Print writes the plan for people (--dry-run): one numbered line per
// action, followed by the file contents or variables it writes, each line
// prefixed with "    | ".
func (p *Plan) Print(w io.Writer) error {
	if len(p.Actions) == 0 {
		_, err := fmt.Fprintln(w, "nothing to do")
		return err
	}
	var b strings.Builder
	for i, a := range p.Actions {
		fmt.Fprintf(&b, "%d. %s\n", i+1, a)
		switch a.Kind {
		case WriteFile, RunScript:
			writeContent(&b, a.Content)
		case EditEnvFile:
			for _, v := range a.Vars {
				fmt.Fprintf(&b, "    | %s=%s\n", v.Name, v.Value)
			}
		case AuthorizeKeys:
			for _, k := range a.Keys {
				fmt.Fprintf(&b, "    | %s\n", strings.TrimSpace(k))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeContent(b *strings.Builder, c string) {
	if !utf8.ValidString(c) || strings.ContainsRune(c, 0) {
		fmt.Fprintf(b, "    | <binary, %d bytes>\n", len(c))
		return
	}
	if c == "" {
		return
	}
	body := strings.TrimSuffix(c, "\n")
	for _, l := range strings.Split(body, "\n") {
		fmt.Fprintf(b, "    | %s\n", l)
	}
	if !strings.HasSuffix(c, "\n") {
		b.WriteString("    \\ no newline at end\n")
	}
}
