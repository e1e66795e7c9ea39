// Package discoverymain is the discovery binary: flags and environment,
// the connection to the store, and the HTTP server's lifecycle. The
// service itself is package handler.
//
// Main is what main.go calls; Run is the same with its inputs passed in, so
// tests can start a server in-process and stop it by cancelling ctx.
package discoverymain

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/corekit/corekit/discovery/internal/handler"
	"github.com/corekit/corekit/internal/logging"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the server failed while running
	exitUsage = 2 // bad flags or environment
)

// Main runs the service with the process's arguments and environment until
// SIGINT or SIGTERM, and returns the exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
}

// Options is the parsed configuration.
type Options struct {
	Etcd, Host, Addr                      string
	EtcdCAFile, EtcdCertFile, EtcdKeyFile string
	MaxSize                               int
	TokenTTL, LongPoll                    time.Duration
	NewRate                               float64 // per minute; < 0 disables
	NewBurst                              int
	LogLevel                              string
}

// flagEnv pairs each long flag with its environment variable. A flag given on
// the command line wins over the variable.
var flagEnv = [][2]string{
	{"etcd", "DISC_ETCD"},
	{"host", "DISC_HOST"},
	{"addr", "DISC_ADDR"},
	{"etcd-cafile", "DISC_ETCD_CAFILE"},
	{"etcd-certfile", "DISC_ETCD_CERTFILE"},
	{"etcd-keyfile", "DISC_ETCD_KEYFILE"},
	{"max-size", "DISC_MAX_SIZE"},
	{"token-ttl", "DISC_TOKEN_TTL"},
	{"long-poll", "DISC_LONG_POLL"},
	{"new-rate", "DISC_NEW_RATE"},
	{"new-burst", "DISC_NEW_BURST"},
	{"log-level", "DISC_LOG_LEVEL"},
}

// short flags of the original service.
var shortFlags = map[string]string{"e": "etcd", "h": "host", "a": "addr"}

// Parse parses args and the environment (through lookup) into Options. The
// error text is meant for the user, one line.
func Parse(args []string, lookup func(string) (string, bool), stderr io.Writer) (Options, error) {
	var o Options
	fs := flag.NewFlagSet("discovery", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Etcd, "etcd", "http://127.0.0.1:2379", "etcd client URL of the store (scheme://host[:port])")
	fs.StringVar(&o.Host, "host", "https://discovery.etcd.io", "public base URL printed in front of new tokens")
	fs.StringVar(&o.Addr, "addr", ":8087", "address to listen on")
	fs.StringVar(&o.EtcdCAFile, "etcd-cafile", "", "CA bundle to verify the store's TLS certificate")
	fs.StringVar(&o.EtcdCertFile, "etcd-certfile", "", "client certificate for the store")
	fs.StringVar(&o.EtcdKeyFile, "etcd-keyfile", "", "client key for the store")
	fs.IntVar(&o.MaxSize, "max-size", 99, "largest cluster size /new accepts")
	fs.DurationVar(&o.TokenTTL, "token-ttl", 7*24*time.Hour, "age after which a token expires")
	fs.DurationVar(&o.LongPoll, "long-poll", 60*time.Second, "longest a watch is held before an empty 200")
	fs.Float64Var(&o.NewRate, "new-rate", 10, "new tokens per minute per client IP (negative: no limit)")
	fs.IntVar(&o.NewBurst, "new-burst", 20, "burst of new tokens per client IP")
	fs.StringVar(&o.LogLevel, "log-level", "info", "debug, info, warn or error")
	for s, long := range shortFlags {
		f := fs.Lookup(long)
		fs.Var(f.Value, s, "shorthand for --"+long)
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		set[f.Name] = true
		if long, ok := shortFlags[f.Name]; ok {
			set[long] = true
		}
	})
	for _, fe := range flagEnv {
		if set[fe[0]] {
			continue
		}
		if v, ok := lookup(fe[1]); ok && v != "" {
			if err := fs.Set(fe[0], v); err != nil {
				return o, fmt.Errorf("invalid %s=%q: %w", fe[1], v, err)
			}
		}
	}
	if err := checkBaseURL("etcd", o.Etcd); err != nil {
		return o, err
	}
	o.Host = strings.TrimRight(o.Host, "/")
	if err := checkBaseURL("host", o.Host); err != nil {
		return o, err
	}
	switch {
	case o.MaxSize < 1:
		return o, fmt.Errorf("--max-size must be at least 1, got %d", o.MaxSize)
	case o.TokenTTL < time.Second:
		return o, fmt.Errorf("--token-ttl must be at least 1s, got %s", o.TokenTTL)
	case o.LongPoll <= 0:
		return o, fmt.Errorf("--long-poll must be positive, got %s", o.LongPoll)
	case o.NewBurst < 1:
		return o, fmt.Errorf("--new-burst must be at least 1, got %d", o.NewBurst)
	case (o.EtcdCertFile == "") != (o.EtcdKeyFile == ""):
		return o, errors.New("--etcd-certfile and --etcd-keyfile must be given together")
	}
	return o, nil
}

