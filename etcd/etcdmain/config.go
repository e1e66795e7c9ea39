package etcdmain

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/corekit/corekit/etcd/internal/legacyflags"
	"github.com/corekit/corekit/etcd/internal/membership"
	"github.com/corekit/corekit/internal/tlsutil"
)

// Defaults of etcd 2.3.
const (
	defaultName                = "default"
	defaultListenPeerURLs      = "http://localhost:2380,http://localhost:7001"
	defaultListenClientURLs    = "http://localhost:2379,http://localhost:4001"
	defaultAdvertiseClientURLs = "http://localhost:2379,http://localhost:4001"
	defaultPeerURLs            = "http://localhost:2380,http://localhost:7001"
	maxElectionMs              = 50000
)

func initialClusterFromName(name string) string {
	return fmt.Sprintf("%s=http://localhost:2380,%s=http://localhost:7001", name, name)
}

// Config is the parsed command line and environment.
type Config struct {
	Name                     string
	DataDir                  string
	WalDir                   string
	SnapshotCount            uint64
	HeartbeatMs              uint
	ElectionMs               uint
	ListenPeerURLs           []string
	ListenClientURLs         []string
	InitialAdvertisePeerURLs []string
	AdvertiseClientURLs      []string
	InitialCluster           string
	InitialClusterState      string
	InitialClusterToken      string
	MaxSnapshots             uint
	MaxWals                  uint
	CORS                     []string
	Discovery                string
	DiscoverySRV             string
	DiscoveryFallback        string
	DiscoveryProxy           string
	DiscoveryDefaultSize     uint
	Proxy                    string
	ProxyFailureWaitMs       uint
	ProxyRefreshIntervalMs   uint
	ProxyDialTimeoutMs       uint
	ProxyWriteTimeoutMs      uint
	ProxyReadTimeoutMs       uint
	Debug                    bool
	PrintVersion             bool
	// ClockOffsetFile is the hidden --experimental-clock-offset-file
	// (clockhook.go).
	ClockOffsetFile string
	// ClientTLS and PeerTLS are the --cert-file … and --peer-cert-file …
	// flag sets.
	ClientTLS tlsutil.Info
	PeerTLS   tlsutil.Info

	// Warnings are messages to log once a logger exists (ignored legacy
	// flags, unknown ETCD_* variables, defaults); Notices likewise at info
	// level (translated 0.4 settings).
	Warnings []string
	Notices  []string
}

// Errors whose text etcd prints verbatim.
var (
	errUnsetAdvertiseClientURLs = errors.New("-advertise-client-urls is required when -listen-client-urls is set explicitly")
	errConflictBootstrapFlags   = errors.New(`multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery" or "discovery-srv"`)
)

// usageError is a command-line syntax error (Go flag semantics: exit 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// stringFlag remembers whether it was set (on the command line or by env).
type stringFlag struct {
	val string
	set bool
}

func (f *stringFlag) String() string { return f.val }
func (f *stringFlag) Set(s string) error {
	f.val, f.set = s, true
	return nil
}

// urlsFlag is a comma-separated URL list validated as etcd does.
type urlsFlag struct {
	urls []string
	set  bool
}

func (f *urlsFlag) String() string { return strings.Join(f.urls, ",") }
func (f *urlsFlag) Set(s string) error {
	u, err := membership.ParseURLs(s)
	if err != nil {
		return err
	}
	f.urls, f.set = u, true
	return nil
}

// parser holds the FlagSet and the values behind it.
type parser struct {
	fs                             *flag.FlagSet
	cfg                            *Config
	lpurls, lcurls, apurls, acurls urlsFlag
	cluster, dataDir, cors         stringFlag
}

