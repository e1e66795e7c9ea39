package command

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/etcdctl/internal/format"
	"github.com/corekit/corekit/internal/v2client"
)

// WatchOptions are the inputs of `etcdctl watch`.
type WatchOptions struct {
	F          *Factory
	Key        string
	Forever    bool
	AfterIndex int
	Recursive  bool
}

// NewWatchCommand declares `watch <key>`.
func NewWatchCommand(f *Factory, runF func(context.Context, *WatchOptions) error) *cobra.Command {
	opts := &WatchOptions{F: f}
	cmd := &cobra.Command{
		Use:   "watch <key>",
		Short: "watch a key for changes",
		RunE:  keyRunE(opts, &opts.Key, runF, runWatch),
	}
	cmd.Flags().BoolVarP(&opts.Forever, "forever", "f", false, "forever watch a key until CTRL+C")
	cmd.Flags().IntVar(&opts.AfterIndex, "after-index", 0, "watch after the given index")
	cmd.Flags().BoolVarP(&opts.Recursive, "recursive", "r", false, "returns all values for key and child keys")
	return cmd
}

// runWatch prints each non-directory event (after a "[action] key" line with
// --recursive) until the first one, or until ctx ends with --forever. A
// cancelled context (Ctrl-C) is a normal end: exit 0.
func runWatch(ctx context.Context, opts *WatchOptions) error {
	c, err := opts.F.Client(ctx)
	if err != nil {
		return err
	}
	w := c.Watcher(opts.Key, &v2client.WatcherOptions{AfterIndex: uint64(max(opts.AfterIndex, 0)), Recursive: opts.Recursive})
	for {
		resp, err := w.Next(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return serverError(err)
		}
		if resp.Node.Dir {
			continue
		}
		if opts.Recursive {
			opts.F.IO.Out.Write(format.WatchHeader(resp)) //nolint:errcheck
		}
		printResponse(opts.F, resp)
		if !opts.Forever {
			return nil
		}
	}
}
