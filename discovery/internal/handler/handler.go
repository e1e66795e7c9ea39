// Package handler is the HTTP side of the discovery service: /new creates
// tokens, /<token>[/<member>] proxies the etcd discovery protocol to the
// store under /_etcd/registry/<token>, and /health, /robots.txt and /metrics
// serve operators.
//
// Read handler.go first (configuration and routing), then new.go (token
// creation), proxy.go (the protocol path: expiry, sealing, deletion, long
// polls) and page.go (the HTML view of a token). Token shapes, size rules
// and the key layout are in package token. The handler keeps no state of its
// own besides rate-limit buckets and metric counters: every token lives in
// the store, so several instances can serve the same store.
package handler

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/corekit/corekit/discovery/internal/token"
	"github.com/corekit/corekit/internal/v2api"
)

// SecretHeader carries the deletion secret: /new returns it, and DELETE
// /<token> and DELETE /<token>/<member> require it.
const SecretHeader = "X-Discovery-Secret"

// DocsURL is where / redirects, as the original service did.
const DocsURL = "https://coreos.com/docs/cluster-management/setup/cluster-discovery/"

// Config configures a Handler. Zero fields take the defaults named below.
type Config struct {
	// Store is the etcd client URL (scheme://host[:port]); required.
	Store *url.URL
	// Client talks to the store; it carries the TLS settings. Default: a
	// client with a plain http.Transport.
	Client *http.Client
	// PublicURL prefixes the token in /new answers (trailing "/" trimmed);
	// required.
	PublicURL string
	// MaxSize is the largest size /new accepts. Default token.DefaultMaxSize.
	MaxSize int
	// TokenTTL is how long a token lives: the store expires the token's
	// directory after it, and the handler treats older tokens as gone.
	// Default 7 days.
	TokenTTL time.Duration
	// LongPoll bounds a proxied watch (wait=true): after it, the client gets
	// 200 with an empty body and polls again. Default 60 s.
	LongPoll time.Duration
	// RequestTimeout bounds every other store request. Default 10 s.
	RequestTimeout time.Duration
	// NewRate and NewBurst shape the per-client-IP token bucket on /new:
	// NewRate tokens per second refill a bucket of NewBurst. Defaults: one
	// token every 6 s, burst 20. A negative NewRate disables the limit.
	NewRate  float64
	NewBurst int
	// MaxBody bounds request bodies. Default 64 KiB.
	MaxBody int64
	// Now is the clock (expiry, rate limit, creation time). Default time.Now.
	Now func() time.Time
	// Rand is the source of tokens and secrets. Default crypto/rand.Reader.
	Rand io.Reader
	// Logger receives one line per request and store failures. Default:
	// discard.
	Logger *slog.Logger
}

// Handler serves the discovery service. Create it with New.
type Handler struct {
	cfg     Config
	store   *store
	limiter *limiter
	metrics *metrics
	log     *slog.Logger
	// locks serialise registrations per token (striped by hash) so that two
	// members racing for the last free seat cannot both get it.
	locks [64]sync.Mutex
}

// New returns a Handler for cfg, or an error if a required field is missing.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil || cfg.Store.Scheme == "" || cfg.Store.Host == "" {
		return nil, fmt.Errorf("handler: store URL must be scheme://host[:port]")
	}
	if cfg.PublicURL == "" {
		return nil, fmt.Errorf("handler: public URL is required")
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = token.DefaultMaxSize
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 7 * 24 * time.Hour
	}
	if cfg.LongPoll <= 0 {
		cfg.LongPoll = 60 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.NewRate == 0 {
		cfg.NewRate = 1.0 / 6
	}
	if cfg.NewBurst <= 0 {
		cfg.NewBurst = 20
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 64 << 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	st, err := newStore(cfg)
	if err != nil {
		return nil, fmt.Errorf("handler: %w", err)
	}
	return &Handler{
		cfg:     cfg,
		store:   st,
		limiter: newLimiter(cfg.NewRate, cfg.NewBurst, cfg.Now),
		metrics: newMetrics(),
		log:     cfg.Logger,
	}, nil
}

// ServeHTTP routes a request. Paths are matched on their escaped form so
// that encoded slashes and dot segments cannot reach the store.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := h.cfg.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	endpoint := h.route(rec, r)
	h.metrics.inc(endpoint, rec.status, r.Method)
	if endpoint != "metrics" {
		h.log.Info("request", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.EscapedPath(),
			"status", rec.status, "bytes", rec.bytes, "duration", h.cfg.Now().Sub(start))
	}
}

// route dispatches r and returns the metrics endpoint name it belongs to.
func (h *Handler) route(w http.ResponseWriter, r *http.Request) string {
	p := r.URL.EscapedPath()
	switch p {
	case "/":
		http.Redirect(w, r, DocsURL, http.StatusMovedPermanently)
		return "root"
	case "/new":
		h.serveNew(w, r)
		return "new"
	case "/health":
		h.serveHealth(w, r)
		return "health"
	case "/robots.txt":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "User-agent: *\nDisallow: /\n")
		return "robots"
	case "/metrics":
		h.serveMetrics(w, r)
		return "metrics"
	}
	h.serveToken(w, r, p)
	return "token"
}

// serveHealth proves the store accepts writes: it creates a short-lived
// token directory and deletes it.
func (h *Handler) serveHealth(w http.ResponseWriter, r *http.Request) {
	tok, err := token.New(h.cfg.Rand)
	if err == nil {
		err = h.store.mkdirTTL(r.Context(), token.Dir(tok), time.Minute)
	}
	if err == nil {
		err = h.store.removeAll(r.Context(), token.Dir(tok))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err != nil {
		h.log.Warn("health check failed", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "health check failed: store unavailable\n")
		return
	}
	io.WriteString(w, "OK")
}

// lockToken serialises registrations for one token; call the returned
// function to unlock.
func (h *Handler) lockToken(tok string) func() {
	f := fnv.New32a()
	f.Write([]byte(tok))
	m := &h.locks[f.Sum32()%uint32(len(h.locks))]
	m.Lock()
	return m.Unlock
}

// clientIP is the address the rate limit applies to: the TCP peer.
// (X-Forwarded-For is not trusted: anyone can send it.)
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// writeError writes an etcd-style JSON error with the given status, as
// etcd's /v2/keys does (including X-Etcd-Index), so etcd members print a
// meaningful message.
func writeError(w http.ResponseWriter, status int, e *v2api.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(v2api.HeaderEtcdIndex, fmt.Sprint(e.Index))
	w.WriteHeader(status)
	b, _ := json.Marshal(e)
	w.Write(append(b, '\n'))
}

// writeText writes a plain-text answer (used by /new, whose users are
// people with curl).
func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	io.WriteString(w, msg)
}

// recorder remembers the status and size of a response for logs and
// metrics; Unwrap lets http.ResponseController reach Flush.
type recorder struct {
	http.ResponseWriter
	status  int
	bytes   int64
	written bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.written {
		r.status, r.written = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.written = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
