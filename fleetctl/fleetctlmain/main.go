// Package fleetctlmain is fleetctl's entry point: it builds the Factory and
// the root command (global flags and their FLEETCTL_* environment forms),
// runs the command, and is the only place that turns errors into exit codes
// (exitCode).
package fleetctlmain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/corekit/corekit/fleetctl/internal/command"
	"github.com/corekit/corekit/fleetctl/internal/sshx"
	"github.com/corekit/corekit/internal/fleetapi"
	"github.com/corekit/corekit/internal/fleetregistry"
)

// Main runs fleetctl with the process's arguments and streams and returns
// the exit code. Ctrl-C (SIGINT) or SIGTERM cancels waits and remote
// commands.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}

// Run executes one fleetctl invocation (args without the program name)
// with the process environment and returns its exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return RunFactory(ctx, NewFactory(stdin, stdout, stderr, os.Getenv), args)
}

// NewFactory returns the production Factory over the given streams.
func NewFactory(stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) *command.Factory {
	streams := &command.IOStreams{In: stdin, Out: stdout, ErrOut: stderr}
	if fi, ok := stdin.(*os.File); ok {
		streams.InFile = fi
	}
	if fo, ok := stdout.(*os.File); ok {
		streams.OutTTY = sshx.IsTerminal(int(fo.Fd()))
	}
	return &command.Factory{
		IO:             streams,
		Global:         &command.GlobalOptions{},
		Getenv:         getenv,
		Now:            time.Now,
		Poll:           250 * time.Millisecond,
		Attempt:        2 * time.Second,
		LocalMachineID: localMachineID,
		Exec:           execLocal,
		Log:            slog.New(slog.DiscardHandler),
	}
}

// RunFactory runs one invocation over f (tests replace its clock, polling
// and local-machine hooks).
func RunFactory(ctx context.Context, f *command.Factory, args []string) int {
	defer f.Close()
	root := NewRootCommand(f)
	root.SetArgs(args)
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)
	err := root.ExecuteContext(ctx)
	return exitCode(f, err)
}

// globalFlags declares the global flags on fs.
func globalFlags(fs *pflag.FlagSet, g *command.GlobalOptions) {
	fs.StringVar(&g.Endpoint, "endpoint", fleetapi.DefaultEndpoint, "Location of the fleet API if --driver=API. Alternatively, if --driver=etcd, location of the etcd API.")
	fs.StringVar(&g.Driver, "driver", command.DriverAPI, "Adapter used to execute fleetctl commands. Options include \"API\" and \"etcd\" (any case).")
	fs.StringVar(&g.EtcdKeyPrefix, "etcd-key-prefix", fleetregistry.DefaultPrefix, "Keyspace for fleet data in etcd (development use only!)")
	fs.StringVar(&g.Tunnel, "tunnel", "", "Establish an SSH tunnel through the provided address for communication with fleet and etcd.")
	fs.StringVar(&g.SSHUserName, "ssh-username", "core", "Username to use when connecting to CoreOS instance.")
	fs.Float64Var(&g.SSHTimeout, "ssh-timeout", 10.0, "Amount of time in seconds to allow for SSH connection initialization before failing.")
	fs.Float64Var(&g.RequestTimeout, "request-timeout", 3.0, "Amount of time in seconds to allow a single request before considering it failed.")
	fs.BoolVar(&g.StrictHostKeyChecking, "strict-host-key-checking", true, "Verify host keys presented by remote machines before initiating SSH connections.")
	fs.StringVar(&g.KnownHostsFile, "known-hosts-file", sshx.DefaultKnownHostsPath, "File used to store remote machine fingerprints. Ignored if strict host key checking is disabled.")
	fs.StringVar(&g.CAFile, "ca-file", "", "Path to CA bundle used to verify TLS configurations.")
	fs.StringVar(&g.CertFile, "cert-file", "", "Path to TLS client certificate file.")
	fs.StringVar(&g.KeyFile, "key-file", "", "Path to TLS client key file.")
	fs.StringVar(&g.CAFile, "etcd-cafile", "", "DEPRECATED: use --ca-file instead.")
	fs.StringVar(&g.CertFile, "etcd-certfile", "", "DEPRECATED: use --cert-file instead.")
	fs.StringVar(&g.KeyFile, "etcd-keyfile", "", "DEPRECATED: use --key-file instead.")
	for _, n := range []string{"etcd-cafile", "etcd-certfile", "etcd-keyfile"} {
		_ = fs.MarkHidden(n)
	}
	fs.BoolVar(&g.Debug, "debug", false, "Print out more debug information to stderr.")
	fs.BoolVar(&g.ExperimentalAPI, "experimental-api", true, "DEPRECATED: do not use this flag.")
	_ = fs.MarkHidden("experimental-api")
}

