package command

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/fleetctl/internal/client"
	"github.com/corekit/corekit/fleetctl/internal/format"
	"github.com/corekit/corekit/fleetctl/internal/sshx"
)

// SSHOptions are ssh's inputs.
type SSHOptions struct {
	F            *Factory
	Args         []string
	Machine      string
	Unit         string
	ForwardAgent bool
	SSHPort      int
}

// NewSSHCommand declares `fleetctl ssh`.
func NewSSHCommand(f *Factory, runF func(context.Context, *SSHOptions) error) *cobra.Command {
	opts := &SSHOptions{F: f}
	cmd := &cobra.Command{
		Use:   "ssh [-A|--forward-agent] [--ssh-port=N] [--machine|--unit] {MACHINE|UNIT} [--] [COMMAND...]",
		Short: "Open interactive shell on a machine in the cluster",
		Long: `Open an interactive shell on a specific machine in the cluster or on the machine
where the specified unit is located.

fleetctl tries to detect whether your first argument is a machine ID prefix
or a unit name. To be explicit, use --machine or --unit.

Open a shell on a machine:
	fleetctl ssh 2444264c-eac2-4eff-a490-32d5e5e4af24

Open a shell from your laptop, to the machine running a specific unit, using a
cluster member as a bastion host:
	fleetctl --tunnel 10.10.10.10 ssh foo.service

Open a shell on a machine and forward the authentication agent connection:
	fleetctl ssh -A 2444264c-eac2-4eff-a490-32d5e5e4af24

Tip: Create an alias for --tunnel.
	- Add "alias fleetctl=fleetctl --tunnel 10.10.10.10" to your bash profile.
	- Now you can run all fleet commands locally.

This command does not work with global units.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Args = args
			return run(cmd.Context(), opts, runF, runSSH)
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.StringVarP(&opts.Machine, "machine", "m", "", "Open SSH connection to a specific machine.")
	fl.StringVarP(&opts.Unit, "unit", "u", "", "Open SSH connection to machine running provided unit.")
	fl.BoolVarP(&opts.ForwardAgent, "forward-agent", "A", false, "Forward local ssh-agent to target machine.")
	fl.BoolVar(&opts.ForwardAgent, "A", false, "Shorthand for --forward-agent")
	_ = fl.MarkHidden("A")
	fl.IntVar(&opts.SSHPort, "ssh-port", 22, "Connect to remote hosts over SSH using this TCP port.")
	return cmd
}

func runSSH(ctx context.Context, opts *SSHOptions) error {
	f := opts.F
	if opts.Unit != "" && opts.Machine != "" {
		stderrf(f.IO.ErrOut, "Both machine and unit flags provided, please specify only one.")
		return exit(ExitFailure)
	}
	api, err := apiFor(ctx, f)
	if err != nil {
		return err
	}
	args := opts.Args
	var addr string
	switch {
	case opts.Machine != "":
		addr, _, err = addressOfMachine(ctx, api, opts.Machine)
	case opts.Unit != "":
		addr, _, err = addressOfUnit(ctx, api, opts.Unit)
	default:
		addr, err = lookupMachineOrUnit(ctx, api, args)
		if len(args) > 0 {
			args = args[1:]
		}
	}
	if err != nil {
		stderrf(f.IO.ErrOut, "Unable to proceed: %v", err)
		return exit(ExitFailure)
	}
	if addr == "" {
		stderrf(f.IO.ErrOut, "Could not determine address of machine.")
		return exit(ExitFailure)
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	c, err := f.SSH(ctx, withSSHPort(addr, opts.SSHPort))
	if err != nil {
		stderrf(f.IO.ErrOut, "Failed building SSH client: %v", err)
		return exit(ExitFailure)
	}
	defer c.Close()
	if opts.ForwardAgent {
		if err := c.ForwardAgent(); err != nil {
			stderrf(f.IO.ErrOut, "Failed building SSH client: %v", err)
			return exit(ExitFailure)
		}
	}
	stdio := sshx.Stdio{In: f.IO.In, Out: f.IO.Out, Err: f.IO.ErrOut}
	if len(args) > 0 {
		code, err := c.Run(ctx, strings.Join(args, " "), stdio, opts.ForwardAgent)
		if err != nil {
			stderrf(f.IO.ErrOut, "Failed running command over SSH: %v", err)
			if code <= 0 {
				code = ExitSSHFailure
			}
		}
		return exit(code)
	}
	code, err := c.Shell(ctx, f.IO.InFile, stdio, opts.ForwardAgent)
	if err != nil {
		stderrf(f.IO.ErrOut, "Failed opening shell over SSH: %v", err)
		return exit(ExitFailure)
	}
	return exit(code)
}

// lookupMachineOrUnit tries the argument as a machine-ID prefix and as a
// unit name.
func lookupMachineOrUnit(ctx context.Context, api client.API, args []string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("one machine or unit must be provided")
	}
	lookup := args[0]
	maddr, mok, _ := addressOfMachine(ctx, api, lookup)
	uaddr, uok, _ := addressOfUnit(ctx, api, lookup)
	switch {
	case mok && uok:
		return "", fmt.Errorf("ambiguous argument, both machine and unit found for `%s`.\nPlease use flag `-m` or `-u` to refine the search", lookup)
	case mok:
		return maddr, nil
	case uok:
		return uaddr, nil
	}
	return "", errors.New("could not find matching unit or machine")
}

// addressOfMachine finds the one machine whose ID starts with prefix.
func addressOfMachine(ctx context.Context, api client.API, prefix string) (string, bool, error) {
	ms, err := api.Machines(ctx)
	if err != nil {
		return "", false, err
	}
	found := ""
	ok := false
	for _, m := range ms {
		if !strings.HasPrefix(m.ID, prefix) {
			continue
		}
		if ok {
			return "", false, errors.New("found more than one machine")
		}
		found, ok = m.PrimaryIP, true
	}
	if !ok {
		return "", false, errors.New("machine does not exist")
	}
	return found, true, nil
}

// addressOfUnit finds the IP of the machine a non-global unit is scheduled to.
func addressOfUnit(ctx context.Context, api client.API, arg string) (string, bool, error) {
	name := unitName(arg)
	u, err := api.Unit(ctx, name)
	if err != nil {
		return "", false, err
	}
	if u == nil {
		return "", false, errors.New("unit does not exist")
	}
	if format.IsGlobal(u) {
		return "", false, errors.New("global units unsupported")
	}
	ms, err := api.Machines(ctx)
	if err != nil {
		return "", false, err
	}
	for _, m := range ms {
		if m.ID == u.MachineID && u.MachineID != "" && m.PrimaryIP != "" {
			return m.PrimaryIP, true, nil
		}
	}
	return "", false, nil
}
