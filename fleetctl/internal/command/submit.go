package command

import (
	"context"

	"github.com/spf13/cobra"
)

// SubmitOptions are submit's inputs.
type SubmitOptions struct {
	F       *Factory
	Units   []string
	Replace bool
}

// NewSubmitCommand declares `fleetctl submit`.
func NewSubmitCommand(f *Factory, runF func(context.Context, *SubmitOptions) error) *cobra.Command {
	opts := &SubmitOptions{F: f}
	cmd := &cobra.Command{
		Use:   "submit [--replace] UNIT...",
		Short: "Upload one or more units to the cluster without starting them",
		Long: `Upload one or more units to the cluster without starting them. Useful
for validating units before they are started.

This operation is idempotent; if a named unit already exists in the cluster, it will not be resubmitted.
Use --replace to replace a unit whose local file differs.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Units = args
			return run(cmd.Context(), opts, runF, runSubmit)
		},
	}
	cmd.Flags().BoolVar(&opts.Replace, "replace", false, "Replace the old scheduled units in the cluster with new versions.")
	addSignFlag(cmd)
	return cmd
}

func runSubmit(ctx context.Context, opts *SubmitOptions) error {
	f := opts.F
	if len(opts.Units) == 0 {
		stderrf(f.IO.ErrOut, "No units given")
		return nil
	}
	api, err := apiFor(ctx, f)
	if err != nil {
		return err
	}
	c := &creator{f: f, api: api, verb: "submit", replace: opts.Replace}
	if err := c.ensure(ctx, opts.Units); err != nil {
		if interrupted(ctx, err) {
			return err
		}
		stderrf(f.IO.ErrOut, "Error creating units: %v", err)
		return exit(ExitFailure)
	}
	return nil
}
