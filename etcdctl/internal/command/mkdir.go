package command

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/etcdctl/internal/format"
	"github.com/corekit/corekit/internal/v2client"
)

// DirOptions are the inputs of `mkdir`, `setdir` and `updatedir`, which
// differ only in their prevExist condition.
type DirOptions struct {
	F         *Factory
	Key       string
	TTL       int
	PrevExist v2client.PrevExist
}

func newDirCommand(f *Factory, use, short string, prev v2client.PrevExist, runF func(context.Context, *DirOptions) error) *cobra.Command {
	opts := &DirOptions{F: f, PrevExist: prev}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		RunE:  keyRunE(opts, &opts.Key, runF, runDir),
	}
	cmd.Flags().IntVar(&opts.TTL, "ttl", 0, "key time-to-live in seconds")
	return cmd
}

// NewMkdirCommand declares `mkdir <key>` (PUT dir=true&prevExist=false).
func NewMkdirCommand(f *Factory, runF func(context.Context, *DirOptions) error) *cobra.Command {
	return newDirCommand(f, "mkdir <key>", "make a new directory", v2client.PrevNoExist, runF)
}

// NewSetdirCommand declares `setdir <key>` (PUT dir=true; fails with 102 on
// an existing directory, as etcd v2 does).
func NewSetdirCommand(f *Factory, runF func(context.Context, *DirOptions) error) *cobra.Command {
	return newDirCommand(f, "setdir <key>", "create a new directory or update an existing directory TTL", v2client.PrevIgnore, runF)
}

// NewUpdatedirCommand declares `updatedir <key>` (PUT dir=true&prevExist=true).
func NewUpdatedirCommand(f *Factory, runF func(context.Context, *DirOptions) error) *cobra.Command {
	return newDirCommand(f, "updatedir <key>", "update an existing directory", v2client.PrevExists, runF)
}

func runDir(ctx context.Context, opts *DirOptions) error {
	resp, err := keyCall(ctx, opts.F, func(ctx context.Context, c *v2client.Client) (*v2client.Response, error) {
		return c.Set(ctx, opts.Key, "", &v2client.SetOptions{TTL: seconds(opts.TTL), Dir: true, PrevExist: opts.PrevExist})
	})
	if err != nil {
		return err
	}
	if opts.F.Global.Output != format.Simple {
		printResponse(opts.F, resp)
	}
	return nil
}
