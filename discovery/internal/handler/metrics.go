package handler

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
)

// metrics holds the service's counters and writes them in the Prometheus
// text exposition format (version 0.0.4). The request counters keep the
// names and labels of the original service.
type metrics struct {
	mu       sync.Mutex
	requests map[reqKey]uint64
	events   map[string]uint64
}

type reqKey struct {
	endpoint string
	code     int
	method   string
}

// Event counters beyond the original service.
const (
	evTokensCreated = "discovery_tokens_created_total"
	evRateLimited   = "discovery_new_rate_limited_total"
	evSealed        = "discovery_registrations_rejected_sealed_total"
	evExpired       = "discovery_tokens_expired_total"
	evDeleted       = "discovery_deletions_total"
)

var eventHelp = map[string]string{
	evTokensCreated: "Tokens created by /new.",
	evRateLimited:   "Requests to /new refused by the per-client rate limit.",
	evSealed:        "Member registrations refused because the token already had size members.",
	evExpired:       "Token requests answered 404 because the token was older than its TTL.",
	evDeleted:       "Authorised DELETE requests for tokens or members.",
}

// endpointMetric names the request counter of each endpoint; others are not
// counted.
var endpointMetric = map[string]string{
	"new":    "endpoint_new_requests_total",
	"health": "endpoint_health_requests_total",
	"token":  "endpoint_token_requests_total",
}

func newMetrics() *metrics {
	m := &metrics{requests: map[reqKey]uint64{}, events: map[string]uint64{}}
	for k := range eventHelp {
		m.events[k] = 0
	}
	return m
}

func (m *metrics) inc(endpoint string, code int, method string) {
	if _, ok := endpointMetric[endpoint]; !ok {
		return
	}
	// Unknown methods would let a client grow the label space without bound.
	switch method {
	case http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodHead:
	default:
		method = "other"
	}
	m.mu.Lock()
	m.requests[reqKey{endpoint, code, method}]++
	m.mu.Unlock()
}

func (m *metrics) event(name string) {
	m.mu.Lock()
	m.events[name]++
	m.mu.Unlock()
}

// write renders every counter, sorted, in the text format.
func (m *metrics) write(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	names := make([]string, 0, len(endpointMetric))
	for _, n := range endpointMetric {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(&b, "# HELP %s Requests to the endpoint, by status code and method.\n# TYPE %s counter\n", name, name)
		var keys []reqKey
		for k := range m.requests {
			if endpointMetric[k.endpoint] == name {
				keys = append(keys, k)
			}
		}
		sort.Slice(keys, func(i, j int) bool {
			if keys[i].code != keys[j].code {
				return keys[i].code < keys[j].code
			}
			return keys[i].method < keys[j].method
		})
		for _, k := range keys {
			fmt.Fprintf(&b, "%s{code=\"%d\",method=\"%s\"} %d\n", name, k.code, strings.ToLower(k.method), m.requests[k])
		}
	}
	evs := make([]string, 0, len(m.events))
	for k := range m.events {
		evs = append(evs, k)
	}
	sort.Strings(evs)
	for _, name := range evs {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, eventHelp[name], name, name, m.events[name])
	}
	io.WriteString(w, b.String())
}

func (h *Handler) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	h.metrics.write(w)
}
