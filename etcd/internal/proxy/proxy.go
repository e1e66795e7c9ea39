package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults of etcd 2.3.8's --proxy-* flags.
const (
	DefaultRefreshInterval = 30 * time.Second
	DefaultFailureWait     = 5 * time.Second
	DefaultDialTimeout     = time.Second
	DefaultWriteTimeout    = 5 * time.Second
)

// ConfigPath is the proxy's own endpoint.
const ConfigPath = "/v2/config/local/proxy"

// Config configures a Proxy. Only Endpoints is required.
type Config struct {
	// Endpoints returns the members' client URLs (the backends). Run calls
	// it at start and on every refresh; an error keeps the current list.
	Endpoints func(ctx context.Context) ([]string, error)

	// RefreshInterval is --proxy-refresh-interval (zero: 30 s). While no
	// backend is known, refreshes happen every second at most.
	RefreshInterval time.Duration
	// FailureWait is --proxy-failure-wait (zero: 5 s): how long a backend
	// that failed at transport level is skipped.
	FailureWait time.Duration
	// DialTimeout is --proxy-dial-timeout (zero: 1 s).
	DialTimeout time.Duration
	// WriteTimeout is --proxy-write-timeout (zero: 5 s): the limit on each
	// write to a backend connection. Negative disables it.
	WriteTimeout time.Duration
	// ReadTimeout is --proxy-read-timeout (zero: none): the limit on each
	// read from a backend connection. Non-zero breaks long-poll watches.
	ReadTimeout time.Duration

	// ReadOnly is --proxy=readonly: every method but GET gets 501.
	ReadOnly bool

	// TLS is the client TLS configuration towards the members (etcd uses
	// the peer TLS settings); nil uses Go's defaults for https backends.
	TLS *tls.Config
	// Transport replaces the transport built from the timeouts and TLS.
	Transport http.RoundTripper

	// Shuffle reorders the backends on every refresh; nil shuffles
	// randomly. Tests pass a no-op for a fixed order.
	Shuffle func([]string)
	// Now is the clock for quarantines; nil is time.Now.
	Now func() time.Time

	// Logger receives etcd's proxy log lines; nil discards them.
	Logger *slog.Logger
}

type backend struct {
	url         url.URL
	failedUntil time.Time // zero: available
}

// Proxy forwards v2 client requests to cluster members. It is an
// http.Handler; call Run to keep its backends fresh. Safe for concurrent use.
type Proxy struct {
	cfg       Config
	transport http.RoundTripper
	log       *slog.Logger

	mu       sync.Mutex
	backends []*backend
}

// New builds a Proxy. It does no I/O: the backend list stays empty (and
// requests get 503) until Refresh or Run has fetched it.
func New(cfg Config) (*Proxy, error) {
	if cfg.Endpoints == nil {
		return nil, errors.New("proxy: Config.Endpoints is required")
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	if cfg.FailureWait <= 0 {
		cfg.FailureWait = DefaultFailureWait
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Shuffle == nil {
		cfg.Shuffle = func(s []string) { rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] }) }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Proxy{cfg: cfg, log: cfg.Logger, transport: cfg.Transport}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.transport == nil {
		p.transport = NewTransport(cfg.TLS, cfg.DialTimeout, cfg.ReadTimeout, cfg.WriteTimeout)
	}
	return p, nil
}

// NewTransport returns the transport the proxy uses towards members: TCP
// connect limited by dial, and each read or write on a connection by rd or
// wr (zero or negative: no limit), as etcd's timeout transport. With a read
// limit, idle connections are not kept (they would time out in the pool).
func NewTransport(tc *tls.Config, dial, rd, wr time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if rd <= 0 && wr <= 0 {
				return c, nil
			}
			return &timeoutConn{Conn: c, rd: rd, wr: wr}, nil
		},
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 64,
	}
	if rd > 0 {
		t.DisableKeepAlives = true
	}
	return t
}

type timeoutConn struct {
	net.Conn
	rd, wr time.Duration
}

func (c *timeoutConn) Read(b []byte) (int, error) {
	if c.rd > 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.rd)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(b)
}

func (c *timeoutConn) Write(b []byte) (int, error) {
	if c.wr > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.wr)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(b)
}

