// Package membership holds an etcd cluster's member list: how member and
// cluster IDs are derived (as etcd 2.x derives them), the --initial-cluster
// syntax, and the URL rules for peer and client URLs.
//
// It is pure: no I/O. Read NewMember and ClusterID first.
package membership

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/corekit/corekit/internal/v2api"
)

// Member is one member of the cluster.
type Member struct {
	ID         uint64
	Name       string
	PeerURLs   []string // sorted
	ClientURLs []string // sorted
}

// NewMember returns a member whose ID is derived as etcd does: the first 8
// bytes (big-endian) of SHA-1 over the sorted peer URLs concatenated, then
// the cluster token, then — for members added at run time — the Unix seconds
// of now. now may be nil.
func NewMember(name string, peerURLs []string, token string, now *time.Time) Member {
	urls := slices.Clone(peerURLs)
	sort.Strings(urls)
	var b []byte
	for _, u := range urls {
		b = append(b, u...)
	}
	b = append(b, token...)
	if now != nil {
		b = append(b, strconv.FormatInt(now.Unix(), 10)...)
	}
	sum := sha1.Sum(b)
	return Member{ID: binary.BigEndian.Uint64(sum[:8]), Name: name, PeerURLs: urls}
}

// ClusterID derives the cluster ID from the member IDs as etcd does: SHA-1
// over the sorted IDs, each as 8 big-endian bytes; first 8 bytes big-endian.
func ClusterID(ids []uint64) uint64 {
	s := slices.Clone(ids)
	slices.Sort(s)
	b := make([]byte, 8*len(s))
	for i, id := range s {
		binary.BigEndian.PutUint64(b[8*i:], id)
	}
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// IDString renders an ID as etcd does: lowercase hex, no padding.
func IDString(id uint64) string { return strconv.FormatUint(id, 16) }

// ParseID parses IDString's form.
func ParseID(s string) (uint64, error) { return strconv.ParseUint(s, 16, 64) }

// API returns the member's /v2/members form (never null slices).
func (m Member) API() v2api.Member {
	out := v2api.Member{ID: IDString(m.ID), Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs}
	if out.PeerURLs == nil {
		out.PeerURLs = []string{}
	}
	if out.ClientURLs == nil {
		out.ClientURLs = []string{}
	}
	return out
}

// InitialCluster is a parsed --initial-cluster value: name → peer URLs, in
// first-appearance order of the names.
type InitialCluster struct {
	Names []string
	URLs  map[string][]string
}

// ParseInitialCluster parses "name=url,name=url,…"; a name may repeat.
func ParseInitialCluster(s string) (InitialCluster, error) {
	ic := InitialCluster{URLs: map[string][]string{}}
	if strings.TrimSpace(s) == "" {
		return ic, fmt.Errorf("initial cluster is empty")
	}
	for _, part := range strings.Split(s, ",") {
		name, u, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || name == "" {
			return ic, fmt.Errorf("invalid initial cluster entry %q: want name=url", part)
		}
		if _, err := ParseURLs(u); err != nil {
			return ic, err
		}
		if _, seen := ic.URLs[name]; !seen {
			ic.Names = append(ic.Names, name)
		}
		ic.URLs[name] = append(ic.URLs[name], u)
	}
	return ic, nil
}

// Members returns the members the initial cluster describes, IDs derived
// with token, sorted by ID.
func (ic InitialCluster) Members(token string) []Member {
	var ms []Member
	for _, n := range ic.Names {
		ms = append(ms, NewMember(n, ic.URLs[n], token, nil))
	}
	slices.SortFunc(ms, func(a, b Member) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return ms
}

// String renders the initial cluster back in flag form (sorted URLs per name).
func (ic InitialCluster) String() string {
	var parts []string
	for _, n := range ic.Names {
		urls := slices.Clone(ic.URLs[n])
		sort.Strings(urls)
		for _, u := range urls {
			parts = append(parts, n+"="+u)
		}
	}
	return strings.Join(parts, ",")
}

// ParseURLs parses a comma-separated URL list with etcd's rules (scheme http
// or https, host:port, no path) and returns the URLs sorted.
func ParseURLs(s string) ([]string, error) {
	var out []string
	for _, raw := range strings.Split(s, ",") {
		raw = strings.TrimSpace(raw)
		u, err := url.Parse(raw)
		if err != nil {
			return nil, err
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("URL scheme must be http or https: %s", raw)
		}
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			return nil, fmt.Errorf(`URL address does not have the form "host:port": %s`, raw)
		}
		if u.Path != "" {
			return nil, fmt.Errorf("URL must not contain a path: %s", raw)
		}
		out = append(out, u.String())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no valid URLs given")
	}
	sort.Strings(out)
	return out, nil
}

// HostPort returns the host:port of a URL accepted by ParseURLs.
func HostPort(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	return u.Host, nil
}