// NewRootCommand builds the fleetctl command tree over f.
func NewRootCommand(f *command.Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "fleetctl",
		Short: "fleetctl is a command-line interface to fleet, the cluster-wide CoreOS init system.",
		Long: `fleetctl is a command-line interface to fleet, the cluster-wide CoreOS init system.

Every global flag can also be set through the environment as FLEETCTL_<FLAG>
(upper case, '-' as '_'), e.g. FLEETCTL_ENDPOINT or FLEETCTL_TUNNEL; the
command line wins.`,
		Version:       command.Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE:          command.GroupRunE,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := applyEnv(cmd.Root().PersistentFlags(), f.Getenv); err != nil {
				return &command.FlagError{Err: err}
			}
			if f.Global.Debug {
				f.Log = slog.New(slog.NewTextHandler(f.IO.ErrOut, &slog.HandlerOptions{Level: slog.LevelDebug}))
			}
			return nil
		},
	}
	root.SetVersionTemplate("fleetctl version {{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &command.FlagError{Err: err}
	})
	globalFlags(root.PersistentFlags(), f.Global)
	root.AddCommand(
		command.NewCatCommand(f, nil),
		command.NewDestroyCommand(f, nil),
		command.NewFDForwardCommand(f),
		command.NewJournalCommand(f, nil),
		command.NewListMachinesCommand(f, nil),
		command.NewListUnitFilesCommand(f, nil),
		command.NewListUnitsCommand(f, nil),
		command.NewLoadCommand(f, nil),
		command.NewRestartCommand(f, nil),
		command.NewSSHCommand(f, nil),
		command.NewStartCommand(f, nil),
		command.NewStatusCommand(f, nil),
		command.NewStopCommand(f, nil),
		command.NewSubmitCommand(f, nil),
		command.NewUnloadCommand(f, nil),
		command.NewVerifyCommand(f),
		command.NewVersionCommand(f),
	)
	return root
}

// EnvName is the environment variable of a global flag:
// FLEETCTL_<NAME> with '-' as '_'.
func EnvName(flag string) string {
	return "FLEETCTL_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv gives every global flag not set on the command line its
// FLEETCTL_* value.
func applyEnv(fs *pflag.FlagSet, getenv func(string) string) error {
	var err error
	fs.VisitAll(func(fl *pflag.Flag) {
		if err != nil || fl.Changed {
			return
		}
		v := getenv(EnvName(fl.Name))
		if v == "" {
			return
		}
		if e := fl.Value.Set(v); e != nil {
			err = fmt.Errorf("invalid value %q for %s: %w", v, EnvName(fl.Name), e)
		}
	})
	return err
}

// exitCode is the one place where errors become exit codes: 0 success,
// 1 failure (the verb printed why), 1 for usage errors (fleet 1.0 exited 0),
// 2 for verify, the remote or local command's status for status, journal
// and ssh, 130 after Ctrl-C.
func exitCode(f *command.Factory, err error) int {
	if err == nil {
		return command.ExitSuccess
	}
	var (
		fe *command.FlagError
		ee *command.ExitError
	)
	switch {
	case errors.As(err, &ee):
		return ee.Code
	case errors.As(err, &fe):
		fmt.Fprintf(f.IO.ErrOut, "cannot execute cmdFleet: %v\n", fe.Err)
		fmt.Fprintln(f.IO.ErrOut, "Run 'fleetctl help' for usage.")
		return command.ExitFailure
	case errors.Is(err, context.Canceled):
		return 130
	default:
		// cobra's own errors (e.g. arguments of a verb that takes none)
		// arrive unwrapped.
		fmt.Fprintf(f.IO.ErrOut, "cannot execute cmdFleet: %v\n", err)
		fmt.Fprintln(f.IO.ErrOut, "Run 'fleetctl help' for usage.")
		return command.ExitFailure
	}
}

// localMachineID reads /etc/machine-id ("" when absent).
func localMachineID() string {
	b, err := os.ReadFile("/etc/machine-id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// execLocal runs argv on this host and returns its exit status.
func execLocal(ctx context.Context, argv []string, in io.Reader, out, errOut io.Writer) (int, error) {
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	c.Stdin, c.Stdout, c.Stderr = in, out, errOut
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}
