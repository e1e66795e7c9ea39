package fleetfaults

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/corekit/corekit/internal/unitfile"
)

// unitSpec is one unit of testdata/units with its [X-Fleet] requirements.
type unitSpec struct {
	Name string
	Text string
	File *unitfile.UnitFile
	Req  unitfile.Requirements
}

// loadUnits reads every unit of dir.
func loadUnits(dir string) ([]unitSpec, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.service"))
	if err != nil {
		return nil, err
	}
	var out []unitSpec
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		name := filepath.Base(p)
		f, err := unitfile.Parse(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := f.Validate(name); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, unitSpec{Name: name, Text: string(b), File: f, Req: f.Requirements(name)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no units in %s", dir)
	}
	return out, nil
}

// sample is what every machine's systemd said at one moment: the active
// fleetfaults units per hostname. A machine that could not be asked (down)
// has no entry.
type sample struct {
	At     time.Time
	Active map[string][]string
}

// copies lists the machines on which unit is active in s, sorted.
func (s sample) copies(unit string) []string {
	var out []string
	for host, units := range s.Active {
		if slices.Contains(units, unit) {
			out = append(out, host)
		}
	}
	sort.Strings(out)
	return out
}

// world is the unit set and the machines' metadata; it knows where each
// unit may and must run.
type world struct {
	units []unitSpec
	meta  map[string]map[string]string // hostname → fleet metadata
}

func (w world) unit(name string) (unitSpec, bool) {
	for _, u := range w.units {
		if u.Name == name {
			return u, true
		}
	}
	return unitSpec{}, false
}

// allowed reports whether unit u may run on host (metadata only; conflicts
// are checked per sample by disallowed).
func (w world) allowed(u unitSpec, host string) bool {
	md, ok := w.meta[host]
	if !ok {
		return false
	}
	match, _ := u.Req.MetadataMatches(md)
	return match
}

// missing lists what must run on the live machines and does not: a
// non-global unit that some live machine may run must be active on one of
// them; a global unit must be active on every live machine that may run it.
// (The unit set keeps its Conflicts satisfiable whenever two machines live.)
func (w world) missing(s sample, live []string) []string {
	var out []string
	for _, u := range w.units {
		on := s.copies(u.Name)
		if u.Req.Global {
			for _, h := range live {
				if w.allowed(u, h) && !slices.Contains(on, h) {
					out = append(out, u.Name+"@"+h)
				}
			}
			continue
		}
		canRun, runs := false, false
		for _, h := range live {
			if w.allowed(u, h) {
				canRun = true
				if slices.Contains(on, h) {
					runs = true
				}
			}
		}
		if canRun && !runs {
			out = append(out, u.Name)
		}
	}
	return out
}

// movable reports whether host runs, in s, a non-global unit that some
// other machine may run.
func (w world) movable(s sample, host string) bool {
	for _, name := range s.Active[host] {
		u, ok := w.unit(name)
		if !ok || u.Req.Global {
			continue
		}
		for h := range w.meta {
			if h != host && w.allowed(u, h) {
				return true
			}
		}
	}
	return false
}

// disallowed lists placements that break a unit's requirements in s: a unit
// active on a machine whose metadata it does not match, or two conflicting
// units active on one machine. These must never happen.
func (w world) disallowed(s sample) []string {
	var out []string
	hosts := make([]string, 0, len(s.Active))
	for h := range s.Active {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	for _, h := range hosts {
		units := s.Active[h]
		for _, name := range units {
			u, ok := w.unit(name)
			if !ok {
				out = append(out, fmt.Sprintf("unknown unit %s active on %s", name, h))
				continue
			}
			if !w.allowed(u, h) {
				out = append(out, fmt.Sprintf("%s active on %s, which it does not allow", name, h))
			}
			for _, other := range units {
				if other > name && (u.Req.ConflictsWith(other) || w.conflicts(other, name)) {
					out = append(out, fmt.Sprintf("%s and %s (conflicting) both active on %s", name, other, h))
				}
			}
		}
	}
	return out
}

func (w world) conflicts(a, b string) bool {
	u, ok := w.unit(a)
	return ok && u.Req.ConflictsWith(b)
}

// exact reports what keeps s from being the exactly-once state on the live
// machines: nothing missing, every non-global unit on exactly one machine,
// every global unit on exactly the live machines that allow it, nothing
// anywhere else.
func (w world) exact(s sample, live []string) []string {
	out := w.missing(s, live)
	for _, u := range w.units {
		on := s.copies(u.Name)
		for _, h := range on {
			if !slices.Contains(live, h) {
				out = append(out, fmt.Sprintf("%s active on %s, which is not live", u.Name, h))
			}
		}
		if !u.Req.Global && len(on) > 1 {
			out = append(out, fmt.Sprintf("%s active on %d machines (%s)", u.Name, len(on), strings.Join(on, ",")))
		}
	}
	return append(out, w.disallowed(s)...)
}

// streak returns the time from start to the first sample of the final run
// of samples (at or after start) that all satisfy ok, how long that run
// has lasted, and whether there is one (the last sample satisfies ok).
func streak(samples []sample, start time.Time, ok func(sample) bool) (from time.Duration, lasted time.Duration, found bool) {
	var first *sample
	var last sample
	for i := range samples {
		s := &samples[i]
		if s.At.Before(start) {
			continue
		}
		if ok(*s) {
			if first == nil {
				first = s
			}
		} else {
			first = nil
		}
		last = *s
	}
	if first == nil {
		return 0, 0, false
	}
	return first.At.Sub(start), last.At.Sub(first.At), true
}

// dupStats counts duplicate runs of non-global units in a window of samples.
type dupStats struct {
	Runs      int                `json:"duplicate_runs"`    // extra copies that appeared
	Seconds   float64            `json:"duplicate_seconds"` // Σ (copies-1) × time to the next sample
	MaxCopies int                `json:"max_copies"`
	First     float64            `json:"first_s,omitempty"` // first sample with a duplicate, from the window's start
	Last      float64            `json:"last_s,omitempty"`  // last sample with a duplicate, from the window's start
	ByUnit    map[string]float64 `json:"by_unit,omitempty"` // duplicate-seconds per unit
}

// duplicates computes dupStats over the samples in [from, to].
func (w world) duplicates(samples []sample, from, to time.Time) dupStats {
	st := dupStats{ByUnit: map[string]float64{}}
	prev := map[string]int{}
	seen := false
	var win []sample
	for _, s := range samples {
		if !s.At.Before(from) && !s.At.After(to) {
			win = append(win, s)
		}
	}
	for i, s := range win {
		dt := 0.0
		if i+1 < len(win) {
			dt = win[i+1].At.Sub(s.At).Seconds()
		}
		any := false
		for _, u := range w.units {
			if u.Req.Global {
				continue
			}
			n := len(s.copies(u.Name))
			if n > st.MaxCopies {
				st.MaxCopies = n
			}
			if n >= 2 {
				any = true
				st.Seconds += float64(n-1) * dt
				st.ByUnit[u.Name] += float64(n-1) * dt
				if base := max(prev[u.Name], 1); n > base {
					st.Runs += n - base
				}
			}
			prev[u.Name] = n
		}
		if any {
			at := s.At.Sub(from).Seconds()
			if !seen {
				st.First, seen = at, true
			}
			st.Last = at
		}
	}
	if len(st.ByUnit) == 0 {
		st.ByUnit = nil
	}
	return st
}

// unavailable is Σ over the samples in [from, to] of the number of units
// (global: copies) that must run on live and do not, times the time to the
// next sample: unit-seconds of unavailability.
func (w world) unavailable(samples []sample, from, to time.Time, live []string) float64 {
	win := between(samples, from, to)
	total := 0.0
	for i, s := range win {
		if i+1 < len(win) {
			total += float64(len(w.missing(s, live))) * win[i+1].At.Sub(s.At).Seconds()
		}
	}
	return total
}
