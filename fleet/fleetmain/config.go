package fleetmain

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/corekit/corekit/fleet/internal/unitmgr"
	"github.com/corekit/corekit/internal/fleetapi"
	"github.com/corekit/corekit/internal/fleetregistry"
)

// DefaultConfigFile is read when it exists and --config is not given.
const DefaultConfigFile = "/etc/fleet/fleet.conf"

// Config is fleetd's configuration. Every field has an option name (the
// key in fleet.conf, the flag --<name>, the env var FLEET_<NAME>);
// precedence is flag > environment > file > default.
type Config struct {
	Verbosity               int
	EtcdServers             []string
	EtcdUsername            string
	EtcdPassword            string
	EtcdCAFile              string
	EtcdCertFile            string
	EtcdKeyFile             string
	EtcdKeyPrefix           string
	EtcdRequestTimeout      time.Duration
	EngineReconcileInterval time.Duration
	PublicIP                string
	Metadata                map[string]string
	AgentTTL                time.Duration
	UnitsDirectory          string
	TokenLimit              int
	DisableEngine           bool
	DisableWatches          bool
	// Extensions of ours (fleet took listeners from socket activation only):
	APISocket       string // unix socket path of the API ("" = none)
	APIListen       string // optional TCP address of the API
	PurgeOnShutdown bool   // fleet's SIGTERM behaviour: stop and unload every unit
	MachineIDFile   string // where the machine ID is read (/etc/machine-id)
	// ShutdownTimeout bounds the work after SIGTERM (DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
	// UnitManager is "systemd" (default) or "memory": a simulated systemd
	// in process, for tests that run fleetd without systemd (hidden option).
	UnitManager string
}

// DefaultConfig returns fleet's defaults.
func DefaultConfig() Config {
	return Config{
		EtcdServers:             []string{"http://127.0.0.1:2379", "http://127.0.0.1:4001"},
		EtcdKeyPrefix:           fleetregistry.DefaultPrefix,
		EtcdRequestTimeout:      time.Second,
		EngineReconcileInterval: 2 * time.Second,
		AgentTTL:                30 * time.Second,
		UnitsDirectory:          unitmgr.DefaultUnitsDir,
		TokenLimit:              fleetapi.DefaultTokenLimit,
		APISocket:               "/var/run/fleet.sock",
		MachineIDFile:           "/etc/machine-id",
		ShutdownTimeout:         DefaultShutdownTimeout,
		UnitManager:             "systemd",
	}
}

// option describes one configuration key.
type option struct {
	name string
	set  func(c *Config, v string) error
}

func seconds(v string) (time.Duration, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("expected a positive number of seconds, got %q", v)
	}
	return time.Duration(f * float64(time.Second)), nil
}

func boolean(v string) (bool, error) { return strconv.ParseBool(strings.TrimSpace(v)) }

var deprecated = map[string]bool{"verify_units": true, "authorized_keys_file": true, "enable_grpc": true, "systemd_user": true}

func options() []option {
	str := func(f func(c *Config) *string) func(*Config, string) error {
		return func(c *Config, v string) error { *f(c) = v; return nil }
	}
	return []option{
		{"verbosity", func(c *Config, v string) (err error) { c.Verbosity, err = strconv.Atoi(strings.TrimSpace(v)); return }},
		{"etcd_servers", func(c *Config, v string) error { c.EtcdServers = ParseServers(v); return nil }},
		{"etcd_username", str(func(c *Config) *string { return &c.EtcdUsername })},
		{"etcd_password", str(func(c *Config) *string { return &c.EtcdPassword })},
		{"etcd_cafile", str(func(c *Config) *string { return &c.EtcdCAFile })},
		{"etcd_certfile", str(func(c *Config) *string { return &c.EtcdCertFile })},
		{"etcd_keyfile", str(func(c *Config) *string { return &c.EtcdKeyFile })},
		{"etcd_key_prefix", str(func(c *Config) *string { return &c.EtcdKeyPrefix })},
		{"etcd_request_timeout", func(c *Config, v string) (err error) { c.EtcdRequestTimeout, err = seconds(v); return }},
		{"engine_reconcile_interval", func(c *Config, v string) (err error) { c.EngineReconcileInterval, err = seconds(v); return }},
		{"public_ip", str(func(c *Config) *string { return &c.PublicIP })},
		{"metadata", func(c *Config, v string) error { c.Metadata = ParseMetadata(v); return nil }},
		{"agent_ttl", func(c *Config, v string) (err error) {
			c.AgentTTL, err = time.ParseDuration(strings.TrimSpace(v))
			if err == nil && c.AgentTTL < time.Second {
				err = errors.New("must be at least 1s")
			}
			return
		}},
		{"units_directory", str(func(c *Config) *string { return &c.UnitsDirectory })},
		{"token_limit", func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("expected 1..65535, got %q", v)
			}
			c.TokenLimit = n
			return nil
		}},
		{"disable_engine", func(c *Config, v string) (err error) { c.DisableEngine, err = boolean(v); return }},
		{"disable_watches", func(c *Config, v string) (err error) { c.DisableWatches, err = boolean(v); return }},
		{"api_socket", str(func(c *Config) *string { return &c.APISocket })},
		{"api_listen", str(func(c *Config) *string { return &c.APIListen })},
		{"purge_on_shutdown", func(c *Config, v string) (err error) { c.PurgeOnShutdown, err = boolean(v); return }},
		{"machine_id_file", str(func(c *Config) *string { return &c.MachineIDFile })},
		{"unit_manager", func(c *Config, v string) error {
			switch v = strings.TrimSpace(v); v {
			case "systemd", "memory":
				c.UnitManager = v
				return nil
			}
			return fmt.Errorf("expected systemd or memory, got %q", v)
		}},
		{"shutdown_timeout", func(c *Config, v string) (err error) { c.ShutdownTimeout, err = seconds(v); return }},
	}
}

