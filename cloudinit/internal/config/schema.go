package config

// kind is the YAML shape a schema field accepts.
type kind int

const (
	kString  kind = iota // any scalar; the raw text is kept
	kInt                 // an integer scalar
	kFloat               // a float or integer scalar
	kBool                // true/false (and YAML 1.1 yes/no/on/off)
	kStrings             // a sequence of scalars
	kStruct              // a mapping
	kStructs             // a sequence of mappings
)

// typeName is how the anchor's validator names a kind in
// `incorrect type for "k" (want T)`.
func (k kind) typeName() string {
	switch k {
	case kString:
		return "string"
	case kInt:
		return "int"
	case kFloat:
		return "float64"
	case kBool:
		return "bool"
	case kStrings:
		return "[]string"
	case kStruct:
		return "struct"
	default:
		return "[]struct"
	}
}

// field describes one key of the cloud-config schema. Keys are written with
// '_'; user-data may use '-' instead anywhere.
type field struct {
	key        string
	kind       kind
	env        string  // environment variable for the env-rendering sections
	deprecated string  // non-empty: warn `deprecated key "k" (reason)`
	valid      string  // non-empty: regular expression the scalar text must match
	fields     []field // kStruct / kStructs members, in output order
}

func s(key, env string) field { return field{key: key, kind: kString, env: env} }
func i(key, env string) field { return field{key: key, kind: kInt, env: env} }
func f(key, env string) field { return field{key: key, kind: kFloat, env: env} }
func b(key, env string) field { return field{key: key, kind: kBool, env: env} }

func (fd field) dep(reason string) field { fd.deprecated = reason; return fd }
func (fd field) re(valid string) field   { fd.valid = valid; return fd }

const etcd2Only = "etcd2 options no longer work for etcd"

