package cloudinitmain

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/corekit/corekit/cloudinit/internal/apply"
	"github.com/corekit/corekit/cloudinit/internal/config"
	"github.com/corekit/corekit/cloudinit/internal/datasource"
	"github.com/corekit/corekit/cloudinit/internal/plan"
)

// Env is everything Run takes from the outside world besides arguments.
// Zero fields get defaults (see DefaultEnv); tests replace them.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Now            func() time.Time // log timestamps
	Hostname       func() (string, error)
	// SelectTimeout bounds waiting for a datasource (the anchor: 5 min).
	SelectTimeout time.Duration
	// ProcCmdline is the kernel command line file for --from-proc-cmdline.
	ProcCmdline string
	// HTTP fetches --from-url and cloud-config-url documents.
	HTTP *datasource.Client
	// Runner runs useradd, chpasswd and hostnamectl.
	Runner apply.Runner
	// Systemd connects to the service manager of the system at root. The
	// default tries root's /run/systemd/private, then (for "/") the system
	// bus.
	Systemd func(ctx context.Context, root string) (apply.Systemd, func(), error)
}

// DefaultSSHKeyName is --ssh-key-name's default.
const DefaultSSHKeyName = "coreos-cloudinit"

const noSource = "Provide at least one of --from-file, --from-configdrive, --from-ec2-metadata, --from-gce-metadata, --from-cloudsigma-metadata, --from-packet-metadata, --from-digitalocean-metadata, --from-vmware-guestinfo, --from-waagent, --from-url or --from-proc-cmdline"

type options struct {
	version, ignoreFailure, validate, procCmdline, dryRun, strict bool
	file, url, configDrive                                        string
	workspace, sshKeyName, root                                   string
	ips                                                           map[string]*string
}

func (e *Env) fill() {
	d := DefaultEnv()
	if e.Stdout == nil {
		e.Stdout = d.Stdout
	}
	if e.Stderr == nil {
		e.Stderr = d.Stderr
	}
	if e.Getenv == nil {
		e.Getenv = d.Getenv
	}
	if e.Now == nil {
		e.Now = d.Now
	}
	if e.Hostname == nil {
		e.Hostname = d.Hostname
	}
	if e.SelectTimeout == 0 {
		e.SelectTimeout = d.SelectTimeout
	}
	if e.ProcCmdline == "" {
		e.ProcCmdline = d.ProcCmdline
	}
	if e.HTTP == nil {
		e.HTTP = datasource.DefaultClient()
	}
	if e.Systemd == nil {
		e.Systemd = connectSystemd
	}
}

// errNoSystemd means neither of root's systemd sockets exists.
var errNoSystemd = errors.New("no systemd socket")

// connectSystemd reaches the manager of the system at root: its private
// socket first, then its D-Bus system bus. When neither socket exists it
// returns errNoSystemd; the caller decides whether that is fatal.
func connectSystemd(ctx context.Context, root string) (apply.Systemd, func(), error) {
	private, bus := apply.PrivateSocket(root), apply.SystemBusSocket(root)
	_, perr := os.Stat(private)
	_, berr := os.Stat(bus)
	if perr != nil && berr != nil {
		return nil, nil, fmt.Errorf("%w at %s or %s", errNoSystemd, private, bus)
	}
	var errs []error
	if perr == nil {
		d, err := apply.DialPrivate(ctx, private)
		if err == nil {
			return d, d.Close, nil
		}
		errs = append(errs, err)
	}
	if berr == nil {
		d, err := apply.DialBus(ctx, bus)
		if err == nil {
			return d, d.Close, nil
		}
		errs = append(errs, err)
	}
	return nil, nil, errors.Join(errs...)
}

