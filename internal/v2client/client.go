// Package v2client is a context-aware client of the etcd v2 HTTP API, used by
// etcdctl, the discovery service, fleetd and cloudinit.
//
// A Client holds an ordered list of endpoints. Every call tries the pinned
// endpoint first and fails over to the next on transport errors and on 5xx
// answers, as the official v2 client does; when every endpoint fails the call
// returns a *ClusterError. Store failures come back as *v2api.Error (so
// errors.As works on both sides of the wire), other non-2xx answers as
// *HTTPError.
//
// Read client.go first (Config, New, the request loop), then keys.go (the
// /v2/keys operations and Watcher) and members.go (members, stats, health,
// version). The client has no package-level state; it is safe for concurrent
// use.
package v2client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/corekit/corekit/internal/v2api"
)

// Config describes how to reach a cluster. Only Endpoints is required.
type Config struct {
	// Endpoints are client URLs such as "http://127.0.0.1:2379". A missing
	// scheme defaults to http.
	Endpoints []string

	// HeaderTimeout bounds the wait for the response headers of each
	// request to one endpoint (etcdctl's --timeout). Zero means no limit.
	// Watches are never subject to it.
	HeaderTimeout time.Duration

	// DialTimeout bounds the TCP connect; zero means 30 s.
	DialTimeout time.Duration

	// CAFile, CertFile and KeyFile configure TLS for https endpoints.
	CAFile, CertFile, KeyFile string

	// Username and Password, when Username is not empty, are sent as HTTP
	// basic authentication on every request.
	Username, Password string

	// Transport replaces the HTTP transport (tests); TLS files are then
	// ignored.
	Transport http.RoundTripper

	// OnRequest, if set, is called before each attempt with the method, the
	// full URL and the request body (nil when the request has none).
	// etcdctl --debug prints it as a curl command.
	OnRequest func(method, url string, body []byte)

	// Logger receives debug logs of failovers; nil discards them.
	Logger *slog.Logger
}

// Client talks to one etcd cluster. Create it with New.
type Client struct {
	hc        *http.Client
	headerTO  time.Duration
	user      string
	pass      string
	onRequest func(method, url string, body []byte)
	log       *slog.Logger

	mu        sync.Mutex
	endpoints []url.URL
	pinned    int
}

// ErrClusterUnavailable is matched (errors.Is) by every *ClusterError.
var ErrClusterUnavailable = errors.New("client: etcd cluster is unavailable or misconfigured")

// ErrNoEndpoints is returned by New and SetEndpoints for an empty list.
var ErrNoEndpoints = errors.New("client: no endpoints available")

// ClusterError is returned when no endpoint gave a usable answer. Errors holds
// one entry per endpoint tried, in order.
type ClusterError struct {
	Errors []error
}

// Error renders the error as the official v2 client does (etcdctl prints it).
func (e *ClusterError) Error() string {
	s := ErrClusterUnavailable.Error()
	for i, err := range e.Errors {
		s += fmt.Sprintf("; error #%d: %s\n", i, err)
	}
	return s
}

