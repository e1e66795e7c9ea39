package command

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// fleetctl's exit codes. status, journal and ssh return the remote or local
// command's own exit status instead.
const (
	ExitSuccess = 0
	ExitFailure = 1
	ExitVerify  = 2 // verify: the feature is gone
)

// ExitError ends the command with Code; the verb has already printed its
// message.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// exit returns nil for 0, else an *ExitError.
func exit(code int) error {
	if code == 0 {
		return nil
	}
	return &ExitError{Code: code}
}

// FlagError is a usage problem (unknown flag or command, bad value);
// fleetctlmain prints it and exits 1.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// stderrf prints one line to w, adding the newline fleetctl adds.
func stderrf(w io.Writer, format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if len(s) == 0 || s[len(s)-1] != '\n' {
		s += "\n"
	}
	io.WriteString(w, s) //nolint:errcheck
}

// GroupRunE runs the root command: help without arguments, a usage error
// for an unknown command.
func GroupRunE(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &FlagError{Err: fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
	}
	return cmd.Help()
}
