// Package v2api holds the etcd v2 wire format shared by the server, the client
// and every tool that speaks to the store: the event and node JSON shapes, the
// v2 error codes with their exact messages, and the names of the v2 headers.
//
// It is pure data: nothing here does I/O or writes to an http.ResponseWriter.
// Read error.go first for the error table, then node.go for the JSON shapes.
package v2api
