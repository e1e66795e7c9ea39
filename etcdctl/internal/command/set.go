package command

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/internal/v2client"
)

// SetOptions are the inputs of `etcdctl set`.
type SetOptions struct {
	F             *Factory
	Key, Value    string
	TTL           int
	SwapWithValue string
	SwapWithIndex int
}

// NewSetCommand declares `set <key> <value>`. runF replaces runSet in tests.
func NewSetCommand(f *Factory, runF func(context.Context, *SetOptions) error) *cobra.Command {
	opts := &SetOptions{F: f}
	cmd := &cobra.Command{
		Use:   "set <key> <value>",
		Short: "set the value of a key",
		Long: `Set sets the value of a key.
When <value> begins with '-', insert '--' first: etcdctl set -- <key> <value>`,
		RunE: keyValueRunE(f.IO.In, opts, &opts.Key, &opts.Value, runF, runSet),
	}
	cmd.Flags().IntVar(&opts.TTL, "ttl", 0, "key time-to-live in seconds")
	cmd.Flags().StringVar(&opts.SwapWithValue, "swap-with-value", "", "previous value")
	cmd.Flags().IntVar(&opts.SwapWithIndex, "swap-with-index", 0, "previous index")
	return cmd
}

func runSet(ctx context.Context, opts *SetOptions) error {
	resp, err := keyCall(ctx, opts.F, func(ctx context.Context, c *v2client.Client) (*v2client.Response, error) {
		return c.Set(ctx, opts.Key, opts.Value, &v2client.SetOptions{
			TTL: seconds(opts.TTL), PrevValue: opts.SwapWithValue, PrevIndex: uint64(max(opts.SwapWithIndex, 0)),
		})
	})
	if err != nil {
		return err
	}
	printResponse(opts.F, resp)
	return nil
}
