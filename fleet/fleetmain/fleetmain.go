// Package fleetmain is fleetd's entry point: Main → Run parses the
// configuration (config.go) and runs a Server (server.go): machine presence,
// engine, agent and the HTTP API.
package fleetmain

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/corekit/corekit/internal/fleetregistry"
)

// Main runs fleetd with the process's arguments and returns the exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
}

// Run parses args and environ, runs fleetd until ctx ends, and returns the
// exit code.
func Run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	cfg, version, warnings, err := LoadConfig(args, environ, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if version {
		fmt.Fprintf(stdout, "fleetd version %s\n", fleetregistry.Version)
		return 0
	}
	level := slog.LevelInfo
	if cfg.Verbosity > 0 {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	for _, w := range warnings {
		log.Warn(w)
	}
	srv, err := NewServer(ctx, cfg, Deps{Logger: log})
	if err != nil {
		log.Error("fleetd failed to start", "err", err)
		return 1
	}
	if err := srv.Run(ctx); err != nil {
		log.Error("fleetd failed", "err", err)
		return 1
	}
	return 0
}
