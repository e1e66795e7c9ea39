// Package apply executes a [plan.Plan] against a root directory and a
// systemd manager: it writes files atomically under Root, edits env files in
// place, masks, unmasks and enables units, reloads systemd once and runs unit
// commands through D-Bus, waiting for each job's result.
//
// Read Apply first. Systemd is an interface with one production
// implementation, [DBus] (go-systemd's dbus package, …Context calls); when it
// is nil ("offline", e.g. --root on a directory with no systemd behind it)
// the systemd steps are logged as skipped and enable is done natively by
// reading [Install] sections (enable.go). Before the first write, Apply
// checks everything it can (owners, users' home directories) so that a bad
// plan fails without changing anything.
package apply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/corekit/corekit/cloudinit/internal/plan"
)

// Systemd is what apply needs from the service manager. Every method blocks
// until systemd has answered; RunCommand blocks until the job has finished.
type Systemd interface {
	// Reload is `systemctl daemon-reload`.
	Reload(ctx context.Context) error
	// EnableUnitFiles creates the [Install] symlinks of units by name
	// (runtime: under /run), replacing conflicting links.
	EnableUnitFiles(ctx context.Context, names []string, runtime bool) error
	// RunCommand runs start, stop, restart, reload, try-restart,
	// reload-or-restart or reload-or-try-restart on unit in "replace" mode
	// and returns the job result (done, failed, timeout, canceled,
	// dependency, skipped).
	RunCommand(ctx context.Context, unit, command string) (string, error)
	// StartTransient starts a transient service running argv and returns
	// the job result.
	StartTransient(ctx context.Context, name, description string, argv []string) (string, error)
}

// Runner runs a program with stdin and returns its combined output.
type Runner interface {
	Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error)
}

// Options configure Apply.
type Options struct {
	// Root is prefixed to every path ("/" or "" for the running system).
	Root string
	// Systemd is the manager to talk to; nil means offline.
	Systemd Systemd
	// Runner runs useradd, chpasswd and hostnamectl; nil uses [ExecRunner].
	Runner Runner
	// Logger receives progress lines.
	Logger *slog.Logger
}

// JobError reports unit jobs that did not finish with "done".
type JobError struct {
	Failed []string // "start on hello.service: failed"
}

func (e *JobError) Error() string {
	return "unit jobs did not succeed: " + strings.Join(e.Failed, "; ")
}

