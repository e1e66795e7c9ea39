package apply

import (
	"bytes"
	"context"
	"os/exec"
)

// ExecRunner runs programs with os/exec.
type ExecRunner struct{}

// Run runs name with args, feeding stdin, and returns combined output.
func (ExecRunner) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	return cmd.CombinedOutput()
}
