package command

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/fleetctl/internal/client"
	"github.com/corekit/corekit/fleetctl/internal/format"
)

// RestartOptions are restart's inputs.
type RestartOptions struct {
	F       *Factory
	Units   []string
	Block   BlockOptions
	SSHPort int
}

// NewRestartCommand declares `fleetctl restart`.
func NewRestartCommand(f *Factory, runF func(context.Context, *RestartOptions) error) *cobra.Command {
	opts := &RestartOptions{F: f}
	cmd := &cobra.Command{
		Use:   "restart [--block-attempts=N] UNIT...",
		Short: "Instruct systemd to rolling restart one or more units in the cluster.",
		Long: `Restart one or more units in the cluster, one after another.

A launched unit is stopped (fleetctl waits for it to report loaded) and
started again (waits for launched); a loaded unit is started; an inactive
unit is reported and skipped. A global unit is restarted with
"systemctl restart" on every machine that runs it.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Units = args
			return run(cmd.Context(), opts, runF, runRestart)
		},
	}
	addBlockFlags(cmd, &opts.Block)
	cmd.Flags().IntVar(&opts.SSHPort, "ssh-port", 22, "Connect to remote hosts over SSH using this TCP port.")
	return cmd
}

func runRestart(ctx context.Context, opts *RestartOptions) error {
	f := opts.F
	if len(opts.Units) == 0 {
		stderrf(f.IO.ErrOut, "No units given")
		return nil
	}
	api, err := apiFor(ctx, f)
	if err != nil {
		return err
	}
	units, err := findUnits(ctx, api, opts.Units)
	if err != nil {
		stderrf(f.IO.ErrOut, "%v", err)
		return exit(ExitFailure)
	}
	w := newWaiter(f, api, opts.Block)
	step := func(name, state string) error {
		if err := api.SetUnitTargetState(ctx, name, state); err != nil {
			stderrf(f.IO.ErrOut, "Error setting target state for unit %s: %v", name, err)
			return exit(ExitFailure)
		}
		if err := w.waitUnits(ctx, []string{name}, "restart", state); err != nil {
			return waitFailed(ctx, f, err)
		}
		return nil
	}
	code := ExitSuccess
	for _, u := range units {
		if format.IsGlobal(u) {
			if c := restartGlobal(ctx, f, api, u.Name, opts.SSHPort); c != 0 {
				stderrf(f.IO.ErrOut, "Error restarting global unit %s", u.Name)
				code = ExitFailure
			}
			continue
		}
		switch u.CurrentState {
		case "inactive":
			stderrf(f.IO.ErrOut, "Unable to restart unit %s in state inactive", u.Name)
			continue
		case "loaded":
			if err := step(u.Name, "launched"); err != nil {
				return err
			}
			continue
		}
		if err := step(u.Name, "loaded"); err != nil {
			return err
		}
		if err := step(u.Name, "launched"); err != nil {
			return err
		}
		f.infof("Unit(%s) was restarted.", u.Name)
	}
	return exit(code)
}

// restartGlobal runs systemctl restart on every machine running the unit.
func restartGlobal(ctx context.Context, f *Factory, api client.API, name string, port int) int {
	machines, err := machinesRunning(ctx, api, name)
	if err != nil {
		stderrf(f.IO.ErrOut, "Error retrieving machine state for global units: %v", err)
		return ExitFailure
	}
	for _, m := range machines {
		if c := runOnMachine(ctx, f, api, m, port, []string{"systemctl", "restart", name}); c != 0 {
			return c
		}
	}
	return 0
}
