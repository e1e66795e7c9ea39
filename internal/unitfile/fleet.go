package unitfile

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
)

// FleetSection is the section holding fleet's scheduling options.
const FleetSection = "X-Fleet"

// Names of the [X-Fleet] options, with their deprecated aliases.
const (
	OptMachineID       = "MachineID"
	OptMachineOf       = "MachineOf"
	OptMachineMetadata = "MachineMetadata"
	OptConflicts       = "Conflicts"
	OptGlobal          = "Global"
	OptReplaces        = "Replaces"
)

var legacyOptions = map[string]string{
	"X-ConditionMachineID":       OptMachineID,
	"X-ConditionMachineBootID":   OptMachineID,
	"X-ConditionMachineOf":       OptMachineOf,
	"X-ConditionMachineMetadata": OptMachineMetadata,
	"X-Conflicts":                OptConflicts,
}

// Requirements are a unit's [X-Fleet] options after multi-value splitting
// and specifier substitution (%n %N %p %i).
type Requirements struct {
	// MachineID pins the unit (first value only; full or 8-char short ID).
	MachineID string
	// MachineOf lists units that must run on the same machine (all of them).
	MachineOf []string
	// Metadata maps a key to its allowed values: OR within a key, AND across keys.
	Metadata map[string][]string
	// Conflicts are path.Match globs of unit names that may not share a machine.
	Conflicts []string
	// Global runs the unit on every eligible machine.
	Global bool
	// Replaces are globs of units this one evicts from its machine.
	Replaces []string
	// Unknown lists unrecognized option names, in order, without duplicates.
	Unknown []string
}

// Requirements reads the [X-Fleet] section of u for the unit named name.
func (u *UnitFile) Requirements(name string) Requirements {
	var r Requirements
	for _, o := range u.Options {
		if o.Section != FleetSection {
			continue
		}
		key := o.Name
		if alias, ok := legacyOptions[key]; ok {
			key = alias
		}
		values := splitMultivalue(o.Value)
		for i := range values {
			values[i] = expandSpecifiers(values[i], name)
		}
		switch key {
		case OptMachineID:
			if r.MachineID == "" && len(values) > 0 {
				r.MachineID = values[0]
			}
		case OptMachineOf:
			r.MachineOf = appendNonEmpty(r.MachineOf, values)
		case OptMachineMetadata:
			for _, v := range values {
				k, val, ok := strings.Cut(v, "=")
				if !ok || k == "" || val == "" || strings.Contains(val, "=") {
					continue // fleet silently ignores malformed tokens
				}
				if r.Metadata == nil {
					r.Metadata = map[string][]string{}
				}
				r.Metadata[k] = append(r.Metadata[k], val)
			}
		case OptConflicts:
			for _, v := range values {
				r.Conflicts = append(r.Conflicts, strings.Fields(v)...)
			}
		case OptReplaces:
			for _, v := range values {
				r.Replaces = append(r.Replaces, strings.Fields(v)...)
			}
		case OptGlobal:
			if len(values) > 0 {
				r.Global = truthy(values[len(values)-1])
			}
		default:
			if !contains(r.Unknown, o.Name) {
				r.Unknown = append(r.Unknown, o.Name)
			}
		}
	}
	return r
}

// Validate applies fleet's rules on option combinations (the API answers a
// violation with 400 and this message).
func (r Requirements) Validate() error {
	if r.MachineID != "" {
		switch {
		case len(r.MachineOf) > 0:
			return errors.New("MachineID cannot be used with Peers")
		case len(r.Conflicts) > 0:
			return errors.New("MachineID cannot be used with Conflicts")
		case r.Global:
			return errors.New("MachineID cannot be used with Global")
		case len(r.Replaces) > 0:
			return errors.New("MachineID cannot be used with Replaces")
		}
	}
	if r.Global {
		switch {
		case len(r.MachineOf) > 0:
			return errors.New("Global cannot be used with Peers")
		case len(r.Replaces) > 0:
			return errors.New("Global cannot be used with Replaces")
		}
	}
	if len(r.Conflicts) > 0 && len(r.Replaces) > 0 {
		return errors.New("Conflicts cannot be used with Replaces")
	}
	for _, p := range r.MachineOf {
		for _, c := range r.Conflicts {
			if m, _ := path.Match(c, p); m {
				return fmt.Errorf("unresolvable requirements: peer %q matches conflict %q", p, c)
			}
		}
		for _, c := range r.Replaces {
			if m, _ := path.Match(c, p); m {
				return fmt.Errorf("unresolvable requirements: peer %q matches replace %q", p, c)
			}
		}
	}
	return nil
}

// ConflictsWith reports whether a unit with these requirements may not share
// a machine with the unit named other (one direction only).
func (r Requirements) ConflictsWith(other string) bool { return matchAny(r.Conflicts, other) }

// ReplacesUnit reports whether these requirements evict the unit named other.
func (r Requirements) ReplacesUnit(other string) bool { return matchAny(r.Replaces, other) }

// MetadataMatches reports whether a machine with metadata md satisfies the
// MachineMetadata requirements; it also returns a reason when it does not.
func (r Requirements) MetadataMatches(md map[string]string) (bool, string) {
	keys := make([]string, 0, len(r.Metadata))
	for k := range r.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		have, ok := md[k]
		if !ok || !contains(r.Metadata[k], have) {
			return false, fmt.Sprintf("metadata %s=%s required", k, strings.Join(r.Metadata[k], "|"))
		}
	}
	return true, ""
}

// Validate parses the unit's requirements for name and checks them; it is
// what the API runs before creating a unit.
func (u *UnitFile) Validate(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	return u.Requirements(name).Validate()
}

func matchAny(globs []string, name string) bool {
	for _, g := range globs {
		if m, _ := path.Match(g, name); m {
			return true
		}
	}
	return false
}

// splitMultivalue implements fleet's rule: a value that starts and ends with
// '"' is a list of quoted tokens separated by spaces; otherwise it is one
// token.
func splitMultivalue(line string) []string {
	if len(line) < 2 || !strings.HasPrefix(line, `"`) || !strings.HasSuffix(line, `"`) {
		return []string{line}
	}
	var out []string
	var cur strings.Builder
	quoted := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			quoted = !quoted
		case c == ' ' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

func truthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "1", "on", "t":
		return true
	}
	return false
}

func appendNonEmpty(dst, vals []string) []string {
	for _, v := range vals {
		if v != "" {
			dst = append(dst, v)
		}
	}
	return dst
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
