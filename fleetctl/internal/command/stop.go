package command

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/fleetctl/internal/format"
)

// StopOptions are stop's and unload's inputs.
type StopOptions struct {
	F     *Factory
	Units []string
	Block BlockOptions
}

// NewStopCommand declares `fleetctl stop`.
func NewStopCommand(f *Factory, runF func(context.Context, *StopOptions) error) *cobra.Command {
	opts := &StopOptions{F: f}
	cmd := &cobra.Command{
		Use:   "stop [--no-block|--block-attempts=N] UNIT...",
		Short: "Instruct systemd to stop one or more units in the cluster.",
		Long: `Stop one or more units from running in the cluster, but allow them to be
started again in the future.

Instructs systemd on the host machine to stop the unit, deferring to systemd
completely for any custom stop directives (i.e. ExecStop option in the unit
file).

For units which are not global, stop operations are performed synchronously,
which means fleetctl will block until it detects that the unit(s) have
transitioned to a stopped state. Stop operations on global units are always
non-blocking.

Stop a single unit:
	fleetctl stop foo.service`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Units = args
			return run(cmd.Context(), opts, runF, runStop)
		},
	}
	addBlockFlags(cmd, &opts.Block)
	return cmd
}

func runStop(ctx context.Context, opts *StopOptions) error {
	f := opts.F
	api, units, err := registeredUnits(ctx, f, opts.Units)
	if err != nil || len(units) == 0 {
		return err
	}
	stopping := []string{}
	for _, u := range units {
		global := format.IsGlobal(u)
		if !global {
			switch u.CurrentState {
			case "inactive":
				stderrf(f.IO.ErrOut, "Unable to stop unit %s in state inactive", u.Name)
				return exit(ExitFailure)
			case "loaded":
				continue
			}
		}
		if err := api.SetUnitTargetState(ctx, u.Name, "loaded"); err != nil {
			stderrf(f.IO.ErrOut, "Failed to stop units %v. err: %v", []string{u.Name}, err)
			return exit(ExitFailure)
		}
		if global {
			fmt.Fprintf(f.IO.Out, "Triggered global unit %s stop\n", u.Name)
		} else {
			stopping = append(stopping, u.Name)
		}
	}
	if err := newWaiter(f, api, opts.Block).waitUnits(ctx, stopping, "stop", "loaded"); err != nil {
		if interrupted(ctx, err) {
			return err
		}
		stderrf(f.IO.ErrOut, "Error waiting for units: %v", err)
		stderrf(f.IO.ErrOut, "Failed to stop units %v. err: %v", stopping, err)
		return exit(ExitFailure)
	}
	stderrf(f.IO.ErrOut, "Successfully stopped units %v.", stopping)
	return nil
}