// checkBaseURL accepts scheme://host[:port] only, as the original service.
func checkBaseURL(name, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("--%s %q: want http(s)://host[:port] with no path, query or fragment", name, s)
	}
	return nil
}

// storeClient builds the HTTP client for the store, with TLS files if given.
func storeClient(o Options) (*http.Client, error) {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	if o.EtcdCAFile != "" || o.EtcdCertFile != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.EtcdCAFile != "" {
			pem, err := os.ReadFile(o.EtcdCAFile)
			if err != nil {
				return nil, fmt.Errorf("--etcd-cafile: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--etcd-cafile %s: no PEM certificates found", o.EtcdCAFile)
			}
			tc.RootCAs = pool
		}
		if o.EtcdCertFile != "" {
			cert, err := tls.LoadX509KeyPair(o.EtcdCertFile, o.EtcdKeyFile)
			if err != nil {
				return nil, fmt.Errorf("--etcd-certfile/--etcd-keyfile: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		tr.TLSClientConfig = tc
	}
	return &http.Client{Transport: tr}, nil
}

// Run parses args and the environment, serves until ctx is cancelled, and
// returns the exit code. Logs go to stdout; usage errors to stderr.
func Run(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	o, err := Parse(args, lookup, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "discovery: %v\n", err)
		return exitUsage
	}
	log := logging.New(stdout, logging.ParseLevel(o.LogLevel))
	client, err := storeClient(o)
	if err != nil {
		fmt.Fprintf(stderr, "discovery: %v\n", err)
		return exitUsage
	}
	storeURL, _ := url.Parse(strings.TrimRight(o.Etcd, "/"))
	rate := o.NewRate / 60
	if o.NewRate < 0 {
		rate = -1
	}
	h, err := handler.New(handler.Config{
		Store:     storeURL,
		Client:    client,
		PublicURL: o.Host,
		MaxSize:   o.MaxSize,
		TokenTTL:  o.TokenTTL,
		LongPoll:  o.LongPoll,
		NewRate:   rate,
		NewBurst:  o.NewBurst,
		Logger:    log,
	})
	if err != nil {
		fmt.Fprintf(stderr, "discovery: %v\n", err)
		return exitUsage
	}
	log.Info(fmt.Sprintf("discovery server started with etcd %q and host %q", o.Etcd, o.Host))
	if err := serve(ctx, o, h, log); err != nil {
		log.Error("discovery server failed", "err", err)
		return exitError
	}
	return exitOK
}

// serve listens on o.Addr and serves h until ctx ends, then shuts down,
// giving open requests (long polls included) a few seconds to finish.
func serve(ctx context.Context, o Options, h http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      o.LongPoll + 30*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	log.Info("discovery serving on " + ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	return nil
}
