package nspawn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PresetPath is where the guest finds the preset file that keeps the host's
// installed services from starting at first boot.
const PresetPath = "/etc/systemd/system-preset/00-corekit.preset"

// Preset enables D-Bus and disables every other unit.
const Preset = "enable dbus.socket\nenable dbus.service\ndisable *\n"

// KernelArgs are passed to the guest's systemd after --boot --. Without them
// the guest waits two minutes for a network that never comes "online".
var KernelArgs = []string{
	"systemd.mask=systemd-networkd-wait-online.service",
	"systemd.mask=systemd-firstboot.service",
}

// SigPoweroff is SIGRTMIN+4, which asks systemd (PID 1) to power off.
const SigPoweroff = syscall.Signal(38)

// guestPath is PATH for commands run inside a guest.
const guestPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Bind is a host path bound into the guest.
type Bind struct {
	Host     string // absolute host path
	Guest    string // absolute path in the guest
	ReadOnly bool
}

func (b Bind) arg() string {
	flag := "--bind="
	if b.ReadOnly {
		flag = "--bind-ro="
	}
	return flag + b.Host + ":" + b.Guest
}

// Config describes one machine.
type Config struct {
	// Name is the machine name given to -M. The host side of its network
	// link is "vb-"+Name, so Name is at most 12 bytes and unique on the host.
	Name string
	// Hostname is the guest's hostname (defaults to Name).
	Hostname string
	// Bridge is the host bridge to join; empty means --private-network.
	Bridge string
	// Addr is configured on the guest's host0 after boot (optional).
	Addr netip.Prefix
	// Binds are bound into the guest (files or directories).
	Binds []Bind
	// Dir is a host directory that belongs to this machine: the preset file
	// and console.log are kept there. Created if missing.
	Dir string
	// Detach starts systemd-nspawn in its own session so it outlives the
	// calling process (used by `make up`).
	Detach bool
	// BootTimeout bounds the wait for is-system-running (default 90 s).
	BootTimeout time.Duration
}

// Info identifies a running machine; it is what `make up` records so that
// later commands can find the machine again (see Attach).
type Info struct {
	Name      string `json:"name"`
	Hostname  string `json:"hostname"`
	NspawnPID int    `json:"nspawn_pid"`
	StartTime uint64 `json:"nspawn_start_time"` // /proc/PID/stat field 22
	PID1      int    `json:"pid1"`
	Addr      string `json:"addr,omitempty"`
	Dir       string `json:"dir"`
}

// Machine is a running systemd-nspawn guest.
type Machine struct {
	info Info
	addr netip.Prefix
	log  *slog.Logger

	cmd  *exec.Cmd     // nil for attached machines
	done chan struct{} // closed when the nspawn process has exited (own machines)

	mu      sync.Mutex
	waitErr error
}

// Name is the -M machine name.
func (m *Machine) Name() string { return m.info.Name }

// Hostname is the guest's hostname.
func (m *Machine) Hostname() string { return m.info.Hostname }

// PID1 is the host pid of the guest's systemd.
func (m *Machine) PID1() int { return m.info.PID1 }

// NspawnPID is the host pid of the systemd-nspawn process.
func (m *Machine) NspawnPID() int { return m.info.NspawnPID }

// Addr is the guest's address on the bridge (zero if none).
func (m *Machine) Addr() netip.Prefix { return m.addr }

// Info returns what identifies the machine for Attach.
func (m *Machine) Info() Info { return m.info }

// Dir is the machine's host directory (preset, console log).
func (m *Machine) Dir() string { return m.info.Dir }

// ConsoleLog is the file that receives the guest console.
func (m *Machine) ConsoleLog() string { return filepath.Join(m.info.Dir, "console.log") }

// Root is the guest's root directory as seen from the host.
func (m *Machine) Root() string { return fmt.Sprintf("/proc/%d/root", m.info.PID1) }

// GuestPath maps an absolute guest path to a host path through Root.
func (m *Machine) GuestPath(p string) string {
	return filepath.Join(m.Root(), filepath.Clean("/"+p))
}

// SystemBus is the host path of the guest's D-Bus system bus socket.
func (m *Machine) SystemBus() string { return m.GuestPath("/run/dbus/system_bus_socket") }

