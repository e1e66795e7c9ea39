package legacyflags

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// ignored lists the etcd 0.4 flags that etcd 2.x accepts and ignores with
// the warning `flag "-<name>" is no longer supported - ignoring.`. They are
// boolean flags: a value must be attached with '=' (-snapshot=true); a
// separate value becomes the next argument. Read-only.
var ignored = []string{
	"cluster-active-size", "cluster-remove-delay", "cluster-sync-interval",
	"config", "force", "max-result-buffer", "max-retry-attempts",
	"peer-heartbeat-interval", "peer-election-timeout", "retry-interval",
	"snapshot", "v", "vv",
}

// rejected lists the etcd 0.4 flags etcd 2.x refuses. Read-only.
var rejected = []string{"peers", "peers-file"}

// boolFlags are etcd 2.3.8's boolean flags: they never consume the next
// argument. Translate needs them to walk a command line it does not own.
// Read-only.
var boolFlags = []string{
	"client-cert-auth", "peer-client-cert-auth", "debug", "force-new-cluster",
	"strict-reconfig-check", "version", "enable-pprof", "experimental-v3demo",
	"h", "help",
}

// legacy address flags, in the order etcd 2.3.8 checks their conflicts.
var addrFlags = []struct {
	legacy, urls string // -peer-bind-addr vs --listen-peer-urls
	bindOf       string // for -addr/-peer-addr: the bind flag derived from it
	listen       string // for -addr/-peer-addr: the listen URL flag
	peer         bool   // peer TLS decides the scheme
}{
	{legacy: "peer-bind-addr", urls: "listen-peer-urls", peer: true},
	{legacy: "peer-addr", urls: "initial-advertise-peer-urls", bindOf: "peer-bind-addr", listen: "listen-peer-urls", peer: true},
	{legacy: "bind-addr", urls: "listen-client-urls"},
	{legacy: "addr", urls: "advertise-client-urls", bindOf: "bind-addr", listen: "listen-client-urls"},
}

// Options tunes Translate.
type Options struct {
	// Hostname, when not empty, becomes the default --name while legacy
	// address flags are in use (etcd 0.4's default). Pass os.Hostname().
	Hostname string

	// BoolFlags names the caller's boolean flags beyond etcd 2.3.8's
	// (client-cert-auth, debug, force-new-cluster, version, …), so that
	// Translate knows they do not consume the next argument.
	BoolFlags []string
}

// Result is what Translate produced.
type Result struct {
	// Args is the command line without legacy flags; translated flags
	// (as --name=value) come first, then the caller's other arguments in
	// their original order.
	Args []string
	// Env is the environment without legacy ETCD_* variables; settings
	// translated from the environment are added in their etcd 2 ETCD_* form.
	Env []string
	// Warnings are etcd's warning texts, to be logged at warning level,
	// e.g. `flag "-snapshot" is no longer supported - ignoring.`.
	Warnings []string
	// Notices describe translations, to be logged at info level.
	Notices []string
}

// UsageError is a command-line error: etcdmain prints Error() and the
// usage to stderr and exits 2, as Go's flag package does in etcd 2.3.8.
type UsageError struct{ Msg string }

// Error returns the message, e.g. `flag needs an argument: -addr`.
func (e *UsageError) Error() string { return e.Msg }

// ErrNoLongerSupported is wrapped by the errors for -peers and -peers-file.
var ErrNoLongerSupported = errors.New("flag is no longer supported")

type rejectedError struct{ name string }

func (e *rejectedError) Error() string {
	return fmt.Sprintf("flag \"-%s\" is no longer supported.", e.name)
}
func (e *rejectedError) Unwrap() error { return ErrNoLongerSupported }

// setting is one flag value and where it came from.
type setting struct {
	value   string
	fromEnv bool
}

