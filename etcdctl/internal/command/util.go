package command

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/etcdctl/internal/format"
	"github.com/corekit/corekit/internal/v2client"
)

// argOrStdin returns args[i], or all of stdin (trailing newline included)
// when the argument is missing; ok is false when both are empty.
func argOrStdin(args []string, in io.Reader, i int) (string, bool) {
	if i < len(args) {
		return args[i], true
	}
	if in == nil {
		return "", false
	}
	b, err := io.ReadAll(in)
	if err != nil || len(b) == 0 {
		return "", false
	}
	return string(b), true
}

// keyRunE is the RunE of a command whose argument is `<key>`: it stores
// the key in *key and calls runF (tests substitute it) or run.
func keyRunE[O any](opts *O, key *string, runF, run func(context.Context, *O) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return argError("key required")
		}
		*key = args[0]
		if runF != nil {
			return runF(cmd.Context(), opts)
		}
		return run(cmd.Context(), opts)
	}
}

// keyValueRunE is keyRunE for `<key> <value>`, the value read from in
// when the argument is missing (see argOrStdin).
func keyValueRunE[O any](in io.Reader, opts *O, key, value *string, runF, run func(context.Context, *O) error) func(*cobra.Command, []string) error {
	withKey := keyRunE(opts, key, runF, run)
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			v, ok := argOrStdin(args, in, 1)
			if !ok {
				return argError("value required")
			}
			*value = v
		}
		return withKey(cmd, args)
	}
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }

// printResponse writes resp in the global output mode.
func printResponse(f *Factory, resp *v2client.Response) {
	f.IO.Out.Write(format.Response(f.Global.Output, resp)) //nolint:errcheck // stdout write errors are not reported by etcdctl
}

// keyCall runs op with a synced client under --total-timeout and turns
// client errors into exit-4 errors.
func keyCall(ctx context.Context, f *Factory, op func(context.Context, *v2client.Client) (*v2client.Response, error)) (*v2client.Response, error) {
	c, err := f.Client(ctx)
	if err != nil {
		return nil, err
	}
	tctx, cancel := f.TotalContext(ctx)
	defer cancel()
	resp, err := op(tctx, c)
	if err != nil {
		return nil, serverError(err)
	}
	return resp, nil
}