func newParser(stderr io.Writer) *parser {
	p := &parser{cfg: &Config{}}
	c := p.cfg
	fs := flag.NewFlagSet("etcd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	p.fs = fs
	_ = p.lpurls.Set(defaultListenPeerURLs)
	_ = p.lcurls.Set(defaultListenClientURLs)
	_ = p.apurls.Set(defaultPeerURLs)
	_ = p.acurls.Set(defaultAdvertiseClientURLs)
	p.lpurls.set, p.lcurls.set, p.apurls.set, p.acurls.set = false, false, false, false
	p.cluster.val = initialClusterFromName(defaultName)

	// member
	fs.StringVar(&c.Name, "name", defaultName, "Unique human-readable name for this member.")
	fs.Var(&p.dataDir, "data-dir", "Path to the data directory (default ${name}.etcd).")
	fs.StringVar(&c.WalDir, "wal-dir", "", "Path to the dedicated WAL directory (accepted; the log stays under data-dir).")
	fs.Uint64Var(&c.SnapshotCount, "snapshot-count", 10000, "Number of committed transactions to trigger a snapshot to disk.")
	fs.UintVar(&c.HeartbeatMs, "heartbeat-interval", 100, "Time (in milliseconds) of a heartbeat interval.")
	fs.UintVar(&c.ElectionMs, "election-timeout", 1000, "Time (in milliseconds) for an election to timeout.")
	fs.Var(&p.lpurls, "listen-peer-urls", "List of URLs to listen on for peer traffic.")
	fs.Var(&p.lcurls, "listen-client-urls", "List of URLs to listen on for client traffic.")
	fs.UintVar(&c.MaxSnapshots, "max-snapshots", 5, "Maximum number of snapshot files to retain (0 is unlimited).")
	fs.UintVar(&c.MaxWals, "max-wals", 5, "Maximum number of wal files to retain (accepted; the log is compacted after snapshots).")
	fs.Var(&p.cors, "cors", "Comma-separated white list of origins for CORS (cross-origin resource sharing).")
	// clustering
	fs.Var(&p.apurls, "initial-advertise-peer-urls", "List of this member's peer URLs to advertise to the rest of the cluster.")
	fs.Var(&p.cluster, "initial-cluster", "Initial cluster configuration for bootstrapping.")
	fs.StringVar(&c.InitialClusterState, "initial-cluster-state", "new", "Initial cluster state ('new' or 'existing').")
	fs.StringVar(&c.InitialClusterToken, "initial-cluster-token", "etcd-cluster", "Initial cluster token for the etcd cluster during bootstrap.")
	fs.Var(&p.acurls, "advertise-client-urls", "List of this member's client URLs to advertise to the public.")
	fs.StringVar(&c.Discovery, "discovery", "", "Discovery URL used to bootstrap the cluster.")
	fs.StringVar(&c.DiscoverySRV, "discovery-srv", "", "DNS domain used to bootstrap initial cluster.")
	fs.StringVar(&c.DiscoveryFallback, "discovery-fallback", "proxy", "Expected behavior ('exit' or 'proxy') when discovery services fails.")
	fs.StringVar(&c.DiscoveryProxy, "discovery-proxy", "", "HTTP proxy to use for traffic to discovery service.")
	fs.UintVar(&c.DiscoveryDefaultSize, "discovery-default-size", 3, "Cluster size assumed when a plain /v2/keys/ discovery URL has no _config/size (corekit extension; 0 disables).")
	fs.Bool("strict-reconfig-check", false, "Reject reconfiguration requests that would cause quorum loss.")
	// proxy
	fs.StringVar(&c.Proxy, "proxy", "off", "Valid values include 'on', 'readonly', 'off'.")
	fs.UintVar(&c.ProxyFailureWaitMs, "proxy-failure-wait", 5000, "Time (in milliseconds) an endpoint will be held in a failed state.")
	fs.UintVar(&c.ProxyRefreshIntervalMs, "proxy-refresh-interval", 30000, "Time (in milliseconds) of the endpoints refresh interval.")
	fs.UintVar(&c.ProxyDialTimeoutMs, "proxy-dial-timeout", 1000, "Time (in milliseconds) for a dial to timeout.")
	fs.UintVar(&c.ProxyWriteTimeoutMs, "proxy-write-timeout", 5000, "Time (in milliseconds) for a write to timeout.")
	fs.UintVar(&c.ProxyReadTimeoutMs, "proxy-read-timeout", 0, "Time (in milliseconds) for a read to timeout.")
	// security
	fs.StringVar(&c.ClientTLS.CAFile, "ca-file", "", "DEPRECATED: Path to the client server TLS CA file.")
	fs.StringVar(&c.ClientTLS.CertFile, "cert-file", "", "Path to the client server TLS cert file.")
	fs.StringVar(&c.ClientTLS.KeyFile, "key-file", "", "Path to the client server TLS key file.")
	fs.BoolVar(&c.ClientTLS.ClientCertAuth, "client-cert-auth", false, "Enable client cert authentication.")
	fs.StringVar(&c.ClientTLS.TrustedCAFile, "trusted-ca-file", "", "Path to the client server TLS trusted CA key file.")
	fs.StringVar(&c.PeerTLS.CAFile, "peer-ca-file", "", "DEPRECATED: Path to the peer server TLS CA file.")
	fs.StringVar(&c.PeerTLS.CertFile, "peer-cert-file", "", "Path to the peer server TLS cert file.")
	fs.StringVar(&c.PeerTLS.KeyFile, "peer-key-file", "", "Path to the peer server TLS key file.")
	fs.BoolVar(&c.PeerTLS.ClientCertAuth, "peer-client-cert-auth", false, "Enable peer client cert authentication.")
	fs.StringVar(&c.PeerTLS.TrustedCAFile, "peer-trusted-ca-file", "", "Path to the peer server TLS trusted CA file.")
	for _, n := range []string{"force-new-cluster", "enable-pprof"} {
		fs.Bool(n, false, "Accepted for compatibility.")
	}
	fs.String("log-package-levels", "", "Accepted for compatibility (use --debug).")
	fs.BoolVar(&c.Debug, "debug", false, "Enable debug-level logging for etcd.")
	fs.BoolVar(&c.PrintVersion, "version", false, "Print the version and exit.")
	fs.StringVar(&c.ClockOffsetFile, flagClockOffsetFile, "", "Test only: file holding a signed duration added to the wall clock used for TTLs.")

	return p
}

// parseConfig parses args and environ (os.Environ form) into a validated
// Config. etcd 0.4 settings (-addr, -peer-addr, ETCD_ADDR, …) are first
// translated by package legacyflags; hostname (may be empty) is the default
// name while they are in use. Syntax errors are *usageError; flag.ErrHelp is
// returned for -h.
func parseConfig(args []string, environ []string, hostname string, stderr io.Writer) (*Config, error) {
	p := newParser(stderr)
	p.fs.Usage = func() { printUsage(stderr, p.fs) }
	tr, err := legacyflags.Translate(args, environ, legacyflags.Options{Hostname: hostname})
	var lu *legacyflags.UsageError
	switch {
	case errors.As(err, &lu):
		fmt.Fprintln(stderr, lu.Error())
		p.fs.Usage()
		return nil, &usageError{err}
	case err != nil:
		return nil, err
	}
	args, environ = tr.Args, tr.Env
	p.cfg.Warnings = append(p.cfg.Warnings, tr.Warnings...)
	p.cfg.Notices = append(p.cfg.Notices, tr.Notices...)
	if err := p.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &usageError{err}
	}
	if p.fs.NArg() != 0 {
		return nil, fmt.Errorf("'%s' is not a valid flag", p.fs.Arg(0))
	}
	if err := p.applyEnv(environ); err != nil {
		return nil, err
	}
	if p.cfg.PrintVersion {
		return p.cfg, nil
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	return p.cfg, nil
}

// applyEnv sets every flag not given on the command line from ETCD_<NAME>,
// ignoring empty values; unknown ETCD_* variables become warnings.
func (p *parser) applyEnv(environ []string) error {
	set := map[string]bool{}
	p.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	known := map[string]bool{}
	var ferr error
	p.fs.VisitAll(func(f *flag.Flag) {
		key := "ETCD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		known[key] = true
		if set[f.Name] || ferr != nil {
			return
		}
		val, ok := lookup(environ, key)
		if !ok || val == "" {
			return
		}
		if err := p.fs.Set(f.Name, val); err != nil {
			ferr = fmt.Errorf("invalid value %q for %s: %v", val, key, err)
		}
	})
	if ferr != nil {
		return ferr
	}
	var unknown []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ETCD_") && !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		p.cfg.Warnings = append(p.cfg.Warnings, "unrecognized environment variable "+k)
	}
	return nil
}

