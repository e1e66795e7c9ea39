package command

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/fleetctl/internal/format"
)

// NewListUnitFilesCommand declares `fleetctl list-unit-files`.
func NewListUnitFilesCommand(f *Factory, runF func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{F: f}
	cmd := &cobra.Command{
		Use:   "list-unit-files [--no-legend] [-l|--full] [--fields]",
		Short: "List the units that exist in the cluster.",
		Long: `Lists all unit files that exist in the cluster (whether or not they are loaded onto a machine).

For easily parsable output, you can remove the column headers:
fleetctl list-unit-files --no-legend

Output the list without truncation:
fleetctl list-unit-files --full

Or, choose the columns to display:
fleetctl list-unit-files --fields=unit,desc`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.Context(), opts, runF, runListUnitFiles)
		},
	}
	addListFlags(cmd, opts, format.DefaultUnitFileFields, format.UnitFileFields, true)
	return cmd
}

func runListUnitFiles(ctx context.Context, opts *ListOptions) error {
	f := opts.F
	cols, err := format.ParseFields(opts.Fields, format.UnitFileFields)
	if err != nil {
		return fieldsError(f, err)
	}
	for _, c := range cols {
		if c == "tmachine" {
			stderrf(f.IO.ErrOut, `WARNING: The "tmachine" field is deprecated. Use "target" instead`)
			break
		}
	}
	api, err := apiFor(ctx, f)
	if err != nil {
		return err
	}
	units, err := api.Units(ctx)
	if err != nil {
		stderrf(f.IO.ErrOut, "Error retrieving list of units from repository: %v", err)
		return exit(ExitFailure)
	}
	ms, err := api.Machines(ctx)
	if err != nil {
		stderrf(f.IO.ErrOut, "Error retrieving list of active machines: %v", err)
		return exit(ExitFailure)
	}
	_, err = f.IO.Out.Write(format.UnitFiles(units, format.Machines(ms), cols, opts.format()))
	return err
}
