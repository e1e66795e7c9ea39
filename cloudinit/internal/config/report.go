package config

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Kind is the severity of a report [Entry].
type Kind int

// Severities, from least to most serious.
const (
	Info Kind = iota
	Warning
	Error
)

// String returns "info", "warning" or "error", the words coreos-cloudinit
// prints.
func (k Kind) String() string {
	switch k {
	case Info:
		return "info"
	case Warning:
		return "warning"
	default:
		return "error"
	}
}

// Entry is one finding about user-data: a severity, the 1-based line of the
// YAML node it is about (0 when there is no line), and a message.
type Entry struct {
	Kind    Kind
	Line    int
	Message string
}

// String formats e as coreos-cloudinit does: "line N: kind: message".
func (e Entry) String() string {
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Kind, e.Message)
}

// MarshalJSON encodes e as {"kind":…,"line":…,"message":…}, the anchor's
// programmatic form.
func (e Entry) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Kind    string `json:"kind"`
		Line    int    `json:"line"`
		Message string `json:"message"`
	}{e.Kind.String(), e.Line, e.Message})
}

// Report is an ordered list of entries. The zero value is empty and usable.
type Report struct {
	entries []Entry
}

func (r *Report) add(k Kind, line int, format string, args ...any) {
	r.entries = append(r.entries, Entry{Kind: k, Line: line, Message: fmt.Sprintf(format, args...)})
}

// Add appends e.
func (r *Report) Add(e Entry) { r.entries = append(r.entries, e) }

// Merge appends every entry of o.
func (r *Report) Merge(o Report) { r.entries = append(r.entries, o.entries...) }

// Entries returns the entries sorted by line; entries on the same line keep
// the order in which they were found. The slice is a fresh copy.
func (r *Report) Entries() []Entry {
	out := append([]Entry(nil), r.entries...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// Len returns the number of entries.
func (r *Report) Len() int { return len(r.entries) }

// Count returns how many entries have severity k.
func (r *Report) Count(k Kind) int {
	n := 0
	for _, e := range r.entries {
		if e.Kind == k {
			n++
		}
	}
	return n
}

// Fails reports whether the report should stop the config from being used:
// any error, or, when strict, any warning.
func (r *Report) Fails(strict bool) bool {
	return r.Count(Error) > 0 || (strict && r.Count(Warning) > 0)
}
