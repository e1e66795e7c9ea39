package command

import (
	"fmt"

	"github.com/spf13/cobra"
)

// Exit codes of etcdctl v2.
const (
	ExitSuccess           = 0
	ExitBadArgs           = 1
	ExitBadConnection     = 2
	ExitBadAuth           = 3 // defined by etcdctl v2, never used
	ExitServerError       = 4
	ExitClusterNotHealthy = 5
)

// FlagError is a usage problem (unknown flag, bad flag value, unknown
// command): etcdctlmain prints it with a usage hint and exits 1.
type FlagError struct {
	Err         error
	CommandPath string // e.g. "etcdctl set"
}

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// CodedError is printed as etcdctl prints client errors ("Error:  <err>",
// plus the per-endpoint detail of a cluster error) and exits with Code.
type CodedError struct {
	Code int
	Err  error
}

func (e *CodedError) Error() string { return e.Err.Error() }
func (e *CodedError) Unwrap() error { return e.Err }

// ExitError writes Stderr verbatim and exits with Code; for messages etcdctl
// prints without the "Error: " prefix (member commands, "is a directory").
type ExitError struct {
	Code   int
	Stderr string
}

func (e *ExitError) Error() string { return fmt.Sprintf("exit %d: %s", e.Code, e.Stderr) }

// argError is a bad-arguments error printed as "Error:  <msg>", exit 1.
func argError(msg string) error {
	return &CodedError{Code: ExitBadArgs, Err: plainError(msg)}
}

type plainError string

func (e plainError) Error() string { return string(e) }

// serverError wraps a client error of a key command: exit 4.
func serverError(err error) error {
	return &CodedError{Code: ExitServerError, Err: err}
}

// GroupRunE is the run function of commands that only group subcommands
// (the root, member): without arguments it prints help; an unknown
// subcommand is a usage error.
func GroupRunE(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &FlagError{Err: fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath()), CommandPath: cmd.CommandPath()}
	}
	return cmd.Help()
}
