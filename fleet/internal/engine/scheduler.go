package engine

import (
	"fmt"
	"sort"
	"strings"

	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/unitfile"
)

// Machine is a machine as the scheduler sees it.
type Machine struct {
	ID       string
	Metadata map[string]string
}

// Unit is a unit as the scheduler sees it.
type Unit struct {
	Name    string
	Req     unitfile.Requirements
	Desired fleetregistry.TargetState
	// Target is the machine the unit is scheduled to ("" = none). Ignored
	// for global units, which the engine never schedules.
	Target string
	// Reason is the unschedulable reason currently published for the unit
	// (not used by Plan; the engine rewrites it when it changes).
	Reason string
}

// Snapshot is the cluster state one scheduling pass works on.
type Snapshot struct {
	Machines []Machine
	Units    []Unit
	// Index is the store index the units were read at (not used by Plan).
	Index uint64
}

// DecisionType says what a Decision does.
type DecisionType string

// The two decisions the engine makes (fleet's task names).
const (
	Unschedule DecisionType = "UnscheduleUnit"
	Schedule   DecisionType = "AttemptScheduleUnit"
)

// Decision is one change to the schedule.
type Decision struct {
	Type    DecisionType
	Unit    string
	Machine string
	Reason  string
}

// String renders the decision as fleet logs its tasks.
func (d Decision) String() string {
	return fmt.Sprintf("{Type: %s, JobName: %s, MachineID: %s, Reason: %q}", d.Type, d.Unit, d.Machine, d.Reason)
}

// Unschedulable is a unit that should run but fits no machine, with why.
type Unschedulable struct {
	Unit   string
	Reason string
}

// Result is the outcome of Plan.
type Result struct {
	Decisions     []Decision
	Unschedulable []Unschedulable
}

// maxRounds bounds how often Plan re-runs its two passes within one call, so
// that evictions (Replaces) and followers (MachineOf) settle in one pass.
const maxRounds = 3

// Plan is the pure scheduler: from a snapshot it computes which units to
// unschedule and where to place unscheduled ones. It is deterministic:
// units are visited in name order; placement picks the least-loaded eligible
// machine (load = units counted there), ties broken by machine ID.
//
// Pass 1 unschedules every scheduled non-global unit whose desired state is
// inactive, whose machine is gone, or whose machine no longer satisfies its
// constraints (including being evicted by a unit that Replaces it). Pass 2
// places every unscheduled unit whose desired state is not inactive. Unlike
// fleet, an evicted unit is only placed where its constraints hold.
func Plan(s Snapshot) Result {
	st := newState(s)
	var res Result
	for round := 0; round < maxRounds; round++ {
		n := len(res.Decisions)
		res.Decisions = append(res.Decisions, st.pass1()...)
		placed, stuck := st.pass2()
		res.Decisions = append(res.Decisions, placed...)
		res.Unschedulable = stuck
		if len(res.Decisions) == n || len(placed) == 0 {
			break
		}
	}
	return res
}

type state struct {
	machines []*mstate
	byID     map[string]*mstate
	jobs     []*job // non-global, sorted by name
	globals  []*job // sorted by name
}

type job struct {
	Unit
}

type mstate struct {
	Machine
	units map[string]*job // counted units: scheduled non-globals + matching globals
}

func newState(s Snapshot) *state {
	st := &state{byID: map[string]*mstate{}}
	for _, m := range s.Machines {
		ms := &mstate{Machine: m, units: map[string]*job{}}
		st.machines = append(st.machines, ms)
		st.byID[m.ID] = ms
	}
	for _, u := range s.Units {
		j := &job{Unit: u}
		if u.Req.Global {
			st.globals = append(st.globals, j)
		} else {
			st.jobs = append(st.jobs, j)
		}
	}
	sort.Slice(st.jobs, func(a, b int) bool { return st.jobs[a].Name < st.jobs[b].Name })
	sort.Slice(st.globals, func(a, b int) bool { return st.globals[a].Name < st.globals[b].Name })
	for _, j := range st.jobs {
		if m := st.byID[j.Target]; m != nil && j.Desired != fleetregistry.StateInactive {
			m.units[j.Name] = j
		}
	}
	// Global units count on every machine they match and do not conflict
	// with what is already there (name order, as agents decide).
	for _, m := range st.machines {
		for _, g := range st.globals {
			if g.Desired == fleetregistry.StateInactive {
				continue
			}
			if ok, _ := g.Req.MetadataMatches(m.Metadata); !ok {
				continue
			}
			if _, why := m.conflict(g); why != "" {
				continue
			}
			m.units[g.Name] = g
		}
	}
	return st
}

