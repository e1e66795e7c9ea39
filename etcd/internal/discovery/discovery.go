package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/corekit/corekit/etcd/internal/membership"
	"github.com/corekit/corekit/internal/v2api"
)

// Errors, with etcd 2.3.8's texts. Join and GetCluster return them (or wrap
// them with %w); match with errors.Is.
var (
	ErrInvalidURL           = errors.New("discovery: invalid URL")
	ErrBadSizeKey           = errors.New("discovery: size key is bad")
	ErrSizeNotFound         = errors.New("discovery: size key not found")
	ErrTokenNotFound        = errors.New("discovery: token not found")
	ErrDuplicateID          = errors.New("discovery: found duplicate id")
	ErrDuplicateName        = errors.New("discovery: found duplicate name")
	ErrFull                 = errors.New("discovery: cluster is full")
	ErrTooManyRetries       = errors.New("discovery: too many retries")
	ErrBadDiscoveryEndpoint = errors.New("discovery: bad discovery endpoint")
)

// Config describes one discovery attempt.
type Config struct {
	// DiscoveryURL is the token URL (--discovery). Required.
	DiscoveryURL string
	// Name is this member's --name. Required by Join.
	Name string
	// PeerURLs are this member's --initial-advertise-peer-urls. Required
	// by Join.
	PeerURLs []string
	// MemberID is the member's ID; the registration key is its unpadded
	// lowercase hex form. Zero derives it as etcd does in discovery mode:
	// membership.NewMember(Name, PeerURLs, DiscoveryURL, nil).ID.
	MemberID uint64
	// Proxy is --discovery-proxy: an HTTP proxy for discovery traffic;
	// "http://" is prepended when the scheme is missing. Ignored when
	// HTTPClient is set.
	Proxy string
	// HTTPClient replaces the default client (dial timeout 30 s,
	// keep-alive 30 s, TLS handshake 10 s, no proxy unless Proxy is set).
	HTTPClient *http.Client
	// RequestTimeout bounds each non-watch request; zero means 5 s. A
	// timeout is not retried (as in etcd).
	RequestTimeout time.Duration
	// Logger receives etcd's progress lines; nil discards them.
	Logger *slog.Logger
	// Backoff tunes the retries after connection failures and 5xx answers.
	Backoff Backoff
	// DefaultSize, when positive, is the cluster size assumed when the
	// discovery URL is a plain keys URL (its path contains /v2/keys/) and
	// no _config/size exists there (the key itself may be missing too):
	// an etcd 0.4-style URL nobody configured (seed 001). A warning is
	// logged. Other URLs (a discovery service's tokens) keep etcd 2.x's
	// ErrTokenNotFound / ErrSizeNotFound. Zero disables it. Not an etcd
	// feature (--discovery-default-size is a corekit extension).
	DefaultSize int
}

