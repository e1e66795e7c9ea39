package command

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"

	"github.com/corekit/corekit/fleetctl/internal/client"
	"github.com/corekit/corekit/internal/fleetapi"
	"github.com/corekit/corekit/internal/unitfile"
)

// maybeAppendDefaultUnitType appends ".service" unless the argument ends in
// a unit type the agent recognises.
func maybeAppendDefaultUnitType(arg string) string {
	if !unitfile.Recognized(arg) {
		return arg + ".service"
	}
	return arg
}

// unitName is fleetctl's "mangled" unit name of an argument: the path's
// base name with the default type appended.
func unitName(arg string) string { return unitfile.Mangle(arg) }

// replaceAllowed lists, per verb, the desired states in which --replace
// may replace a unit.
var replaceAllowed = map[string][]string{
	"submit": {"inactive"},
	"load":   {"inactive", "loaded"},
	"start":  {"inactive", "loaded", "launched"},
}

// creator makes sure units exist in the registry before a verb acts on them
// (fleetctl's lazyCreateUnits): an existing unit is kept (or, with
// --replace and different content, replaced); otherwise the unit comes from
// a local file of that path, else from its template in the registry, else
// from a template file next to the given path.
type creator struct {
	f       *Factory
	api     client.API
	verb    string
	replace bool
	block   BlockOptions
}

func readUnitFile(file string) (*unitfile.UnitFile, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return unitfile.Parse(string(b))
}

// localDiffers compares the local file (or, for an instance, its local
// template) with the registry's unit; it warns when they differ and
// --replace was not given.
func (c *creator) localDiffers(file string, u *fleetapi.Unit, fatal bool) (bool, error) {
	reg := u.File().Hash()
	if _, err := os.Stat(file); err == nil {
		lf, err := readUnitFile(file)
		if err != nil {
			return false, err
		}
		diff := lf.Hash() != reg
		if diff && !c.replace {
			stderrf(c.f.IO.ErrOut, "WARNING: Unit %s in registry differs from local unit file %s. Add --replace to override.", u.Name, file)
		}
		return diff, nil
	} else if fatal {
		return false, err
	}
	name := unitName(file)
	tmpl := unitfile.TemplateOf(name)
	if tmpl == "" {
		return false, fmt.Errorf("error Unit %s does not seem to be a template unit", file)
	}
	tfile := path.Join(path.Dir(file), tmpl)
	if _, err := os.Stat(tfile); err != nil {
		return false, err
	}
	lf, err := readUnitFile(tfile)
	if err != nil {
		return false, err
	}
	diff := lf.Hash() != reg
	if diff && !c.replace {
		stderrf(c.f.IO.ErrOut, "WARNING: Unit %s in registry differs from local template unit file %s. Add --replace to override.", u.Name, file)
	}
	return diff, nil
}

