// Package command holds fleetctl's verbs, one file per verb. Each verb has
// an Options struct, a NewXCommand(f, runF) constructor that only declares
// flags and fills Options, and a runX(ctx, opts) function that does the work
// and writes only to the Factory's streams.
//
// Verbs print fleetctl's own messages themselves (they are part of each
// verb's contract) and return an *ExitError carrying the exit code;
// fleetctlmain is the one place that turns errors into exit codes. Read
// factory.go first (globals, lazy client), then wait.go (how verbs wait for
// states) and start.go as the model verb.
package command

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/corekit/corekit/fleetctl/internal/client"
	"github.com/corekit/corekit/fleetctl/internal/sshx"
	"github.com/corekit/corekit/internal/fleetapi"
	"github.com/corekit/corekit/internal/fleetregistry"
	"github.com/corekit/corekit/internal/v2client"
)

// Version is what `fleetctl version` reports: the fleet release we imitate.
const Version = fleetregistry.Version

// IOStreams are the command's standard streams.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// InFile is stdin as a file when it is one (interactive ssh).
	InFile *os.File
	// OutTTY is true when Out is a terminal (tables are space-padded).
	OutTTY bool
}

// GlobalOptions are fleetctl's global flags (each also FLEETCTL_<NAME>).
type GlobalOptions struct {
	Endpoint              string
	Driver                string
	EtcdKeyPrefix         string
	Tunnel                string
	SSHUserName           string
	SSHTimeout            float64
	RequestTimeout        float64
	StrictHostKeyChecking bool
	KnownHostsFile        string
	CAFile                string
	CertFile              string
	KeyFile               string
	Debug                 bool
	ExperimentalAPI       bool
}

// Driver names (matched case-insensitively).
const (
	DriverAPI  = "API"
	DriverEtcd = "etcd"
)

// Factory gives commands their dependencies. The cluster client is built
// lazily, so usage errors never touch the network.
type Factory struct {
	IO     *IOStreams
	Global *GlobalOptions
	// Getenv reads the environment (SSH_AUTH_SOCK).
	Getenv func(string) string
	// Now is the clock (log timestamps).
	Now func() time.Time
	// Poll is the pause between two polls of a unit's state (250 ms) and
	// Attempt the length of one --block-attempts attempt (2 s).
	Poll, Attempt time.Duration
	// LocalMachineID returns this host's machine ID, "" when unknown; a
	// unit on this machine is inspected locally instead of over SSH.
	LocalMachineID func() string
	// Exec runs a local command (status/journal on this machine) and
	// returns its exit status.
	Exec func(ctx context.Context, argv []string, in io.Reader, out, errOut io.Writer) (int, error)
	// Log receives --debug logs.
	Log *slog.Logger

	mu     sync.Mutex
	api    client.API
	tunnel *sshx.Client
	hosts  *sshx.KnownHosts
}

// Close releases connections the factory opened (the SSH tunnel).
func (f *Factory) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tunnel != nil {
		f.tunnel.Close()
		f.tunnel = nil
	}
}

// DriverName returns the canonical driver name or an error for an unknown one.
func (f *Factory) DriverName() (string, error) {
	switch strings.ToLower(f.Global.Driver) {
	case "api":
		return DriverAPI, nil
	case "etcd":
		return DriverEtcd, nil
	}
	return "", fmt.Errorf("unrecognized driver %q", f.Global.Driver)
}

