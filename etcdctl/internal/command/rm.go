package command

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/etcdctl/internal/format"
	"github.com/corekit/corekit/internal/v2client"
)

// RmOptions are the inputs of `etcdctl rm` and `rmdir`.
type RmOptions struct {
	F         *Factory
	Key       string
	Dir       bool
	Recursive bool
	WithValue string
	WithIndex int
}

// NewRmCommand declares `rm <key>`.
func NewRmCommand(f *Factory, runF func(context.Context, *RmOptions) error) *cobra.Command {
	opts := &RmOptions{F: f}
	cmd := &cobra.Command{
		Use:   "rm <key>",
		Short: "remove a key or a directory",
		RunE:  keyRunE(opts, &opts.Key, runF, runRm),
	}
	cmd.Flags().BoolVar(&opts.Dir, "dir", false, "removes the key if it is an empty directory or a key-value pair")
	cmd.Flags().BoolVarP(&opts.Recursive, "recursive", "r", false, "removes the key and all child keys(if it is a directory)")
	cmd.Flags().StringVar(&opts.WithValue, "with-value", "", "previous value")
	cmd.Flags().IntVar(&opts.WithIndex, "with-index", 0, "previous index")
	return cmd
}

// NewRmdirCommand declares `rmdir <key>` (rm --dir).
func NewRmdirCommand(f *Factory, runF func(context.Context, *RmOptions) error) *cobra.Command {
	opts := &RmOptions{F: f, Dir: true}
	return &cobra.Command{
		Use:   "rmdir <key>",
		Short: "removes the key if it is an empty directory or a key-value pair",
		RunE:  keyRunE(opts, &opts.Key, runF, runRm),
	}
}

func runRm(ctx context.Context, opts *RmOptions) error {
	resp, err := keyCall(ctx, opts.F, func(ctx context.Context, c *v2client.Client) (*v2client.Response, error) {
		return c.Delete(ctx, opts.Key, &v2client.DeleteOptions{
			PrevValue: opts.WithValue, PrevIndex: uint64(max(opts.WithIndex, 0)), Dir: opts.Dir, Recursive: opts.Recursive,
		})
	})
	if err != nil {
		return err
	}
	if !resp.Node.Dir || opts.F.Global.Output != format.Simple {
		printResponse(opts.F, resp)
	}
	return nil
}
