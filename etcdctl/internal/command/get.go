package command

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/internal/v2client"
)

// GetOptions are the inputs of `etcdctl get`.
type GetOptions struct {
	F      *Factory
	Key    string
	Sort   bool
	Quorum bool
}

// NewGetCommand declares `get <key>`.
func NewGetCommand(f *Factory, runF func(context.Context, *GetOptions) error) *cobra.Command {
	opts := &GetOptions{F: f}
	cmd := &cobra.Command{
		Use:   "get <key>",
		Short: "retrieve the value of a key",
		RunE:  keyRunE(opts, &opts.Key, runF, runGet),
	}
	cmd.Flags().BoolVar(&opts.Sort, "sort", false, "returns result in sorted order")
	cmd.Flags().BoolVarP(&opts.Quorum, "quorum", "q", false, "require quorum for get request")
	return cmd
}

func runGet(ctx context.Context, opts *GetOptions) error {
	resp, err := keyCall(ctx, opts.F, func(ctx context.Context, c *v2client.Client) (*v2client.Response, error) {
		return c.Get(ctx, opts.Key, &v2client.GetOptions{Sort: opts.Sort, Quorum: opts.Quorum})
	})
	if err != nil {
		return err
	}
	if resp.Node.Dir {
		return &ExitError{Code: ExitBadArgs, Stderr: fmt.Sprintf("%s: is a directory\n", resp.Node.Key)}
	}
	printResponse(opts.F, resp)
	return nil
}
