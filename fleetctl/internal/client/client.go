// Package client is fleetctl's view of a fleet cluster: one API interface
// with two drivers, HTTP (fleetd's API v1 through internal/fleetapi, the
// default) and Registry (the store directly through internal/fleetregistry,
// --driver=etcd). Both return the API v1 entities, so commands and
// formatters do not know which driver they use. Start reading at API.
package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/corekit/corekit/internal/fleetapi"
	"github.com/corekit/corekit/internal/fleetregistry"
)

// ErrUnitNotFound is returned by DestroyUnit for a unit that does not exist.
var ErrUnitNotFound = errors.New("unit does not exist")

// API is what fleetctl needs from a cluster. Every call blocks on the
// network and honours ctx. Returned slices belong to the caller.
type API interface {
	// Units returns every unit sorted by name.
	Units(ctx context.Context) ([]*fleetapi.Unit, error)
	// Unit returns one unit, or nil, nil when it does not exist.
	Unit(ctx context.Context, name string) (*fleetapi.Unit, error)
	// CreateUnit creates (or, with different options, replaces) a unit.
	CreateUnit(ctx context.Context, u *fleetapi.Unit) error
	// SetUnitTargetState sets the desired state of an existing unit.
	SetUnitTargetState(ctx context.Context, name, state string) error
	// DestroyUnit removes a unit; ErrUnitNotFound when it is absent.
	DestroyUnit(ctx context.Context, name string) error
	// UnitStates returns every published systemd state, sorted by unit
	// then machine.
	UnitStates(ctx context.Context) ([]*fleetapi.UnitState, error)
	// Machines returns every machine sorted by ID.
	Machines(ctx context.Context) ([]*fleetapi.Machine, error)
}

// HTTP is the API driver over fleetd's HTTP API.
type HTTP struct{ C *fleetapi.Client }

var _ API = HTTP{}

// Units implements API.
func (h HTTP) Units(ctx context.Context) ([]*fleetapi.Unit, error) { return h.C.Units(ctx) }

// Unit implements API.
func (h HTTP) Unit(ctx context.Context, name string) (*fleetapi.Unit, error) {
	return h.C.Unit(ctx, name)
}

// CreateUnit implements API.
func (h HTTP) CreateUnit(ctx context.Context, u *fleetapi.Unit) error { return h.C.CreateUnit(ctx, u) }

// SetUnitTargetState implements API.
func (h HTTP) SetUnitTargetState(ctx context.Context, name, state string) error {
	return h.C.SetUnitTargetState(ctx, name, state)
}

// DestroyUnit implements API.
func (h HTTP) DestroyUnit(ctx context.Context, name string) error {
	err := h.C.DestroyUnit(ctx, name)
	var ae *fleetapi.Error
	if errors.As(err, &ae) && ae.Code == 404 {
		return ErrUnitNotFound
	}
	return err
}

// UnitStates implements API.
func (h HTTP) UnitStates(ctx context.Context) ([]*fleetapi.UnitState, error) {
	return h.C.UnitStates(ctx, "", "")
}

// Machines implements API.
func (h HTTP) Machines(ctx context.Context) ([]*fleetapi.Machine, error) { return h.C.Machines(ctx) }

// Registry is the etcd driver: it reads and writes fleet's keys directly,
// deriving current states exactly as fleetd's API does.
type Registry struct{ R *fleetregistry.Registry }

var _ API = Registry{}

func (r Registry) hasState(ctx context.Context) (func(unit, machine string) bool, error) {
	states, err := r.R.UnitStates(ctx)
	if err != nil {
		return nil, err
	}
	has := make(map[string]bool, len(states))
	for _, s := range states {
		has[s.UnitName+"\x00"+s.MachineID()] = true
	}
	return func(u, m string) bool { return has[u+"\x00"+m] }, nil
}

func toAPIUnit(u *fleetregistry.Unit, hasState func(string, string) bool) *fleetapi.Unit {
	au := &fleetapi.Unit{Name: u.Name, Options: fleetapi.OptionsOf(u.File), DesiredState: string(u.TargetState)}
	if !u.IsGlobal() {
		au.CurrentState = string(u.CurrentState(hasState))
		au.MachineID = u.TargetMachine
		if u.TargetMachine == "" && u.TargetState != fleetregistry.StateInactive {
			au.Reason = u.Reason // a stale reason of a placed unit is not shown
		}
	}
	return au
}

// Units implements API.
func (r Registry) Units(ctx context.Context) ([]*fleetapi.Unit, error) {
	units, _, err := r.R.Units(ctx)
	if err != nil {
		return nil, err
	}
	has, err := r.hasState(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*fleetapi.Unit, 0, len(units))
	for _, u := range units {
		out = append(out, toAPIUnit(u, has))
	}
	return out, nil
}

// Unit implements API.
func (r Registry) Unit(ctx context.Context, name string) (*fleetapi.Unit, error) {
	u, err := r.R.Unit(ctx, name)
	if errors.Is(err, fleetregistry.ErrUnitNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	has, err := r.hasState(ctx)
	if err != nil {
		return nil, err
	}
	return toAPIUnit(u, has), nil
}

// CreateUnit implements API.
func (r Registry) CreateUnit(ctx context.Context, u *fleetapi.Unit) error {
	ts := fleetregistry.StateInactive
	if u.DesiredState != "" {
		var err error
		if ts, err = fleetregistry.ParseTargetState(u.DesiredState); err != nil {
			return err
		}
	}
	return r.R.CreateUnit(ctx, &fleetregistry.Unit{Name: u.Name, File: u.File(), TargetState: ts})
}

// SetUnitTargetState implements API.
func (r Registry) SetUnitTargetState(ctx context.Context, name, state string) error {
	ts, err := fleetregistry.ParseTargetState(state)
	if err != nil {
		return err
	}
	if err := r.R.SetUnitTargetState(ctx, name, ts); err != nil {
		if errors.Is(err, fleetregistry.ErrUnitNotFound) {
			return fmt.Errorf("unit %s: %w", name, ErrUnitNotFound)
		}
		return err
	}
	return nil
}

// DestroyUnit implements API.
func (r Registry) DestroyUnit(ctx context.Context, name string) error {
	err := r.R.DestroyUnit(ctx, name)
	if errors.Is(err, fleetregistry.ErrUnitNotFound) {
		return ErrUnitNotFound
	}
	return err
}

// UnitStates implements API.
func (r Registry) UnitStates(ctx context.Context) ([]*fleetapi.UnitState, error) {
	states, err := r.R.UnitStates(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*fleetapi.UnitState, 0, len(states))
	for _, s := range states {
		out = append(out, &fleetapi.UnitState{Name: s.UnitName, Hash: s.UnitHash, MachineID: s.MachineID(),
			SystemdLoadState: s.LoadState, SystemdActiveState: s.ActiveState, SystemdSubState: s.SubState})
	}
	return out, nil
}

// Machines implements API.
func (r Registry) Machines(ctx context.Context) ([]*fleetapi.Machine, error) {
	ms, err := r.R.Machines(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*fleetapi.Machine, 0, len(ms))
	for _, m := range ms {
		out = append(out, &fleetapi.Machine{ID: m.ID, PrimaryIP: m.PublicIP, Metadata: m.Metadata})
	}
	return out, nil
}