// Run is coreos-cloudinit with args (without the program name). It returns
// the exit code: 0 success, 1 failure (datasource, apply, or bad user-data
// without --ignore-failure), 2 usage.
func Run(ctx context.Context, args []string, env Env) int {
	env.fill()
	log := newLogger(env.Stderr, env.Now)
	fs := flag.NewFlagSet("coreos-cloudinit", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	var o options
	fs.BoolVar(&o.version, "version", false, "Print the version and exit")
	fs.BoolVar(&o.ignoreFailure, "ignore-failure", false, "Exits with 0 status in the event of malformed input from user-data")
	fs.StringVar(&o.file, "from-file", "", "Read user-data from provided file")
	fs.StringVar(&o.configDrive, "from-configdrive", "", "Read data from provided cloud-drive directory")
	fs.StringVar(&o.url, "from-url", "", "Download user-data from provided url")
	fs.BoolVar(&o.procCmdline, "from-proc-cmdline", false, "Parse /proc/cmdline for 'cloud-config-url=<url>', using the cloud-config served by an HTTP GET to <url>")
	fs.StringVar(&o.workspace, "workspace", "/var/lib/coreos-cloudinit", "Base directory coreos-cloudinit should use to store data")
	fs.StringVar(&o.sshKeyName, "ssh-key-name", DefaultSSHKeyName, "Add SSH keys to the system with the given name")
	fs.BoolVar(&o.validate, "validate", false, "Validate the user-data but do not apply it to the system")
	fs.StringVar(&o.root, "root", "/", "Apply the configuration to the system rooted at this directory (its systemd is reached at ROOT/run/systemd/private if present)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "Print the planned actions and change nothing")
	fs.BoolVar(&o.strict, "strict", false, "Treat warnings (unknown or deprecated keys) as errors")
	o.ips = map[string]*string{}
	for _, v := range config.Variables() {
		o.ips[v] = fs.String(strings.ReplaceAll(v, "_", "-"), "", "Value of $"+v+" (overrides metadata and "+config.EnvName(v)+")")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if o.version {
		fmt.Fprintf(env.Stdout, "coreos-cloudinit %s\n", Version)
		return 0
	}
	for _, v := range config.Variables() {
		if s := *o.ips[v]; s != "" && net.ParseIP(s) == nil {
			fmt.Fprintf(env.Stdout, "Invalid option to -%s: %q is not an IP address\n", strings.ReplaceAll(v, "_", "-"), s)
			return 2
		}
	}
	var sources []datasource.Datasource
	if o.file != "" {
		sources = append(sources, datasource.LocalFile{Path: o.file})
	}
	if o.configDrive != "" {
		sources = append(sources, datasource.ConfigDrive{Root: o.configDrive})
	}
	if o.url != "" {
		sources = append(sources, datasource.URL{URL: o.url, Client: env.HTTP})
	}
	if o.procCmdline {
		sources = append(sources, datasource.ProcCmdline{Path: env.ProcCmdline, Client: env.HTTP})
	}
	if len(sources) == 0 {
		fmt.Fprintln(env.Stdout, noSource)
		return 2
	}
	r := &runner{o: o, env: env, log: log}
	return r.run(ctx, sources)
}

type runner struct {
	o   options
	env Env
	log *slog.Logger
}

func (r *runner) logf(format string, args ...any) { r.log.Info(fmt.Sprintf(format, args...)) }

func (r *runner) run(ctx context.Context, sources []datasource.Datasource) int {
	ds, err := datasource.Select(ctx, sources, r.env.SelectTimeout, r.log)
	if err != nil {
		r.logf("%v", err)
		return 1
	}
	soft := false
	r.logf("Fetching user-data from datasource of type %q", ds.Type())
	data, err := ds.FetchUserdata(ctx)
	if err != nil {
		r.logf("Failed fetching user-data from datasource: %v. Continuing...", err)
		soft, data = true, nil
	}
	if d, err := config.Gunzip(data); err != nil {
		r.logf("Failed decompressing user-data from datasource: %v. Continuing...", err)
		soft, data = true, nil
	} else {
		data = d
	}

	if r.o.validate {
		rep := config.Validate(data)
		for _, e := range rep.Entries() {
			r.logf("%s", e)
		}
		if rep.Fails(r.o.strict) {
			return 1
		}
		return 0
	}

	r.logf("Fetching meta-data from datasource of type %q", ds.Type())
	md, err := ds.FetchMetadata(ctx)
	if err != nil {
		r.logf("Failed fetching meta-data from datasource: %v", err)
		return 1
	}
	vals := r.variables(md)

	var cfg *config.Config
	var script string
	switch format := config.Classify(data); format {
	case config.Ignition:
		fmt.Fprint(r.env.Stdout, "Detected an Ignition config. Exiting...")
		return 0
	case config.Empty:
	case config.Script, config.CloudConfig:
		text, rep := config.Substitute(string(data), vals)
		var parsed *config.Config
		if format == config.CloudConfig {
			var prep config.Report
			parsed, prep = config.Parse([]byte(text))
			rep.Merge(prep)
		}
		for _, e := range rep.Entries() {
			r.logf("%s", e)
		}
		if rep.Fails(r.o.strict) {
			fmt.Fprintf(r.env.Stdout, "Failed to parse user-data: %s\nContinuing...\n", summary(rep, r.o.strict))
			soft = true
		} else if format == config.Script {
			script = text
		} else {
			cfg = parsed
		}
	default:
		fmt.Fprintf(r.env.Stdout, "Failed to parse user-data: Unrecognized user-data format\nContinuing...\n")
		soft = true
	}

	r.logf("Merging cloud-config from meta-data and user-data")
	cfg = r.merge(cfg, md)
	host, _ := r.env.Hostname()
	p, err := plan.Build(plan.Input{
		Config: cfg, Script: script, Environment: r.environment(md),
		SSHKeyName: r.o.sshKeyName, Workspace: r.o.workspace, CurrentHostname: host,
	})
	if err != nil {
		r.logf("Failed to apply cloud-config: %v", err)
		return 1
	}
	if r.o.dryRun {
		if err := p.Print(r.env.Stdout); err != nil {
			return 1
		}
		return r.exit(soft)
	}

	opts := apply.Options{Root: r.o.root, Runner: r.env.Runner, Logger: r.log}
	if needsSystemd(p) {
		sd, closeFn, err := r.env.Systemd(ctx, r.o.root)
		switch {
		case err == nil:
			defer closeFn()
			opts.Systemd = sd
		case errors.Is(err, errNoSystemd) && r.o.root != "/" && r.o.root != "":
			r.logf("No systemd behind %s (%v): writing files only", r.o.root, err)
		default:
			r.logf("Failed to apply cloud-config: %v", err)
			return 1
		}
	}
	if err := apply.Apply(ctx, p, opts); err != nil {
		r.logf("Failed to apply cloud-config: %v", err)
		return 1
	}
	return r.exit(soft)
}

func (r *runner) exit(soft bool) int {
	if soft && !r.o.ignoreFailure {
		return 1
	}
	return 0
}

// summary is the one-line reason printed after "Failed to parse user-data: ".
func summary(rep config.Report, strict bool) string {
	var fails []config.Entry
	for _, e := range rep.Entries() {
		if e.Kind == config.Error || (strict && e.Kind == config.Warning) {
			fails = append(fails, e)
		}
	}
	s := fails[0].String()
	if len(fails) > 1 {
		s += fmt.Sprintf(" (and %d more)", len(fails)-1)
	}
	return s
}

func needsSystemd(p *plan.Plan) bool {
	for _, a := range p.Actions {
		switch a.Kind {
		case plan.DaemonReload, plan.UnitCommand, plan.Enable, plan.RunScript:
			return true
		}
	}
	return false
}

// merge adds metadata to the config: the hostname if user-data sets none,
// and every metadata SSH key (in key-name order) after the user's.
func (r *runner) merge(cfg *config.Config, md datasource.Metadata) *config.Config {
	out := config.Config{}
	if cfg != nil {
		out = *cfg
	}
	if md.Hostname != "" {
		if out.Hostname == "" {
			out.Hostname = md.Hostname
		} else if out.Hostname != md.Hostname {
			r.logf("Warning: user-data hostname (%s) overrides metadata hostname (%s)", out.Hostname, md.Hostname)
		}
	}
	names := make([]string, 0, len(md.SSHPublicKeys))
	for n := range md.SSHPublicKeys {
		names = append(names, n)
	}
	sort.Strings(names)
	keys := append([]string(nil), out.SSHAuthorizedKeys...)
	for _, n := range names {
		keys = append(keys, md.SSHPublicKeys[n])
	}
	out.SSHAuthorizedKeys = keys
	return &out
}

// variables resolves the four substitution variables: flag, then metadata,
// then the process environment (COREOS_PUBLIC_IPV4 …), then ROOT/etc/environment.
func (r *runner) variables(md datasource.Metadata) map[string]string {
	mdIP := r.metadataIPs(md)
	file := readEnvironment(filepath.Join(r.o.root, "etc/environment"))
	out := map[string]string{}
	for _, v := range config.Variables() {
		switch {
		case *r.o.ips[v] != "":
			out[v] = *r.o.ips[v]
		case mdIP[v] != "":
			out[v] = mdIP[v]
		case r.env.Getenv(config.EnvName(v)) != "":
			out[v] = r.env.Getenv(config.EnvName(v))
		default:
			out[v] = file[config.EnvName(v)]
		}
	}
	return out
}

func (r *runner) metadataIPs(md datasource.Metadata) map[string]string {
	out := map[string]string{}
	for v, ip := range map[string]net.IP{
		"public_ipv4": md.PublicIPv4, "private_ipv4": md.PrivateIPv4,
		"public_ipv6": md.PublicIPv6, "private_ipv6": md.PrivateIPv6,
	} {
		if ip != nil {
			out[v] = ip.String()
		}
	}
	return out
}

// environment is what /etc/environment should say: the addresses known from
// metadata or flags.
func (r *runner) environment(md datasource.Metadata) map[string]string {
	out := map[string]string{}
	mdIP := r.metadataIPs(md)
	for _, v := range config.Variables() {
		val := *r.o.ips[v]
		if val == "" {
			val = mdIP[v]
		}
		if val != "" {
			out[config.EnvName(v)] = val
		}
	}
	return out
}

// readEnvironment reads KEY=value lines (values may be quoted); a missing
// file is empty.
func readEnvironment(p string) map[string]string {
	out := map[string]string{}
	f, err := os.Open(p)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(l, "export "), "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[strings.TrimSpace(k)] = v
	}
	return out
}
