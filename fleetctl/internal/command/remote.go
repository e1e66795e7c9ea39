package command

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/corekit/corekit/fleetctl/internal/client"
	"github.com/corekit/corekit/fleetctl/internal/sshx"
)

// ExitSSHFailure is returned when the command could not be run at all
// (SSH connection or local exec failure), as ssh(1) does.
const ExitSSHFailure = 255

// withSSHPort appends :port to a bare address unless port is 22.
func withSSHPort(addr string, port int) string {
	if port != 22 && !strings.Contains(addr, ":") {
		return net.JoinHostPort(addr, strconv.Itoa(port))
	}
	return addr
}

// quoteArgs is cmd followed by each argument Go-quoted, as fleetctl sends
// commands over SSH.
func quoteArgs(argv []string) string {
	s := argv[0]
	for _, a := range argv[1:] {
		s += fmt.Sprintf(" %q", a)
	}
	return s
}

// runOnMachine runs argv on machine machID: locally when it is this host,
// else over SSH to its public IP. It returns the command's exit status.
func runOnMachine(ctx context.Context, f *Factory, api client.API, machID string, sshPort int, argv []string) int {
	if machID != "" && f.LocalMachineID != nil && machID == f.LocalMachineID() {
		code, err := f.Exec(ctx, argv, f.IO.In, f.IO.Out, f.IO.ErrOut)
		if err != nil {
			stderrf(f.IO.ErrOut, "Error running local command: %v", err)
			return ExitSSHFailure
		}
		return code
	}
	ms, err := api.Machines(ctx)
	if err != nil {
		stderrf(f.IO.ErrOut, "Error getting machine IP: %v", err)
		return ExitSSHFailure
	}
	ip := ""
	for _, m := range ms {
		if m.ID == machID {
			ip = m.PrimaryIP
		}
	}
	if ip == "" {
		stderrf(f.IO.ErrOut, "Error getting machine IP: machine %s is not registered or has no IP", machID)
		return ExitSSHFailure
	}
	c, err := f.SSH(ctx, withSSHPort(ip, sshPort))
	if err != nil {
		stderrf(f.IO.ErrOut, "Unable to SSH to remote host: %v", err)
		return ExitSSHFailure
	}
	defer c.Close()
	code, err := c.Run(ctx, quoteArgs(argv), sshx.Stdio{In: f.IO.In, Out: f.IO.Out, Err: f.IO.ErrOut}, false)
	if err != nil {
		if ctx.Err() != nil {
			return ExitSSHFailure
		}
		stderrf(f.IO.ErrOut, "Unable to SSH to remote host: %v", err)
		return ExitSSHFailure
	}
	return code
}

// machinesRunning returns the machines that publish a state for unit name
// (where a global unit runs), sorted by ID.
func machinesRunning(ctx context.Context, api client.API, name string) ([]string, error) {
	states, err := api.UnitStates(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range states {
		if s.Name == name {
			out = append(out, s.MachineID)
		}
	}
	return out, nil
}
