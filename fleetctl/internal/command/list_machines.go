package command

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/fleetctl/internal/format"
)

// NewListMachinesCommand declares `fleetctl list-machines`.
func NewListMachinesCommand(f *Factory, runF func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{F: f}
	cmd := &cobra.Command{
		Use:   "list-machines [-l|--full] [--no-legend] [--fields]",
		Short: "Enumerate the current hosts in the cluster",
		Long: `Lists all active machines within the cluster. Previously active machines will
not appear in this list.

For easily parsable output, you can remove the column headers:
fleetctl list-machines --no-legend

Output the list without ellipses:
fleetctl list-machines --full

Or, choose the columns to display:
fleetctl list-machines --fields=machine,ip`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.Context(), opts, runF, runListMachines)
		},
	}
	addListFlags(cmd, opts, format.DefaultMachineFields, format.MachineFields, true)
	return cmd
}

func runListMachines(ctx context.Context, opts *ListOptions) error {
	f := opts.F
	cols, err := format.ParseFields(opts.Fields, format.MachineFields)
	if err != nil {
		return fieldsError(f, err)
	}
	api, err := apiFor(ctx, f)
	if err != nil {
		return err
	}
	ms, err := api.Machines(ctx)
	if err != nil {
		stderrf(f.IO.ErrOut, "Error retrieving list of active machines from fleet API (%v)", err)
		stderrf(f.IO.ErrOut, "Possible issues:")
		stderrf(f.IO.ErrOut, "  etcd is unhealthy and/or lost quorum")
		stderrf(f.IO.ErrOut, "  connection cannot be established to any etcd servers")
		return exit(ExitFailure)
	}
	_, err = f.IO.Out.Write(format.MachineList(ms, cols, opts.format()))
	return err
}
