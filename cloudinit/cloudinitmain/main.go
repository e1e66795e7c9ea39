// Package cloudinitmain is coreos-cloudinit's command line: flags as in
// coreos-cloudinit v1.14 for the off-cloud datasources, plus --root,
// --dry-run, --public-ipv4/--private-ipv4 (and -ipv6) and --strict.
//
// Read Run: it selects a datasource, fetches user-data, validates or
// substitutes and parses it (package config), builds the plan (package
// plan), prints it (--dry-run) or applies it (package apply), and maps the
// outcome to the anchor's exit codes.
package cloudinitmain

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Version is printed by --version.
const Version = "v1.14.0+corekit"

// Main runs coreos-cloudinit with the process's arguments and returns the
// exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], DefaultEnv())
}

// DefaultEnv is the real process environment.
func DefaultEnv() Env {
	return Env{
		Stdout:        os.Stdout,
		Stderr:        os.Stderr,
		Getenv:        os.Getenv,
		Now:           time.Now,
		Hostname:      os.Hostname,
		SelectTimeout: 5 * time.Minute,
		ProcCmdline:   "/proc/cmdline",
	}
}
