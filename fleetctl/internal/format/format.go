// Package format turns fleet API entities into fleetctl's tables and
// legends. Every function here is pure: it writes bytes for the values it is
// given and reads nothing else, so the output is golden-tested
// (format_test.go, testdata/*.golden).
//
// Tables follow fleetctl: a header of upper-cased field names (omitted with
// --no-legend) and one row per entity. When the output is not a terminal
// the bytes are the anchor's exactly: a tabwriter with TAB as the padding
// character, so cells are separated by one or more '\t' up to 8-column tab
// stops. On a terminal the same columns are padded with spaces to the same
// tab stops, which looks identical but copies and pastes cleanly.
package format

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/corekit/corekit/internal/fleetapi"
)

// Options select how a table is printed.
type Options struct {
	Full     bool // full machine IDs and hashes
	NoLegend bool // no header line
	TTY      bool // output is a terminal: pad with spaces instead of tabs
}

// ErrNoFields is returned for an empty --fields value.
var ErrNoFields = errors.New("Must define output format")

// FieldError is an unknown name in --fields.
type FieldError struct{ Field string }

func (e *FieldError) Error() string { return fmt.Sprintf("Invalid key in output format: %q", e.Field) }

// ShortID is a machine ID's first 8 characters.
func ShortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// MachineIDLegend is "<first 8 chars>..." or, with full, the whole ID. The
// ellipsis is appended even to IDs of 8 characters or fewer, as fleetctl does.
func MachineIDLegend(id string, full bool) string {
	if full {
		return id
	}
	return ShortID(id) + "..."
}

// MachineLegend is MachineIDLegend followed by "/<ip>" when ip is known:
// "0acdd9bf.../10.0.2.15".
func MachineLegend(id, ip string, full bool) string {
	l := MachineIDLegend(id, full)
	if ip != "" {
		l += "/" + ip
	}
	return l
}

// Metadata is "k=v,k2=v2" sorted by key, or "-" when empty.
func Metadata(md map[string]string) string {
	if len(md) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, 0, len(keys))
	for _, k := range keys {
		pairs = append(pairs, k+"="+md[k])
	}
	return strings.Join(pairs, ",")
}

// Machines indexes machines by ID.
func Machines(ms []*fleetapi.Machine) map[string]*fleetapi.Machine {
	out := make(map[string]*fleetapi.Machine, len(ms))
	for _, m := range ms {
		out[m.ID] = m
	}
	return out
}

// legendFor is the machine legend of id using the machine list (ID only
// when the machine is not in it, "-" when id is empty).
func legendFor(id string, machines map[string]*fleetapi.Machine, full bool) string {
	if id == "" {
		return "-"
	}
	ip := ""
	if m := machines[id]; m != nil {
		ip = m.PrimaryIP
	}
	return MachineLegend(id, ip, full)
}

