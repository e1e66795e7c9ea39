// Package discovery is the member side of etcd 2.x discovery bootstrap: a
// member registers itself under a discovery token and waits until the
// token's configured size of members have registered; their registrations
// become the member's --initial-cluster. A proxy (or a member that found the
// token full) reads the first size registrations with GetCluster.
//
// The token is a URL whose path is used verbatim as a v2 key path on the
// URL's host, so both forms work:
//
//	http://discovery.example:8087/<32 hex>        (a discovery service)
//	http://172.17.8.1:4001/v2/keys/<any key>      (plain keys on any etcd)
//
// The HTTP sequence, log lines, error texts and backoff follow etcd 2.3.8
// (with etcd 3.4's backoff cap of 256 s). Deliberate improvements:
//
//   - An unknown token and a token without _config/size are reported as
//     ErrTokenNotFound and ErrSizeNotFound; etcd 2.1–3.4 leaked the raw
//     "100: Key not found" client error instead (a type-assertion bug).
//   - While waiting, only the creation of new member keys counts; etcd
//     counted any event under the token (a deletion, a size update) as an
//     arriving member.
//   - A watch whose index the server's history has already dropped (401
//     "The event in requested index is outdated and cleared") lists the
//     token again and waits from there; etcd gave up.
//   - Config.DefaultSize (off by default; etcd's --discovery-default-size,
//     3 there) lets a plain keys URL (path containing /v2/keys/) without a
//     size key work, for etcd 0.4-style URLs nobody configured (seed 001),
//     with a warning. Discovery service tokens are never defaulted: an
//     unknown one is still ErrTokenNotFound.
//
// Read Join first (discovery.go), then the wire helpers in client.go.
// Member IDs come from etcd/internal/membership (NewMember, IDString).
package discovery
