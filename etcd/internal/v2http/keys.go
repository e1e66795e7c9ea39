package v2http

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/corekit/corekit/etcd/internal/etcdserver"
	"github.com/corekit/corekit/internal/v2api"
)

// keysHandler serves /v2/keys and /v2/keys/...: parse, Do, write.
type keysHandler struct {
	srv etcdserver.Server
	log *slog.Logger
	now func() time.Time
	// bufs recycles the buffers events are encoded into.
	bufs bufPool
}

func (h *keysHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "HEAD", "GET", "PUT", "POST", "DELETE") {
		return
	}
	setClusterID(w, h.srv.ClusterID())

	kr, perr := parseKeyRequest(r, h.now())
	if perr != nil {
		writeError(w, perr)
		return
	}
	resp, err := h.srv.Do(r.Context(), kr.Request)
	if err != nil {
		writeError(w, h.toV2Error(r, err))
		return
	}
	switch {
	case resp.Event != nil:
		if err := writeEvent(w, &h.bufs, resp, kr.NoValueOnSuccess); err != nil {
			h.log.Debug("v2http: writing event", "path", kr.Path, "err", err)
		}
	case resp.Watcher != nil:
		wa := resp.Watcher
		start := resp.EtcdIndex
		if start == 0 {
			start = wa.StartIndex
		}
		serveWatch(r.Context(), w, &h.bufs, watch{
			events:    wa.EventChan,
			remove:    wa.Remove,
			etcdIndex: start,
			raftIndex: resp.RaftIndex,
			raftTerm:  resp.RaftTerm,
			stream:    kr.Stream,
		})
	default:
		writeError(w, v2api.NewError(v2api.EcodeRaftInternal, "received response with no Event/Watcher", 0))
	}
}

// toV2Error maps a Do failure to its wire error. Domain errors keep their
// code and cause (a missing index is filled with the current one); anything
// else is 300 "Raft Internal Error" with the error text as cause, index 0.
func (h *keysHandler) toV2Error(r *http.Request, err error) *v2api.Error {
	var ve *v2api.Error
	if errors.As(err, &ve) && ve != nil {
		e := *ve // copy: never mutate an error the server may share
		if e.Index == 0 && e.ErrorCode < 200 && e.ErrorCode != v2api.EcodeUnauthorized {
			e.Index = h.srv.Index()
		}
		if e.Message == "" {
			e.Message = v2api.Message(e.ErrorCode)
		}
		return &e
	}
	h.log.Warn("v2http: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return v2api.NewError(v2api.EcodeRaftInternal, err.Error(), 0)
}

// watch is what serveWatch needs from a registered watcher.
type watch struct {
	events    <-chan *v2api.Event
	remove    func()
	etcdIndex uint64
	raftIndex uint64
	raftTerm  uint64
	stream    bool
}

// serveWatch answers a watch: 200 and headers flushed at once (long poll),
// then one event line and the end, or with stream every event as its own
// flushed line until the client goes away (ctx) or the watcher is closed.
// The watcher is always removed on return.
func serveWatch(ctx context.Context, w http.ResponseWriter, bufs *bufPool, wa watch) {
	defer wa.remove()
	rc := http.NewResponseController(w)
	writeWatchHeaders(w, wa.etcdIndex, wa.raftIndex, wa.raftTerm)
	if rc.Flush() != nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-wa.events:
			if !ok {
				return
			}
			if ev == nil {
				continue
			}
			if writeEventBody(w, bufs, ev) != nil || !wa.stream {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}