// Apply executes p in order. Steps before the unit commands stop at the
// first error. Unit commands all run; a failed job or a D-Bus error on one
// does not stop the next, and all of them are returned together (a
// *JobError for job results). Apply never runs anything when preflight
// checks fail.
func Apply(ctx context.Context, p *plan.Plan, o Options) error {
	a := &applier{o: o, root: o.Root, log: o.Logger}
	if a.root == "" {
		a.root = "/"
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.o.Runner == nil {
		a.o.Runner = ExecRunner{}
	}
	if err := a.preflight(p); err != nil {
		return err
	}
	var cmdErrs []error
	job := &JobError{}
	for _, act := range p.Actions {
		if err := ctx.Err(); err != nil {
			return err
		}
		if act.Kind == plan.UnitCommand {
			res, err := a.command(ctx, act)
			switch {
			case err != nil:
				cmdErrs = append(cmdErrs, err)
			case res != "" && res != "done" && res != "skipped":
				job.Failed = append(job.Failed, fmt.Sprintf("%s on %s: %s", act.Command, act.Unit, res))
			}
			continue
		}
		if err := a.do(ctx, act); err != nil {
			return err
		}
	}
	if len(job.Failed) > 0 {
		cmdErrs = append(cmdErrs, job)
	}
	return errors.Join(cmdErrs...)
}

type applier struct {
	o    Options
	root string
	log  *slog.Logger
}

// path maps a path inside the target system to the path to open here.
func (a *applier) path(p string) string {
	return filepath.Join(a.root, filepath.FromSlash(path.Clean("/"+p)))
}

func (a *applier) preflight(p *plan.Plan) error {
	created := map[string]bool{}
	for _, act := range p.Actions {
		switch act.Kind {
		case plan.EnsureUser:
			created[act.Name] = true
		case plan.WriteFile:
			if act.Owner != "" {
				if _, _, err := a.resolveOwner(act.Owner); err != nil {
					return fmt.Errorf("write_files %s (line %d): %w", act.Path, act.Line, err)
				}
			}
		case plan.AuthorizeKeys:
			if created[act.Name] {
				continue
			}
			if _, err := a.lookupUser(act.Name); err != nil {
				return fmt.Errorf("ssh keys for %q: %w", act.Name, err)
			}
		}
	}
	return nil
}

func (a *applier) do(ctx context.Context, act plan.Action) error {
	switch act.Kind {
	case plan.SetHostname:
		return a.setHostname(ctx, act.Name)
	case plan.EnsureUser:
		return a.ensureUser(ctx, act)
	case plan.AuthorizeKeys:
		return a.authorizeKeys(act)
	case plan.WriteFile:
		if err := a.writeFile(act.Path, []byte(act.Content), act.Mode, act.Owner); err != nil {
			return err
		}
		a.log.Info(fmt.Sprintf("Wrote file %s to filesystem", a.path(act.Path)))
		return nil
	case plan.EditEnvFile:
		return a.editEnvFile(act)
	case plan.Mask:
		return a.mask(act)
	case plan.Unmask:
		return a.unmask(act)
	case plan.Enable:
		if a.o.Systemd == nil {
			return a.enableNative(act.Unit, act.Runtime)
		}
		a.log.Info(fmt.Sprintf("Enabling unit file %q", act.Unit))
		if err := a.o.Systemd.EnableUnitFiles(ctx, []string{act.Unit}, act.Runtime); err != nil {
			return fmt.Errorf("enable %s: %w", act.Unit, err)
		}
		return nil
	case plan.DaemonReload:
		if a.o.Systemd == nil {
			a.log.Info("No systemd connection: skipping daemon-reload")
			return nil
		}
		if err := a.o.Systemd.Reload(ctx); err != nil {
			return fmt.Errorf("failed systemd daemon-reload: %w", err)
		}
		return nil
	case plan.RunScript:
		return a.runScript(ctx, act)
	}
	return fmt.Errorf("unknown action %q", act.Kind)
}

func (a *applier) command(ctx context.Context, act plan.Action) (string, error) {
	if a.o.Systemd == nil {
		a.log.Info(fmt.Sprintf("No systemd connection: skipping %q on %q", act.Command, act.Unit))
		return "", nil
	}
	a.log.Info(fmt.Sprintf("Calling unit command %q on %q", act.Command, act.Unit))
	res, err := a.o.Systemd.RunCommand(ctx, act.Unit, act.Command)
	if err != nil {
		a.log.Error(fmt.Sprintf("Failed %q on %q: %v", act.Command, act.Unit, err))
		return "", fmt.Errorf("%s %s: %w", act.Command, act.Unit, err)
	}
	a.log.Info(fmt.Sprintf("Result of %q on %q: %s", act.Command, act.Unit, res))
	return res, nil
}

func (a *applier) setHostname(ctx context.Context, name string) error {
	if a.root == "/" {
		if out, err := a.o.Runner.Run(ctx, nil, "hostnamectl", "set-hostname", name); err != nil {
			return fmt.Errorf("hostnamectl set-hostname %s: %w: %s", name, err, strings.TrimSpace(string(out)))
		}
	} else if err := a.writeFile("/etc/hostname", []byte(name+"\n"), plan.DefaultMode, ""); err != nil {
		return err
	}
	a.log.Info(fmt.Sprintf("Set hostname to %s", name))
	return nil
}

func (a *applier) runScript(ctx context.Context, act plan.Action) error {
	dir := a.path(act.Path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	f, err := os.CreateTemp(dir, "")
	if err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	_, werr := f.WriteString(act.Content)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(f.Name(), act.Mode)); err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	inside := path.Join(act.Path, filepath.Base(f.Name()))
	unit := "coreos-cloudinit-" + filepath.Base(f.Name()) + ".service"
	if a.o.Systemd == nil {
		a.log.Info(fmt.Sprintf("No systemd connection: script saved as %s but not started", inside))
		return nil
	}
	res, err := a.o.Systemd.StartTransient(ctx, unit, "Unit generated and executed by coreos-cloudinit on behalf of user", []string{"/bin/bash", inside})
	if err != nil {
		return fmt.Errorf("Failed to run script: %w", err)
	}
	a.log.Info(fmt.Sprintf("Result of %q on %q: %s", "start", unit, res))
	return a.writeFile(path.Join(act.Path, "unit-name"), []byte(unit), plan.DefaultMode, "")
}
