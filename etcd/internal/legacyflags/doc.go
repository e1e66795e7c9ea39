// Package legacyflags translates etcd 0.4 settings into etcd 2 settings
// before etcdmain parses its own flags, as etcd 2.3.8 accepted them.
//
// It is pure: Translate reads only its arguments (a command line and an
// environment in os.Environ form) and returns new ones; it does no I/O and
// logs nothing. Read Translate first.
//
// Translated settings (the flag and its ETCD_* environment form):
//
//	-addr ip:port           (ETCD_ADDR)           → --advertise-client-urls http(s)://ip:port
//	                                                 and, when neither -bind-addr nor
//	                                                 --listen-client-urls is set,
//	                                                 --listen-client-urls http(s)://[::]:port
//	-bind-addr ip:port      (ETCD_BIND_ADDR)      → --listen-client-urls http(s)://ip:port
//	-peer-addr ip:port      (ETCD_PEER_ADDR)      → --initial-advertise-peer-urls http(s)://ip:port
//	                                                 and, when neither -peer-bind-addr nor
//	                                                 --listen-peer-urls is set,
//	                                                 --listen-peer-urls http(s)://[::]:port
//	-peer-bind-addr ip:port (ETCD_PEER_BIND_ADDR) → --listen-peer-urls http(s)://ip:port
//	-peers, -peers-file     (ETCD_PEERS, ETCD_PEERS_FILE) → rejected
//	-cluster-active-size, -cluster-remove-delay, -cluster-sync-interval,
//	-config, -force, -max-result-buffer, -max-retry-attempts,
//	-peer-heartbeat-interval, -peer-election-timeout, -retry-interval,
//	-snapshot, -v, -vv      (and ETCD_* forms)  → dropped with the warning
//	                                               flag "-x" is no longer supported - ignoring.
//
// The scheme is https when the matching TLS key pair is configured
// (--cert-file/--key-file for client URLs, --peer-cert-file/--peer-key-file
// for peer URLs), as in etcd 2.3.8. The address must be a literal IP.
//
// Deliberate differences from etcd 2.3.8 (all so that a CoreOS cloud-config
// with `addr: $public_ipv4:4001`, `peer-addr: $public_ipv4:7001` and
// `discovery: …` — or with no discovery at all — yields a working member):
//
//  1. When -peer-addr is given and none of --initial-cluster, --discovery,
//     --discovery-srv is set (and the member is not joining an existing
//     cluster nor running as a proxy), Translate adds
//     --initial-cluster <name>=<peer URL> so the default initial cluster
//     (localhost:2380/7001) no longer makes the member refuse to start
//     ("--initial-cluster must include …"): a 0.4 single node starts alone,
//     as it did in 0.4.
//  2. When any legacy address flag is given but no --name, and
//     Options.Hostname is set, the name defaults to the hostname, as etcd
//     0.4 did. Three machines sharing one discovery token then register
//     distinct names instead of failing with "found duplicate name".
//  3. -addr together with an explicit --listen-client-urls (likewise
//     -peer-addr with --listen-peer-urls) is accepted: the derived [::]
//     listen URL is simply not added. 2.3.8 derived -bind-addr regardless and
//     then failed with "Set only one of flags -listen-client-urls and
//     -bind-addr".
//
// Everything else (flag-shadows-env precedence, empty env values ignored,
// conflict errors, error and warning texts) follows etcd 2.3.8.
package legacyflags