// shouldCreate decides for one argument whether a unit must be created.
func (c *creator) shouldCreate(ctx context.Context, arg string) (bool, error) {
	name := unitName(arg)
	u, err := c.api.Unit(ctx, name)
	if err != nil {
		return false, fmt.Errorf("error retrieving Unit(%s) from Registry: %w", name, err)
	}
	if u == nil {
		return true, nil
	}
	different, err := c.localDiffers(arg, u, false)
	if !c.replace {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !different {
		fmt.Fprintf(c.f.IO.Out, "Found same Unit(%s) in Registry, nothing to do\n", u.Name)
		return false, nil
	}
	for _, s := range replaceAllowed[c.verb] {
		if u.DesiredState == s {
			return true, nil
		}
	}
	stderrf(c.f.IO.ErrOut, "Warning: can not replace Unit(%s) in state '%s', use the appropriate command", u.Name, u.DesiredState)
	return false, nil
}

// unitFile finds the content for a new unit.
func (c *creator) unitFile(ctx context.Context, arg string) (*unitfile.UnitFile, error) {
	name := unitName(arg)
	if _, err := os.Stat(arg); err == nil {
		uf, err := readUnitFile(arg)
		if err != nil {
			return nil, fmt.Errorf("failed getting Unit(%s) from file: %w", arg, err)
		}
		return uf, nil
	}
	tmpl := unitfile.TemplateOf(name)
	if tmpl == "" {
		return nil, fmt.Errorf("unable to find Unit(%s) in Registry or on filesystem", name)
	}
	t, err := c.api.Unit(ctx, tmpl)
	if err != nil {
		return nil, fmt.Errorf("failed getting Unit(%s) from template: error retrieving template Unit(%s) from Registry: %w", arg, tmpl, err)
	}
	if t != nil {
		_, _ = c.localDiffers(arg, t, false)
		return t.File(), nil
	}
	tfile := path.Join(path.Dir(arg), tmpl)
	if _, err := os.Stat(tfile); err != nil {
		return nil, fmt.Errorf("failed getting Unit(%s) from template: unable to find template Unit(%s) in Registry or on filesystem", arg, tmpl)
	}
	uf, err := readUnitFile(tfile)
	if err != nil {
		return nil, fmt.Errorf("failed getting Unit(%s) from template: unable to load template Unit(%s) from file: %w", arg, tmpl, err)
	}
	return uf, nil
}

// createUnit validates and stores a unit (desired state inactive).
func (c *creator) createUnit(ctx context.Context, name string, uf *unitfile.UnitFile) error {
	if err := unitfile.ValidateName(name); err != nil {
		return err
	}
	req := uf.Requirements(name)
	if err := req.Validate(); err != nil {
		return err
	}
	for _, k := range req.Unknown {
		stderrf(c.f.IO.ErrOut, "WARNING: Unit %s: unrecognized requirement in [X-Fleet] section: %q", name, k)
	}
	if err := c.api.CreateUnit(ctx, &fleetapi.Unit{Name: name, Options: fleetapi.OptionsOf(uf)}); err != nil {
		return fmt.Errorf("failed creating unit %s: %w", name, err)
	}
	return nil
}

// errCreate is returned after per-unit wait errors were printed.
var errCreate = errors.New("One or more errors creating units")

// ensure creates what is missing and waits until every created unit
// reports inactive (printing "Unit <u> inactive"). It stops at the first
// error.
func (c *creator) ensure(ctx context.Context, args []string) error {
	var created []string
	for _, arg := range args {
		arg = maybeAppendDefaultUnitType(arg)
		name := unitName(arg)
		ok, err := c.shouldCreate(ctx, arg)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		uf, err := c.unitFile(ctx, arg)
		if err != nil {
			return err
		}
		if err := c.createUnit(ctx, name, uf); err != nil {
			return err
		}
		created = append(created, name)
	}
	// fleetctl waits for "inactive" even with --no-block (it is immediate).
	w := newWaiter(c.f, c.api, BlockOptions{BlockAttempts: c.block.BlockAttempts})
	if err := w.waitUnits(ctx, created, "submit", "inactive"); err != nil {
		if ctx.Err() != nil {
			return err
		}
		stderrf(c.f.IO.ErrOut, "Error waiting on unit creation: %v", err)
		return errCreate
	}
	return nil
}

// setTargetState sets the desired state of each unit unless it already
// has it, and returns the units it changed.
func setTargetState(ctx context.Context, api client.API, names []string, state string) ([]*fleetapi.Unit, error) {
	var triggered []*fleetapi.Unit
	for _, name := range names {
		u, err := api.Unit(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("error retrieving unit %s from registry: %w", name, err)
		}
		if u == nil {
			return nil, fmt.Errorf("unable to find unit %s", name)
		}
		if u.DesiredState == state {
			continue
		}
		if err := api.SetUnitTargetState(ctx, name, state); err != nil {
			return nil, err
		}
		triggered = append(triggered, u)
	}
	return triggered, nil
}

// findUnits returns the registry's units named by args, in argument order;
// names not in the registry are skipped.
func findUnits(ctx context.Context, api client.API, args []string) ([]*fleetapi.Unit, error) {
	units, err := api.Units(ctx)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*fleetapi.Unit, len(units))
	for _, u := range units {
		byName[u.Name] = u
	}
	var out []*fleetapi.Unit
	for _, a := range args {
		if u := byName[unitName(a)]; u != nil {
			out = append(out, u)
		}
	}
	return out, nil
}

func names(units []*fleetapi.Unit) []string {
	out := make([]string, 0, len(units))
	for _, u := range units {
		out = append(out, u.Name)
	}
	return out
}