// Backoff is the retry policy: before retry n (n = 1, 2, …) the attempt
// waits Unit × 2^min(n, MaxExponent), i.e. 2 s, 4 s, … 256 s by default, and
// gives up with ErrTooManyRetries after MaxRetries retries. The counter is
// shared by all steps of one Join and never reset, as in etcd.
type Backoff struct {
	Unit        time.Duration // zero: 1 s
	MaxExponent int           // zero: 8 (etcd ≥ 3.1's cap, 256 s)
	MaxRetries  uint64        // zero: 2^32-1 (effectively unlimited)
	// Sleep waits d or until ctx ends (then it returns ctx.Err()). Nil
	// uses a timer. Tests inject a recorder that returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (b Backoff) delay(retries uint64) time.Duration {
	unit, maxExp := b.Unit, b.MaxExponent
	if unit == 0 {
		unit = time.Second
	}
	if maxExp == 0 {
		maxExp = 8
	}
	exp := min(retries, uint64(maxExp))
	return unit * time.Duration(uint64(1)<<exp)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Registration is the value a member registers: name=url for each of its
// sorted peer URLs, comma-joined (default=http://localhost:2380,…).
func Registration(name string, peerURLs []string) string {
	urls := slices.Clone(peerURLs)
	sort.Strings(urls)
	parts := make([]string, len(urls))
	for i, u := range urls {
		parts[i] = name + "=" + u
	}
	return strings.Join(parts, ",")
}

// IsKeysURL reports whether discoveryURL names a plain v2 key on an etcd
// (its path contains /v2/keys/), as opposed to a discovery service token.
// Only such URLs get Config.DefaultSize.
func IsKeysURL(discoveryURL string) bool {
	u, err := url.Parse(discoveryURL)
	return err == nil && strings.Contains(u.Path+"/", "/v2/keys/")
}

// MemberID derives a member's ID in discovery mode, where the cluster token
// is the full discovery URL.
func MemberID(peerURLs []string, discoveryURL string) uint64 {
	return membership.NewMember("", peerURLs, discoveryURL, nil).ID
}

type discovery struct {
	c       *client
	log     *slog.Logger
	url     string // the discovery URL as given, for logs
	cluster string // the token path, e.g. /v2/keys/abc
	selfID  string // hex member ID, "" for a proxy
	backoff Backoff
	retries uint64

	defaultSize int
	sizeLogged  bool
}

func newDiscovery(cfg Config, selfID string) (*discovery, error) {
	u, err := url.Parse(cfg.DiscoveryURL)
	if err != nil {
		return nil, fmt.Errorf("discovery: invalid discovery URL %q: %w", cfg.DiscoveryURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("discovery: invalid discovery URL %q: want http(s)://host/token", cfg.DiscoveryURL)
	}
	cluster := strings.TrimRight(u.Path, "/")
	if cluster == "" {
		return nil, fmt.Errorf("discovery: invalid discovery URL %q: no token in the path", cfg.DiscoveryURL)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		if hc, err = defaultHTTPClient(cfg.Proxy); err != nil {
			return nil, err
		}
	}
	to := cfg.RequestTimeout
	if to == 0 {
		to = 5 * time.Second
	}
	d := &discovery{
		c:       &client{hc: hc, base: u.Scheme + "://" + u.Host, reqTimeout: to},
		log:     cfg.Logger,
		url:     cfg.DiscoveryURL,
		cluster: cluster,
		selfID:  selfID,
		backoff: cfg.Backoff,
	}
	if IsKeysURL(cfg.DiscoveryURL) {
		d.defaultSize = cfg.DefaultSize
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.backoff.Sleep == nil {
		d.backoff.Sleep = sleepCtx
	}
	if d.backoff.MaxRetries == 0 {
		d.backoff.MaxRetries = math.MaxUint32
	}
	return d, nil
}

// Join registers the member under the token and blocks until size members
// have registered, then returns their registrations as an --initial-cluster
// value ("m1=http://…,m2=http://…"), in registration order.
//
// It fails fast with ErrFull when size members registered before it (the
// caller may fall back to proxy mode and call GetCluster), and with
// ErrDuplicateID when its key already exists (same member, wiped data dir,
// reused token). ErrInvalidURL and ErrDuplicateName come with the assembled
// string. Connection failures and 5xx answers are retried with Backoff; all
// other errors are returned at once. Join returns when ctx ends.
func Join(ctx context.Context, cfg Config) (string, error) {
	if cfg.Name == "" || len(cfg.PeerURLs) == 0 {
		return "", errors.New("discovery: Join needs the member's name and peer URLs")
	}
	id := cfg.MemberID
	if id == 0 {
		id = MemberID(cfg.PeerURLs, cfg.DiscoveryURL)
	}
	d, err := newDiscovery(cfg, membership.IDString(id))
	if err != nil {
		return "", err
	}
	if _, _, _, err := d.checkCluster(ctx); err != nil {
		return "", err
	}
	if err := d.createSelf(ctx, Registration(cfg.Name, cfg.PeerURLs)); err != nil {
		return "", err
	}
	nodes, size, index, err := d.checkCluster(ctx)
	if err != nil {
		return "", err
	}
	all, err := d.waitNodes(ctx, nodes, size, index)
	if err != nil {
		return "", err
	}
	return nodesToCluster(all, size)
}

// GetCluster returns the first size registrations under the token as an
// --initial-cluster value, waiting until size members have registered.
// Proxies use it to learn the members' peer URLs. Only DiscoveryURL,
// Proxy, HTTPClient, RequestTimeout, Logger and Backoff are used.
func GetCluster(ctx context.Context, cfg Config) (string, error) {
	d, err := newDiscovery(cfg, "")
	if err != nil {
		return "", err
	}
	nodes, size, index, err := d.checkCluster(ctx)
	if errors.Is(err, ErrFull) {
		return nodesToCluster(nodes, size)
	}
	if err != nil {
		return "", err
	}
	all, err := d.waitNodes(ctx, nodes, size, index)
	if err != nil {
		return "", err
	}
	return nodesToCluster(all, size)
}

func (d *discovery) selfKey() string { return path.Join(d.cluster, d.selfID) }

// createSelf registers the member and waits until its own key is visible
// on the server it talks to.
func (d *discovery) createSelf(ctx context.Context, value string) error {
	r, err := d.c.create(ctx, d.selfKey(), value)
	if err != nil {
		if _, ok := asV2Error(err, v2api.EcodeNodeExist); ok {
			return ErrDuplicateID
		}
		return err
	}
	_, err = d.c.watch(ctx, d.selfKey(), r.event.Node.CreatedIndex, false)
	return err
}

// checkCluster reads the size and the registered nodes (sorted by
// createdIndex, _config excluded) and the X-Etcd-Index of the listing.
// With ErrFull it returns the first size nodes.
func (d *discovery) checkCluster(ctx context.Context) ([]*v2api.Node, int, uint64, error) {
	configKey := path.Join(d.cluster, "_config")
	var size int
	r, err := d.c.get(ctx, path.Join(configKey, "size"))
	switch e, notFound := asV2Error(err, v2api.EcodeKeyNotFound); {
	case notFound && d.defaultSize > 0:
		size = d.defaultSize
		if !d.sizeLogged {
			d.sizeLogged = true
			d.log.Warn(fmt.Sprintf("no size configured under %s, assuming %d members (--discovery-default-size); set %s/_config/size to choose", d.url, size, d.url))
		}
	case notFound:
		c := strings.TrimRight(e.Cause, "/")
		if strings.HasSuffix(c, "/_config") || strings.HasSuffix(c, "/_config/size") {
			return nil, 0, 0, ErrSizeNotFound
		}
		return nil, 0, 0, ErrTokenNotFound
	case err != nil:
		if ce := (*clusterError)(nil); errors.As(err, &ce) {
			d.log.Error(ce.Detail())
			if err := d.retry(ctx, "cluster status check"); err != nil {
				return nil, 0, 0, err
			}
			return d.checkCluster(ctx)
		}
		return nil, 0, 0, err
	default:
		if size, err = strconv.Atoi(r.event.Node.StringValue()); err != nil || size <= 0 {
			return nil, 0, 0, ErrBadSizeKey
		}
	}

	r, err = d.c.get(ctx, d.cluster)
	if e, ok := asV2Error(err, v2api.EcodeKeyNotFound); ok && d.defaultSize > 0 {
		// Nobody registered yet under an unconfigured token.
		r, err = &response{event: v2api.Event{Node: &v2api.Node{}}, index: e.Index}, nil
	}
	if err != nil {
		if ce := (*clusterError)(nil); errors.As(err, &ce) {
			d.log.Error(ce.Detail())
			if err := d.retry(ctx, "cluster status check"); err != nil {
				return nil, 0, 0, err
			}
			return d.checkCluster(ctx)
		}
		return nil, 0, 0, err
	}
	var nodes []*v2api.Node
	for _, n := range r.event.Node.Nodes {
		if path.Base(n.Key) != "_config" {
			nodes = append(nodes, n)
		}
	}
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].CreatedIndex < nodes[j].CreatedIndex })
	for i, n := range nodes {
		if d.selfID != "" && path.Base(n.Key) == d.selfID {
			break
		}
		if i >= size-1 {
			return nodes[:size], size, r.index, ErrFull
		}
	}
	return nodes, size, r.index, nil
}