// Run refreshes the backends now and then every RefreshInterval (every
// second at most while none is known) until ctx ends; it returns nil then.
func (p *Proxy) Run(ctx context.Context) error {
	for {
		if err := p.Refresh(ctx); err != nil && ctx.Err() == nil {
			p.log.Warn(fmt.Sprintf("proxy: could not refresh endpoints: %v", err))
		}
		eps := p.Endpoints()
		wait := p.cfg.RefreshInterval
		if len(eps) == 0 {
			wait = min(wait, time.Second)
		} else {
			p.log.Info(fmt.Sprintf("endpoints found %q", eps))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// Refresh fetches the backend list once and replaces the current one,
// shuffled. Backends still in quarantine stay there. On error (or an empty
// answer with an error) the list is unchanged.
func (p *Proxy) Refresh(ctx context.Context) error {
	urls, err := p.cfg.Endpoints(ctx)
	if err != nil {
		return err
	}
	urls = slices.Clone(urls)
	p.cfg.Shuffle(urls)
	var next []*backend
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			p.log.Warn(fmt.Sprintf("proxy: skipping invalid endpoint %q", raw))
			continue
		}
		next = append(next, &backend{url: *u})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, nb := range next {
		for _, ob := range p.backends {
			if ob.url == nb.url {
				nb.failedUntil = ob.failedUntil
			}
		}
	}
	p.backends = next
	return nil
}

// Endpoints returns the URLs of the backends currently available, in the
// order requests try them.
func (p *Proxy) Endpoints() []string {
	var out []string
	for _, b := range p.available() {
		out = append(out, b.String())
	}
	return out
}

func (p *Proxy) available() []url.URL {
	now := p.cfg.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []url.URL
	for _, b := range p.backends {
		if !b.failedUntil.IsZero() {
			if now.Before(b.failedUntil) {
				continue
			}
			b.failedUntil = time.Time{}
			p.log.Info(fmt.Sprintf("marked endpoint %s available", b.url.String()))
		}
		out = append(out, b.url)
	}
	return out
}

func (p *Proxy) failed(u url.URL) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.backends {
		if b.url == u {
			b.failedUntil = p.cfg.Now().Add(p.cfg.FailureWait)
			p.log.Info(fmt.Sprintf("marked endpoint %s unavailable", u.String()))
		}
	}
}

// hopHeaders are removed from requests and responses (RFC 2616 13.5.1).
var hopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailers", "Transfer-Encoding", "Upgrade",
}

func removeHopHeaders(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// writeError writes etcd's proxy error shape: {"message":"…"}.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	w.Write(b)
}

// ServeHTTP forwards one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.cfg.ReadOnly && r.Method != http.MethodGet {
		w.WriteHeader(http.StatusNotImplemented)
		return
	}
	if r.URL.Path == ConfigPath {
		p.serveConfig(w, r)
		return
	}

	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			writeError(w, http.StatusInternalServerError, fmt.Sprintf("proxy: failed to read request body: %v", err))
			return
		}
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Proto, out.ProtoMajor, out.ProtoMinor = "HTTP/1.1", 1, 1
	out.Close = false
	out.TransferEncoding = nil
	removeHopHeaders(out.Header)
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := out.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		out.Header.Set("X-Forwarded-For", ip)
	}

	eps := p.available()
	if len(eps) == 0 {
		writeError(w, http.StatusServiceUnavailable, "proxy: zero endpoints currently available")
		return
	}
	var resp *http.Response
	for _, ep := range eps {
		out.URL.Scheme, out.URL.Host = ep.Scheme, ep.Host
		if r.Body != nil && r.Body != http.NoBody {
			out.Body = io.NopCloser(bytes.NewReader(body))
			out.ContentLength = int64(len(body))
		}
		var err error
		resp, err = p.transport.RoundTrip(out)
		if r.Context().Err() != nil {
			if resp != nil {
				resp.Body.Close()
			}
			p.log.Info(fmt.Sprintf("client %v closed request prematurely", r.RemoteAddr))
			return
		}
		if err != nil {
			p.log.Info(fmt.Sprintf("failed to direct request to %s: %v", ep.String(), err))
			p.failed(ep)
			resp = nil
			continue
		}
		break
	}
	if resp == nil {
		msg := fmt.Sprintf("proxy: unable to get response from %d endpoint(s)", len(eps))
		p.log.Info(msg)
		writeError(w, http.StatusBadGateway, msg)
		return
	}
	defer resp.Body.Close()

	removeHopHeaders(resp.Header)
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	copyFlushing(w, resp.Body)
}

// copyFlushing copies the body and flushes after every read, so events of
// a streaming watch reach the client as they arrive.
func copyFlushing(w http.ResponseWriter, body io.Reader) {
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	buf := make([]byte, 32*1024)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if ferr := rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) serveConfig(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	eps := p.Endpoints()
	if eps == nil {
		eps = []string{}
	}
	json.NewEncoder(w).Encode(struct {
		Endpoints []string `json:"endpoints"`
	}{eps})
}
