package v2http

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	"github.com/corekit/corekit/etcd/internal/etcdserver"
)

// infoHandler serves the small read-only endpoints: /v2/stats/*,
// /v2/machines, /version and /health.
type infoHandler struct {
	srv etcdserver.Server
}

func (h *infoHandler) statsStore(w http.ResponseWriter, r *http.Request) {
	if allowMethod(w, r.Method, "GET") {
		writeRawJSON(w, h.srv.StoreStats())
	}
}

func (h *infoHandler) statsSelf(w http.ResponseWriter, r *http.Request) {
	if allowMethod(w, r.Method, "GET") {
		writeRawJSON(w, h.srv.SelfStats())
	}
}

func (h *infoHandler) statsLeader(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET") {
		return
	}
	body, ok := h.srv.LeaderStats()
	if !ok {
		writeMessage(w, http.StatusForbidden, "not current leader")
		return
	}
	writeRawJSON(w, body)
}

// machines answers every member's client URLs, sorted, joined by ", ", as
// text without a trailing newline.
func (h *infoHandler) machines(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET", "HEAD") {
		return
	}
	var urls []string
	for _, m := range h.srv.Members() {
		urls = append(urls, m.ClientURLs...)
	}
	sort.Strings(urls)
	_, _ = w.Write([]byte(strings.Join(urls, ", ")))
}

// versionBody is the /version JSON.
type versionBody struct {
	Server  string `json:"etcdserver"`
	Cluster string `json:"etcdcluster"`
}

func (h *infoHandler) version(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET") {
		return
	}
	b, _ := json.Marshal(versionBody{Server: etcdserver.ServerVersion, Cluster: etcdserver.ClusterVersion})
	writeRawJSON(w, b)
}

// health answers etcd 3.4's {"health":"true"} (200, content type left to
// sniffing, as etcd does) or {"health":"false"} via http.Error (503).
func (h *infoHandler) health(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r.Method, "GET") {
		return
	}
	if !h.srv.Healthy(r.Context()) {
		http.Error(w, `{"health":"false"}`, http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(`{"health":"true"}`))
}