func lookup(environ []string, key string) (string, bool) {
	for i := len(environ) - 1; i >= 0; i-- {
		k, v, ok := strings.Cut(environ[i], "=")
		if ok && k == key {
			return v, true
		}
	}
	return "", false
}

// finish applies the legacy translations and etcd's validation.
func (p *parser) finish() error {
	c := p.cfg
	c.ListenPeerURLs, c.ListenClientURLs = p.lpurls.urls, p.lcurls.urls
	c.InitialAdvertisePeerURLs, c.AdvertiseClientURLs = p.apurls.urls, p.acurls.urls

	// A changed name with the default cluster renames the default cluster.
	c.InitialCluster = p.cluster.val
	if c.Name != defaultName && !p.cluster.set {
		c.InitialCluster = initialClusterFromName(c.Name)
	}
	c.DataDir = p.dataDir.val
	if !p.dataDir.set || c.DataDir == "" {
		c.DataDir = c.Name + ".etcd"
		c.Warnings = append(c.Warnings, fmt.Sprintf("no data-dir provided, using default data-dir ./%s", c.DataDir))
	}
	if c.WalDir != "" {
		c.Warnings = append(c.Warnings, "--wal-dir is not supported: the raft log stays in <data-dir>/member/wal")
	}
	if p.cors.val != "" {
		for _, o := range strings.Split(p.cors.val, ",") {
			c.CORS = append(c.CORS, strings.TrimSpace(o))
		}
	}

	n := 0
	for _, s := range []bool{p.cluster.set, c.Discovery != "", c.DiscoverySRV != ""} {
		if s {
			n++
		}
	}
	if n > 1 {
		return errConflictBootstrapFlags
	}
	proxyPossible := c.Proxy != "off" || (c.Discovery != "" && c.DiscoveryFallback == "proxy")
	if p.lcurls.set && !p.acurls.set && !proxyPossible {
		return errUnsetAdvertiseClientURLs
	}
	if 5*c.HeartbeatMs > c.ElectionMs {
		return fmt.Errorf("-election-timeout[%vms] should be at least as 5 times as -heartbeat-interval[%vms]", c.ElectionMs, c.HeartbeatMs)
	}
	if c.ElectionMs > maxElectionMs {
		return fmt.Errorf("-election-timeout[%vms] is too long, and should be set less than %vms", c.ElectionMs, maxElectionMs)
	}
	switch c.InitialClusterState {
	case "new", "existing":
	default:
		return fmt.Errorf(`invalid value %q for flag -initial-cluster-state: valid values are "new" or "existing"`, c.InitialClusterState)
	}
	switch c.Proxy {
	case "off", "on", "readonly":
	default:
		return fmt.Errorf(`invalid value %q for flag -proxy: valid values are "off", "readonly" or "on"`, c.Proxy)
	}
	if c.DiscoverySRV != "" {
		return errors.New("--discovery-srv is not supported yet")
	}
	if c.Discovery != "" {
		if c.InitialClusterState == "existing" {
			return errors.New("discovery URL should not be set when joining existing initial cluster")
		}
		switch c.DiscoveryFallback {
		case "exit", "proxy":
		default:
			return fmt.Errorf(`invalid value %q for flag -discovery-fallback: valid values are "exit" or "proxy"`, c.DiscoveryFallback)
		}
		return nil // the initial cluster comes from the discovery service
	}
	if c.Proxy != "off" {
		_, err := membership.ParseInitialCluster(c.InitialCluster)
		return err // a proxy only needs the peers' URLs
	}
	return p.verifyBootstrap()
}

