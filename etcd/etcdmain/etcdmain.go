// Package etcdmain is the etcd binary: it parses flags and ETCD_*
// environment variables into a Config (config.go) with etcd 2.3's names,
// defaults, translations of 0.4 flags and error texts, starts a member
// through package embed, and shuts it down gracefully on SIGINT/SIGTERM.
//
// Main is what etcd/main.go calls; Run is the testable core.
package etcdmain

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/corekit/corekit/etcd/embed"
	"github.com/corekit/corekit/etcd/internal/discovery"
	"github.com/corekit/corekit/etcd/internal/etcdserver"
	"github.com/corekit/corekit/internal/logging"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // bad configuration, start-up failure
	exitUsage = 2 // command-line syntax (Go flag package)
)

// Main runs etcd with the process's arguments, environment and signals and
// returns the exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return RunEnv(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
}

// Run runs etcd with args and the process environment until ctx ends.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return RunEnv(ctx, args, os.Environ(), stdout, stderr)
}

// RunEnv is Run with an explicit environment ("KEY=value" entries).
func RunEnv(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	hostname, _ := os.Hostname()
	cfg, err := parseConfig(args, environ, hostname, stderr)
	var uerr *usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &uerr):
		// the flag package already printed the error and the usage
		return exitUsage
	}
	level := slog.LevelInfo
	if cfg != nil && cfg.Debug {
		level = slog.LevelDebug
	}
	log := logging.NewCapnslog(stderr, level).With("pkg", "etcdmain")
	if err != nil {
		lines := strings.Split(err.Error(), "\n")
		log.Error(fmt.Sprintf("error verifying flags, %s. See 'etcd --help'.", lines[0]))
		for _, l := range lines[1:] {
			log.Error(l)
		}
		if errors.Is(err, errUnsetAdvertiseClientURLs) {
			log.Error("When listening on specific address(es), this etcd process must advertise accessible url(s) to each connected client.")
		}
		return exitError
	}
	if cfg.PrintVersion {
		printVersion(stdout)
		return exitOK
	}
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	for _, n := range cfg.Notices {
		log.Info(n)
	}
	if cfg.Proxy != "off" {
		return runProxy(ctx, cfg, log)
	}
	log.Info("etcd starting", "version", etcdserver.ServerVersion, "go", runtime.Version(),
		"name", cfg.Name, "data-dir", cfg.DataDir)

	maxSnap := int(cfg.MaxSnapshots)
	if maxSnap == 0 {
		maxSnap = 1 << 20
	}
	e, err := embed.Start(ctx, embed.Config{
		Name:                     cfg.Name,
		DataDir:                  cfg.DataDir,
		ListenClientURLs:         cfg.ListenClientURLs,
		AdvertiseClientURLs:      cfg.AdvertiseClientURLs,
		ListenPeerURLs:           cfg.ListenPeerURLs,
		InitialAdvertisePeerURLs: cfg.InitialAdvertisePeerURLs,
		InitialCluster:           cfg.InitialCluster,
		InitialClusterState:      cfg.InitialClusterState,
		InitialClusterToken:      cfg.InitialClusterToken,
		Discovery:                cfg.Discovery,
		DiscoveryProxy:           cfg.DiscoveryProxy,
		DiscoveryDefaultSize:     cfg.discoveryDefaultSize(),
		SnapshotCount:            cfg.SnapshotCount,
		HeartbeatInterval:        cfg.heartbeat(),
		ElectionTimeout:          cfg.election(),
		MaxSnapshots:             maxSnap,
		CORS:                     cfg.CORS,
		ClientTLS:                cfg.ClientTLS,
		PeerTLS:                  cfg.PeerTLS,
		Logger:                   logging.NewCapnslog(stderr, level),
		Now:                      cfg.clockNow(log),
	})
	var derr *embed.DiscoveryError
	switch {
	case errors.As(err, &derr):
		if errors.Is(err, discovery.ErrFull) && cfg.DiscoveryFallback == "proxy" {
			log.Info("discovery cluster full, falling back to proxy")
			return runProxy(ctx, cfg, log)
		}
		for _, l := range discovery.ExitMessages(derr.Err, cfg.Name, cfg.Discovery, cfg.DataDir) {
			log.Error(l)
		}
		return exitError
	case err != nil:
		log.Error(err.Error())
		return exitError
	}
	log.Info("serving", "client-urls", e.ClientURLs(), "peer-urls", e.PeerURLs(), "data-dir", cfg.DataDir)
	select {
	case <-ctx.Done():
	case err := <-e.Err():
		log.Error(err.Error())
		_ = e.Close()
		return exitError
	}
	log.Info("shutting down")
	if err := e.Close(); err != nil {
		log.Error("shutdown", "err", err)
		return exitError
	}
	log.Info("stopped")
	return exitOK
}

func printVersion(w io.Writer) {
	sha := "Not provided (use ./build instead of go build)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				sha = s.Value[:min(7, len(s.Value))]
			}
		}
	}
	fmt.Fprintf(w, "etcd Version: %s\n", etcdserver.ServerVersion)
	fmt.Fprintf(w, "Git SHA: %s\n", sha)
	fmt.Fprintf(w, "Go Version: %s\n", runtime.Version())
	fmt.Fprintf(w, "Go OS/Arch: %s/%s\n", runtime.GOOS, runtime.GOARCH)
}
