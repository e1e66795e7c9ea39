package command

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/internal/v2client"
)

// UpdateOptions are the inputs of `etcdctl update`.
type UpdateOptions struct {
	F          *Factory
	Key, Value string
	TTL        int
}

// NewUpdateCommand declares `update <key> <value>`.
func NewUpdateCommand(f *Factory, runF func(context.Context, *UpdateOptions) error) *cobra.Command {
	opts := &UpdateOptions{F: f}
	cmd := &cobra.Command{
		Use:   "update <key> <value>",
		Short: "update an existing key with a given value",
		RunE:  keyValueRunE(f.IO.In, opts, &opts.Key, &opts.Value, runF, runUpdate),
	}
	cmd.Flags().IntVar(&opts.TTL, "ttl", 0, "key time-to-live in seconds")
	return cmd
}

func runUpdate(ctx context.Context, opts *UpdateOptions) error {
	resp, err := keyCall(ctx, opts.F, func(ctx context.Context, c *v2client.Client) (*v2client.Response, error) {
		return c.Set(ctx, opts.Key, opts.Value, &v2client.SetOptions{TTL: seconds(opts.TTL), PrevExist: v2client.PrevExists})
	})
	if err != nil {
		return err
	}
	printResponse(opts.F, resp)
	return nil
}
