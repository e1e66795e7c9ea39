package command

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/fleetctl/internal/format"
)

// ListOptions are the inputs of the list-* verbs.
type ListOptions struct {
	F        *Factory
	Fields   string
	Full     bool
	NoLegend bool
}

func (o *ListOptions) format() format.Options {
	return format.Options{Full: o.Full, NoLegend: o.NoLegend, TTY: o.F.IO.OutTTY}
}

// addListFlags declares --no-legend, --fields and (when withL) --full with
// its -l short form and its --l spelling.
func addListFlags(cmd *cobra.Command, o *ListOptions, def string, valid []string, withL bool) {
	cmd.Flags().BoolVar(&o.NoLegend, "no-legend", false, "Do not print a legend (column headers)")
	cmd.Flags().StringVar(&o.Fields, "fields", def, fmt.Sprintf("Columns to print for each row. Valid fields are %q", strings.Join(valid, ",")))
	if withL {
		cmd.Flags().BoolVarP(&o.Full, "full", "l", false, "Do not ellipsize fields on output")
		// fleet 1.0 registered "l" as a long flag: keep "--l" working.
		cmd.Flags().BoolVar(&o.Full, "l", false, "Shorthand for --full")
		_ = cmd.Flags().MarkHidden("l")
	} else {
		cmd.Flags().BoolVar(&o.Full, "full", false, "Do not ellipsize fields on output")
	}
}

// NewListUnitsCommand declares `fleetctl list-units`.
func NewListUnitsCommand(f *Factory, runF func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{F: f}
	cmd := &cobra.Command{
		Use:   "list-units [--no-legend] [-l|--full] [--fields]",
		Short: "List the current state of units in the cluster",
		Long: `Lists the state of all units in the cluster loaded onto a machine.

For easily parsable output, you can remove the column headers:
fleetctl list-units --no-legend

Output the list without ellipses:
fleetctl list-units --full

Or, choose the columns to display:
fleetctl list-units --fields=unit,machine`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.Context(), opts, runF, runListUnits)
		},
	}
	addListFlags(cmd, opts, format.DefaultUnitFields, format.UnitStateFields, true)
	return cmd
}

// fieldsError prints a --fields problem.
func fieldsError(f *Factory, err error) error {
	stderrf(f.IO.ErrOut, "%v", err)
	return exit(ExitFailure)
}

func runListUnits(ctx context.Context, opts *ListOptions) error {
	f := opts.F
	cols, err := format.ParseFields(opts.Fields, format.UnitStateFields)
	if err != nil {
		return fieldsError(f, err)
	}
	api, err := apiFor(ctx, f)
	if err != nil {
		return err
	}
	states, err := api.UnitStates(ctx)
	if err != nil {
		stderrf(f.IO.ErrOut, "Error retrieving list of units from repository: %v", err)
		return exit(ExitFailure)
	}
	ms, err := api.Machines(ctx)
	if err != nil {
		stderrf(f.IO.ErrOut, "Error retrieving list of active machines: %v", err)
		return exit(ExitFailure)
	}
	_, err = f.IO.Out.Write(format.UnitStates(states, format.Machines(ms), cols, opts.format()))
	return err
}
