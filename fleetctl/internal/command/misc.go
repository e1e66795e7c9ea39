package command

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

// NewVerifyCommand declares the deprecated `fleetctl verify`.
func NewVerifyCommand(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "verify UNIT",
		Short: "DEPRECATED - No longer works",
		RunE: func(cmd *cobra.Command, args []string) error {
			stderrf(f.IO.ErrOut, "WARNING: The signed/verified units feature is DEPRECATED and cannot be used.")
			return exit(ExitVerify)
		},
	}
}

// NewVersionCommand declares `fleetctl version`.
func NewVersionCommand(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(f.IO.Out, "fleetctl version %s\n", Version)
			return nil
		},
	}
}

// NewFDForwardCommand declares the internal `fleetctl fd-forward`, which
// proxies stdin/stdout to a unix socket (fleet's --tunnel used it on the
// remote host; ours dials the socket over SSH directly but keeps the verb
// for older clients).
func NewFDForwardCommand(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:    "fd-forward SOCKET",
		Short:  "Proxy stdin and stdout to a unix domain socket",
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				stderrf(f.IO.ErrOut, "Provide a single argument")
				return exit(ExitFailure)
			}
			if err := fdForward(cmd.Context(), args[0], f.IO.In, f.IO.Out); err != nil {
				stderrf(f.IO.ErrOut, "%v", err)
				return exit(ExitFailure)
			}
			return nil
		},
	}
}

// fdForward copies in → socket and socket → out until both directions end.
func fdForward(ctx context.Context, sock string, in io.Reader, out io.Writer) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return fmt.Errorf("unable to connect to socket %s: %w", sock, err)
	}
	uc := c.(*net.UnixConn)
	defer uc.Close()
	var g errgroup.Group
	g.Go(func() error {
		_, err := io.Copy(uc, in)
		uc.CloseWrite()
		return err
	})
	g.Go(func() error {
		_, err := io.Copy(out, uc)
		return err
	})
	return g.Wait()
}
