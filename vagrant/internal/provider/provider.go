// Package provider is `make up` without VirtualBox: it boots a local cluster
// of systemd-nspawn machines (internal/nspawn) the way the Vagrantfile boots
// VMs, and gives the user the same story: one discovery token per cluster, a
// per-machine copy of user-data applied by our coreos-cloudinit, etcd forming
// through discovery, fleetd joining.
//
// Commands (see Run): up, status, ssh, down. State lives in a directory
// (default .corekit/): state.json, the machines' directories (console logs,
// rendered user-data), the host services' logs and cluster.env.
package provider

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/corekit/corekit/internal/nspawn"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// Options configure every command.
type Options struct {
	Root     string        // repository root: bin/, vagrant/units, cloudinit/units
	BinDir   string        // corekit's binaries (default ROOT/bin)
	StateDir string        // default <root>/.corekit
	N        int           // number of machines
	Prefix   string        // hostname prefix ("core" → core-01…)
	Subnet   string        // the machines' /24 (Vagrant's 172.17.8.0/24)
	Bridge   string        // host bridge name
	UserData string        // cloud-config file; default vagrant/user-data, else the sample
	Timeout  time.Duration // bound for each waiting step
	Verbose  bool
}

// DefaultOptions are the Vagrantfile's defaults where they apply.
func DefaultOptions() Options {
	return Options{
		Root: ".", N: 3, Prefix: "core", Subnet: "172.17.8.0/24", Bridge: "corekit0",
		Timeout: 3 * time.Minute,
	}
}

// Main runs the provider with the process's arguments; it returns the exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

const usage = `usage: corekit-nspawn COMMAND [flags]

Commands:
  up       boot the cluster (bridge, host etcd + discovery, machines, user-data)
  status   show machines and host services
  ssh M    open a shell on machine M (or run: ssh M -- CMD...)
  down     power off the machines, stop host services, delete bridge and state
`

// Run parses args (COMMAND [flags]) and runs the command.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	o := DefaultOptions()
	fs := flag.NewFlagSet("corekit-nspawn "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Root, "root", o.Root, "repository root (holds bin/, vagrant/units, cloudinit/units)")
	fs.StringVar(&o.BinDir, "bin", "", "directory with corekit's binaries (default ROOT/bin)")
	fs.StringVar(&o.StateDir, "state-dir", "", "state directory (default ROOT/.corekit)")
	fs.IntVar(&o.N, "n", o.N, "number of machines (1..99)")
	fs.StringVar(&o.Prefix, "prefix", o.Prefix, "machine name prefix ($instance_name_prefix)")
	fs.StringVar(&o.Subnet, "subnet", o.Subnet, "the machines' /24; the host takes .1, machines .101…")
	fs.StringVar(&o.Bridge, "bridge", o.Bridge, "name of the host bridge")
	fs.StringVar(&o.UserData, "user-data", "", "cloud-config file (default vagrant/user-data, else vagrant/user-data.sample)")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "bound for each waiting step")
	fs.BoolVar(&o.Verbose, "v", false, "verbose logging")
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if err := o.resolve(); err != nil {
		fmt.Fprintf(stderr, "corekit-nspawn: %v\n", err)
		return exitUsage
	}
	level := slog.LevelWarn
	if o.Verbose {
		level = slog.LevelDebug
	}
	p := &Provider{
		opts:  o,
		out:   stdout,
		log:   slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		store: &Store{Dir: o.StateDir},
	}
	var err error
	switch cmd {
	case "up":
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "corekit-nspawn up: unexpected argument %q\n", fs.Arg(0))
			return exitUsage
		}
		err = p.Up(ctx)
	case "down", "destroy":
		err = p.Down(ctx)
	case "status":
		err = p.Status(ctx)
	case "ssh":
		if fs.NArg() < 1 {
			fmt.Fprintln(stderr, "corekit-nspawn ssh: name a machine, e.g. `make ssh M=core-01`")
			return exitUsage
		}
		cmdArgs := fs.Args()[1:]
		if len(cmdArgs) > 0 && cmdArgs[0] == "--" {
			cmdArgs = cmdArgs[1:]
		}
		err = p.SSH(ctx, fs.Arg(0), cmdArgs)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "corekit-nspawn: unknown command %q\n%s", cmd, usage)
		return exitUsage
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "corekit-nspawn %s: %v\n", cmd, err)
			return exitUsage
		}
		fmt.Fprintf(stderr, "corekit-nspawn %s: %v\n", cmd, err)
		return exitError
	}
	return exitOK
}

type usageError struct{ error }

func (o *Options) resolve() error {
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return err
	}
	o.Root = root
	if o.BinDir == "" {
		o.BinDir = filepath.Join(root, "bin")
	}
	if o.BinDir, err = filepath.Abs(o.BinDir); err != nil {
		return err
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(root, ".corekit")
	}
	if o.StateDir, err = filepath.Abs(o.StateDir); err != nil {
		return err
	}
	if o.N < 1 || o.N > 99 {
		return fmt.Errorf("-n %d: must be 1..99", o.N)
	}
	if o.Prefix == "" || len(o.Prefix) > 9 {
		return fmt.Errorf("-prefix %q: must be 1..9 characters (machine names are PREFIX-NN)", o.Prefix)
	}
	if err := nspawn.ValidateIfName(o.Bridge); err != nil {
		return err
	}
	if o.UserData == "" {
		o.UserData = filepath.Join(root, "vagrant", "user-data")
		if _, err := os.Stat(o.UserData); err != nil {
			o.UserData = filepath.Join(root, "vagrant", "user-data.sample")
		}
	}
	o.UserData, err = filepath.Abs(o.UserData)
	return err
}

// Provider runs the commands.
type Provider struct {
	opts  Options
	out   io.Writer
	log   *slog.Logger
	store *Store
}

func (p *Provider) say(who, format string, args ...any) {
	fmt.Fprintf(p.out, "==> %s: %s\n", who, fmt.Sprintf(format, args...))
}
