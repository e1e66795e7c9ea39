package command

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/etcdctl/internal/format"
	"github.com/corekit/corekit/internal/v2client"
)

// LsOptions are the inputs of `etcdctl ls`.
type LsOptions struct {
	F         *Factory
	Key       string
	Sort      bool
	Recursive bool
	Slash     bool // -p
	Quorum    bool
}

// NewLsCommand declares `ls [key]`.
func NewLsCommand(f *Factory, runF func(context.Context, *LsOptions) error) *cobra.Command {
	opts := &LsOptions{F: f}
	cmd := &cobra.Command{
		Use:   "ls [key]",
		Short: "retrieve a directory",
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Key = "/"
			if len(args) > 0 {
				opts.Key = args[0]
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runLs(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Sort, "sort", false, "returns result in sorted order")
	cmd.Flags().BoolVarP(&opts.Recursive, "recursive", "r", false, "returns all key names recursively for the given path")
	cmd.Flags().BoolVarP(&opts.Slash, "p", "p", false, "append slash (/) to directories")
	cmd.Flags().BoolVarP(&opts.Quorum, "quorum", "q", false, "require quorum for get request")
	return cmd
}

func runLs(ctx context.Context, opts *LsOptions) error {
	resp, err := keyCall(ctx, opts.F, func(ctx context.Context, c *v2client.Client) (*v2client.Response, error) {
		return c.Get(ctx, opts.Key, &v2client.GetOptions{Sort: opts.Sort, Recursive: opts.Recursive, Quorum: opts.Quorum})
	})
	if err != nil {
		return err
	}
	if opts.F.Global.Output == format.Simple {
		opts.F.IO.Out.Write(format.Ls(resp.Node, opts.Slash)) //nolint:errcheck
		return nil
	}
	printResponse(opts.F, resp)
	return nil
}
