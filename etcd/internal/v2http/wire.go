package v2http

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/corekit/corekit/etcd/internal/etcdserver"
	"github.com/corekit/corekit/internal/v2api"
)

// This file is the one place that knows how v2 responses look on the wire:
// header names and values, status codes, and the three body encodings
// (events and key errors end in "\n"; {"message":…} errors do not; plain
// http.Error text for 404/405/503-health).

const contentTypeJSON = "application/json"

// setClusterID sets X-Etcd-Cluster-Id (lowercase hex, no padding).
func setClusterID(w http.ResponseWriter, id uint64) {
	w.Header()[v2api.HeaderClusterID] = []string{formatID(id)}
}

// formatID renders a member or cluster ID as etcd does: lowercase hex.
func formatID(id uint64) string { return strconv.FormatUint(id, 16) }

// parseID parses a member ID as etcd does: hex, no prefix.
func parseID(s string) (uint64, error) { return strconv.ParseUint(s, 16, 64) }

// writeEvent writes the response to a successful non-watch /v2/keys request:
// 201 for a create or a set of a new key, 200 otherwise, with the index
// headers and the event JSON plus "\n". With noValueOnSuccess (etcd 3.4) a
// write's node and prevNode are left out.
func writeEvent(w http.ResponseWriter, bufs *bufPool, resp etcdserver.Response, noValueOnSuccess bool) error {
	ev := *resp.Event // shallow copy: the event may be shared with the store's history
	setIndexHeaders(w.Header(), resp.EtcdIndex, resp.RaftIndex, resp.RaftTerm)
	if isCreated(&ev) {
		w.WriteHeader(http.StatusCreated)
	}
	if noValueOnSuccess {
		switch ev.Action {
		case v2api.ActionSet, v2api.ActionCompareAndSwap, v2api.ActionCreate, v2api.ActionUpdate:
			ev.Node, ev.PrevNode = nil, nil
		}
	}
	return writeEventBody(w, bufs, &ev)
}

// writeEventBody writes ev's JSON line in one Write.
func writeEventBody(w http.ResponseWriter, bufs *bufPool, ev *v2api.Event) error {
	bp := bufs.get()
	defer bufs.put(bp)
	b, err := appendEventJSON(*bp, ev)
	*bp = b
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// setIndexHeaders sets Content-Type and the three index headers. The names
// are in canonical form (TestHeaderNamesCanonical), so the map is written
// directly instead of through Header.Set.
func setIndexHeaders(h http.Header, etcdIndex, raftIndex, raftTerm uint64) {
	v := []string{contentTypeJSON, strconv.FormatUint(etcdIndex, 10),
		strconv.FormatUint(raftIndex, 10), strconv.FormatUint(raftTerm, 10)} // one backing array
	h["Content-Type"] = v[0:1:1]
	h[v2api.HeaderEtcdIndex] = v[1:2:2]
	h[v2api.HeaderRaftIndex] = v[2:3:3]
	h[v2api.HeaderRaftTerm] = v[3:4:4]
}

// isCreated reports whether an event answers 201: a create, or a set that
// had no previous node.
func isCreated(ev *v2api.Event) bool {
	return ev.Action == v2api.ActionCreate || (ev.Action == v2api.ActionSet && ev.PrevNode == nil)
}

// writeWatchHeaders starts a watch response: always 200, X-Etcd-Index is the
// index at registration. The caller flushes.
func writeWatchHeaders(w http.ResponseWriter, etcdIndex, raftIndex, raftTerm uint64) {
	setIndexHeaders(w.Header(), etcdIndex, raftIndex, raftTerm)
	w.WriteHeader(http.StatusOK)
}

// writeError writes a /v2/keys failure: the v2 error JSON plus "\n", with
// X-Etcd-Index = the error's index and the status from the error code.
func writeError(w http.ResponseWriter, e *v2api.Error) {
	b, err := json.Marshal(e)
	if err != nil { // cannot happen: only strings and ints
		b = []byte(`{"errorCode":300,"message":"Raft Internal Error","index":0}`)
	}
	h := w.Header()
	h.Set(v2api.HeaderEtcdIndex, strconv.FormatUint(e.Index, 10))
	h.Set("Content-Type", contentTypeJSON)
	w.WriteHeader(e.StatusCode())
	_, _ = w.Write(append(b, '\n'))
}

// httpError is the generic error body of the members and stats endpoints:
// {"message":"…"} without a trailing newline.
type httpError struct {
	Message string `json:"message"`
}

// writeMessage writes {"message":msg} with status code.
func writeMessage(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(httpError{Message: msg})
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// writeJSONLine writes v as JSON plus "\n" with status code (members API).
func writeJSONLine(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeRawJSON writes a pre-encoded JSON body as is (stats, /version).
func writeRawJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", contentTypeJSON)
	_, _ = w.Write(body)
}

// allowMethod answers 405 with etcd's Allow list (comma, no space) and
// text body unless method is one of allowed.
func allowMethod(w http.ResponseWriter, method string, allowed ...string) bool {
	for _, m := range allowed {
		if m == method {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(allowed, ","))
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	return false
}
