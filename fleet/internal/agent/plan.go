// Package agent is fleetd's per-machine executor. Desired and Plan (plan.go)
// are pure: from the registry's units and this machine they compute the
// units that should be here, and from desired versus current the tasks to
// run. Execute (executor.go) runs tasks against a unitmgr.Manager; Agent
// (agent.go) is the loop that reads the registry, runs plans and publishes
// unit states.
package agent

import (
	"sort"

	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/unitfile"
)

// DesiredUnit is a unit that should be on this machine.
type DesiredUnit struct {
	Name  string
	File  *unitfile.UnitFile
	Hash  unitfile.Hash
	State fleetregistry.TargetState // loaded or launched
}

// CurrentUnit is a unit present on this machine.
type CurrentUnit struct {
	Hash  unitfile.Hash
	State fleetregistry.TargetState // loaded or launched
}

// TaskType names an agent task (fleet's names).
type TaskType string

// The agent's tasks, in the order they run within a plan.
const (
	UnloadUnit      TaskType = "UnloadUnit"
	LoadUnit        TaskType = "LoadUnit"
	ReloadUnitFiles TaskType = "ReloadUnitFiles"
	StopUnit        TaskType = "StopUnit"
	StartUnit       TaskType = "StartUnit"
)

var taskOrder = map[TaskType]int{UnloadUnit: 0, LoadUnit: 1, ReloadUnitFiles: 2, StopUnit: 3, StartUnit: 4}

// Task is one step of a plan.
type Task struct {
	Type   TaskType
	Unit   string
	Reason string
	File   *unitfile.UnitFile // for LoadUnit
}

// Desired returns the units that should be on machine m: global units whose
// MachineMetadata matches m, and non-global units scheduled to m, with
// desired state loaded or launched; then, in name order, every unit that
// conflicts with one already accepted is dropped. Templates and unit types
// the agent does not manage are skipped.
func Desired(m fleetregistry.MachineState, units []*fleetregistry.Unit) map[string]DesiredUnit {
	sorted := append([]*fleetregistry.Unit(nil), units...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	out := map[string]DesiredUnit{}
	var accepted []*fleetregistry.Unit
	for _, u := range sorted {
		if u.TargetState == fleetregistry.StateInactive || u.TargetState == "" || unitfile.IsTemplate(u.Name) || !unitfile.Recognized(u.Name) {
			continue
		}
		req := u.Requirements()
		if req.Global {
			if ok, _ := req.MetadataMatches(m.Metadata); !ok {
				continue
			}
		} else if u.TargetMachine != m.ID {
			continue
		}
		conflict := false
		for _, a := range accepted {
			if req.ConflictsWith(a.Name) || a.Requirements().ConflictsWith(u.Name) {
				conflict = true
				break
			}
		}
		if conflict {
			continue
		}
		accepted = append(accepted, u)
		out[u.Name] = DesiredUnit{Name: u.Name, File: u.File, Hash: u.Hash, State: u.TargetState}
	}
	return out
}

// Plan computes the tasks that turn current into desired. Tasks come in the
// order Unload, Load, Reload, Stop, Start; units in name order within each.
func Plan(desired map[string]DesiredUnit, current map[string]CurrentUnit) []Task {
	names := map[string]bool{}
	for n := range desired {
		names[n] = true
	}
	for n := range current {
		names[n] = true
	}
	var tasks []Task
	reload := false
	for n := range names {
		d, want := desired[n]
		c, have := current[n]
		switch {
		case !want:
			tasks = append(tasks, Task{Type: UnloadUnit, Unit: n, Reason: "unit loaded but not scheduled here"})
			reload = true
		case !have:
			tasks = append(tasks, Task{Type: LoadUnit, Unit: n, File: d.File, Reason: "unit scheduled here but not loaded"})
			reload = true
			if d.State == fleetregistry.StateLaunched {
				tasks = append(tasks, Task{Type: StartUnit, Unit: n, Reason: "unit currently loaded but desired state is launched"})
			}
		case c.Hash != d.Hash:
			tasks = append(tasks,
				Task{Type: UnloadUnit, Unit: n, Reason: "unit loaded but hash differs to expected"},
				Task{Type: LoadUnit, Unit: n, File: d.File, Reason: "unit scheduled here but not loaded"})
			reload = true
			if d.State == fleetregistry.StateLaunched {
				tasks = append(tasks, Task{Type: StartUnit, Unit: n, Reason: "unit currently loaded but desired state is launched"})
			}
		case d.State == fleetregistry.StateLaunched && c.State != fleetregistry.StateLaunched:
			tasks = append(tasks, Task{Type: StartUnit, Unit: n, Reason: "unit currently loaded but desired state is launched"})
		case d.State == fleetregistry.StateLoaded && c.State == fleetregistry.StateLaunched:
			tasks = append(tasks, Task{Type: StopUnit, Unit: n, Reason: "unit currently launched but desired state is loaded"})
		}
	}
	if reload {
		tasks = append(tasks, Task{Type: ReloadUnitFiles, Reason: "always reload unit files"})
	}
	sort.SliceStable(tasks, func(i, j int) bool {
		if taskOrder[tasks[i].Type] != taskOrder[tasks[j].Type] {
			return taskOrder[tasks[i].Type] < taskOrder[tasks[j].Type]
		}
		return tasks[i].Unit < tasks[j].Unit
	})
	return tasks
}