// conflict reports whether j may not share m with a unit already there.
func (m *mstate) conflict(j *job) (bool, string) {
	for _, name := range sortedKeys(m.units) {
		if name == j.Name {
			continue
		}
		u := m.units[name]
		if j.Req.ConflictsWith(name) || u.Req.ConflictsWith(j.Name) {
			return true, fmt.Sprintf("conflicts with %s", name)
		}
		if u.Req.ReplacesUnit(j.Name) && !j.Req.ReplacesUnit(name) {
			return true, fmt.Sprintf("replaced by %s", name)
		}
	}
	return false, ""
}

// eligible reports whether j may run on m, or why not.
func (st *state) eligible(j *job, m *mstate) (bool, string) {
	if id := j.Req.MachineID; id != "" && id != m.ID && id != fleetregistry.ShortID(m.ID) {
		return false, fmt.Sprintf("unit requires Machine(%s)", id)
	}
	if ok, why := j.Req.MetadataMatches(m.Metadata); !ok {
		return false, why
	}
	for _, p := range j.Req.MachineOf {
		if _, ok := m.units[p]; !ok {
			return false, fmt.Sprintf("peer %s not on machine", p)
		}
	}
	if c, why := m.conflict(j); c {
		return false, why
	}
	return true, ""
}

func (st *state) pass1() []Decision {
	var out []Decision
	for _, j := range st.jobs {
		if j.Target == "" {
			continue
		}
		m := st.byID[j.Target]
		reason := ""
		switch {
		case j.Desired == fleetregistry.StateInactive:
			reason = "target state inactive"
		case m == nil:
			reason = fmt.Sprintf("target Machine(%s) went away", j.Target)
		default:
			if ok, why := st.eligible(j, m); !ok {
				reason = fmt.Sprintf("target Machine(%s) unable to run unit: %s", j.Target, why)
			}
		}
		if reason == "" {
			continue
		}
		out = append(out, Decision{Type: Unschedule, Unit: j.Name, Machine: j.Target, Reason: reason})
		if m != nil {
			delete(m.units, j.Name)
		}
		j.Target = ""
	}
	return out
}

func (st *state) pass2() ([]Decision, []Unschedulable) {
	var out []Decision
	var stuck []Unschedulable
	for _, j := range st.jobs {
		if j.Target != "" || j.Desired == fleetregistry.StateInactive {
			continue
		}
		m, why := st.place(j)
		if m == nil {
			stuck = append(stuck, Unschedulable{Unit: j.Name, Reason: why})
			continue
		}
		j.Target = m.ID
		m.units[j.Name] = j
		out = append(out, Decision{Type: Schedule, Unit: j.Name, Machine: m.ID,
			Reason: fmt.Sprintf("target state %s and unit not scheduled", j.Desired)})
	}
	return out, stuck
}

// place picks the least-loaded eligible machine for j.
func (st *state) place(j *job) (*mstate, string) {
	if len(st.machines) == 0 {
		return nil, "zero agents available"
	}
	ms := append([]*mstate(nil), st.machines...)
	sort.SliceStable(ms, func(a, b int) bool {
		if len(ms[a].units) != len(ms[b].units) {
			return len(ms[a].units) < len(ms[b].units)
		}
		return ms[a].ID < ms[b].ID
	})
	var whys []string
	for _, m := range ms {
		ok, why := st.eligible(j, m)
		if ok {
			return m, ""
		}
		whys = append(whys, fmt.Sprintf("Machine(%s): %s", fleetregistry.ShortID(m.ID), why))
	}
	sort.Strings(whys)
	if len(whys) > 3 {
		whys = append(whys[:3], fmt.Sprintf("and %d more", len(whys)-3))
	}
	return nil, "no agents able to run job: " + strings.Join(whys, "; ")
}

func sortedKeys(m map[string]*job) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
