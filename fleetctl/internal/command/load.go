package command

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/fleetctl/internal/format"
)

// LoadOptions are load's inputs.
type LoadOptions struct {
	F       *Factory
	Units   []string
	Block   BlockOptions
	Replace bool
}

// NewLoadCommand declares `fleetctl load`.
func NewLoadCommand(f *Factory, runF func(context.Context, *LoadOptions) error) *cobra.Command {
	opts := &LoadOptions{F: f}
	cmd := &cobra.Command{
		Use:   "load [--no-block|--block-attempts=N] [--replace] UNIT...",
		Short: "Schedule one or more units in the cluster, first submitting them if necessary.",
		Long: `Load one or more units in the cluster into systemd, but do not start.

Select units to load by glob matching for units in the current working directory
or matching the names of previously submitted units.

For units which are not global, load operations are performed synchronously,
which means fleetctl will block until it detects that the unit(s) have
transitioned to a loaded state. This behaviour can be configured with the
respective --block-attempts and --no-block options. Load operations on global
units are always non-blocking.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Units = args
			return run(cmd.Context(), opts, runF, runLoad)
		},
	}
	addBlockFlags(cmd, &opts.Block)
	cmd.Flags().BoolVar(&opts.Replace, "replace", false, "Replace the old scheduled units in the cluster with new versions.")
	addSignFlag(cmd)
	return cmd
}

func runLoad(ctx context.Context, opts *LoadOptions) error {
	f := opts.F
	if len(opts.Units) == 0 {
		stderrf(f.IO.ErrOut, "No units given")
		return nil
	}
	api, err := apiFor(ctx, f)
	if err != nil {
		return err
	}
	c := &creator{f: f, api: api, verb: "load", replace: opts.Replace, block: opts.Block}
	if err := c.ensure(ctx, opts.Units); err != nil {
		if interrupted(ctx, err) {
			return err
		}
		stderrf(f.IO.ErrOut, "Error creating units: %v", err)
		return exit(ExitFailure)
	}
	triggered, err := setTargetState(ctx, api, mangleAll(opts.Units), "loaded")
	if err != nil {
		stderrf(f.IO.ErrOut, "Error loading units: %v", err)
		return exit(ExitFailure)
	}
	var loading []string
	for _, u := range triggered {
		if format.IsGlobal(u) {
			fmt.Fprintf(f.IO.Out, "Triggered global unit %s load\n", u.Name)
		} else {
			loading = append(loading, u.Name)
		}
	}
	if err := newWaiter(f, api, opts.Block).waitUnits(ctx, loading, "load", "loaded"); err != nil {
		return waitFailed(ctx, f, err)
	}
	return nil
}

// waitFailed prints fleetctl's two lines for a failed wait.
func waitFailed(ctx context.Context, f *Factory, err error) error {
	if interrupted(ctx, err) {
		return err
	}
	stderrf(f.IO.ErrOut, "Error waiting for units: %v", err)
	stderrf(f.IO.ErrOut, "Error waiting for unit states, exit status: %v", err)
	return exit(ExitFailure)
}

func mangleAll(args []string) []string {
	out := make([]string, 0, len(args))
	for _, a := range args {
		out = append(out, unitName(a))
	}
	return out
}
