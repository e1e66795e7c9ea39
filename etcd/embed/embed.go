// Package embed starts an etcd member inside the calling process: the same
// member the etcd binary runs (raft, durable log, v2 HTTP API), for tests of
// other binaries and for etcdmain itself.
//
// Start listens on the configured URLs (free loopback ports when none are
// given), opens or creates the data directory, starts raft and serves the
// client and peer HTTP APIs until Close.
package embed

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/corekit/corekit/etcd/internal/discovery"
	"github.com/corekit/corekit/etcd/internal/etcdserver"
	"github.com/corekit/corekit/etcd/internal/membership"
	"github.com/corekit/corekit/etcd/internal/raftnode"
	"github.com/corekit/corekit/etcd/internal/v2http"
	"github.com/corekit/corekit/internal/logging"
	"github.com/corekit/corekit/internal/tlsutil"
)

// Config configures a member. Only DataDir is required: empty URL lists
// mean one free port on 127.0.0.1 for clients and one for peers, and an
// empty InitialCluster means a single-member cluster of this member.
type Config struct {
	Name    string // default "default"
	DataDir string

	ListenClientURLs    []string
	AdvertiseClientURLs []string // default: the listen URLs (actual ports)
	ListenPeerURLs      []string
	// InitialAdvertisePeerURLs default to the listen peer URLs.
	InitialAdvertisePeerURLs []string
	// InitialCluster is --initial-cluster ("name=url,…"); empty means
	// Name=InitialAdvertisePeerURLs.
	InitialCluster      string
	InitialClusterState string // "new" (default) or "existing"
	InitialClusterToken string // default "etcd-cluster"

	// Discovery is a discovery token URL (--discovery): on first start the
	// member registers there and waits for the whole cluster; the token
	// URL becomes the cluster token. Ignored once the data dir holds a
	// member.
	Discovery      string
	DiscoveryProxy string // --discovery-proxy
	// DiscoveryDefaultSize is --discovery-default-size (a corekit
	// extension): the cluster size assumed, with a warning, when Discovery
	// is a plain keys URL (path containing /v2/keys/) with no _config/size,
	// as etcd 0.4-era setups (seed 001) have. Zero means 3; negative
	// disables it. Discovery service tokens are never defaulted.
	DiscoveryDefaultSize int

	SnapshotCount     uint64        // default 10000
	HeartbeatInterval time.Duration // default 100ms
	ElectionTimeout   time.Duration // default 1s
	MaxSnapshots      int           // snapshot files kept; default 2
	LogStore          string        // raftnode.LogStoreWAL (default) or LogStoreBolt
	CORS              []string

	// ClientTLS is --cert-file, --key-file, --trusted-ca-file,
	// --client-cert-auth, --ca-file: https client URLs serve TLS with it.
	ClientTLS tlsutil.Info
	// PeerTLS is the --peer-* form: https peer URLs serve raft and peer
	// HTTP over TLS with it, and the member dials its peers with it.
	PeerTLS tlsutil.Info

	Logger *slog.Logger     // default: discard
	Now    func() time.Time // default: time.Now
}

// Etcd is a running member.
type Etcd struct {
	Server *etcdserver.EtcdServer

	cfg        Config
	clientURLs []string
	peerURLs   []string
	mux        *raftnode.PeerMux
	servers    []*http.Server
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	closeOnce  sync.Once
	closeErr   error
	log        *slog.Logger
	errc       chan error
}