// PrivateBus is the host path of the guest systemd's private socket.
func (m *Machine) PrivateBus() string { return m.GuestPath("/run/systemd/private") }

// Check reports what is missing on this host to boot machines: nil when
// systemd-nspawn, nsenter and ip are installed and we are root.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("nspawn: must run as root to boot systemd-nspawn machines")
	}
	for _, t := range []struct{ bin, pkg string }{
		{"systemd-nspawn", "systemd-container"},
		{"nsenter", "util-linux"},
		{"ip", "iproute2"},
	} {
		if _, err := exec.LookPath(t.bin); err != nil {
			return fmt.Errorf("nspawn: %s not found: install it with `apt-get install -y %s`", t.bin, t.pkg)
		}
	}
	return nil
}

// Args returns the systemd-nspawn command line for cfg (without the program
// name). The preset file is expected at cfg.Dir/preset.
func Args(cfg Config) []string {
	args := []string{
		"--register=no", "--keep-unit", "--volatile=yes", "-D", "/",
		"-M", cfg.Name, "--hostname=" + cfg.hostname(),
	}
	if cfg.Bridge != "" {
		args = append(args, "--network-bridge="+cfg.Bridge)
	} else {
		args = append(args, "--private-network")
	}
	args = append(args, "--bind-ro="+filepath.Join(cfg.Dir, "preset")+":"+PresetPath)
	for _, b := range cfg.Binds {
		args = append(args, b.arg())
	}
	args = append(args, "--boot", "--console=pipe", "--")
	return append(args, KernelArgs...)
}

func (cfg Config) hostname() string {
	if cfg.Hostname != "" {
		return cfg.Hostname
	}
	return cfg.Name
}

func (cfg Config) validate() error {
	if cfg.Name == "" || len(cfg.Name) > MaxIfNameLen-3 {
		return fmt.Errorf("nspawn: machine name %q must be 1..%d bytes", cfg.Name, MaxIfNameLen-3)
	}
	if err := ValidateIfName("vb-" + cfg.Name); err != nil {
		return err
	}
	if cfg.Dir == "" || !filepath.IsAbs(cfg.Dir) {
		return fmt.Errorf("nspawn: machine %s: Dir must be an absolute path", cfg.Name)
	}
	for _, b := range cfg.Binds {
		if !filepath.IsAbs(b.Host) || !filepath.IsAbs(b.Guest) {
			return fmt.Errorf("nspawn: machine %s: bind %s:%s: paths must be absolute", cfg.Name, b.Host, b.Guest)
		}
		if strings.Contains(b.Host, ":") || strings.Contains(b.Guest, ":") {
			return fmt.Errorf("nspawn: machine %s: bind %s:%s: paths must not contain ':'", cfg.Name, b.Host, b.Guest)
		}
		if _, err := os.Stat(b.Host); err != nil {
			return fmt.Errorf("nspawn: machine %s: bind: %w", cfg.Name, err)
		}
	}
	return nil
}

// bootAttempts bounds how often Boot tries a machine whose boot broke.
const bootAttempts = 3

// ErrBootBroken is returned (wrapped) when a guest's boot can no longer
// reach running: its D-Bus system bus failed to start. Seen rarely under
// heavy host load on fresh volatile guests (dbus-daemon found no user
// database yet); a fresh boot of the same machine succeeds, so Boot retries.
var ErrBootBroken = errors.New("boot broke: the guest's D-Bus system bus failed")

// Boot starts a machine and returns once its systemd reports running or
// degraded and, if cfg.Addr is set, host0 carries that address. On error the
// machine is stopped again. A boot that broke (ErrBootBroken) is powered off
// and tried again, up to bootAttempts times in all; every attempt's
// diagnosis is logged.
func Boot(ctx context.Context, cfg Config, log *slog.Logger) (*Machine, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for attempt := 1; ; attempt++ {
		m, err := bootOnce(ctx, cfg, log)
		if err == nil || !errors.Is(err, ErrBootBroken) || attempt == bootAttempts || ctx.Err() != nil {
			return m, err
		}
		log.Warn("machine boot broke, booting it again", "machine", cfg.Name, "attempt", attempt, "err", err)
		for i := 0; i < 50 && LinkExists("vb-"+cfg.Name); i++ {
			if sleepCtx(ctx, 100*time.Millisecond) != nil {
				break
			}
		}
	}
}

