package command

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/internal/v2client"
)

// MkOptions are the inputs of `etcdctl mk`.
type MkOptions struct {
	F          *Factory
	Key, Value string
	TTL        int
	InOrder    bool
}

// NewMkCommand declares `mk <key> <value>`.
func NewMkCommand(f *Factory, runF func(context.Context, *MkOptions) error) *cobra.Command {
	opts := &MkOptions{F: f}
	cmd := &cobra.Command{
		Use:   "mk <key> <value>",
		Short: "make a new key with a given value",
		RunE:  keyValueRunE(f.IO.In, opts, &opts.Key, &opts.Value, runF, runMk),
	}
	cmd.Flags().BoolVar(&opts.InOrder, "in-order", false, "create in-order key under directory <key>")
	cmd.Flags().IntVar(&opts.TTL, "ttl", 0, "key time-to-live in seconds")
	return cmd
}

func runMk(ctx context.Context, opts *MkOptions) error {
	resp, err := keyCall(ctx, opts.F, func(ctx context.Context, c *v2client.Client) (*v2client.Response, error) {
		if opts.InOrder {
			return c.CreateInOrder(ctx, opts.Key, opts.Value, &v2client.CreateInOrderOptions{TTL: seconds(opts.TTL)})
		}
		return c.Set(ctx, opts.Key, opts.Value, &v2client.SetOptions{TTL: seconds(opts.TTL), PrevExist: v2client.PrevNoExist})
	})
	if err != nil {
		return err
	}
	printResponse(opts.F, resp)
	return nil
}
