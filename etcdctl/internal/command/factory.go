// Package command holds etcdctl's verbs, one file per verb. Each verb has an
// Options struct, a NewXCommand(f, runF) constructor that only declares flags
// and fills Options, and a runX(ctx, opts) function that does the work and
// writes only to opts.IO.
//
// Commands never print errors or choose exit codes: they return the typed
// errors of errors.go, and etcdctlmain maps them to stderr text and exit
// codes in one place. Read factory.go first (globals, lazy client, sync),
// then set.go as the model verb.
package command

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/corekit/corekit/internal/v2client"
)

// DefaultEndpoints is used when no flag or environment variable names any.
const DefaultEndpoints = "http://127.0.0.1:2379,http://127.0.0.1:4001"

// IOStreams are the command's standard streams.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// GlobalOptions are etcdctl's global flags.
type GlobalOptions struct {
	Debug        bool
	NoSync       bool
	Output       string
	Endpoints    string
	Endpoint     string
	Peers        string
	CAFile       string
	CertFile     string
	KeyFile      string
	Username     string
	Timeout      time.Duration
	TotalTimeout time.Duration
}

// Factory gives commands their dependencies. Client is lazy, so usage errors
// never touch the network.
type Factory struct {
	IO     *IOStreams
	Global *GlobalOptions
	// Getenv reads the environment (ETCDCTL_* fallbacks).
	Getenv func(string) string
	// Environ is the environment exec-watch children inherit.
	Environ func() []string

	mu     sync.Mutex
	client *v2client.Client
}

// NewFactory returns a Factory over the given streams and environment.
func NewFactory(io *IOStreams, getenv func(string) string, environ func() []string) *Factory {
	return &Factory{IO: io, Global: &GlobalOptions{}, Getenv: getenv, Environ: environ}
}

// EndpointList applies etcdctl's precedence: --endpoints, ETCDCTL_ENDPOINTS,
// --endpoint, ETCDCTL_ENDPOINT, --peers/-C, ETCDCTL_PEERS, the default.
func (f *Factory) EndpointList() []string {
	g := f.Global
	s := firstNonEmpty(g.Endpoints, f.Getenv("ETCDCTL_ENDPOINTS"), g.Endpoint, f.Getenv("ETCDCTL_ENDPOINT"),
		g.Peers, f.Getenv("ETCDCTL_PEERS"), DefaultEndpoints)
	return strings.Split(s, ",")
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// TotalContext bounds a non-watch command by --total-timeout.
func (f *Factory) TotalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if f.Global.TotalTimeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, f.Global.TotalTimeout)
}

// ClientNoSync builds (once) a client over the configured endpoints without
// the member sync. Construction failures are *ExitError with code 1.
func (f *Factory) ClientNoSync() (*v2client.Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.client != nil {
		return f.client, nil
	}
	g := f.Global
	cfg := v2client.Config{
		Endpoints:     f.EndpointList(),
		HeaderTimeout: g.Timeout,
		CAFile:        firstNonEmpty(g.CAFile, f.Getenv("ETCDCTL_CA_FILE")),
		CertFile:      firstNonEmpty(g.CertFile, f.Getenv("ETCDCTL_CERT_FILE")),
		KeyFile:       firstNonEmpty(g.KeyFile, f.Getenv("ETCDCTL_KEY_FILE")),
	}
	if g.TotalTimeout > 0 && g.TotalTimeout < 30*time.Second {
		cfg.DialTimeout = g.TotalTimeout
	}
	if u := firstNonEmpty(g.Username, f.Getenv("ETCDCTL_USERNAME")); u != "" {
		user, pass, err := f.credentials(u)
		if err != nil {
			return nil, &ExitError{Code: ExitBadArgs, Stderr: err.Error() + "\n"}
		}
		cfg.Username, cfg.Password = user, pass
	}
	if g.Debug {
		cfg.OnRequest = func(method, url string, body []byte) {
			cmd := fmt.Sprintf("curl -X %s %s", method, url)
			if body != nil {
				cmd += fmt.Sprintf(" -d %q", string(body))
			}
			fmt.Fprintf(f.IO.ErrOut, "cURL Command: %s\n", cmd)
		}
	}
	c, err := v2client.New(cfg)
	if err != nil {
		return nil, &ExitError{Code: ExitBadArgs, Stderr: err.Error() + "\n"}
	}
	f.client = c
	return c, nil
}

// credentials splits user[:password], asking for the password on stdin
// when there is no colon.
func (f *Factory) credentials(u string) (string, string, error) {
	if i := strings.Index(u, ":"); i >= 0 {
		return u[:i], u[i+1:], nil
	}
	fmt.Fprint(f.IO.ErrOut, "Password: ")
	line, err := bufio.NewReader(f.IO.In).ReadString('\n')
	if err != nil && line == "" {
		return "", "", fmt.Errorf("read password: %w", err)
	}
	return u, strings.TrimRight(line, "\r\n"), nil
}

// Client builds the client and, unless --no-sync, replaces its endpoints
// with the members' advertised client URLs, as etcdctl v2 does before every
// key and member command. A sync that fails only with connection errors is
// fatal (exit 2); other sync failures keep the given endpoints.
func (f *Factory) Client(ctx context.Context) (*v2client.Client, error) {
	c, err := f.ClientNoSync()
	if err != nil {
		return nil, err
	}
	g := f.Global
	if !g.NoSync {
		if g.Debug {
			fmt.Fprintf(f.IO.ErrOut, "start to sync cluster using endpoints(%s)\n", strings.Join(c.Endpoints(), ","))
		}
		sctx, cancel := f.TotalContext(ctx)
		err := c.Sync(sctx)
		cancel()
		switch {
		case errors.Is(err, v2client.ErrNoClientURLs):
			fmt.Fprintf(f.IO.ErrOut, "etcd cluster has no published client endpoints.\n")
			fmt.Fprintf(f.IO.ErrOut, "Try '--no-sync' if you want to access non-published client endpoints(%s).\n", strings.Join(c.Endpoints(), ","))
			return nil, &CodedError{Code: ExitServerError, Err: v2client.ErrNoEndpoints}
		case err != nil && isConnectionError(err):
			return nil, &CodedError{Code: ExitBadConnection, Err: err}
		}
		if g.Debug {
			fmt.Fprintf(f.IO.ErrOut, "got endpoints(%s) after sync\n", strings.Join(c.Endpoints(), ","))
		}
	}
	if g.Debug {
		fmt.Fprintf(f.IO.ErrOut, "Cluster-Endpoints: %s\n", strings.Join(c.Endpoints(), ", "))
	}
	return c, nil
}

// isConnectionError reports whether err (or every per-endpoint error of a
// cluster error) is a dial/read failure, a refused connection or a timeout.
func isConnectionError(err error) bool {
	var ce *v2client.ClusterError
	if errors.As(err, &ce) {
		if len(ce.Errors) == 0 {
			return false
		}
		for _, e := range ce.Errors {
			if !isConnectionError(e) {
				return false
			}
		}
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) && (oe.Op == "dial" || oe.Op == "read") {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
