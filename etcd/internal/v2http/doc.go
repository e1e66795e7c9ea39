// Package v2http serves etcd's v2 client API over HTTP: /v2/keys (reads,
// writes, watches), /v2/members, /v2/stats/*, /v2/machines, /version and
// /health, byte-compatible with etcd 2.3.8 and etcd 3.4's --enable-v2 (where
// the two differ, 3.4 wins: /health body, noValueOnSuccess).
//
// It is only the HTTP edge: every request is parsed into a typed value by a
// pure function (parse.go), handed to an [etcdserver.Server], and the result
// is written by one writer pair (wire.go). It keeps no state of its own.
//
// Start reading at handler.go (NewClientHandler: routing, CORS, OPTIONS,
// recovery), then keys.go (the /v2/keys flow and watches), parse.go (the
// parameter rules and their error codes) and wire.go (headers, status codes,
// body encodings). members.go and info.go hold the smaller endpoints.
package v2http
