// Package tlsutil builds *tls.Config values for etcd's TLS flags: the
// client-side set --cert-file, --key-file, --trusted-ca-file,
// --client-cert-auth and the deprecated --ca-file, and the same --peer-*
// set. Fill an Info from either set and call ServerConfig (listeners) or
// ClientConfig (dialing members, proxies forwarding to members).
//
// It does file I/O only to read the named PEM files; it keeps no state.
// Read Info first. Test certificates come from the tlstest subpackage.
package tlsutil