// Translate rewrites the etcd 0.4 settings found in args (the command line
// without the program name) and env (os.Environ form) into etcd 2 settings.
//
// Errors: a *UsageError for command-line problems (etcdmain prints it with
// the usage and exits 2); any other error is a validation error (etcdmain
// logs "error verifying flags, <err>. See 'etcd --help'." and exits 1), e.g.
// "Set only one of flags -advertise-client-urls and -addr" or
// `invalid value "x" for ETCD_ADDR: bad IP in address specification`.
//
// Translate stops reading flags at "--" or at the first non-flag argument,
// as Go's flag package does, and passes the rest through untouched.
func Translate(args, env []string, opts Options) (Result, error) {
	var res Result
	bools := map[string]bool{}
	for _, b := range append(slices.Clone(boolFlags), opts.BoolFlags...) {
		bools[b] = true
	}
	for _, b := range ignored {
		bools[b] = true
	}

	legacy := map[string]setting{} // legacy address flag → value
	cmdSet := map[string]string{}  // non-legacy flags on the command line
	var rest []string

	// 1. The command line.
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || !strings.HasPrefix(a, "-") || a == "-" {
			rest = append(rest, args[i:]...)
			break
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		name, val, hasVal := strings.Cut(name, "=")
		if name == "" || strings.HasPrefix(name, "-") || strings.HasPrefix(name, "=") {
			// Go's flag package reports "bad flag syntax"; leave it to it.
			rest = append(rest, a)
			continue
		}
		switch {
		case slices.Contains(ignored, name):
			res.Warnings = append(res.Warnings, ignoredWarning(name))
			continue
		case isAddrFlag(name) || slices.Contains(rejected, name):
			if !hasVal {
				if i+1 >= len(args) {
					return Result{}, &UsageError{Msg: "flag needs an argument: -" + name}
				}
				i++
				val = args[i]
			}
			if slices.Contains(rejected, name) {
				return Result{}, &UsageError{Msg: fmt.Sprintf("invalid value %q for flag -%s: %v", val, name, &rejectedError{name})}
			}
			hp, err := parseIPAddressPort(val)
			if err != nil {
				return Result{}, &UsageError{Msg: fmt.Sprintf("invalid value %q for flag -%s: %v", val, name, err)}
			}
			legacy[name] = setting{value: hp}
			continue
		}
		rest = append(rest, a)
		if !hasVal && !bools[name] && i+1 < len(args) {
			i++
			val = args[i]
			rest = append(rest, val)
		}
		cmdSet[name] = val
	}

	// 2. The environment: legacy variables are consumed (and removed),
	// applied only for flags not set on the command line.
	envSet := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		name, ok := flagOfEnv(k)
		if !ok {
			res.Env = append(res.Env, kv)
			continue
		}
		isLegacy := slices.Contains(ignored, name) || slices.Contains(rejected, name) || isAddrFlag(name)
		if !isLegacy {
			res.Env = append(res.Env, kv)
			if v != "" {
				envSet[name] = v
			}
			continue
		}
		_, onCmd := legacy[name]
		if v == "" || onCmd {
			continue
		}
		switch {
		case slices.Contains(ignored, name):
			res.Warnings = append(res.Warnings, ignoredWarning(name))
		case slices.Contains(rejected, name):
			return Result{}, fmt.Errorf("invalid value %q for %s: %w", v, k, &rejectedError{name})
		default:
			hp, err := parseIPAddressPort(v)
			if err != nil {
				return Result{}, fmt.Errorf("invalid value %q for %s: %w", v, k, err)
			}
			legacy[name] = setting{value: hp, fromEnv: true}
			res.Notices = append(res.Notices, fmt.Sprintf("recognized and used environment variable %s=%s", k, v))
		}
	}
	if len(legacy) == 0 {
		res.Args = append(res.Args, rest...)
		return res, nil
	}

	isSet := func(name string) bool {
		if _, ok := cmdSet[name]; ok {
			return true
		}
		_, ok := envSet[name]
		return ok
	}
	value := func(name string) string {
		if v, ok := cmdSet[name]; ok {
			return v
		}
		return envSet[name]
	}
	var outArgs, outEnv []string
	emit := func(fromEnv bool, name, val string) {
		if fromEnv {
			outEnv = append(outEnv, envName(name)+"="+val)
		} else {
			outArgs = append(outArgs, "--"+name+"="+val)
		}
	}
	scheme := func(peer bool) string {
		if peer {
			if isSet("peer-cert-file") || isSet("peer-key-file") {
				return "https"
			}
			return "http"
		}
		if isSet("cert-file") || isSet("key-file") {
			return "https"
		}
		return "http"
	}

	// 3. Conflicts, in etcd 2.3.8's order.
	for _, f := range addrFlags {
		if _, ok := legacy[f.legacy]; ok && isSet(f.urls) {
			return Result{}, fmt.Errorf("Set only one of flags -%s and -%s", f.urls, f.legacy)
		}
	}

	// 4. The name, when legacy flags are in use (difference 2).
	fromEnvAll := true
	for _, s := range legacy {
		fromEnvAll = fromEnvAll && s.fromEnv
	}
	name := value("name")
	if !isSet("name") {
		name = "default"
		if opts.Hostname != "" {
			name = opts.Hostname
			emit(fromEnvAll, "name", name)
			res.Notices = append(res.Notices, fmt.Sprintf("using the hostname %q as --name (etcd 0.4 default)", name))
		}
	}

	// 5. The URLs.
	for _, f := range addrFlags {
		s, ok := legacy[f.legacy]
		if !ok {
			continue
		}
		u := scheme(f.peer) + "://" + s.value
		emit(s.fromEnv, f.urls, u)
		if f.bindOf == "" {
			continue
		}
		if _, bound := legacy[f.bindOf]; bound || isSet(f.listen) {
			continue
		}
		_, port, _ := net.SplitHostPort(s.value)
		emit(s.fromEnv, f.listen, scheme(f.peer)+"://"+net.JoinHostPort("::", port))
	}

	// 6. The initial cluster (difference 1).
	if s, ok := legacy["peer-addr"]; ok &&
		!isSet("initial-cluster") && !isSet("discovery") && !isSet("discovery-srv") &&
		value("initial-cluster-state") != "existing" &&
		(!isSet("proxy") || value("proxy") == "off") {
		ic := name + "=" + scheme(true) + "://" + s.value
		emit(s.fromEnv, "initial-cluster", ic)
		res.Notices = append(res.Notices, fmt.Sprintf("using --initial-cluster=%s derived from -peer-addr", ic))
	}

	res.Args = append(outArgs, rest...)
	res.Env = append(res.Env, outEnv...)
	return res, nil
}

func isAddrFlag(name string) bool {
	for _, f := range addrFlags {
		if f.legacy == name {
			return true
		}
	}
	return false
}

func ignoredWarning(name string) string {
	return fmt.Sprintf("flag \"-%s\" is no longer supported - ignoring.", name)
}

// flagOfEnv maps ETCD_PEER_ADDR to peer-addr.
func flagOfEnv(k string) (string, bool) {
	rest, ok := strings.CutPrefix(k, "ETCD_")
	if !ok || rest == "" {
		return "", false
	}
	return strings.ReplaceAll(strings.ToLower(rest), "_", "-"), true
}

// envName maps peer-addr to ETCD_PEER_ADDR.
func envName(flag string) string {
	return "ETCD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// parseIPAddressPort validates "ip:port" as etcd 2.3.8's IPAddressPort does
// and returns it normalised (IPv6 in brackets).
func parseIPAddressPort(v string) (string, error) {
	host, port, err := net.SplitHostPort(strings.TrimSpace(v))
	if err != nil {
		return "", err
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return "", errors.New("bad IP in address specification")
	}
	if _, err := strconv.Atoi(port); err != nil {
		return "", err
	}
	return net.JoinHostPort(host, port), nil
}
