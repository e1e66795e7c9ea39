package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"sync"

	"github.com/spf13/cobra"

	"github.com/corekit/corekit/internal/v2client"
)

// ExecWatchOptions are the inputs of `etcdctl exec-watch`.
type ExecWatchOptions struct {
	F          *Factory
	Key        string
	Command    []string
	AfterIndex int
	Recursive  bool
}

// NewExecWatchCommand declares `exec-watch <key> -- <command> [args...]`.
func NewExecWatchCommand(f *Factory, runF func(context.Context, *ExecWatchOptions) error) *cobra.Command {
	opts := &ExecWatchOptions{F: f}
	cmd := &cobra.Command{
		Use:   "exec-watch <key> -- <command> [args...]",
		Short: "watch a key for changes and exec an executable",
		RunE: func(cmd *cobra.Command, args []string) error {
			key, command, ok := splitExecArgs(args, cmd.ArgsLenAtDash())
			if !ok {
				return argError("key and command to exec required")
			}
			opts.Key, opts.Command = key, command
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runExecWatch(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVar(&opts.AfterIndex, "after-index", 0, "watch after the given index")
	cmd.Flags().BoolVarP(&opts.Recursive, "recursive", "r", false, "watch all values for key and child keys")
	return cmd
}

// splitExecArgs finds the key and the command. With "--" after the key the
// key is the first argument and the command follows the "--"; without it
// etcdctl v2 takes the last argument as the key.
func splitExecArgs(args []string, dash int) (string, []string, bool) {
	if len(args) < 2 {
		return "", nil, false
	}
	if dash > 0 {
		if dash >= len(args) {
			return "", nil, false
		}
		return args[0], args[dash:], true
	}
	if dash == 0 {
		return args[0], args[1:], true
	}
	return args[len(args)-1], args[:len(args)-1], true
}

// runExecWatch starts the command for every non-directory event, without
// waiting for the previous one (as etcdctl v2 does), with ETCD_WATCH_* in
// its environment. It runs until ctx ends, then waits for running children.
func runExecWatch(ctx context.Context, opts *ExecWatchOptions) error {
	c, err := opts.F.Client(ctx)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	streams := opts.F.IO
	// children run concurrently and may share one writer
	var mu sync.Mutex
	out, errOut := &lockedWriter{mu: &mu, w: streams.Out}, &lockedWriter{mu: &mu, w: streams.ErrOut}
	// --after-index N waits for events after N (etcdctl 2.3.8 waited after
	// N+1; etcd 3.4's etcdctl fixed it).
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
			fmt.Fprintf(errOut, "Ignored dir %s change\n", resp.Node.Key)
			continue
		}
		cmd := exec.Command(opts.Command[0], opts.Command[1:]...)
		cmd.Env = append(opts.F.Environ(),
			"ETCD_WATCH_ACTION="+resp.Action,
			"ETCD_WATCH_MODIFIED_INDEX="+strconv.FormatUint(resp.Node.ModifiedIndex, 10),
			"ETCD_WATCH_KEY="+resp.Node.Key,
			"ETCD_WATCH_VALUE="+resp.Node.StringValue(),
		)
		cmd.Stdin = nil
		cmd.Stdout, cmd.Stderr = out, errOut
		if err := cmd.Start(); err != nil {
			return &ExitError{Code: ExitBadArgs, Stderr: err.Error() + "\n"}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = cmd.Wait() // the child's exit status is not etcdctl's concern
		}()
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
