// Package fleetapi is fleet's HTTP API v1: the wire types (types.go), the
// page token (token.go) and a Go client (client.go) that talks to fleetd
// over a unix socket ("unix:///var/run/fleet.sock") or TCP
// ("http://host:port"). fleetd's server (fleet/internal/api) and fleetctl
// share these types.
package fleetapi

import (
	"fmt"

	"github.com/corekit/corekit/internal/unitfile"
)

// DefaultEndpoint is fleetctl's default --endpoint.
const DefaultEndpoint = "unix:///var/run/fleet.sock"

// BasePath is the API root; LegacyBasePath is its old alias.
const (
	BasePath       = "/fleet/v1"
	LegacyBasePath = "/v1-alpha"
)

// UnitOption is one option of a unit: {"section","name","value"}.
type UnitOption = unitfile.Option

// Unit is the API's unit entity.
type Unit struct {
	Name         string        `json:"name,omitempty"`
	Options      []*UnitOption `json:"options,omitempty"`
	DesiredState string        `json:"desiredState,omitempty"`
	CurrentState string        `json:"currentState,omitempty"`
	MachineID    string        `json:"machineID,omitempty"`
	// Reason is why the engine cannot schedule the unit (an addition of
	// ours to API v1; absent when the unit is scheduled, inactive, or the
	// fleetd is one that does not publish reasons).
	Reason string `json:"reason,omitempty"`
}

// File returns the unit file described by the options.
func (u *Unit) File() *unitfile.UnitFile {
	opts := make([]unitfile.Option, 0, len(u.Options))
	for _, o := range u.Options {
		if o != nil {
			opts = append(opts, *o)
		}
	}
	return unitfile.FromOptions(opts)
}

// OptionsOf returns the API options of a unit file.
func OptionsOf(f *unitfile.UnitFile) []*UnitOption {
	out := make([]*UnitOption, 0, len(f.Options))
	for i := range f.Options {
		o := f.Options[i]
		out = append(out, &o)
	}
	return out
}

// UnitState is the systemd state of a unit on one machine.
type UnitState struct {
	Name               string `json:"name,omitempty"`
	Hash               string `json:"hash,omitempty"`
	MachineID          string `json:"machineID,omitempty"`
	SystemdLoadState   string `json:"systemdLoadState,omitempty"`
	SystemdActiveState string `json:"systemdActiveState,omitempty"`
	SystemdSubState    string `json:"systemdSubState,omitempty"`
}

// Machine is the API's machine entity.
type Machine struct {
	ID        string            `json:"id,omitempty"`
	PrimaryIP string            `json:"primaryIP,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// UnitPage is one page of GET /fleet/v1/units.
type UnitPage struct {
	Units         []*Unit `json:"units,omitempty"`
	NextPageToken string  `json:"nextPageToken,omitempty"`
}

// UnitStatePage is one page of GET /fleet/v1/state.
type UnitStatePage struct {
	States        []*UnitState `json:"states,omitempty"`
	NextPageToken string       `json:"nextPageToken,omitempty"`
}

// MachinePage is one page of GET /fleet/v1/machines.
type MachinePage struct {
	Machines      []*Machine `json:"machines,omitempty"`
	NextPageToken string     `json:"nextPageToken,omitempty"`
}

// MetadataValue wraps a PATCH value: {"value":"<string>"}.
type MetadataValue struct {
	Value string `json:"value"`
}

// MachineOp is one operation of PATCH /fleet/v1/machines:
// {"op":"add|remove|replace","path":"/<id>/metadata/<key>","value":{"value":"v"}}.
type MachineOp struct {
	Operation string         `json:"op"`
	Path      string         `json:"path"`
	Value     *MetadataValue `json:"value,omitempty"`
}

// ErrorBody is the JSON error shape: {"error":{"code":N,"message":"..."}}.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Error is an API error answer; callers use errors.As to read the code.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("googleapi: Error %d: %s", e.Code, e.Message) }
