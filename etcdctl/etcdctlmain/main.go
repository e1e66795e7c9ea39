// Package etcdctlmain is etcdctl's entry point: it builds the root command
// from a Factory, normalises etcdctl v2's single-dash long flags, runs the
// command, and is the only place that turns errors into stderr text and exit
// codes (exitCode).
package etcdctlmain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/corekit/corekit/etcdctl/internal/command"
	"github.com/corekit/corekit/etcdctl/internal/format"
)

// Version is what --version reports: the etcdctl v2 release we imitate.
const Version = "2.3.8"

// Main runs etcdctl with the process's arguments and streams and returns
// the exit code. Ctrl-C (SIGINT) or SIGTERM ends watches normally.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}

// Run executes one etcdctl invocation (args without the program name) and
// returns its exit code. The environment is read from the process.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	f := command.NewFactory(&command.IOStreams{In: stdin, Out: stdout, ErrOut: stderr}, os.Getenv, os.Environ)
	root := NewRootCommand(f)
	root.SetArgs(normalizeArgs(root, args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	return exitCode(f, err)
}

// NewRootCommand builds the etcdctl command tree over f.
func NewRootCommand(f *command.Factory) *cobra.Command {
	g := f.Global
	root := &cobra.Command{
		Use:           "etcdctl",
		Short:         "A simple command line client for etcd.",
		Version:       Version,
		SilenceErrors: true,
		SilenceUsage:  true,
		// global option checks that need no network
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if !format.Valid(g.Output) {
				return &command.FlagError{Err: fmt.Errorf("unsupported output format: %s", g.Output), CommandPath: "etcdctl"}
			}
			return nil
		},
	}
	root.Args = cobra.ArbitraryArgs
	root.RunE = command.GroupRunE
	root.SetVersionTemplate("etcdctl version {{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &command.FlagError{Err: err, CommandPath: cmd.CommandPath()}
	})
	pf := root.PersistentFlags()
	pf.BoolVar(&g.Debug, "debug", false, "output cURL commands which can be used to reproduce the request")
	pf.BoolVar(&g.NoSync, "no-sync", false, "don't synchronize cluster information before sending request")
	pf.StringVarP(&g.Output, "output", "o", format.Simple, "output response in the given format (`simple`, `extended` or `json`)")
	pf.StringVarP(&g.Peers, "peers", "C", "", "DEPRECATED - \"--endpoints\" should be used instead")
	pf.StringVar(&g.Endpoint, "endpoint", "", "DEPRECATED - \"--endpoints\" should be used instead")
	pf.StringVar(&g.Endpoints, "endpoints", "", "a comma-delimited list of machine addresses in the cluster (default: \""+command.DefaultEndpoints+"\")")
	pf.StringVar(&g.CertFile, "cert-file", "", "identify HTTPS client using this SSL certificate file")
	pf.StringVar(&g.KeyFile, "key-file", "", "identify HTTPS client using this SSL key file")
	pf.StringVar(&g.CAFile, "ca-file", "", "verify certificates of HTTPS-enabled servers using this CA bundle")
	pf.StringVarP(&g.Username, "username", "u", "", "provide username[:password] and prompt if password is not supplied.")
	pf.DurationVar(&g.Timeout, "timeout", time.Second, "connection timeout per request")
	pf.DurationVar(&g.TotalTimeout, "total-timeout", 5*time.Second, "timeout for the command execution (except watch)")

	root.AddCommand(
		command.NewClusterHealthCommand(f, nil),
		command.NewMkCommand(f, nil),
		command.NewMkdirCommand(f, nil),
		command.NewRmCommand(f, nil),
		command.NewRmdirCommand(f, nil),
		command.NewGetCommand(f, nil),
		command.NewLsCommand(f, nil),
		command.NewSetCommand(f, nil),
		command.NewSetdirCommand(f, nil),
		command.NewUpdateCommand(f, nil),
		command.NewUpdatedirCommand(f, nil),
		command.NewWatchCommand(f, nil),
		command.NewExecWatchCommand(f, nil),
		command.NewMemberCommand(f, nil),
	)
	return root
}

// normalizeArgs rewrites etcdctl v2's single-dash long flags ("-ttl 5",
// "-sort", "-after-index=3"), which its flag library accepted, into the
// double-dash form, for names that are long flags somewhere in the tree.
// Arguments after "--" are left alone.
func normalizeArgs(root *cobra.Command, args []string) []string {
	long := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		add := func(fl *pflag.Flag) {
			if len(fl.Name) > 1 {
				long[fl.Name] = true
			}
		}
		c.Flags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if long[name] {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}

// exitCode is the one place where errors become stderr text and etcdctl v2's
// exit codes (0 ok, 1 bad args, 2 bad connection, 4 server error, 5 cluster
// unhealthy).
func exitCode(f *command.Factory, err error) int {
	errOut := f.IO.ErrOut
	if err == nil {
		return command.ExitSuccess
	}
	var (
		fe *command.FlagError
		ce *command.CodedError
		ee *command.ExitError
	)
	switch {
	case errors.As(err, &fe):
		fmt.Fprintf(errOut, "Error:  %s\n", fe.Err)
		path := fe.CommandPath
		if path == "" {
			path = "etcdctl"
		}
		fmt.Fprintf(errOut, "Run '%s --help' for usage.\n", path)
		return command.ExitBadArgs
	case errors.As(err, &ce):
		errOut.Write(format.StoreError(ce.Err)) //nolint:errcheck
		return ce.Code
	case errors.As(err, &ee):
		io.WriteString(errOut, ee.Stderr) //nolint:errcheck
		return ee.Code
	case errors.Is(err, context.Canceled):
		return command.ExitSuccess
	default:
		errOut.Write(format.StoreError(err)) //nolint:errcheck
		return command.ExitServerError
	}
}