// Start starts a member. ctx bounds only the start-up; the member runs until
// Close.
func Start(ctx context.Context, cfg Config) (_ *Etcd, err error) {
	if cfg.DataDir == "" {
		return nil, errors.New("embed: DataDir is required")
	}
	if cfg.Name == "" {
		cfg.Name = "default"
	}
	if cfg.InitialClusterToken == "" {
		cfg.InitialClusterToken = "etcd-cluster"
	}
	if cfg.InitialClusterState == "" {
		cfg.InitialClusterState = "new"
	}
	if cfg.Logger == nil {
		cfg.Logger = logging.Discard()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e := &Etcd{cfg: cfg, log: cfg.Logger.With("pkg", "etcdmain")}
	var clientLs, peerLs []net.Listener
	defer func() {
		if err != nil {
			for _, l := range append(clientLs, peerLs...) {
				l.Close()
			}
			if e.mux != nil {
				e.mux.Close()
			}
		}
	}()

	listenClient := cfg.ListenClientURLs
	if len(listenClient) == 0 {
		listenClient = []string{"http://127.0.0.1:0"}
	}
	listenPeer := cfg.ListenPeerURLs
	if len(listenPeer) == 0 {
		listenPeer = []string{"http://127.0.0.1:0"}
	}
	var actualPeer, actualClient []string
	var peerServerTLS, peerDialTLS, clientServerTLS *tls.Config
	if !cfg.PeerTLS.Empty() {
		if peerServerTLS, err = cfg.PeerTLS.ServerConfig(); err != nil {
			return nil, fmt.Errorf("embed: peer TLS: %w", err)
		}
		if peerDialTLS, err = cfg.PeerTLS.ClientConfig(); err != nil {
			return nil, fmt.Errorf("embed: peer TLS: %w", err)
		}
		e.log.Info("peerTLS: " + cfg.PeerTLS.String())
	}
	if !cfg.ClientTLS.Empty() {
		if clientServerTLS, err = cfg.ClientTLS.ServerConfig(); err != nil {
			return nil, fmt.Errorf("embed: client TLS: %w", err)
		}
		e.log.Info("ClientTLS: " + cfg.ClientTLS.String())
	}
	for _, u := range listenPeer {
		l, actual, err := listen(u, peerServerTLS, "peer-")
		if err != nil {
			return nil, err
		}
		peerLs = append(peerLs, l)
		actualPeer = append(actualPeer, actual)
		e.log.Info("listening for peers on " + actual)
	}
	for _, u := range listenClient {
		l, actual, err := listen(u, clientServerTLS, "")
		if err != nil {
			return nil, err
		}
		clientLs = append(clientLs, l)
		actualClient = append(actualClient, actual)
		e.log.Info("listening for client requests on " + actual)
	}
	e.peerURLs = cfg.InitialAdvertisePeerURLs
	if len(e.peerURLs) == 0 {
		e.peerURLs = actualPeer
	}
	e.clientURLs = cfg.AdvertiseClientURLs
	if len(e.clientURLs) == 0 {
		e.clientURLs = actualClient
	}
	icStr := cfg.InitialCluster
	if cfg.Discovery != "" {
		if haveMember(cfg.DataDir) {
			e.log.Warn(fmt.Sprintf("discovery token ignored since a cluster has already been initialized. Valid log found at %s",
				filepath.Join(cfg.DataDir, "member", "wal")))
		} else {
			icStr, err = discovery.Join(ctx, discovery.Config{
				DiscoveryURL: cfg.Discovery, Name: cfg.Name, PeerURLs: e.peerURLs,
				Proxy: cfg.DiscoveryProxy, Logger: cfg.Logger.With("pkg", "discovery"),
				DefaultSize: DiscoveryDefaultSize(cfg.DiscoveryDefaultSize),
			})
			if err != nil {
				return nil, &DiscoveryError{Err: err}
			}
		}
		cfg.InitialClusterToken = cfg.Discovery
	}
	if icStr == "" {
		var parts []string
		for _, u := range e.peerURLs {
			parts = append(parts, cfg.Name+"="+u)
		}
		icStr = strings.Join(parts, ",")
	}
	ic, err := membership.ParseInitialCluster(icStr)
	if err != nil {
		return nil, fmt.Errorf("embed: --initial-cluster: %w", err)
	}
	advertise, err := membership.HostPort(sortedFirst(e.peerURLs))
	if err != nil {
		return nil, err
	}
	var peerClientTLS *tls.Config
	if strings.HasPrefix(sortedFirst(e.peerURLs), "https://") {
		if peerDialTLS == nil {
			return nil, fmt.Errorf("embed: peer URL %s is https but no --peer-cert-file/--peer-key-file is given", sortedFirst(e.peerURLs))
		}
		peerClientTLS = peerDialTLS
	}
	e.mux = raftnode.NewPeerMuxTLS(peerLs, raftnode.AdvertiseAddr(advertise), peerClientTLS)

	srv, err := etcdserver.New(ctx, etcdserver.Config{
		Name:           cfg.Name,
		DataDir:        cfg.DataDir,
		ClientURLs:     e.clientURLs,
		PeerURLs:       e.peerURLs,
		InitialCluster: ic,
		ClusterState:   cfg.InitialClusterState,
		Token:          cfg.InitialClusterToken,
		SnapshotCount:  cfg.SnapshotCount,
		Heartbeat:      cfg.HeartbeatInterval,
		Election:       cfg.ElectionTimeout,
		MaxSnapshots:   cfg.MaxSnapshots,
		LogStore:       cfg.LogStore,
		PeerTLS:        peerClientTLS,
		Mux:            e.mux,
		Now:            cfg.Now,
		Logger:         cfg.Logger.With("pkg", "etcdserver"),
	})
	if err != nil {
		return nil, err
	}
	e.Server = srv

	runCtx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.wg.Add(1)
	e.errc = make(chan error, 1)
	go func() {
		defer e.wg.Done()
		if err := srv.Run(runCtx); err != nil {
			e.errc <- err
		}
	}()

	client := v2http.NewClientHandler(srv, v2http.Options{Logger: cfg.Logger.With("pkg", "v2http"), Now: cfg.Now, CORS: cfg.CORS})
	for _, l := range clientLs {
		e.serve(l, client)
	}
	e.serve(e.mux.HTTP(), srv.PeerHandler())
	return e, nil
}

// DiscoveryDefaultSize maps Config.DiscoveryDefaultSize to
// discovery.Config.DefaultSize: zero means 3, negative disables.
func DiscoveryDefaultSize(n int) int {
	switch {
	case n == 0:
		return 3
	case n < 0:
		return 0
	}
	return n
}

// DiscoveryError is a failed discovery bootstrap; etcdmain prints etcd's
// messages for it (discovery.ExitMessages).
type DiscoveryError struct{ Err error }

func (e *DiscoveryError) Error() string { return e.Err.Error() }
func (e *DiscoveryError) Unwrap() error { return e.Err }

// haveMember reports whether dataDir already holds a member's identity.
func haveMember(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, "member", "cluster.json"))
	return err == nil
}

