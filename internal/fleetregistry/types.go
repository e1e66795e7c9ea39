package fleetregistry

import (
	"errors"
	"fmt"

	"github.com/corekit/corekit/internal/unitfile"
)

// DefaultPrefix is fleet's default etcd_key_prefix.
const DefaultPrefix = "/_coreos.com/fleet/"

// Version is the fleet version this implementation publishes and the engine
// version it leads with.
const (
	Version       = "1.0.0"
	EngineVersion = 1
)

// TargetState is a desired or current unit state.
type TargetState string

// The three unit states.
const (
	StateInactive TargetState = "inactive"
	StateLoaded   TargetState = "loaded"
	StateLaunched TargetState = "launched"
)

// ParseTargetState validates s.
func ParseTargetState(s string) (TargetState, error) {
	switch TargetState(s) {
	case StateInactive, StateLoaded, StateLaunched:
		return TargetState(s), nil
	}
	return "", fmt.Errorf("invalid desired state %q: expect inactive, loaded or launched", s)
}

// Errors callers branch on.
var (
	ErrUnitNotFound     = errors.New("unit does not exist")
	ErrMachineIDInUse   = errors.New("machine ID is registered by another fleetd")
	ErrNotRegistered    = errors.New("machine is not registered")
	ErrLeaseLost        = errors.New("lease is held by another machine")
	ErrAlreadyScheduled = errors.New("unit is already scheduled")
)

// Unit is one unit of the registry with its schedule.
type Unit struct {
	Name        string
	File        *unitfile.UnitFile
	Hash        unitfile.Hash
	TargetState TargetState
	// TargetMachine is the machine the engine scheduled it to ("" = none).
	TargetMachine string
	// JobState is the machine that last heartbeated it as launched.
	JobState string
	// Reason is why the engine could not schedule the unit (job/<unit>/reason,
	// an extension of ours; "" when scheduled or not yet looked at).
	Reason string
}

// Requirements returns the unit's [X-Fleet] options.
func (u *Unit) Requirements() unitfile.Requirements { return u.File.Requirements(u.Name) }

// IsGlobal reports whether the unit has Global=true.
func (u *Unit) IsGlobal() bool { return u.Requirements().Global }

// CurrentState derives fleet's current state of a non-global unit: inactive
// without a target or without a published state from the target; launched
// when the target also heartbeats it; else loaded. Global units have none.
func (u *Unit) CurrentState(hasState func(unit, machine string) bool) TargetState {
	if u.IsGlobal() {
		return ""
	}
	if u.TargetMachine == "" || !hasState(u.Name, u.TargetMachine) {
		return StateInactive
	}
	if u.JobState == u.TargetMachine {
		return StateLaunched
	}
	return StateLoaded
}

// MachineState is a machine's presence record; the field names are the
// JSON keys fleet writes (no tags).
type MachineState struct {
	ID           string
	PublicIP     string
	Metadata     map[string]string
	Capabilities map[string]bool
	Version      string
}

// Capability names published in MachineState.Capabilities.
const (
	CapDisableEngine = "DISABLE_ENGINE"
	CapGRPC          = "GRPC"
)

// ShortID is the first 8 characters of a machine ID.
func ShortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// UnitState is the systemd state of a unit on one machine.
type UnitState struct {
	UnitName    string `json:"-"`
	LoadState   string `json:"loadState"`
	ActiveState string `json:"activeState"`
	SubState    string `json:"subState"`
	// MachineState carries only the ID, as fleet writes it.
	MachineState MachineState `json:"machineState"`
	UnitHash     string       `json:"unitHash"`
}

// MachineID is the machine the state comes from.
func (s UnitState) MachineID() string { return s.MachineState.ID }

// Lease is a held or observed lease.
type Lease struct {
	MachineID string
	Version   int
	// Index is the lease key's modifiedIndex (for renew and release).
	Index uint64
	// TTL is the remaining time to live when read.
	TTL int64
}