// TunnelAddr is --tunnel with ":22" appended when it has no port.
func (f *Factory) TunnelAddr() string {
	t := f.Global.Tunnel
	if t != "" && !strings.Contains(t, ":") {
		t += ":22"
	}
	return t
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// KnownHosts is the host key checker built from the global flags.
func (f *Factory) KnownHosts() *sshx.KnownHosts {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hosts == nil {
		file := f.Global.KnownHostsFile
		if file == "" {
			file = sshx.DefaultKnownHostsPath
		}
		file = sshx.ExpandHome(file)
		f.hosts = &sshx.KnownHosts{File: file, Strict: f.Global.StrictHostKeyChecking, Prompt: f.IO.ErrOut, Answer: f.IO.In}
	}
	return f.hosts
}

// SSH connects to addr (host[:port]) as --ssh-username, through --tunnel
// when set.
func (f *Factory) SSH(ctx context.Context, addr string) (*sshx.Client, error) {
	return sshx.Dial(ctx, sshx.Config{
		User:      f.Global.SSHUserName,
		Addr:      addr,
		Tunnel:    f.TunnelAddr(),
		Timeout:   seconds(f.Global.SSHTimeout),
		AgentSock: f.Getenv("SSH_AUTH_SOCK"),
		HostKey:   f.KnownHosts().Callback(),
	})
}

// dialer returns the DialContext used to reach the API or etcd: direct, or
// through an SSH connection to --tunnel. The caller holds f.mu.
func (f *Factory) dialer(ctx context.Context, hosts *sshx.KnownHosts) (func(ctx context.Context, network, addr string) (net.Conn, error), error) {
	if f.Global.Tunnel == "" {
		d := &net.Dialer{Timeout: 10 * time.Second}
		return d.DialContext, nil
	}
	if f.tunnel == nil {
		c, err := sshx.Dial(ctx, sshx.Config{
			User:      f.Global.SSHUserName,
			Addr:      f.TunnelAddr(),
			Timeout:   seconds(f.Global.SSHTimeout),
			AgentSock: f.Getenv("SSH_AUTH_SOCK"),
			HostKey:   hosts.Callback(),
		})
		if err != nil {
			return nil, fmt.Errorf("failed initializing SSH client: %w", err)
		}
		f.tunnel = c
	}
	t := f.tunnel
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return t.DialContext(ctx, network, addr)
	}, nil
}

// API builds (once) the cluster client for --driver and --endpoint.
func (f *Factory) API(ctx context.Context) (client.API, error) {
	drv, err := f.DriverName()
	if err != nil {
		return nil, err
	}
	hosts := f.KnownHosts() // before taking f.mu: KnownHosts locks it too
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.api != nil {
		return f.api, nil
	}
	dial, err := f.dialer(ctx, hosts)
	if err != nil {
		return nil, err
	}
	g := f.Global
	switch drv {
	case DriverEtcd:
		eps := strings.Split(g.Endpoint, ",")
		tr := &http.Transport{DialContext: dial, ResponseHeaderTimeout: seconds(g.RequestTimeout)}
		cfg := v2client.Config{Endpoints: eps, HeaderTimeout: seconds(g.RequestTimeout),
			CAFile: g.CAFile, CertFile: g.CertFile, KeyFile: g.KeyFile, Logger: f.Log}
		if g.Tunnel != "" {
			cfg.Transport = tr
		}
		if g.Debug {
			cfg.OnRequest = func(method, u string, _ []byte) { f.Log.Debug("etcd request", "method", method, "url", u) }
		}
		c, err := v2client.New(cfg)
		if err != nil {
			return nil, err
		}
		f.api = client.Registry{R: fleetregistry.NewEtcd(c, g.EtcdKeyPrefix)}
	default:
		ep := g.Endpoint
		if i := strings.Index(ep, ","); i >= 0 {
			ep = ep[:i]
			fmt.Fprintln(f.IO.ErrOut, "WARNING: multiple endpoints provided but only the first will be used")
		}
		// fleetapi validates the endpoint ("URL scheme undefined", a unix
		// URL with a host); the transport below replaces its own so that
		// --tunnel and --debug apply to every scheme.
		if _, err := fleetapi.NewClient(ep, nil); err != nil {
			return nil, err
		}
		u, err := url.Parse(ep)
		if err != nil {
			return nil, err
		}
		tr := &http.Transport{DialContext: dial}
		base := ep
		switch u.Scheme {
		case "unix", "file":
			sock := u.Path
			tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx, "unix", sock) }
			base = "http://domain-sock"
		case "https":
			tc, err := tlsConfig(g.CAFile, g.CertFile, g.KeyFile)
			if err != nil {
				return nil, err
			}
			tr.TLSClientConfig = tc
		}
		c, err := fleetapi.NewClient(base, &http.Client{Transport: debugTransport{rt: tr, f: f}})
		if err != nil {
			return nil, err
		}
		f.api = client.HTTP{C: c}
	}
	return f.api, nil
}

// debugTransport logs each API request with --debug.
type debugTransport struct {
	rt http.RoundTripper
	f  *Factory
}

func (d debugTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if d.f.Global.Debug {
		d.f.Log.Debug("HTTP request", "method", r.Method, "url", r.URL.String())
	}
	return d.rt.RoundTrip(r)
}

// tlsConfig builds the client TLS configuration of --ca-file, --cert-file
// and --key-file.
func tlsConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificates in CA file %s", caFile)
		}
		tc.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
