package command

import (
	"context"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/fleetctl/internal/format"
)

// JournalOptions are journal's inputs.
type JournalOptions struct {
	F       *Factory
	Units   []string
	Lines   int
	Follow  bool
	SSHPort int
	Sudo    bool
	Output  string
}

// NewJournalCommand declares `fleetctl journal`.
func NewJournalCommand(f *Factory, runF func(context.Context, *JournalOptions) error) *cobra.Command {
	opts := &JournalOptions{F: f}
	cmd := &cobra.Command{
		Use:   "journal [--lines=N] [--ssh-port=N] [-f|--follow] [--output=STRING] UNIT",
		Short: "Print the journal of a unit in the cluster to stdout",
		Long: `Outputs the journal of a unit by connecting to the machine that the unit occupies.

Read the last 10 lines:
	fleetctl journal foo.service

Read the last 100 lines:
	fleetctl journal --lines 100 foo.service

This command does not work with global units.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Units = args
			return run(cmd.Context(), opts, runF, runJournal)
		},
	}
	fl := cmd.Flags()
	fl.IntVarP(&opts.Lines, "lines", "n", 10, "Number of recent log lines to return.")
	fl.BoolVarP(&opts.Follow, "follow", "f", false, "Continuously print new entries as they are appended to the journal.")
	fl.BoolVar(&opts.Follow, "f", false, "Shorthand for --follow")
	_ = fl.MarkHidden("f")
	fl.IntVar(&opts.SSHPort, "ssh-port", 22, "Connect to remote hosts over SSH using this TCP port.")
	fl.BoolVar(&opts.Sudo, "sudo", false, "Execute journal command with sudo")
	fl.StringVar(&opts.Output, "output", "short", "Output mode. This will be passed unaltered to journalctl on the remote host, and hence supports the same modes as that command.")
	return cmd
}

func runJournal(ctx context.Context, opts *JournalOptions) error {
	f := opts.F
	if len(opts.Units) != 1 {
		stderrf(f.IO.ErrOut, "One unit file must be provided.")
		return exit(ExitFailure)
	}
	name := unitName(opts.Units[0])
	api, err := apiFor(ctx, f)
	if err != nil {
		return err
	}
	u, err := api.Unit(ctx, name)
	switch {
	case err != nil:
		stderrf(f.IO.ErrOut, "Error retrieving unit %s: %v", name, err)
		return exit(ExitFailure)
	case u == nil:
		stderrf(f.IO.ErrOut, "Unit %s does not exist.", name)
		return exit(ExitFailure)
	case format.IsGlobal(u):
		stderrf(f.IO.ErrOut, "Unable to retrieve journal of global unit %s.", name)
		return exit(ExitFailure)
	case u.CurrentState == "inactive":
		stderrf(f.IO.ErrOut, "Unit %s does not appear to be running.", name)
		return exit(ExitFailure)
	}
	argv := journalCommand(name, opts)
	return exit(runOnMachine(ctx, f, api, u.MachineID, opts.SSHPort, argv))
}

// journalCommand is the journalctl command line fleetctl runs.
func journalCommand(name string, opts *JournalOptions) []string {
	argv := []string{"journalctl", "--unit", name, "--no-pager", "-n", strconv.Itoa(opts.Lines), "--output", opts.Output}
	if opts.Sudo {
		argv = append([]string{"sudo"}, argv...)
	}
	if opts.Follow {
		argv = append(argv, "-f")
	}
	return argv
}
