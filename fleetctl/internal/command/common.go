package command

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/fleetctl/internal/client"
	"github.com/corekit/corekit/internal/fleetapi"
)

// apiFor builds the cluster client, printing fleetctl's message when that
// fails.
func apiFor(ctx context.Context, f *Factory) (client.API, error) {
	api, err := f.API(ctx)
	if err != nil {
		stderrf(f.IO.ErrOut, "Unable to initialize client: %v", err)
		return nil, exit(ExitFailure)
	}
	return api, nil
}

// interrupted passes a cancelled context through (Ctrl-C) unprinted.
func interrupted(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// addBlockFlags declares --no-block and --block-attempts.
func addBlockFlags(cmd *cobra.Command, b *BlockOptions) {
	cmd.Flags().BoolVar(&b.NoBlock, "no-block", false, "Do not wait until the units have reached the desired state before returning.")
	cmd.Flags().IntVar(&b.BlockAttempts, "block-attempts", 0, "Wait until the units have reached the desired state, polling up to N times (about 2 s each) before failing. The default 0 waits forever, but a unit no machine can run fails at once with the reason.")
}

// addSignFlag declares the deprecated --sign (accepted, ignored).
func addSignFlag(cmd *cobra.Command) {
	cmd.Flags().Bool("sign", false, "DEPRECATED - this option cannot be used")
	_ = cmd.Flags().MarkHidden("sign")
}

// infof prints one of fleetctl's unconditional INFO log lines:
// "YYYY/MM/DD HH:MM:SS INFO <file>: <msg>".
func (f *Factory) infof(format string, args ...any) {
	_, file, _, _ := runtime.Caller(1)
	fmt.Fprintf(f.IO.ErrOut, "%s INFO %s: %s\n", f.Now().Format("2006/01/02 15:04:05"), filepath.Base(file), fmt.Sprintf(format, args...))
}

// run calls runF when a test gave one, else the verb's real run function.
func run[T any](ctx context.Context, opts T, runF func(context.Context, T) error, real func(context.Context, T) error) error {
	if runF != nil {
		return runF(ctx, opts)
	}
	return real(ctx, opts)
}

// registeredUnits is how destroy, stop and unload begin: as fleetctl, an
// empty argument list and units missing from the registry get a message and
// exit 0 (units is then empty), a failed lookup a message and exit 1.
func registeredUnits(ctx context.Context, f *Factory, names []string) (client.API, []*fleetapi.Unit, error) {
	if len(names) == 0 {
		stderrf(f.IO.ErrOut, "No units given")
		return nil, nil, nil
	}
	api, err := apiFor(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	units, err := findUnits(ctx, api, names)
	if err != nil {
		stderrf(f.IO.ErrOut, "%v", err)
		return nil, nil, exit(ExitFailure)
	}
	if len(units) == 0 {
		stderrf(f.IO.ErrOut, "Units not found in registry")
	}
	return api, units, nil
}