func sortedFirst(urls []string) string {
	s, err := membership.ParseURLs(strings.Join(urls, ","))
	if err != nil || len(s) == 0 {
		return urls[0]
	}
	return s[0]
}

func (e *Etcd) serve(l net.Listener, h http.Handler) {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
	}
	e.servers = append(e.servers, hs)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Debug("http server stopped", "addr", l.Addr().String(), "err", err)
		}
	}()
}

// listen opens a TCP listener for an http or https URL and returns the URL
// with the actual port. An https listener serves TLS with tc (which must be
// set: prefix names the flags, "" or "peer-"); an http listener ignores tc.
func listen(raw string, tc *tls.Config, prefix string) (net.Listener, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("embed: listen URL %q: %w", raw, err)
	}
	switch {
	case u.Scheme == "https" && tc == nil:
		return nil, "", fmt.Errorf("TLS key/cert (--%scert-file, --%skey-file) must be provided for %s with HTTPS scheme", prefix, prefix, raw)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, "", fmt.Errorf("embed: listen URL %q: scheme must be http or https", raw)
	}
	l, err := net.Listen("tcp", u.Host)
	if err != nil {
		return nil, "", fmt.Errorf("embed: listen on %s: %w", raw, err)
	}
	if u.Scheme == "https" {
		l = tls.NewListener(l, tc)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	host := u.Hostname()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return l, u.Scheme + "://" + host + ":" + port, nil
}

// ClientURL is the first advertised client URL.
func (e *Etcd) ClientURL() string { return e.clientURLs[0] }

// ClientURLs are the advertised client URLs.
func (e *Etcd) ClientURLs() []string { return e.clientURLs }

// PeerURLs are the advertised peer URLs.
func (e *Etcd) PeerURLs() []string { return e.peerURLs }

// Ready is closed when the member has applied its on-disk state.
func (e *Etcd) Ready() <-chan struct{} { return e.Server.Ready() }

// Err reports a fatal error of the running member, such as
// etcdserver.ErrClusterIDMismatch (its data dir belongs to another cluster
// than all its peers); the caller should then Close it.
func (e *Etcd) Err() <-chan error { return e.errc }

// Close stops serving, stops raft and closes the data directory: the
// member shuts down gracefully (in-flight requests get up to 2 s).
func (e *Etcd) Close() error {
	e.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, hs := range e.servers {
			// Watches never end by themselves: close whatever is left.
			if err := hs.Shutdown(ctx); err != nil {
				hs.Close()
			}
		}
		e.cancel()
		e.closeErr = e.Server.Close()
		e.mux.Close()
		e.wg.Wait()
	})
	return e.closeErr
}