// ParseServers splits etcd_servers: a comma list whose items lose
// surrounding spaces, '[', ']' and '"' (so a JSON list also works).
func ParseServers(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		s = strings.Trim(s, " []\"")
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// ParseMetadata parses "k=v,k2=v2": spaces trimmed, later duplicates win,
// items without '=' dropped.
func ParseMetadata(v string) map[string]string {
	out := map[string]string{}
	for _, item := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(item, "=")
		k, val = strings.TrimSpace(k), strings.TrimSpace(val)
		if !ok || k == "" {
			continue
		}
		out[k] = val
	}
	return out
}

// parseFile reads fleet.conf: "key=value" lines, '#' or ';' comments,
// values optionally double-quoted.
func parseFile(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: expected key=value", n)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, sc.Err()
}

// LoadConfig builds the configuration from args (flags), environ
// (FLEET_*) and the config file (--config, else DefaultConfigFile when it
// exists). It returns the config, whether --version was asked, and warnings
// about deprecated keys.
func LoadConfig(args []string, environ []string, stderr io.Writer) (Config, bool, []string, error) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("fleetd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgFile := fs.String("config", "", "path to the fleet configuration file")
	version := fs.Bool("version", false, "print the version and exit")
	flagVals := map[string]*string{}
	opts := options()
	for _, o := range opts {
		flagVals[o.name] = fs.String(o.name, "", "configuration option "+o.name)
	}
	for n := range deprecated {
		flagVals[n] = fs.String(n, "", "deprecated, ignored")
	}
	if err := fs.Parse(args); err != nil {
		return cfg, false, nil, err
	}
	if fs.NArg() > 0 {
		if fs.Arg(0) == "version" && fs.NArg() == 1 {
			return cfg, true, nil, nil
		}
		return cfg, false, nil, errors.New("fleetd takes no arguments. Did you mean to invoke fleetctl instead?")
	}
	if *version {
		return cfg, true, nil, nil
	}
	setFlags := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setFlags[f.Name] = true })

	values := map[string]string{}
	path := *cfgFile
	if path == "" {
		if _, err := os.Stat(DefaultConfigFile); err == nil {
			path = DefaultConfigFile
		}
	}
	if path != "" {
		st, err := os.Stat(path)
		if err != nil {
			return cfg, false, nil, fmt.Errorf("unable to open config file %s: %w", path, err)
		}
		if st.IsDir() {
			return cfg, false, nil, fmt.Errorf("config file %s is a directory", path)
		}
		f, err := os.Open(path)
		if err != nil {
			return cfg, false, nil, err
		}
		fv, err := parseFile(f)
		f.Close()
		if err != nil {
			return cfg, false, nil, fmt.Errorf("config file %s: %w", path, err)
		}
		for k, v := range fv {
			values[k] = v
		}
	}
	env := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var warnings []string
	known := map[string]bool{}
	for _, o := range opts {
		known[o.name] = true
		if v, ok := env["FLEET_"+strings.ToUpper(o.name)]; ok {
			values[o.name] = v
		}
		if setFlags[o.name] {
			values[o.name] = *flagVals[o.name]
		}
	}
	for n := range deprecated {
		if _, ok := values[n]; ok || setFlags[n] || env["FLEET_"+strings.ToUpper(n)] != "" {
			warnings = append(warnings, fmt.Sprintf("option %s is not supported and is ignored", n))
		}
		delete(values, n)
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !known[k] {
			warnings = append(warnings, fmt.Sprintf("unknown option %s in config file ignored", k))
		}
	}
	for _, o := range opts {
		v, ok := values[o.name]
		if !ok {
			continue
		}
		if err := o.set(&cfg, v); err != nil {
			return cfg, false, nil, fmt.Errorf("invalid value for %s: %w", o.name, err)
		}
	}
	return cfg, false, warnings, cfg.Validate()
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if len(c.EtcdServers) == 0 {
		return errors.New("etcd_servers must not be empty")
	}
	if c.AgentTTL < time.Second {
		return errors.New("agent_ttl must be at least 1s")
	}
	return nil
}