// retry counts one retry and sleeps, or gives up.
func (d *discovery) retry(ctx context.Context, step string) error {
	if d.retries >= d.backoff.MaxRetries {
		return ErrTooManyRetries
	}
	d.retries++
	wait := d.backoff.delay(d.retries)
	d.log.Info(fmt.Sprintf("%s: error connecting to %s, retrying in %s", step, d.url, wait))
	if err := d.backoff.Sleep(ctx, wait); err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	return nil
}

// waitNodes watches the token from index+1 until size members are known.
func (d *discovery) waitNodes(ctx context.Context, nodes []*v2api.Node, size int, index uint64) ([]*v2api.Node, error) {
	if len(nodes) > size {
		nodes = nodes[:size]
	}
	all := slices.Clone(nodes)
	known := map[string]bool{}
	for _, n := range all {
		id := path.Base(n.Key)
		known[n.Key] = true
		if d.selfID != "" && id == d.selfID {
			d.log.Info(fmt.Sprintf("found self %s in the cluster", id))
		} else {
			d.log.Info(fmt.Sprintf("found peer %s in the cluster", id))
		}
	}
	next := index + 1
	for len(all) < size {
		d.log.Info(fmt.Sprintf("found %d peer(s), waiting for %d more", len(all), size-len(all)))
		var r *response
		for {
			var err error
			r, err = d.c.watch(ctx, d.cluster, next, true)
			if err != nil {
				if ce := (*clusterError)(nil); errors.As(err, &ce) {
					d.log.Error(ce.Detail())
					if err := d.retry(ctx, "waiting for other nodes"); err != nil {
						return nil, err
					}
					nodes, size, index, err := d.checkCluster(ctx)
					if err != nil {
						return nil, err
					}
					return d.waitNodes(ctx, nodes, size, index)
				}
				if _, ok := asV2Error(err, v2api.EcodeEventIndexCleared); ok {
					// The server's event history moved past our index
					// (a busy etcd): list again and wait from there.
					// etcd 2.3.8 gave up here.
					nodes, size, index, err := d.checkCluster(ctx)
					if err != nil {
						return nil, err
					}
					return d.waitNodes(ctx, nodes, size, index)
				}
				return nil, err
			}
			next = r.event.Node.ModifiedIndex + 1
			if d.arrival(r.event, known) {
				break
			}
		}
		known[r.event.Node.Key] = true
		d.log.Info(fmt.Sprintf("found peer %s in the cluster", path.Base(r.event.Node.Key)))
		all = append(all, r.event.Node)
	}
	d.log.Info(fmt.Sprintf("found %d needed peer(s)", len(all)))
	return all, nil
}

// arrival reports whether an event under the token is a new member's
// registration: a create or set of a key not seen before, other than
// _config and the keys below it. etcd counted every event.
func (d *discovery) arrival(ev v2api.Event, known map[string]bool) bool {
	n := ev.Node
	if n == nil || n.Dir || known[n.Key] {
		return false
	}
	if ev.Action != v2api.ActionCreate && ev.Action != v2api.ActionSet {
		return false
	}
	return path.Base(n.Key) != "_config" && path.Base(path.Dir(n.Key)) != "_config"
}

// nodesToCluster joins the first size registrations into an initial
// cluster string and validates it.
func nodesToCluster(nodes []*v2api.Node, size int) (string, error) {
	vals := make([]string, len(nodes))
	for i, n := range nodes {
		vals[i] = n.StringValue()
	}
	us := strings.Join(vals, ",")
	ic, err := membership.ParseInitialCluster(us)
	if err != nil {
		return us, ErrInvalidURL
	}
	if len(ic.Names) != size {
		return us, ErrDuplicateName
	}
	return us, nil
}
