// Package proxy is etcd 2.x's v2 proxy mode (--proxy on|readonly): an
// http.Handler that forwards client requests to the cluster members' client
// URLs, and the sources those URLs come from.
//
// A Proxy holds a list of backends (members' client URLs), refreshed by Run
// every RefreshInterval (every second while the list is empty) from a
// Config.Endpoints function, shuffled on every refresh. Each request is
// tried against the available backends in order; a transport error puts
// that backend in quarantine for FailureWait and the next one is tried.
// Answers follow etcd 2.3.8: 503 {"message":"proxy: zero endpoints currently
// available"} when none is known, 502 {"message":"proxy: unable to get
// response from N endpoint(s)"} when all failed, 501 with an empty body for
// any method but GET in read-only mode, hop-by-hop headers stripped both
// ways, X-Forwarded-For appended, and GET /v2/config/local/proxy listing the
// available backends as {"endpoints":[…]}.
//
// Deliberate improvement: the response body is flushed to the client after
// every read from the backend, so streaming and long-poll watches
// (?wait=true&stream=true) pass through at once; etcd 2.3.8 copied without
// flushing, so streamed events sat in the proxy's buffer.
//
// Sources (source.go): PeerMembers asks members' peer URLs for GET /members
// (etcd's peer API, a JSON array of members) and keeps the proxy cluster file
// <data-dir>/proxy/cluster ({"PeerURLs":[…]}) up to date; ClientMembers asks
// client URLs for GET /v2/members. Read proxy.go first.
package proxy
