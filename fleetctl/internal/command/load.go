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
	_, _, err := targetUnits(ctx, opts.F, opts.Units, opts.Replace, opts.Block, "load", "loading", "loaded")
	return err
}

// targetUnits is the common body of load and start: it submits the units
// that are not yet in the cluster, sets every unit's target state, reports
// the global ones as triggered and waits until the others reach state. It
// returns the waiter and the waited-for names for start's further wait, or
// a nil waiter when the verb is done (nothing given, or an error to exit
// with).
func targetUnits(ctx context.Context, f *Factory, names []string, replace bool, block BlockOptions, verb, verbing, state string) (*waiter, []string, error) {
	if len(names) == 0 {
		stderrf(f.IO.ErrOut, "No units given")
		return nil, nil, nil
	}
	api, err := apiFor(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	c := &creator{f: f, api: api, verb: verb, replace: replace, block: block}
	if err := c.ensure(ctx, names); err != nil {
		if interrupted(ctx, err) {
			return nil, nil, err
		}
		stderrf(f.IO.ErrOut, "Error creating units: %v", err)
		return nil, nil, exit(ExitFailure)
	}
	triggered, err := setTargetState(ctx, api, mangleAll(names), state)
	if err != nil {
		stderrf(f.IO.ErrOut, "Error %s units: %v", verbing, err)
		return nil, nil, exit(ExitFailure)
	}
	var waiting []string
	for _, u := range triggered {
		if format.IsGlobal(u) {
			fmt.Fprintf(f.IO.Out, "Triggered global unit %s %s\n", u.Name, verb)
		} else {
			waiting = append(waiting, u.Name)
		}
	}
	w := newWaiter(f, api, block)
	if err := w.waitUnits(ctx, waiting, verb, state); err != nil {
		return nil, nil, waitFailed(ctx, f, err)
	}
	return w, waiting, nil
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
