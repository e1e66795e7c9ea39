package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// ClusterFilePath is where a proxy keeps its peer URLs: <dataDir>/proxy/cluster.
func ClusterFilePath(dataDir string) string {
	return filepath.Join(dataDir, "proxy", "cluster")
}

type clusterFile struct {
	PeerURLs []string
}

// ReadClusterFile reads a proxy cluster file ({"PeerURLs":[…]}). A missing
// file is reported with an error matching os.ErrNotExist.
func ReadClusterFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	var cf clusterFile
	if err := json.Unmarshal(b, &cf); err != nil {
		return nil, fmt.Errorf("proxy: bad cluster file %s: %w", path, err)
	}
	if len(cf.PeerURLs) == 0 {
		return nil, fmt.Errorf("proxy: cluster file %s lists no peer URLs", path)
	}
	return cf.PeerURLs, nil
}

// WriteClusterFile writes peerURLs to path atomically (path.bak, fsync,
// rename), mode 0600, creating the parent directory (0700) if needed.
func WriteClusterFile(path string, peerURLs []string) error {
	b, err := json.Marshal(clusterFile{PeerURLs: peerURLs})
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	tmp := path + ".bak"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("proxy: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("proxy: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("proxy: %w", err)
	}
	return nil
}

// member is the part of a member's JSON both the peer API (/members) and
// the client API (/v2/members) share. The ID is not needed (and its JSON
// type differs between versions).
type member struct {
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

// decodeMembers accepts a JSON array of members (peer API) or
// {"members":[…]} (client API).
func decodeMembers(b []byte) ([]member, error) {
	b = bytes.TrimSpace(b)
	var ms []member
	if len(b) > 0 && b[0] == '[' {
		if err := json.Unmarshal(b, &ms); err != nil {
			return nil, err
		}
		return ms, nil
	}
	var wrapped struct {
		Members *[]member `json:"members"`
	}
	if err := json.Unmarshal(b, &wrapped); err != nil {
		return nil, err
	}
	if wrapped.Members == nil {
		return nil, errors.New(`no "members" field`)
	}
	return *wrapped.Members, nil
}

// SourceConfig configures a Source.
type SourceConfig struct {
	// URLs are asked in order until one answers: peer URLs for
	// PeerMembers, client URLs for ClientMembers. Required.
	URLs []string
	// ClusterFile, if set, is rewritten with the members' peer URLs after
	// every successful fetch (PeerMembers only; etcd's proxy cluster file).
	ClusterFile string
	// Client is the HTTP client (peer TLS goes here); nil uses one with a
	// 5 s timeout.
	Client *http.Client
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
}

// Source fetches the cluster's member list from members and yields their
// client URLs. Its ClientURLs method is a Config.Endpoints function.
// After each successful fetch it asks the members it learned about, as
// etcd's proxy does, so it follows membership changes. Safe for concurrent
// use.
type Source struct {
	path string // "/members" or "/v2/members"
	peer bool
	file string
	hc   *http.Client
	log  *slog.Logger

	mu   sync.Mutex
	urls []string
}

// PeerMembers returns a Source asking GET <peerURL>/members, the peer API
// that etcd 2.x members (and ours) serve: a JSON array of members.
func PeerMembers(cfg SourceConfig) (*Source, error) { return newSource(cfg, "/members", true) }

// ClientMembers returns a Source asking GET <clientURL>/v2/members.
func ClientMembers(cfg SourceConfig) (*Source, error) { return newSource(cfg, "/v2/members", false) }

func newSource(cfg SourceConfig, p string, peer bool) (*Source, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("proxy: a member source needs at least one URL")
	}
	s := &Source{path: p, peer: peer, file: cfg.ClusterFile, hc: cfg.Client, log: cfg.Logger, urls: slices.Clone(cfg.URLs)}
	if s.hc == nil {
		s.hc = &http.Client{Timeout: 5 * time.Second}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if !peer {
		s.file = ""
	}
	return s, nil
}

// URLs returns the URLs the next fetch asks.
func (s *Source) URLs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.urls)
}

// ClientURLs asks the members for the member list and returns every
// member's client URLs (members not started yet have none). It fails only
// when no URL answered with a member list.
func (s *Source) ClientURLs(ctx context.Context) ([]string, error) {
	var errs []error
	for _, u := range s.URLs() {
		ms, err := s.fetch(ctx, u)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var clients, peers []string
		for _, m := range ms {
			clients = append(clients, m.ClientURLs...)
			peers = append(peers, m.PeerURLs...)
		}
		sort.Strings(peers)
		next := peers
		if !s.peer {
			next = slices.Clone(clients)
			sort.Strings(next)
		}
		if len(next) > 0 {
			s.update(next)
		}
		return clients, nil
	}
	err := fmt.Errorf("proxy: could not retrieve cluster information from the given urls: %w", errors.Join(errs...))
	s.log.Warn(err.Error())
	return nil, err
}

func (s *Source) update(next []string) {
	s.mu.Lock()
	prev := s.urls
	s.urls = next
	s.mu.Unlock()
	if s.file == "" {
		return
	}
	if err := WriteClusterFile(s.file, next); err != nil {
		s.log.Warn(fmt.Sprintf("proxy: error on writing urls %s", err))
		return
	}
	if !slices.Equal(prev, next) {
		s.log.Info(fmt.Sprintf("proxy: updated peer urls in cluster file from %v to %v", prev, next))
	}
}

func (s *Source) fetch(ctx context.Context, base string) ([]member, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+s.path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", req.URL, resp.Status)
	}
	ms, err := decodeMembers(b)
	if err != nil {
		return nil, fmt.Errorf("GET %s: bad member list: %w", req.URL, err)
	}
	return ms, nil
}
