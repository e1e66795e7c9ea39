package command

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/fleetctl/internal/client"
)

// DestroyOptions are destroy's inputs.
type DestroyOptions struct {
	F     *Factory
	Units []string
	Block BlockOptions
}

// NewDestroyCommand declares `fleetctl destroy`.
func NewDestroyCommand(f *Factory, runF func(context.Context, *DestroyOptions) error) *cobra.Command {
	opts := &DestroyOptions{F: f}
	cmd := &cobra.Command{
		Use:   "destroy UNIT...",
		Short: "Destroy one or more units in the cluster",
		Long: `Completely remove one or more running or submitted units from the cluster.

Instructs systemd on the host machine to stop the unit, deferring to systemd
completely for any custom stop directives (i.e. ExecStop option in the unit
file).

fleetctl waits until the units are gone from the registry unless --no-block
is given (fleet 1.0 had this the wrong way round).

Destroyed units are impossible to start unless re-submitted.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Units = args
			return run(cmd.Context(), opts, runF, runDestroy)
		},
	}
	addBlockFlags(cmd, &opts.Block)
	return cmd
}

func runDestroy(ctx context.Context, opts *DestroyOptions) error {
	f := opts.F
	api, units, err := registeredUnits(ctx, f, opts.Units)
	if err != nil || len(units) == 0 {
		return err
	}
	code := ExitSuccess
	attempts := opts.Block.attempts()
	for _, u := range units {
		err := api.DestroyUnit(ctx, u.Name)
		if errors.Is(err, client.ErrUnitNotFound) {
			continue
		}
		if err != nil {
			stderrf(f.IO.ErrOut, "Error destroying units: %v", err)
			code = ExitFailure
			continue
		}
		if attempts >= 0 {
			if err := waitGone(ctx, f, api, u.Name, attempts); err != nil {
				if interrupted(ctx, err) {
					return err
				}
				stderrf(f.IO.ErrOut, "Error destroying units: %v", err)
				code = ExitFailure
				continue
			}
		}
		fmt.Fprintf(f.IO.Out, "Destroyed %s\n", u.Name)
	}
	return exit(code)
}

// waitGone polls until the unit is no longer in the registry.
func waitGone(ctx context.Context, f *Factory, api client.API, name string, attempts int) error {
	var deadline time.Time
	if attempts > 0 {
		deadline = time.Now().Add(time.Duration(attempts) * f.Attempt)
	}
	w := &waiter{f: f}
	for {
		u, err := api.Unit(ctx, name)
		if err != nil {
			return err
		}
		if u == nil {
			return nil
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for unit %s to be destroyed", name)
		}
		if err := w.sleep(ctx); err != nil {
			return err
		}
	}
}
