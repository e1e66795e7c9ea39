package command

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/fleetctl/internal/format"
)

// NewUnloadCommand declares `fleetctl unload`.
func NewUnloadCommand(f *Factory, runF func(context.Context, *StopOptions) error) *cobra.Command {
	opts := &StopOptions{F: f}
	cmd := &cobra.Command{
		Use:   "unload [--no-block|--block-attempts=N] UNIT...",
		Short: "Unschedule one or more units in the cluster.",
		Long: `Unload one or more units from the cluster: they are stopped and removed
from their machines, but stay submitted.

For units which are not global, unload operations are performed synchronously,
which means fleetctl will block until it detects that the unit(s) have
transitioned to an inactive state.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Units = args
			return run(cmd.Context(), opts, runF, runUnload)
		},
	}
	addBlockFlags(cmd, &opts.Block)
	return cmd
}

func runUnload(ctx context.Context, opts *StopOptions) error {
	f := opts.F
	api, units, err := registeredUnits(ctx, f, opts.Units)
	if err != nil || len(units) == 0 {
		return err
	}
	wait := []string{}
	for _, u := range units {
		global := format.IsGlobal(u)
		if !global && u.CurrentState == "inactive" {
			continue
		}
		if err := api.SetUnitTargetState(ctx, u.Name, "inactive"); err != nil {
			stderrf(f.IO.ErrOut, "Failed to unload units %v. err: %v", []string{u.Name}, err)
			return exit(ExitFailure)
		}
		if global {
			fmt.Fprintf(f.IO.Out, "Triggered global unit %s unload\n", u.Name)
		} else {
			wait = append(wait, u.Name)
		}
	}
	if err := newWaiter(f, api, opts.Block).waitUnits(ctx, wait, "unload", "inactive"); err != nil {
		if interrupted(ctx, err) {
			return err
		}
		stderrf(f.IO.ErrOut, "Error waiting for units: %v", err)
		stderrf(f.IO.ErrOut, "Failed to unload units %v. err: %v", wait, err)
		return exit(ExitFailure)
	}
	stderrf(f.IO.ErrOut, "Successfully unloaded units %v.", wait)
	return nil
}