// Detail lists the per-endpoint errors, one "error #i: …" line each.
func (e *ClusterError) Detail() string {
	var b strings.Builder
	for i, err := range e.Errors {
		fmt.Fprintf(&b, "error #%d: %s\n", i, err)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrClusterUnavailable) true.
func (e *ClusterError) Is(target error) bool { return target == ErrClusterUnavailable }

// Unwrap returns the per-endpoint errors.
func (e *ClusterError) Unwrap() []error { return e.Errors }

// HTTPError is a non-2xx answer that is not a v2 store error, such as the
// members API's {"message":"…"} bodies or a plain-text 404.
type HTTPError struct {
	StatusCode int
	Message    string // the "message" field, or the trimmed body
}

// Error returns the server's message (what etcdctl prints for member errors).
func (e *HTTPError) Error() string {
	if e.Message == "" {
		return http.StatusText(e.StatusCode)
	}
	return e.Message
}

// New builds a Client. It does no I/O.
func New(cfg Config) (*Client, error) {
	c := &Client{
		headerTO:  cfg.HeaderTimeout,
		user:      cfg.Username,
		pass:      cfg.Password,
		onRequest: cfg.OnRequest,
		log:       cfg.Logger,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if err := c.SetEndpoints(cfg.Endpoints); err != nil {
		return nil, err
	}
	rt := cfg.Transport
	if rt == nil {
		t, err := newTransport(cfg)
		if err != nil {
			return nil, err
		}
		rt = t
	}
	c.hc = &http.Client{
		Transport: rt,
		// Redirects (301 on unclean paths) are returned, not followed, so
		// PUT/DELETE bodies are never silently dropped.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

func newTransport(cfg Config) (*http.Transport, error) {
	dialTO := cfg.DialTimeout
	if dialTO == 0 {
		dialTO = 30 * time.Second
	}
	t := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: dialTO, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 16,
	}
	if cfg.CAFile == "" && cfg.CertFile == "" && cfg.KeyFile == "" {
		return t, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("client: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client: no certificates found in %s", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		if cfg.CertFile == "" || cfg.KeyFile == "" {
			return nil, errors.New("client: both a certificate file and a key file are needed")
		}
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client: load key pair: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	t.TLSClientConfig = tc
	return t, nil
}

// ParseEndpoint turns "host:port" or a URL into a URL, defaulting the scheme
// to http.
func ParseEndpoint(ep string) (url.URL, error) {
	ep = strings.TrimSpace(ep)
	if !strings.Contains(ep, "://") {
		ep = "http://" + ep
	}
	u, err := url.Parse(ep)
	if err != nil {
		return url.URL{}, fmt.Errorf("client: invalid endpoint %q: %w", ep, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return url.URL{}, fmt.Errorf("client: invalid endpoint %q: scheme must be http or https", ep)
	}
	if u.Host == "" {
		return url.URL{}, fmt.Errorf("client: invalid endpoint %q: no host", ep)
	}
	return *u, nil
}

// SetEndpoints replaces the endpoint list and pins the first one.
func (c *Client) SetEndpoints(eps []string) error {
	var us []url.URL
	for _, ep := range eps {
		if strings.TrimSpace(ep) == "" {
			continue
		}
		u, err := ParseEndpoint(ep)
		if err != nil {
			return err
		}
		us = append(us, u)
	}
	if len(us) == 0 {
		return ErrNoEndpoints
	}
	c.mu.Lock()
	c.endpoints, c.pinned = us, 0
	c.mu.Unlock()
	return nil
}

// Endpoints returns the current endpoint list as strings.
func (c *Client) Endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.endpoints))
	for i, u := range c.endpoints {
		out[i] = u.String()
	}
	return out
}

// request is one logical API call; do sends it to the endpoints in turn.
type request struct {
	method      string
	path        string // URL path below the endpoint, e.g. /v2/keys/foo
	query       url.Values
	body        []byte
	contentType string
	noTimeout   bool // watches: no header timeout
}

// rawResponse is an answer read in full.
type rawResponse struct {
	status   int
	header   http.Header
	body     []byte
	endpoint string
}

var errHeaderTimeout = errors.New("header timeout")

// do sends req to the pinned endpoint, failing over on transport errors and
// 5xx answers. It returns the first non-5xx answer whatever its status.
func (c *Client) do(ctx context.Context, req request) (*rawResponse, error) {
	c.mu.Lock()
	eps := append([]url.URL(nil), c.endpoints...)
	start := c.pinned
	c.mu.Unlock()

	cerr := &ClusterError{}
	for k := range eps {
		i := (start + k) % len(eps)
		ep := eps[i]
		resp, err := c.once(ctx, ep, req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			c.log.Debug("v2client: endpoint failed", "endpoint", ep.String(), "err", err)
			cerr.Errors = append(cerr.Errors, err)
			continue
		}
		if resp.status/100 == 5 {
			switch resp.status {
			case http.StatusInternalServerError, http.StatusServiceUnavailable:
				cerr.Errors = append(cerr.Errors, fmt.Errorf("client: etcd member %s has no leader", ep.String()))
			default:
				cerr.Errors = append(cerr.Errors, fmt.Errorf("client: etcd member %s returns server error [%s]", ep.String(), http.StatusText(resp.status)))
			}
			continue
		}
		if i != start {
			c.mu.Lock()
			if len(c.endpoints) == len(eps) {
				c.pinned = i
			}
			c.mu.Unlock()
		}
		return resp, nil
	}
	return nil, cerr
}

func (c *Client) once(ctx context.Context, ep url.URL, req request) (*rawResponse, error) {
	u := ep
	u.Path = canonicalPath(strings.TrimSuffix(ep.Path, "/") + req.path)
	u.RawQuery = req.query.Encode()
	if c.onRequest != nil {
		c.onRequest(req.method, u.String(), req.body)
	}

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var timer *time.Timer
	if c.headerTO > 0 && !req.noTimeout {
		timer = time.AfterFunc(c.headerTO, func() { cancel(errHeaderTimeout) })
	}
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hreq, err := http.NewRequestWithContext(actx, req.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("client: build request: %w", err)
	}
	if req.contentType != "" {
		hreq.Header.Set("Content-Type", req.contentType)
	}
	if c.user != "" {
		hreq.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.hc.Do(hreq)
	if timer != nil {
		timer.Stop()
	}
	if err != nil {
		if errors.Is(context.Cause(actx), errHeaderTimeout) && ctx.Err() == nil {
			return nil, fmt.Errorf("client: endpoint %s exceeded header timeout", ep.String())
		}
		return nil, unwrapURLError(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, unwrapURLError(err)
	}
	return &rawResponse{status: resp.StatusCode, header: resp.Header, body: b, endpoint: ep.String()}, nil
}

// unwrapURLError drops net/http's `Get "url": ` prefix so messages read like
// the official client's ("dial tcp …: connect: connection refused").
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// canonicalPath cleans p like path.Clean but keeps a trailing slash.
func canonicalPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

func parseUint(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

// decodeError turns a non-2xx answer into *v2api.Error when the body is a v2
// store error and into *HTTPError otherwise.
func decodeError(r *rawResponse) error {
	var ve v2api.Error
	if err := jsonUnmarshal(r.body, &ve); err == nil && ve.ErrorCode != 0 {
		return &ve
	}
	var m struct {
		Message string `json:"message"`
	}
	if err := jsonUnmarshal(r.body, &m); err == nil && m.Message != "" {
		return &HTTPError{StatusCode: r.status, Message: m.Message}
	}
	return &HTTPError{StatusCode: r.status, Message: strings.TrimSpace(string(r.body))}
}
