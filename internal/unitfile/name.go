package unitfile

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// MaxNameLength is the longest unit name fleet's API accepts.
const MaxNameLength = 256

var validSuffixes = map[string]bool{
	"automount": true, "busname": true, "device": true, "mount": true, "path": true,
	"scope": true, "service": true, "slice": true, "snapshot": true, "socket": true,
	"swap": true, "target": true, "timer": true,
}

var templateSuffixes = map[string]bool{
	"path": true, "service": true, "socket": true, "target": true, "timer": true,
}

// recognized are the unit types the agent manages and fleetctl does not
// mangle (fleet's RecognizedUnitType).
var recognized = map[string]bool{
	"service": true, "socket": true, "timer": true, "path": true,
	"device": true, "mount": true, "automount": true,
}

// ValidateName checks a unit name with the API's rules and messages.
func ValidateName(name string) error {
	if name == "" {
		return errors.New("unit name cannot be empty")
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("unit name exceeds maximum length (%d)", MaxNameLength)
	}
	dot := strings.LastIndex(name, ".")
	if dot == -1 {
		return errors.New(`unit name must contain "."`)
	}
	if dot == len(name)-1 {
		return errors.New(`unit name cannot end in "."`)
	}
	suffix := name[dot+1:]
	if !validSuffixes[suffix] {
		return fmt.Errorf("invalid unit type: %q", suffix)
	}
	if strings.Contains(name, "@") && !templateSuffixes[suffix] {
		return fmt.Errorf("invalid unit type for template: %q", suffix)
	}
	for _, c := range name[:dot] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(":_.@-\\", c)) {
			return fmt.Errorf("invalid character '%c' in unit name", c)
		}
	}
	if strings.HasPrefix(name, "@") {
		return errors.New(`unit name cannot start in "@"`)
	}
	return nil
}

// Recognized reports whether the agent manages units of name's type
// (service, socket, timer, path, device, mount, automount).
func Recognized(name string) bool {
	return recognized[strings.TrimPrefix(path.Ext(name), ".")]
}

// Mangle is fleetctl's argument mangling: the path's base name, with
// ".service" appended unless the suffix is a recognized type.
func Mangle(arg string) string {
	n := path.Base(arg)
	if !Recognized(n) {
		n += ".service"
	}
	return n
}

// Name splits a unit name into its parts: "foo@bar.service" has Prefix
// "foo", Instance "bar", Suffix "service".
type Name struct {
	Full     string
	Prefix   string
	Instance string
	Suffix   string
	HasAt    bool
}

// SplitName splits name into prefix, instance and suffix.
func SplitName(name string) Name {
	n := Name{Full: name}
	base := name
	if dot := strings.LastIndex(name, "."); dot >= 0 {
		base, n.Suffix = name[:dot], name[dot+1:]
	}
	if at := strings.Index(base, "@"); at >= 0 {
		n.HasAt = true
		n.Prefix, n.Instance = base[:at], base[at+1:]
	} else {
		n.Prefix = base
	}
	return n
}

// IsTemplate reports whether name is a template ("foo@.service").
func IsTemplate(name string) bool {
	n := SplitName(name)
	return n.HasAt && n.Instance == ""
}

// IsInstance reports whether name is a template instance ("foo@1.service").
func IsInstance(name string) bool {
	n := SplitName(name)
	return n.HasAt && n.Instance != ""
}

// TemplateOf returns the template an instance comes from ("foo@1.service" →
// "foo@.service"), or "" when name is not an instance.
func TemplateOf(name string) string {
	n := SplitName(name)
	if !n.HasAt || n.Instance == "" {
		return ""
	}
	return n.Prefix + "@." + n.Suffix
}

// Instantiate returns the instance name of template for inst ("foo@.service",
// "1" → "foo@1.service").
func Instantiate(template, inst string) (string, error) {
	if !IsTemplate(template) {
		return "", fmt.Errorf("%q is not a template unit", template)
	}
	n := SplitName(template)
	return n.Prefix + "@" + inst + "." + n.Suffix, nil
}

// expandSpecifiers substitutes %n, %N, %p and %i as fleet does in X-Fleet
// values (%N is not unescaped).
func expandSpecifiers(value, name string) string {
	if !strings.Contains(value, "%") {
		return value
	}
	n := SplitName(name)
	noSuffix := name
	if dot := strings.LastIndex(name, "."); dot >= 0 {
		noSuffix = name[:dot]
	}
	r := strings.NewReplacer("%n", name, "%N", noSuffix, "%p", n.Prefix, "%i", n.Instance)
	return r.Replace(value)
}
