package v2http

import (
	"bufio"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"path"
	"runtime/debug"
	"time"

	"github.com/corekit/corekit/etcd/internal/etcdserver"
)

// Options configures the client handler. The zero value is usable: no
// logging, the wall clock, no CORS headers.
type Options struct {
	// Logger receives request failures and recovered panics; nil discards.
	Logger *slog.Logger
	// Now is the clock that turns ttl=N into an absolute expiration on this
	// member; nil means time.Now.
	Now func() time.Time
	// CORS lists the allowed origins for Access-Control-* headers; "*"
	// allows any origin. Empty: no CORS headers (OPTIONS still answers 200).
	CORS []string
}

// NewClientHandler returns the handler for the client port: the v2 API of
// srv with etcd's routing (404 for unknown paths, 301 for unclean paths,
// 405 with Allow for wrong methods), a CORS wrapper that answers every
// OPTIONS request with 200, and a last-resort recovery that logs a panic
// and answers 500.
func NewClientHandler(srv etcdserver.Server, opts Options) http.Handler {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	mux := http.NewServeMux()
	keys := &keysHandler{srv: srv, log: log, now: now}
	members := &membersHandler{srv: srv, log: log}
	info := &infoHandler{srv: srv}
	mux.HandleFunc("/", http.NotFound)
	mux.Handle(keysPrefix, keys)
	mux.Handle(keysPrefix+"/", keys)
	mux.Handle(membersPrefix, members)
	mux.Handle(membersPrefix+"/", members)
	mux.HandleFunc("/v2/stats/store", info.statsStore)
	mux.HandleFunc("/v2/stats/self", info.statsSelf)
	mux.HandleFunc("/v2/stats/leader", info.statsLeader)
	mux.HandleFunc("/v2/machines", info.machines)
	mux.HandleFunc("/version", info.version)
	mux.HandleFunc("/health", info.health)

	origins := map[string]bool{}
	for _, o := range opts.CORS {
		origins[o] = true
	}
	return &recoverer{log: log, next: &corsHandler{origins: origins, next: logRequests(log, redirectUnclean(mux))}}
}

// redirectUnclean answers 301 Moved Permanently, Location = the cleaned
// path with the query kept, for a path holding "//", "." or ".." elements,
// as the Go 1.6-1.21 ServeMux that etcd relies on did (today's ServeMux
// answers 307 and cleans the escaped path instead). The request is not
// executed.
func redirectUnclean(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect && r.RequestURI != "*" {
			if cp := cleanPath(r.URL.Path); cp != r.URL.Path {
				u := *r.URL
				u.Path, u.RawPath = cp, ""
				http.Redirect(w, r, u.String(), http.StatusMovedPermanently)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// cleanPath is path.Clean rooted at "/", keeping a trailing slash.
func cleanPath(p string) string {
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

// corsHandler adds Access-Control-* headers for allowed origins and answers
// every OPTIONS request with 200 and an empty body, as etcd does.
type corsHandler struct {
	origins map[string]bool
	next    http.Handler
}

func (c *corsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c.origins["*"] {
		addCORSHeaders(w, "*")
	} else if o := r.Header.Get("Origin"); o != "" && c.origins[o] {
		addCORSHeaders(w, o)
	}
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusOK)
		return
	}
	c.next.ServeHTTP(w, r)
}

func addCORSHeaders(w http.ResponseWriter, origin string) {
	h := w.Header()
	h.Add("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE")
	h.Add("Access-Control-Allow-Origin", origin)
	h.Add("Access-Control-Allow-Headers", "accept, content-type, authorization")
}

func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if log.Enabled(r.Context(), slog.LevelDebug) { // skip boxing the args when off
			log.Debug("v2http: request", "method", r.Method, "uri", r.RequestURI, "remote", r.RemoteAddr)
		}
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a handler panic into a logged 500 (when nothing was
// written yet). It is a last resort: no input is supposed to reach it.
type recoverer struct {
	log  *slog.Logger
	next http.Handler
}

func (rc *recoverer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tw := &trackingWriter{ResponseWriter: w}
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
			panic(v)
		}
		rc.log.Error("v2http: handler panic", "method", r.Method, "uri", r.RequestURI, "panic", v, "stack", string(debug.Stack()))
		if !tw.wrote {
			writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		}
	}()
	rc.next.ServeHTTP(tw, r)
}

// trackingWriter records whether the response was started; it keeps
// Flush/Hijack reachable through Unwrap and direct methods.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) {
	t.wrote = true
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}

func (t *trackingWriter) Flush() {
	t.wrote = true
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (t *trackingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(t.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }
