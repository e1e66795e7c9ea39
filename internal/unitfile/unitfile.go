// Package unitfile parses systemd unit files the way fleet does, renders their
// canonical form, computes fleet's content hash and reads the [X-Fleet]
// scheduling options.
//
// The canonical form (String) groups every option under the first header of
// its section, in first-seen order, one "Name=Value" per line and one blank
// line between sections, exactly as go-systemd's unit.Serialize writes it. The
// hash (Hash) is the SHA-1 of that text, so it equals fleet's UnitHash and the
// key under "unit/<hex>" in the registry. Start reading at Parse, then
// fleet.go (X-Fleet options) and name.go (unit names and templates).
package unitfile

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	sdunit "github.com/coreos/go-systemd/v22/unit"
)

// Option is one "Name=Value" line of a section; the JSON tags are the fleet
// API v1 shape ({"section","name","value"}).
type Option struct {
	Section string `json:"section"`
	Name    string `json:"name"`
	Value   string `json:"value"`
}

// UnitFile is a parsed unit: its options in file order.
type UnitFile struct {
	Options []Option
}

// Parse parses unit file text (comments dropped, backslash continuations
// joined, lines limited to 2048 bytes).
func Parse(text string) (*UnitFile, error) {
	opts, err := sdunit.Deserialize(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("unable to parse unit file: %w", err)
	}
	u := &UnitFile{Options: make([]Option, 0, len(opts))}
	for _, o := range opts {
		u.Options = append(u.Options, Option{Section: o.Section, Name: o.Name, Value: o.Value})
	}
	return u, nil
}

// FromOptions builds a unit from an ordered option list (the API form).
func FromOptions(opts []Option) *UnitFile {
	return &UnitFile{Options: append([]Option(nil), opts...)}
}

// String returns the canonical text: what fleet stores, hashes, writes to
// the units directory and what `fleetctl cat` prints.
func (u *UnitFile) String() string {
	if u == nil {
		return ""
	}
	opts := make([]*sdunit.UnitOption, 0, len(u.Options))
	for _, o := range u.Options {
		opts = append(opts, &sdunit.UnitOption{Section: o.Section, Name: o.Name, Value: o.Value})
	}
	b, _ := io.ReadAll(sdunit.Serialize(opts)) // a bytes.Buffer never fails
	return string(b)
}

// Hash returns fleet's content hash of the unit.
func (u *UnitFile) Hash() Hash { return Hash(sha1.Sum([]byte(u.String()))) }

// Values returns every value of section/name, in order.
func (u *UnitFile) Values(section, name string) []string {
	var out []string
	for _, o := range u.Options {
		if o.Section == section && o.Name == name {
			out = append(out, o.Value)
		}
	}
	return out
}

// HasSection reports whether the unit has at least one option in section.
func (u *UnitFile) HasSection(section string) bool {
	for _, o := range u.Options {
		if o.Section == section {
			return true
		}
	}
	return false
}

// Description is the first [Unit] Description= value, or "".
func (u *UnitFile) Description() string {
	if v := u.Values("Unit", "Description"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Hash is fleet's SHA-1 unit hash. Its JSON form is an array of 20 numbers
// (a Go byte array), as fleet writes it in "job/<unit>/object".
type Hash [20]byte

// String is the lowercase 40-character hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short is the first 7 hex characters (fleetctl's HASH column).
func (h Hash) Short() string { return h.String()[:7] }

// IsZero reports whether h is the zero hash (unset).
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash parses the 40-character hex form.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("invalid unit hash %q", s)
	}
	copy(h[:], b)
	return h, nil
}
