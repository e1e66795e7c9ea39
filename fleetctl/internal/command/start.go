package command

import (
	"context"

	"github.com/spf13/cobra"
)

// StartOptions are start's inputs.
type StartOptions struct {
	F       *Factory
	Units   []string
	Block   BlockOptions
	Replace bool
}

// NewStartCommand declares `fleetctl start`.
func NewStartCommand(f *Factory, runF func(context.Context, *StartOptions) error) *cobra.Command {
	opts := &StartOptions{F: f}
	cmd := &cobra.Command{
		Use:   "start [--no-block|--block-attempts=N] [--replace] UNIT...",
		Short: "Instruct systemd to start one or more units in the cluster, first submitting and loading if necessary.",
		Long: `Start one or more units on the cluster.

Instructs systemd on the host machine to start the unit, deferring to systemd
completely for any custom start directives (i.e. ExecStartPre, ExecStartPost).

For units which are not global, start operations are performed synchronously:
fleetctl waits until fleet reports the unit launched and systemd reports it
active, within --block-attempts (default: no limit). A unit that no machine
can run, or that systemd reports failed, ends the wait with an error.

Start a single unit:
	fleetctl start foo.service

Start an entire directory of units with glob matching:
	fleetctl start myservice/*`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Units = args
			return run(cmd.Context(), opts, runF, runStart)
		},
	}
	addBlockFlags(cmd, &opts.Block)
	cmd.Flags().BoolVar(&opts.Replace, "replace", false, "Replace the already started units in the cluster with new versions.")
	addSignFlag(cmd)
	return cmd
}

func runStart(ctx context.Context, opts *StartOptions) error {
	f := opts.F
	w, starting, err := targetUnits(ctx, f, opts.Units, opts.Replace, opts.Block, "start", "starting", "launched")
	if w == nil {
		return err
	}
	if err := w.waitActive(ctx, starting); err != nil {
		if interrupted(ctx, err) {
			return err
		}
		stderrf(f.IO.ErrOut, "Error waiting for units: %v", err)
		stderrf(f.IO.ErrOut, "Error waiting for systemd unit states, err: %v", err)
		return exit(ExitFailure)
	}
	return nil
}
