package etcdmain

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
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/corekit/corekit/etcd/embed"
	"github.com/corekit/corekit/etcd/internal/discovery"
	"github.com/corekit/corekit/etcd/internal/membership"
	"github.com/corekit/corekit/etcd/internal/proxy"
	"github.com/corekit/corekit/internal/tlsutil"
)

func ms(v uint) time.Duration { return time.Duration(v) * time.Millisecond }

// runProxy runs etcd's v2 proxy mode (spec §4.5) until ctx ends: it serves
// the client URLs by forwarding to the members' client URLs, learned from
// the members' peer API. The peer URLs come from, first that applies: the
// proxy cluster file in the data dir, the discovery token, --initial-cluster.
func runProxy(ctx context.Context, cfg *Config, log *slog.Logger) int {
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "member")); err == nil {
		log.Error(fmt.Sprintf("%s holds a member's data; a data dir cannot be used by both a member and a proxy", cfg.DataDir))
		return exitError
	}
	clusterFile := proxy.ClusterFilePath(cfg.DataDir)
	if err := os.MkdirAll(filepath.Dir(clusterFile), 0o700); err != nil {
		log.Error(err.Error())
		return exitError
	}
	peers, err := proxy.ReadClusterFile(clusterFile)
	if errors.Is(err, os.ErrNotExist) {
		peers, err = nil, nil
	}
	if err != nil {
		log.Error(err.Error())
		return exitError
	}
	if len(peers) == 0 {
		ic := cfg.InitialCluster
		if cfg.Discovery != "" {
			ic, err = discovery.GetCluster(ctx, discovery.Config{DiscoveryURL: cfg.Discovery, Proxy: cfg.DiscoveryProxy,
				Logger: log.With("pkg", "discovery"), DefaultSize: embed.DiscoveryDefaultSize(cfg.discoveryDefaultSize())})
			if err != nil {
				log.Error(fmt.Sprintf("proxy: %v", err))
				return exitError
			}
		}
		parsed, err := membership.ParseInitialCluster(ic)
		if err != nil {
			log.Error(fmt.Sprintf("proxy: %v", err))
			return exitError
		}
		for _, n := range parsed.Names {
			peers = append(peers, parsed.URLs[n]...)
		}
	}
	// As etcd's proxy: the peer TLS settings serve both the member list
	// (peer URLs) and the proxied requests (client URLs).
	var memberTLS *tls.Config
	if cfg.PeerTLS != (tlsutil.Info{}) {
		if memberTLS, err = cfg.PeerTLS.ClientConfig(); err != nil {
			log.Error(fmt.Sprintf("proxy: peer TLS: %v", err))
			return exitError
		}
	}
	var listenTLS *tls.Config
	if !cfg.ClientTLS.Empty() {
		if listenTLS, err = cfg.ClientTLS.ServerConfig(); err != nil {
			log.Error(fmt.Sprintf("proxy: client TLS: %v", err))
			return exitError
		}
	}
	src, err := proxy.PeerMembers(proxy.SourceConfig{URLs: peers, ClusterFile: clusterFile, Logger: log,
		Client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: memberTLS}}})
	if err != nil {
		log.Error(err.Error())
		return exitError
	}
	p, err := proxy.New(proxy.Config{
		Endpoints:       src.ClientURLs,
		RefreshInterval: ms(cfg.ProxyRefreshIntervalMs),
		FailureWait:     ms(cfg.ProxyFailureWaitMs),
		DialTimeout:     ms(cfg.ProxyDialTimeoutMs),
		WriteTimeout:    ms(cfg.ProxyWriteTimeoutMs),
		ReadTimeout:     ms(cfg.ProxyReadTimeoutMs),
		ReadOnly:        cfg.Proxy == "readonly",
		TLS:             memberTLS,
		Logger:          log.With("pkg", "proxy"),
	})
	if err != nil {
		log.Error(err.Error())
		return exitError
	}
	var servers []*http.Server
	for _, raw := range cfg.ListenClientURLs {
		u, err := url.Parse(raw)
		if err != nil {
			log.Error(err.Error())
			return exitError
		}
		if u.Scheme == "https" && listenTLS == nil {
			log.Error(fmt.Sprintf("TLS key/cert (--cert-file, --key-file) must be provided for %s with HTTPS scheme", raw))
			for _, s := range servers {
				s.Close()
			}
			return exitError
		}
		l, err := net.Listen("tcp", u.Host)
		if err != nil {
			log.Error(fmt.Sprintf("proxy: listen on %s: %v", raw, err))
			for _, s := range servers {
				s.Close()
			}
			return exitError
		}
		if u.Scheme == "https" {
			l = tls.NewListener(l, listenTLS)
		}
		log.Info("proxy: listening for client requests on " + raw)
		hs := &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
		servers = append(servers, hs)
		go func() {
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Warn("proxy: serve", "err", err)
			}
		}()
	}
	log.Info("proxy: starting", "peers", strings.Join(slices.Sorted(slices.Values(peers)), ","),
		"readonly", cfg.Proxy == "readonly")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = p.Run(ctx)
	}()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range servers {
		if s.Shutdown(sctx) != nil {
			s.Close()
		}
	}
	wg.Wait()
	log.Info("stopped")
	return exitOK
}
