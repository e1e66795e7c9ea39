package command

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/fleetctl/internal/format"
)

// StatusOptions are status's inputs.
type StatusOptions struct {
	F       *Factory
	Units   []string
	SSHPort int
}

// NewStatusCommand declares `fleetctl status`.
func NewStatusCommand(f *Factory, runF func(context.Context, *StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{F: f}
	cmd := &cobra.Command{
		Use:   "status [--ssh-port=N] UNIT...",
		Short: "Output the status of one or more units in the cluster",
		Long: `Output the status of one or more units currently running in the cluster.
Supports glob matching of units in the current working directory or matches
previously started units.

Runs "systemctl status -l" on the unit's machine: locally when that is this
host, else over SSH. The exit status is systemctl's.

Show status of a single unit:
	fleetctl status foo.service

Show status of an entire directory with glob matching:
fleetctl status myservice/*

This command does not work with global units.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Units = args
			return run(cmd.Context(), opts, runF, runStatus)
		},
	}
	cmd.Flags().IntVar(&opts.SSHPort, "ssh-port", 22, "Connect to remote hosts over SSH using this TCP port.")
	return cmd
}

func runStatus(ctx context.Context, opts *StatusOptions) error {
	f := opts.F
	api, err := apiFor(ctx, f)
	if err != nil {
		return err
	}
	printed := 0
	for _, arg := range opts.Units {
		name := unitName(arg)
		u, err := api.Unit(ctx, name)
		if err != nil {
			stderrf(f.IO.ErrOut, "Error retrieving unit: %v", err)
			return exit(ExitFailure)
		}
		if u == nil {
			stderrf(f.IO.ErrOut, "Unit %s does not exist.", name)
			return exit(ExitFailure)
		}
		var machines []string
		if format.IsGlobal(u) {
			if machines, err = machinesRunning(ctx, api, name); err != nil {
				stderrf(f.IO.ErrOut, "Error retrieving machine state for global units: %v", err)
				return exit(ExitFailure)
			}
		} else if u.CurrentState == "inactive" {
			stderrf(f.IO.ErrOut, "Unit %s does not appear to be loaded.", u.Name)
			return exit(ExitFailure)
		} else {
			machines = []string{u.MachineID}
		}
		for _, m := range machines {
			// a blank line between units, as systemctl status separates them
			if printed > 0 {
				fmt.Fprintln(f.IO.Out)
			}
			printed++
			if code := runOnMachine(ctx, f, api, m, opts.SSHPort, []string{"systemctl", "status", "-l", u.Name}); code != 0 {
				return exit(code)
			}
		}
	}
	return nil
}
