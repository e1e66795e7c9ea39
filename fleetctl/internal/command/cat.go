package command

import (
	"context"
	"io"

	"github.com/spf13/cobra"
)

// CatOptions are cat's inputs.
type CatOptions struct {
	F     *Factory
	Units []string
}

// NewCatCommand declares `fleetctl cat`.
func NewCatCommand(f *Factory, runF func(context.Context, *CatOptions) error) *cobra.Command {
	opts := &CatOptions{F: f}
	return &cobra.Command{
		Use:   "cat UNIT",
		Short: "Output the contents of a submitted unit",
		Long: `Outputs the unit file that is currently loaded in the cluster, in fleet's
canonical form (comments and spacing of the original file are not kept).

	fleetctl cat foo.service`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Units = args
			return run(cmd.Context(), opts, runF, runCat)
		},
	}
}

func runCat(ctx context.Context, opts *CatOptions) error {
	f := opts.F
	if len(opts.Units) != 1 {
		stderrf(f.IO.ErrOut, "One unit file must be provided")
		return exit(ExitFailure)
	}
	api, err := apiFor(ctx, f)
	if err != nil {
		return err
	}
	name := unitName(opts.Units[0])
	u, err := api.Unit(ctx, name)
	if err != nil {
		stderrf(f.IO.ErrOut, "Error retrieving Unit %s: %v", name, err)
		return exit(ExitFailure)
	}
	if u == nil {
		stderrf(f.IO.ErrOut, "Unit %s not found", name)
		return exit(ExitFailure)
	}
	io.WriteString(f.IO.Out, u.File().String()) //nolint:errcheck
	return nil
}