func bootOnce(ctx context.Context, cfg Config, log *slog.Logger) (*Machine, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if LinkExists("vb-" + cfg.Name) {
		return nil, fmt.Errorf("nspawn: machine %s: interface vb-%s exists: a machine of that name is running", cfg.Name, cfg.Name)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("nspawn: machine %s: %w", cfg.Name, err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "preset"), []byte(Preset), 0o644); err != nil {
		return nil, fmt.Errorf("nspawn: machine %s: %w", cfg.Name, err)
	}
	console, err := os.OpenFile(filepath.Join(cfg.Dir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("nspawn: machine %s: %w", cfg.Name, err)
	}
	defer console.Close() // the child keeps its own descriptor

	// Not CommandContext: the machine must not die with ctx, only by Poweroff/Kill.
	cmd := exec.Command("systemd-nspawn", Args(cfg)...)
	cmd.Stdin = nil
	cmd.Stdout = console
	cmd.Stderr = console
	cmd.Env = []string{"PATH=" + guestPath, "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !cfg.Detach, Setsid: cfg.Detach}
	log.Debug("booting machine", "machine", cfg.Name, "args", cmd.Args)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("nspawn: machine %s: start systemd-nspawn: %w", cfg.Name, err)
	}
	m := &Machine{
		info: Info{Name: cfg.Name, Hostname: cfg.hostname(), NspawnPID: cmd.Process.Pid, Dir: cfg.Dir},
		addr: cfg.Addr,
		log:  log,
		cmd:  cmd,
		done: make(chan struct{}),
	}
	if cfg.Addr.IsValid() {
		m.info.Addr = cfg.Addr.String()
	}
	go func() {
		err := cmd.Wait()
		m.mu.Lock()
		m.waitErr = err
		m.mu.Unlock()
		close(m.done)
	}()
	m.info.StartTime, _ = procStartTime(m.info.NspawnPID)

	timeout := cfg.BootTimeout
	if timeout <= 0 {
		timeout = 90 * time.Second
	}
	bctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fail := func(step string, err error) (*Machine, error) {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer scancel()
		diag := "console (last lines):\n" + m.consoleTail(20)
		if m.info.PID1 != 0 && m.pid1Alive() {
			jobs := m.Run(sctx, "systemctl", "list-jobs", "--no-pager")
			users := m.Run(sctx, "sh", "-c", "ls -l --full-time /etc/passwd /etc/group 2>&1; systemctl status --no-pager systemd-sysusers.service 2>&1 | head -n 12")
			diag += "\nsystemctl list-jobs:\n" + jobs.Stdout + "\nusers:\n" + users.Stdout + "\njournal (last lines):\n" + m.JournalTail(sctx, "", 25)
		}
		_ = m.Poweroff(sctx)
		return nil, fmt.Errorf("nspawn: machine %s: %s: %w\n%s", cfg.Name, step, err, diag)
	}
	if err := m.waitPID1(bctx); err != nil {
		return fail("find PID 1", err)
	}
	if err := m.WaitRunning(bctx); err != nil {
		return fail("wait for is-system-running", err)
	}
	if cfg.Addr.IsValid() {
		if err := m.configureNetwork(bctx); err != nil {
			return fail("configure host0", err)
		}
	}
	log.Info("machine booted", "machine", cfg.Name, "pid1", m.info.PID1, "addr", m.info.Addr, "took", time.Since(start).Round(time.Millisecond))
	return m, nil
}

// Attach finds a machine booted earlier (possibly by another process) from
// its Info. It fails if the systemd-nspawn process is gone or is not the one
// recorded (pid reuse).
func Attach(info Info, log *slog.Logger) (*Machine, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Machine{info: info, log: log}
	if info.Addr != "" {
		p, err := netip.ParsePrefix(info.Addr)
		if err != nil {
			return nil, fmt.Errorf("nspawn: machine %s: bad address %q: %w", info.Name, info.Addr, err)
		}
		m.addr = p
	}
	if !m.nspawnAlive() {
		return nil, fmt.Errorf("nspawn: machine %s: not running (systemd-nspawn pid %d is gone)", info.Name, info.NspawnPID)
	}
	return m, nil
}

// Running reports whether the machine's systemd-nspawn process still runs.
func (m *Machine) Running() bool { return m.nspawnAlive() }

func (m *Machine) nspawnAlive() bool {
	if m.done != nil {
		select {
		case <-m.done:
			return false
		default:
			return true
		}
	}
	st, err := procStartTime(m.info.NspawnPID)
	if err != nil || (m.info.StartTime != 0 && st != m.info.StartTime) {
		return false
	}
	state, _ := procState(m.info.NspawnPID)
	if state == "Z" {
		return false
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", m.info.NspawnPID))
	return bytes.Contains(cmdline, []byte("systemd-nspawn"))
}

func (m *Machine) pid1Alive() bool {
	if m.info.PID1 == 0 {
		return false
	}
	ppid, err := procPPid(m.info.PID1)
	if err != nil || ppid != m.info.NspawnPID {
		return false
	}
	state, _ := procState(m.info.PID1)
	return state != "Z"
}

// waitPID1 finds the guest's PID 1: the child of systemd-nspawn whose
// program is systemd.
func (m *Machine) waitPID1(ctx context.Context) error {
	for {
		if !m.nspawnAlive() {
			return fmt.Errorf("systemd-nspawn exited early: %v", m.exitErr())
		}
		for _, pid := range procChildren(m.info.NspawnPID) {
			exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
			if err == nil && filepath.Base(exe) == "systemd" {
				m.info.PID1 = pid
				return nil
			}
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// WaitRunning polls `systemctl is-system-running` until it prints running
// or degraded.
func (m *Machine) WaitRunning(ctx context.Context) error {
	last, polls := "", 0
	for {
		if !m.nspawnAlive() {
			return fmt.Errorf("systemd-nspawn exited: %v", m.exitErr())
		}
		r := m.Run(ctx, "systemctl", "is-system-running")
		state := strings.TrimSpace(r.Stdout)
		if state == "running" || state == "degraded" {
			return nil
		}
		if state != "" {
			last = state
		}
		if polls++; state == "starting" && polls%10 == 0 {
			// A failed system bus never recovers on its own (logind and
			// every Type=dbus unit wait for it): give up at once.
			r := m.Run(ctx, "systemctl", "is-failed", "dbus.socket", "dbus.service")
			if strings.Contains(r.Stdout, "failed") {
				return fmt.Errorf("%w (dbus.socket, dbus.service: %s)", ErrBootBroken, strings.Join(strings.Fields(r.Stdout), ", "))
			}
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("%w (last state %q)", err, last)
		}
	}
}

func (m *Machine) configureNetwork(ctx context.Context) error {
	for _, args := range [][]string{
		{"ip", "link", "set", "lo", "up"},
		{"ip", "addr", "add", m.addr.String(), "dev", "host0"},
		{"ip", "link", "set", "host0", "up"},
	} {
		// Only the network namespace: the host's ip binary configures the guest's links.
		cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(m.info.PID1), "-n", "--"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %s: %w", strings.Join(args, " "), strings.TrimSpace(string(out)), err)
		}
	}
	return nil
}

func (m *Machine) exitErr() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.waitErr
}

// Result is the outcome of a command run in a guest.
type Result struct {
	Stdout   string
	Stderr   string
	ExitCode int   // -1 if the command did not run to an exit
	Err      error // non-nil if the command could not be run or exited non-zero
}

// OK reports whether the command exited 0.
func (r Result) OK() bool { return r.Err == nil && r.ExitCode == 0 }

// Command returns an unstarted command that runs args inside the guest's
// mount, UTS, IPC, network and PID namespaces (nsenter -t PID1 -m -u -i -n -p).
func (m *Machine) Command(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"-t", strconv.Itoa(m.info.PID1), "-m", "-u", "-i", "-n", "-p", "--"}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", full...)
	cmd.Env = []string{"PATH=" + guestPath, "HOME=/root", "LANG=C.UTF-8", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"}
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Run runs args inside the guest and collects its output.
func (m *Machine) Run(ctx context.Context, args ...string) Result {
	return m.RunInput(ctx, nil, args...)
}

// RunInput is Run with stdin.
func (m *Machine) RunInput(ctx context.Context, stdin io.Reader, args ...string) Result {
	if len(args) == 0 {
		return Result{ExitCode: -1, Err: errors.New("nspawn: Run: no command")}
	}
	if m.info.PID1 == 0 {
		return Result{ExitCode: -1, Err: errors.New("nspawn: Run: machine has no PID 1")}
	}
	cmd := m.Command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdin = stdin
	cmd.Stdout = &out
	cmd.Stderr = &errb
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String(), ExitCode: -1}
	if cmd.ProcessState != nil {
		r.ExitCode = cmd.ProcessState.ExitCode()
	}
	if err != nil {
		r.Err = fmt.Errorf("%s on %s: %w", strings.Join(args, " "), m.info.Hostname, err)
	}
	return r
}

// ReadFile reads a file of the guest.
func (m *Machine) ReadFile(guestPath string) ([]byte, error) {
	return os.ReadFile(m.GuestPath(guestPath))
}

// WriteFile writes a file into the guest, creating parent directories.
func (m *Machine) WriteFile(guestPath string, data []byte, perm os.FileMode) error {
	p := m.GuestPath(guestPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("nspawn: %s: %w", m.info.Hostname, err)
	}
	if err := os.WriteFile(p, data, perm); err != nil {
		return fmt.Errorf("nspawn: %s: %w", m.info.Hostname, err)
	}
	return nil
}

// JournalTail returns the last n journal lines of unit ("" = whole journal).
func (m *Machine) JournalTail(ctx context.Context, unit string, n int) string {
	args := []string{"journalctl", "--no-pager", "-q", "-n", strconv.Itoa(n)}
	if unit != "" {
		args = append(args, "-u", unit)
	}
	r := m.Run(ctx, args...)
	if r.Err != nil && r.Stdout == "" {
		return fmt.Sprintf("(journalctl failed: %v %s)", r.Err, strings.TrimSpace(r.Stderr))
	}
	return r.Stdout
}

func (m *Machine) consoleTail(n int) string {
	b, err := os.ReadFile(m.ConsoleLog())
	if err != nil {
		return "(no console log)"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Poweroff asks the guest's systemd to power off (SIGRTMIN+4) and waits for
// systemd-nspawn to exit. If ctx ends first, the guest's PID namespace is
// killed (SIGKILL to PID 1) and, once PID 1 is gone, a lingering
// systemd-nspawn too.
func (m *Machine) Poweroff(ctx context.Context) error {
	if !m.nspawnAlive() {
		return nil
	}
	if m.pid1Alive() {
		if err := syscall.Kill(m.info.PID1, SigPoweroff); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("nspawn: poweroff %s: %w", m.info.Name, err)
		}
		if m.waitExit(ctx) == nil {
			return nil
		}
		m.log.Warn("machine did not power off in time; killing it", "machine", m.info.Name)
	}
	return m.Kill(context.WithoutCancel(ctx))
}

// Kill simulates a hard failure: SIGKILL to the guest's PID 1 ends every
// process of the guest (the kernel kills a PID namespace with its init).
// It waits for systemd-nspawn to exit; only if PID 1 is gone and nspawn
// still lingers after 10 s is nspawn itself killed.
func (m *Machine) Kill(ctx context.Context) error {
	if m.pid1Alive() {
		if err := syscall.Kill(m.info.PID1, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("nspawn: kill %s: %w", m.info.Name, err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if m.waitExit(wctx) == nil {
		return nil
	}
	if m.pid1Alive() {
		return fmt.Errorf("nspawn: kill %s: PID 1 (%d) survived SIGKILL", m.info.Name, m.info.PID1)
	}
	if m.nspawnAlive() {
		_ = syscall.Kill(m.info.NspawnPID, syscall.SIGKILL)
	}
	wctx2, cancel2 := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel2()
	return m.waitExit(wctx2)
}

func (m *Machine) waitExit(ctx context.Context) error {
	if m.done != nil {
		select {
		case <-m.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("nspawn: %s still running: %w", m.info.Name, ctx.Err())
		}
	}
	for m.nspawnAlive() {
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("nspawn: %s still running: %w", m.info.Name, err)
		}
	}
	return nil
}

// Exited returns a channel closed when systemd-nspawn exits (nil for
// attached machines).
func (m *Machine) Exited() <-chan struct{} { return m.done }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