// schema returns the whole cloud-config schema of coreos-cloudinit v1.14,
// as a fresh value (it is never shared or mutated). Field order within the
// env-rendering sections is the order their variables are written.
func schema() field {
	etcd := []field{
		s("addr", "ETCD_ADDR"),
		s("advertise_client_urls", "ETCD_ADVERTISE_CLIENT_URLS").dep(etcd2Only),
		s("bind_addr", "ETCD_BIND_ADDR"),
		s("ca_file", "ETCD_CA_FILE"),
		s("cert_file", "ETCD_CERT_FILE"),
		i("cluster_active_size", "ETCD_CLUSTER_ACTIVE_SIZE"),
		f("cluster_remove_delay", "ETCD_CLUSTER_REMOVE_DELAY"),
		f("cluster_sync_interval", "ETCD_CLUSTER_SYNC_INTERVAL"),
		s("cors", "ETCD_CORS"),
		s("data_dir", "ETCD_DATA_DIR"),
		s("discovery", "ETCD_DISCOVERY"),
		s("discovery_fallback", "ETCD_DISCOVERY_FALLBACK").dep(etcd2Only),
		s("discovery_srv", "ETCD_DISCOVERY_SRV").dep(etcd2Only),
		s("discovery_proxy", "ETCD_DISCOVERY_PROXY").dep(etcd2Only),
		i("election_timeout", "ETCD_ELECTION_TIMEOUT").dep(etcd2Only),
		b("force_new_cluster", "ETCD_FORCE_NEW_CLUSTER").dep(etcd2Only),
		s("graphite_host", "ETCD_GRAPHITE_HOST"),
		i("heartbeat_interval", "ETCD_HEARTBEAT_INTERVAL").dep(etcd2Only),
		f("http_read_timeout", "ETCD_HTTP_READ_TIMEOUT"),
		f("http_write_timeout", "ETCD_HTTP_WRITE_TIMEOUT"),
		s("initial_advertise_peer_urls", "ETCD_INITIAL_ADVERTISE_PEER_URLS").dep(etcd2Only),
		s("initial_cluster", "ETCD_INITIAL_CLUSTER").dep(etcd2Only),
		s("initial_cluster_state", "ETCD_INITIAL_CLUSTER_STATE").dep(etcd2Only),
		s("initial_cluster_token", "ETCD_INITIAL_CLUSTER_TOKEN").dep(etcd2Only),
		s("key_file", "ETCD_KEY_FILE"),
		s("listen_client_urls", "ETCD_LISTEN_CLIENT_URLS").dep(etcd2Only),
		s("listen_peer_urls", "ETCD_LISTEN_PEER_URLS").dep(etcd2Only),
		i("max_result_buffer", "ETCD_MAX_RESULT_BUFFER"),
		i("max_retry_attempts", "ETCD_MAX_RETRY_ATTEMPTS"),
		i("max_snapshots", "ETCD_MAX_SNAPSHOTS").dep(etcd2Only),
		i("max_wals", "ETCD_MAX_WALS").dep(etcd2Only),
		s("name", "ETCD_NAME"),
		s("peer_addr", "ETCD_PEER_ADDR"),
		s("peer_bind_addr", "ETCD_PEER_BIND_ADDR"),
		s("peer_ca_file", "ETCD_PEER_CA_FILE"),
		s("peer_cert_file", "ETCD_PEER_CERT_FILE"),
		i("peer_election_timeout", "ETCD_PEER_ELECTION_TIMEOUT"),
		i("peer_heartbeat_interval", "ETCD_PEER_HEARTBEAT_INTERVAL"),
		s("peer_key_file", "ETCD_PEER_KEY_FILE"),
		s("peers", "ETCD_PEERS"),
		s("peers_file", "ETCD_PEERS_FILE"),
		s("proxy", "ETCD_PROXY").dep(etcd2Only),
		f("retry_interval", "ETCD_RETRY_INTERVAL"),
		b("snapshot", "ETCD_SNAPSHOT"),
		i("snapshot_count", "ETCD_SNAPSHOTCOUNT"),
		s("trace", "ETCD_TRACE"),
		b("verbose", "ETCD_VERBOSE"),
		b("very_verbose", "ETCD_VERY_VERBOSE"),
		b("very_very_verbose", "ETCD_VERY_VERY_VERBOSE"),
	}
	etcd2 := []field{
		s("advertise_client_urls", "ETCD_ADVERTISE_CLIENT_URLS"),
		s("ca_file", "ETCD_CA_FILE").dep("ca_file obsoleted by trusted_ca_file and client_cert_auth"),
		s("cert_file", "ETCD_CERT_FILE"),
		b("client_cert_auth", "ETCD_CLIENT_CERT_AUTH"),
		s("cors", "ETCD_CORS"),
		s("data_dir", "ETCD_DATA_DIR"),
		b("debug", "ETCD_DEBUG"),
		s("discovery", "ETCD_DISCOVERY"),
		s("discovery_fallback", "ETCD_DISCOVERY_FALLBACK"),
		s("discovery_srv", "ETCD_DISCOVERY_SRV"),
		s("discovery_proxy", "ETCD_DISCOVERY_PROXY"),
		i("election_timeout", "ETCD_ELECTION_TIMEOUT"),
		b("enable_pprof", "ETCD_ENABLE_PPROF"),
		b("force_new_cluster", "ETCD_FORCE_NEW_CLUSTER"),
		i("heartbeat_interval", "ETCD_HEARTBEAT_INTERVAL"),
		s("initial_advertise_peer_urls", "ETCD_INITIAL_ADVERTISE_PEER_URLS"),
		s("initial_cluster", "ETCD_INITIAL_CLUSTER"),
		s("initial_cluster_state", "ETCD_INITIAL_CLUSTER_STATE"),
		s("initial_cluster_token", "ETCD_INITIAL_CLUSTER_TOKEN"),
		s("key_file", "ETCD_KEY_FILE"),
		s("listen_client_urls", "ETCD_LISTEN_CLIENT_URLS"),
		s("listen_peer_urls", "ETCD_LISTEN_PEER_URLS"),
		s("log_package_levels", "ETCD_LOG_PACKAGE_LEVELS"),
		i("max_snapshots", "ETCD_MAX_SNAPSHOTS"),
		i("max_wals", "ETCD_MAX_WALS"),
		s("name", "ETCD_NAME"),
		s("peer_ca_file", "ETCD_PEER_CA_FILE").dep("peer_ca_file obsoleted peer_trusted_ca_file and peer_client_cert_auth"),
		s("peer_cert_file", "ETCD_PEER_CERT_FILE"),
		s("peer_key_file", "ETCD_PEER_KEY_FILE"),
		b("peer_client_cert_auth", "ETCD_PEER_CLIENT_CERT_AUTH"),
		s("peer_trusted_ca_file", "ETCD_PEER_TRUSTED_CA_FILE"),
		s("proxy", "ETCD_PROXY").re("^(on|off|readonly)$"),
		i("proxy_dial_timeout", "ETCD_PROXY_DIAL_TIMEOUT"),
		i("proxy_failure_wait", "ETCD_PROXY_FAILURE_WAIT"),
		i("proxy_read_timeout", "ETCD_PROXY_READ_TIMEOUT"),
		i("proxy_refresh_interval", "ETCD_PROXY_REFRESH_INTERVAL"),
		i("proxy_write_timeout", "ETCD_PROXY_WRITE_TIMEOUT"),
		i("snapshot_count", "ETCD_SNAPSHOT_COUNT"),
		b("strict_reconfig_check", "ETCD_STRICT_RECONFIG_CHECK"),
		s("trusted_ca_file", "ETCD_TRUSTED_CA_FILE"),
		s("wal_dir", "ETCD_WAL_DIR"),
	}
	fleet := []field{
		f("agent_ttl", "FLEET_AGENT_TTL"),
		s("authorized_keys_file", "FLEET_AUTHORIZED_KEYS_FILE"),
		b("disable_engine", "FLEET_DISABLE_ENGINE"),
		f("engine_reconcile_interval", "FLEET_ENGINE_RECONCILE_INTERVAL"),
		s("etcd_cafile", "FLEET_ETCD_CAFILE"),
		s("etcd_certfile", "FLEET_ETCD_CERTFILE"),
		s("etcd_keyfile", "FLEET_ETCD_KEYFILE"),
		s("etcd_key_prefix", "FLEET_ETCD_KEY_PREFIX"),
		f("etcd_request_timeout", "FLEET_ETCD_REQUEST_TIMEOUT"),
		s("etcd_servers", "FLEET_ETCD_SERVERS"),
		s("etcd_username", "FLEET_ETCD_USERNAME"),
		s("etcd_password", "FLEET_ETCD_PASSWORD"),
		s("metadata", "FLEET_METADATA"),
		s("public_ip", "FLEET_PUBLIC_IP"),
		i("token_limit", "FLEET_TOKEN_LIMIT"),
		i("verbosity", "FLEET_VERBOSITY"),
		b("verify_units", "FLEET_VERIFY_UNITS"),
	}
	flannel := []field{
		s("etcd_endpoints", "FLANNELD_ETCD_ENDPOINTS"),
		s("etcd_cafile", "FLANNELD_ETCD_CAFILE"),
		s("etcd_certfile", "FLANNELD_ETCD_CERTFILE"),
		s("etcd_keyfile", "FLANNELD_ETCD_KEYFILE"),
		s("etcd_prefix", "FLANNELD_ETCD_PREFIX"),
		s("etcd_username", "FLANNELD_ETCD_USERNAME"),
		s("etcd_password", "FLANNELD_ETCD_PASSWORD"),
		s("ip_masq", "FLANNELD_IP_MASQ"),
		s("subnet_file", "FLANNELD_SUBNET_FILE"),
		s("interface", "FLANNELD_IFACE"),
		s("public_ip", "FLANNELD_PUBLIC_IP"),
	}
	locksmith := []field{
		s("endpoint", "LOCKSMITHD_ENDPOINT"),
		s("etcd_cafile", "LOCKSMITHD_ETCD_CAFILE"),
		s("etcd_certfile", "LOCKSMITHD_ETCD_CERTFILE"),
		s("etcd_keyfile", "LOCKSMITHD_ETCD_KEYFILE"),
		s("etcd_username", "LOCKSMITHD_ETCD_USERNAME"),
		s("etcd_password", "LOCKSMITHD_ETCD_PASSWORD"),
		s("group", "LOCKSMITHD_GROUP"),
		s("window_start", "REBOOT_WINDOW_START").re(`^((?i:sun|mon|tue|wed|thu|fri|sat|sun) )?0*([0-9]|1[0-9]|2[0-3]):0*([0-9]|[1-5][0-9])$`),
		s("window_length", "REBOOT_WINDOW_LENGTH").re(`^[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+$`),
	}
	update := []field{
		s("reboot_strategy", "REBOOT_STRATEGY").re("^(etcd-lock|reboot|off)$"),
		s("group", "GROUP"),
		s("server", "SERVER"),
	}
	oem := []field{
		s("id", ""), s("name", ""), s("version_id", ""), s("home_url", ""), s("bug_report_url", ""),
	}
	unit := []field{
		s("name", ""),
		b("mask", ""),
		b("enable", ""),
		b("runtime", ""),
		s("content", ""),
		s("command", "").re("^(start|stop|restart|reload|try-restart|reload-or-restart|reload-or-try-restart)$"),
		{key: "drop_ins", kind: kStructs, fields: []field{s("name", ""), s("content", "")}},
	}
	const remote = "trying to fetch from a remote endpoint introduces too many intermittent errors"
	user := []field{
		s("name", ""),
		s("passwd", ""),
		s("gecos", ""),
		s("homedir", ""),
		b("no_create_home", ""),
		s("primary_group", ""),
		{key: "groups", kind: kStrings},
		b("no_user_group", ""),
		{key: "ssh_authorized_keys", kind: kStrings},
		s("coreos_ssh_import_github", "").dep(remote),
		{key: "coreos_ssh_import_github_users", kind: kStrings, deprecated: remote},
		s("coreos_ssh_import_url", "").dep(remote),
		b("system", ""),
		b("no_log_init", ""),
		s("shell", ""),
	}
	file := []field{
		s("encoding", "").re("^(base64|b64|gz|gzip|gz\\+base64|gzip\\+base64|gz\\+b64|gzip\\+b64)$"),
		s("content", ""),
		s("owner", ""),
		s("path", ""),
		s("permissions", "").re("^0?[0-7]{3,4}$"),
	}
	coreos := []field{
		{key: "etcd", kind: kStruct, fields: etcd, deprecated: "etcd is no longer shipped in Container Linux"},
		{key: "etcd2", kind: kStruct, fields: etcd2},
		{key: "flannel", kind: kStruct, fields: flannel},
		{key: "fleet", kind: kStruct, fields: fleet, deprecated: "fleet is no longer shipped in Container Linux"},
		{key: "locksmith", kind: kStruct, fields: locksmith},
		{key: "oem", kind: kStruct, fields: oem},
		{key: "update", kind: kStruct, fields: update},
		{key: "units", kind: kStructs, fields: unit},
	}
	return field{kind: kStruct, fields: []field{
		{key: "coreos", kind: kStruct, fields: coreos},
		{key: "ssh_authorized_keys", kind: kStrings},
		s("hostname", ""),
		{key: "users", kind: kStructs, fields: user},
		{key: "write_files", kind: kStructs, fields: file},
		s("manage_etc_hosts", ""),
	}}
}

func (fd field) child(key string) (field, bool) {
	for _, c := range fd.fields {
		if c.key == key {
			return c, true
		}
	}
	return field{}, false
}