// verifyBootstrap checks that the initial cluster names this member with
// exactly its advertised peer URLs.
func (p *parser) verifyBootstrap() error {
	c := p.cfg
	ic, err := membership.ParseInitialCluster(c.InitialCluster)
	if err != nil {
		return err
	}
	urls, ok := ic.URLs[c.Name]
	if !ok {
		return fmt.Errorf("couldn't find local name %q in the initial cluster configuration", c.Name)
	}
	mine, err := membership.ParseURLs(strings.Join(urls, ","))
	if err != nil {
		return err
	}
	adv := strings.Join(c.InitialAdvertisePeerURLs, ",")
	if strings.Join(mine, ",") != adv {
		var pairs []string
		for _, u := range c.InitialAdvertisePeerURLs {
			pairs = append(pairs, c.Name+"="+u)
		}
		msg := fmt.Sprintf("--initial-cluster must include %s given --initial-advertise-peer-urls=%s", strings.Join(pairs, ","), adv)
		if !p.cluster.set {
			msg += "\nforgot to set --initial-cluster flag?"
		}
		return errors.New(msg)
	}
	return nil
}

// heartbeat and election as durations.
func (c *Config) heartbeat() time.Duration { return time.Duration(c.HeartbeatMs) * time.Millisecond }
func (c *Config) election() time.Duration  { return time.Duration(c.ElectionMs) * time.Millisecond }

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "usage: etcd [flags]")
	fmt.Fprintln(w, "       start an etcd server")
	fmt.Fprintln(w, "")
	fmt.Fprintln(w, "       etcd --version")
	fmt.Fprintln(w, "       show the version of etcd")
	fmt.Fprintln(w, "")
	fmt.Fprintln(w, "       etcd -h | --help")
	fmt.Fprintln(w, "       show the help information about etcd")
	fmt.Fprintln(w, "")
	fmt.Fprintln(w, "Every flag may also be set with an ETCD_ environment variable: --initial-cluster-token is ETCD_INITIAL_CLUSTER_TOKEN. A flag on the command line wins.")
	fmt.Fprintln(w, "")
	shown := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	shown.SetOutput(w)
	fs.VisitAll(func(f *flag.Flag) {
		if !isHiddenFlag(f.Name) {
			shown.Var(f.Value, f.Name, f.Usage)
			shown.Lookup(f.Name).DefValue = f.DefValue
		}
	})
	shown.PrintDefaults()
}

// discoveryDefaultSize maps --discovery-default-size to
// embed.Config.DiscoveryDefaultSize (where 0 would mean 3): 0 disables.
func (c *Config) discoveryDefaultSize() int {
	if c.DiscoveryDefaultSize == 0 {
		return -1
	}
	return int(min(c.DiscoveryDefaultSize, 1<<20))
}