func hash(h string, full bool) string {
	if h == "" {
		return "-"
	}
	if !full && len(h) > 7 {
		return h[:7]
	}
	return h
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Default field lists.
const (
	DefaultUnitFields     = "unit,machine,active,sub"
	DefaultUnitFileFields = "unit,hash,dstate,state,target"
	DefaultMachineFields  = "machine,ip,metadata"
)

// UnitStateFields are list-units' columns.
var UnitStateFields = []string{"active", "hash", "load", "machine", "sub", "unit"}

// UnitFileFields are list-unit-files' columns ("tmachine" is a deprecated
// alias of "target").
var UnitFileFields = []string{"desc", "dstate", "global", "hash", "state", "target", "tmachine", "unit"}

// MachineFields are list-machines' columns.
var MachineFields = []string{"ip", "machine", "metadata"}

// ParseFields splits a --fields value and checks every name.
func ParseFields(spec string, valid []string) ([]string, error) {
	if spec == "" {
		return nil, ErrNoFields
	}
	cols := strings.Split(spec, ",")
	for _, c := range cols {
		ok := false
		for _, v := range valid {
			ok = ok || v == c
		}
		if !ok {
			return nil, &FieldError{Field: c}
		}
	}
	return cols, nil
}

func unitStateField(s *fleetapi.UnitState, field string, machines map[string]*fleetapi.Machine, full bool) string {
	switch field {
	case "unit":
		return s.Name
	case "load":
		return s.SystemdLoadState
	case "active":
		return s.SystemdActiveState
	case "sub":
		return s.SystemdSubState
	case "machine":
		return legendFor(s.MachineID, machines, full)
	case "hash":
		return hash(s.Hash, full)
	}
	return ""
}

// UnitStates is list-units: one row per unit state in the given order.
func UnitStates(states []*fleetapi.UnitState, machines map[string]*fleetapi.Machine, fields []string, o Options) []byte {
	rows := make([][]string, 0, len(states))
	for _, s := range states {
		row := make([]string, 0, len(fields))
		for _, f := range fields {
			row = append(row, unitStateField(s, f, machines, o.Full))
		}
		rows = append(rows, row)
	}
	return Table(fields, rows, o)
}

// IsGlobal reports whether a unit has [X-Fleet] Global=true.
func IsGlobal(u *fleetapi.Unit) bool { return u.File().Requirements(u.Name).Global }

// Description is the first [Unit] Description= value, or "".
func Description(u *fleetapi.Unit) string {
	for _, o := range u.Options {
		if o != nil && o.Section == "Unit" && o.Name == "Description" {
			return o.Value
		}
	}
	return ""
}

// UnitHash is the unit's fleet hash in hex.
func UnitHash(u *fleetapi.Unit) string { return u.File().Hash().String() }

func unitFileField(u *fleetapi.Unit, field string, machines map[string]*fleetapi.Machine, full bool) string {
	global := IsGlobal(u)
	switch field {
	case "unit":
		return u.Name
	case "global":
		return fmt.Sprint(global)
	case "dstate":
		return orDash(u.DesiredState)
	case "state":
		if global {
			return "-"
		}
		return orDash(u.CurrentState)
	case "target", "tmachine":
		if global {
			return "global"
		}
		return legendFor(u.MachineID, machines, full)
	case "hash":
		return hash(UnitHash(u), full)
	case "desc":
		return orDash(Description(u))
	}
	return ""
}

// UnitFiles is list-unit-files: one row per unit in the given order.
func UnitFiles(units []*fleetapi.Unit, machines map[string]*fleetapi.Machine, fields []string, o Options) []byte {
	rows := make([][]string, 0, len(units))
	for _, u := range units {
		row := make([]string, 0, len(fields))
		for _, f := range fields {
			row = append(row, unitFileField(u, f, machines, o.Full))
		}
		rows = append(rows, row)
	}
	return Table(fields, rows, o)
}

// MachineList is list-machines: one row per machine in the given order.
func MachineList(ms []*fleetapi.Machine, fields []string, o Options) []byte {
	rows := make([][]string, 0, len(ms))
	for _, m := range ms {
		row := make([]string, 0, len(fields))
		for _, f := range fields {
			switch f {
			case "machine":
				row = append(row, MachineIDLegend(m.ID, o.Full))
			case "ip":
				row = append(row, orDash(m.PrimaryIP))
			case "metadata":
				row = append(row, Metadata(m.Metadata))
			}
		}
		rows = append(rows, row)
	}
	return Table(fields, rows, o)
}

// Table prints a header of upper-cased field names (unless NoLegend) and
// the rows through a tabwriter (min width 0, tab width 8, padding 1, TAB
// padding). On a terminal the tabs are then expanded to spaces at the same
// 8-column stops.
func Table(fields []string, rows [][]string, o Options) []byte {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 8, 1, '\t', 0)
	if !o.NoLegend {
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(fields, "\t")))
	}
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
	if o.TTY {
		return ExpandTabs(buf.Bytes())
	}
	return buf.Bytes()
}

// ExpandTabs replaces every TAB by spaces up to the next multiple of 8
// columns (bytes count as columns; fleet names are ASCII).
func ExpandTabs(b []byte) []byte {
	out := make([]byte, 0, len(b)*2)
	col := 0
	for _, c := range b {
		switch c {
		case '\t':
			n := 8 - col%8
			out = append(out, bytes.Repeat([]byte{' '}, n)...)
			col += n
		case '\n':
			out = append(out, c)
			col = 0
		default:
			out = append(out, c)
			col++
		}
	}
	return out
}
